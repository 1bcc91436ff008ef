//! The indexer benchmark's gateway: the test Arweave of `tests/it/common/chain.rs`
//! (Arweave's GraphQL and data wire formats) holding `--txs` signed OIP records
//! (20 per block) after one creator registration and the `basic` template.
//!
//!     cargo run --release --example arweave_gateway -- --txs 100000 --cache target/bench/chain-100000.ndjson --listen 127.0.0.1:3995
//!
//! Signing 100,000 records with RSA-2048 takes a minute or two, so the chain is
//! cached as NDJSON. Prints one JSON line `{"url", "bootstrap", "tip", "txs"}`
//! once it serves, then serves until killed.

#[allow(dead_code)]
#[path = "../../tests/it/common/chain.rs"]
mod chain;

use std::io::{BufRead, Write};

use chain::*;
use serde_json::{json, Value};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_owned())
}

fn to_line(t: &ChainTx) -> String {
    json!({"id": t.id, "owner": t.owner_address, "key": t.owner_key, "tags": t.tags, "height": t.height,
        "data": String::from_utf8_lossy(&t.data)})
    .to_string()
}

fn from_line(l: &str) -> ChainTx {
    let v: Value = serde_json::from_str(l).expect("cache line");
    ChainTx {
        id: v["id"].as_str().unwrap().to_owned(),
        owner_address: v["owner"].as_str().unwrap().to_owned(),
        owner_key: v["key"].as_str().unwrap().to_owned(),
        tags: serde_json::from_value(v["tags"].clone()).unwrap(),
        height: v["height"].as_u64().unwrap(),
        data: v["data"].as_str().unwrap().as_bytes().to_vec(),
    }
}

fn generate(n: usize) -> Vec<ChainTx> {
    let alice = Signer::new();
    let reg = tx_registration(&alice, "bench", "Bench", "Mark", 1000);
    let basic = tx_template(&alice, "basic", &basic_fields(), 1001);
    let basic_id = basic.id.clone();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = std::sync::atomic::AtomicUsize::new(0);
    let mut records: Vec<(usize, ChainTx)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let (alice, basic_id, done) = (&alice, &basic_id, &done);
                s.spawn(move || {
                    (k..n)
                        .step_by(threads)
                        .map(|i| {
                            let items = json!([{"0": format!("Bench record {i}"), "1": format!("Description of record {i}, long enough to look like a real post."),
                                "2": 1_700_000_000u64 + i as u64, "3": i % 2, "4": ["bench", format!("tag{}", i % 50)], "t": basic_id}]);
                            let t = tx_record(alice, "post", &items, 1002 + (i / 20) as u64);
                            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            if d % 10_000 == 0 {
                                eprintln!("signed {d}/{n}");
                            }
                            (i, t)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    records.sort_by_key(|(i, _)| *i);
    let mut out = vec![reg, basic];
    out.extend(records.into_iter().map(|(_, t)| t));
    out
}

#[tokio::main]
async fn main() {
    let n: usize = arg("--txs", "100000").parse().expect("--txs");
    let cache = std::path::PathBuf::from(arg("--cache", &format!("target/bench/chain-{n}.ndjson")));
    let listen = arg("--listen", "127.0.0.1:3995");
    let txs = match std::fs::File::open(&cache) {
        Ok(f) => std::io::BufReader::new(f).lines().map(|l| from_line(&l.unwrap())).collect::<Vec<_>>(),
        Err(_) => {
            let txs = generate(n);
            if let Some(d) = cache.parent() {
                std::fs::create_dir_all(d).unwrap();
            }
            let tmp = cache.with_extension("tmp");
            let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
            for t in &txs {
                writeln!(f, "{}", to_line(t)).unwrap();
            }
            f.flush().unwrap();
            drop(f);
            std::fs::rename(&tmp, &cache).unwrap();
            txs
        }
    };
    let bootstrap = txs[0].id.clone();
    let tip = txs.iter().map(|t| t.height).max().unwrap_or(0) + 20;
    let count = txs.len();
    let gw = TestGateway::start_on(&listen, Chain { txs, tip, ..Default::default() }).await;
    println!("{}", json!({"url": gw.url, "bootstrap": bootstrap, "tip": tip, "txs": count}));
    std::io::stdout().flush().unwrap();
    std::future::pending::<()>().await;
}
