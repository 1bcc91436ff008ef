//! The publishing benchmark's Arweave: the test gateway of
//! `tests/it/common/chain.rs` (one creator, the `basic` and `post` templates)
//! and the test bundler of `tests/it/common/bundler.rs` (Turbo's upload and
//! payment wire formats, every data item's signature verified, credit charged)
//! bundling accepted items onto that chain; a miner mines the pending block
//! every `--block-secs`.
//!
//!     cargo run --release --example arweave_bundler -- --wallet tests/data/test_wallet.json --block-secs 2
//!
//! Prints one JSON line `{"gateway", "bundler", "bootstrap", "tip"}` once it
//! serves, then serves until killed.

#[allow(dead_code)]
#[path = "../../tests/it/common/chain.rs"]
mod chain;

#[allow(dead_code)]
#[path = "../../tests/it/common/bundler.rs"]
mod bundler;

use std::io::Write;
use std::time::Duration;

use chain::*;
use serde_json::json;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() {
    let wallet = std::fs::read(arg("--wallet", "tests/data/test_wallet.json")).expect("--wallet");
    let address = oipd::arweave::jwk::ArweaveWallet::from_jwk_json(&wallet).expect("a JWK").address();
    let block = Duration::from_secs(arg("--block-secs", "2").parse().expect("--block-secs"));
    let alice = Signer::new();
    let reg = tx_registration(&alice, "bench", "Bench", "Mark", 1000);
    let (templates, _) = templates_by(&alice, &[
        ("basic", basic_fields()),
        ("creatorRegistration", json!({
            "address": "string", "index_address": 0, "publicKey": "string", "index_publicKey": 1,
            "handle": "string", "index_handle": 2, "surname": "string", "index_surname": 3
        })),
        ("post", json!({"articleText": "string", "index_articleText": 0, "replyTo": "dref", "index_replyTo": 1})),
    ], 1001);
    let bootstrap = reg.id.clone();
    let mut txs = vec![reg];
    txs.extend(templates);
    let gw = TestGateway::start(Chain { txs, tip: 1001, ..Default::default() }).await;
    let b = bundler::TestBundler::start(Some(gw.chain.clone()), 1).await;
    b.set_credit(&address, u128::MAX / 2);
    let chain = gw.chain.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(block).await;
            let mut c = chain.lock().unwrap();
            c.tip = c.txs.iter().map(|t| t.height).max().unwrap_or(c.tip).max(c.tip);
        }
    });
    println!("{}", json!({"gateway": gw.url, "bundler": b.url, "bootstrap": bootstrap, "tip": 1001}));
    std::io::stdout().flush().unwrap();
    std::future::pending::<()>().await;
}
