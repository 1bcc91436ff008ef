//! Path attacks against every route that serves files: `/media/*`,
//! `/api/generate/media/*` (and the original's `?id=` forms) and `/api/media/:id`.
//!
//! A corpus of traversal forms (plain, percent-encoded, double-encoded, overlong
//! UTF-8, backslashes, NUL, absolute and Windows drive forms, very long paths,
//! symlinks out of the root, dotfiles), each aimed at a secret file one to six
//! levels above each root. None may return a byte of the secret, none may be a
//! 5xx, and every refusal is a JSON error.

use crate::common::*;

const SECRET: &[u8] = b"TOP-SECRET-BYTES";

/// Ways to say "one level up", as they arrive on the wire.
const UPS: &[&str] = &[
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "%c0%ae%c0%ae",       // overlong '.'
    "%e0%80%ae%e0%80%ae", // 3-byte overlong '.'
    "%f0%80%80%ae%f0%80%80%ae",
    "%ef%bc%8e%ef%bc%8e", // fullwidth '.' (an ordinary name on Linux)
    "..%00",
    "..%01",
    "...",
    "....",
];

/// Ways to say "/".
const SEPS: &[&str] = &["/", "%2f", "%2F", "%5c", "%5C", "\\", "%252f", "%c0%af", "%e0%80%af", "%c1%9c", "//", "/./", "/%2e/"];

/// Whole-path forms that are not built from UPS × SEPS.
fn absolute_forms(secret_abs: &str) -> Vec<String> {
    let enc = secret_abs.replace('/', "%2f");
    vec![
        secret_abs.trim_start_matches('/').to_owned(),
        format!("/{}", secret_abs.trim_start_matches('/')),
        enc.clone(),
        format!("%2f{}", enc.trim_start_matches("%2f")),
        "etc/passwd%00.gif".into(),
        "%00".into(),
        "ok.gif%00.txt".into(),
        "ok.gif%0d%0aSet-Cookie:%20x=1".into(),
        "C:%5cWindows%5cwin.ini".into(),
        "C:/Windows/win.ini".into(),
        "c%3a%5cwindows%5cwin.ini".into(),
        "%5c%5cserver%5cshare%5csecret.txt".into(),
        "%5c..%5c..%5csecret.txt".into(),
        "ok.gif::$DATA".into(),
        "ok.gif.".into(),
        "ok.gif%20".into(),
        "CON".into(),
        "aux.gif".into(),
        "file:%2f%2f%2fetc%2fpasswd".into(),
        ".env".into(),
        "%2eenv".into(),
        ".git/config".into(),
        "%2egit/config".into(),
        "fitnessally/.hidden.gif".into(),
        "link.gif".into(),
        "linkdir/secret.txt".into(),
        "linkdir".into(),
        "emptydir".into(),
        "emptydir/".into(),
        "a/".repeat(3000),
        format!("{}ok.gif", "x".repeat(5000)),
        "%".into(),
        "%zz".into(),
        "%e2%82".into(), // truncated UTF-8
        "%ff%fe".into(),
    ]
}

/// Every traversal aimed `depth` levels up, then at `target`.
fn traversals(target: &str) -> Vec<String> {
    let mut out = Vec::new();
    for up in UPS {
        for sep in SEPS {
            for depth in [1, 3, 6] {
                let mut p = String::new();
                for _ in 0..depth {
                    p.push_str(up);
                    p.push_str(sep);
                }
                p.push_str(target);
                out.push(p.clone());
                // also from inside a real directory
                out.push(format!("fitnessally{sep}{p}"));
            }
        }
    }
    out
}

struct Fixture {
    t: TestServer,
    secret_abs: String,
}

async fn fixture() -> Fixture {
    let t = TestServer::start().await;
    t.put_web("fitnessally/ok.gif", b"fine");
    t.put_web(".env", SECRET);
    t.put_web(".git/config", SECRET);
    t.put_web("fitnessally/.hidden.gif", SECRET);
    std::fs::create_dir_all(t.web_root().join("emptydir")).unwrap();
    write_file(&t.dir.path().join("generated/ok.gif"), b"fine");
    write_file(&t.dir.path().join("generated/.secret"), SECRET);
    // the secret sits above every root: <tmp>/secret.txt, <tmp>/data/secret.txt, ...
    let secret = t.dir.path().join("secret.txt");
    write_file(&secret, SECRET);
    write_file(&t.dir.path().join("data/secret.txt"), SECRET);
    write_file(&t.dir.path().join("data/media/secret.txt"), SECRET);
    write_file(&t.dir.path().join("data/oipd-secret.txt"), SECRET);
    std::os::unix::fs::symlink(&secret, t.web_root().join("link.gif")).unwrap();
    std::os::unix::fs::symlink(t.dir.path(), t.web_root().join("linkdir")).unwrap();
    std::os::unix::fs::symlink(&secret, t.dir.path().join("generated/link.gif")).unwrap();
    let secret_abs = secret.to_str().unwrap().to_owned();
    Fixture { t, secret_abs }
}

fn check(f: &Fixture, url: &str, r: &RawResponse) {
    // static mounts never answer 401/403; only /api/media/:id has access rules
    let allowed: &[u16] = if url.starts_with("/api/media/") { &[400, 401, 404, 414, 431] } else { &[400, 404, 414, 431] };
    assert!(
        allowed.contains(&r.status),
        "{url:.200}: status {} ({:.200})",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    let body = String::from_utf8_lossy(&r.body);
    assert!(!body.contains("TOP-SECRET"), "{url:.200} leaked the secret");
    assert!(!body.contains(f.t.dir.path().to_str().unwrap()), "{url:.200} revealed a filesystem path: {body:.200}");
    if r.status != 431 && r.status != 414 {
        assert!(r.json()["error"].is_string(), "{url:.200}: JSON error body");
    }
}

/// The mounts, each as (prefix the attack is appended to).
const MOUNTS: &[&str] = &["/media/", "/api/generate/media/", "/api/generate/media?id=", "/api/media?id=", "/api/media/"];

#[tokio::test]
async fn traversal_corpus_against_every_file_route() {
    let f = fixture().await;
    let mut attacks: Vec<String> = Vec::new();
    for target in ["secret.txt", "oipd-secret.txt"] {
        attacks.extend(traversals(target));
    }
    attacks.extend(absolute_forms(&f.secret_abs));
    // past /api/media's id parser: a valid id followed by traversal
    let id = "a".repeat(64);
    for a in ["../../secret.txt", "%2e%2e/%2e%2e/secret.txt", "..%2f..%2fsecret.txt", "info/../../secret.txt", "original", "manifest.json"] {
        attacks.push(format!("{id}/{a}"));
    }
    let mut sent = 0;
    for mount in MOUNTS {
        for a in &attacks {
            // a raw request line may not hold spaces or CR/LF; those forms travel encoded
            if a.contains(' ') || a.contains('\r') || a.contains('\n') {
                continue;
            }
            let url = format!("{mount}{a}");
            let r = f.t.get_raw_path(&url, "").await;
            if r.status == 200 {
                // only the decoy files may ever be served
                assert_eq!(r.body, b"fine", "{url:.200}: served something else");
                continue;
            }
            check(&f, &url, &r);
            sent += 1;
        }
    }
    assert!(sent > 10_000, "the corpus is large ({sent} refused requests)");
    // and the server is still fine
    assert_eq!(f.t.get_raw_path("/media/fitnessally/ok.gif", "").await.body, b"fine");
    assert_eq!(f.t.get_raw_path("/api/generate/media/ok.gif", "").await.body, b"fine");
}

#[tokio::test]
async fn the_same_attacks_through_head_and_range() {
    let f = fixture().await;
    let attacks = ["../secret.txt", "%2e%2e/secret.txt", "link.gif", ".env", "linkdir/secret.txt", "%c0%ae%c0%ae/secret.txt"];
    for mount in ["/media/", "/api/generate/media/"] {
        for a in attacks {
            for (method, extra) in [("HEAD", ""), ("GET", "Range: bytes=0-3\r\n"), ("GET", "Range: bytes=-5\r\n")] {
                let url = format!("{mount}{a}");
                let r = f.t.raw(&format!("{method} {url} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n")).await;
                assert!([400, 404].contains(&r.status), "{method} {url} {extra}: {}", r.status);
                if method == "GET" {
                    check(&f, &url, &r);
                }
            }
        }
    }
}

#[tokio::test]
async fn very_long_paths_and_request_lines() {
    let f = fixture().await;
    for n in [4_097, 10_000, 60_000] {
        let url = format!("/media/{}", "a".repeat(n));
        let r = f.t.get_raw_path(&url, "").await;
        assert!([400, 404, 414, 431].contains(&r.status), "{n}: {}", r.status);
    }
    // past the head cap: refused by the HTTP layer (414 URI Too Long)
    let r = f.t.get_raw_path(&format!("/media/{}", "a".repeat(70_000)), "").await;
    assert!([414, 431].contains(&r.status), "{}", r.status);
    assert_eq!(f.t.get_raw_path("/media/fitnessally/ok.gif", "").await.body, b"fine");
}

#[test]
fn resolved_paths_never_leave_the_root() {
    // The resolver itself, over the same corpus, with the filesystem in the loop.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write_file(&root.join("a/ok.gif"), b"x");
    write_file(&dir.path().join("secret.txt"), SECRET);
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("a/link.gif")).unwrap();
    let root = std::fs::canonicalize(&root).unwrap();
    let mut attacks = traversals("secret.txt");
    attacks.extend(absolute_forms(dir.path().join("secret.txt").to_str().unwrap()));
    attacks.push("a/link.gif".into());
    for a in &attacks {
        if let Ok(p) = oipd::http::safe_path::resolve(&root, a) {
            assert!(p.starts_with(&root), "{a} resolved to {}", p.display());
        }
    }
    assert_eq!(oipd::http::safe_path::resolve(&root, "a/ok.gif").unwrap(), root.join("a/ok.gif"));
}

/// The same corpus against the public directory at `/` (the original's pages),
/// with its `index.html` fallback on and off: nothing above the directory, no
/// dotfile and no symlink out is ever served; with the fallback a refused name
/// may only ever answer the index page itself.
#[tokio::test]
async fn traversal_corpus_against_the_public_dir() {
    for fallback in ["on", "off"] {
        let t = TestServer::start_with(|c| c.pages.spa_fallback = fallback.into()).await;
        let public = t.dir.path().join("data/public");
        write_file(&public.join("ok.gif"), b"fine");
        write_file(&public.join("fitnessally/ok.gif"), b"fine");
        write_file(&public.join("index.html"), b"INDEX-PAGE");
        write_file(&public.join(".env"), SECRET);
        write_file(&public.join("fitnessally/.hidden.gif"), SECRET);
        let secret = t.dir.path().join("secret.txt");
        write_file(&secret, SECRET);
        write_file(&t.dir.path().join("data/secret.txt"), SECRET);
        std::os::unix::fs::symlink(&secret, public.join("link.gif")).unwrap();
        std::os::unix::fs::symlink(t.dir.path(), public.join("linkdir")).unwrap();
        // the public dir is found when the server starts: restart on the same data
        let cfg_dir = t.dir.path().to_path_buf();
        let t2 = TestServer::start_with(|c| {
            c.data_dir = cfg_dir.join("data");
            c.pages.spa_fallback = fallback.into();
        })
        .await;
        let mut attacks = traversals("secret.txt");
        attacks.extend(absolute_forms(secret.to_str().unwrap()));
        let f = Fixture { t: t2, secret_abs: String::new() };
        let mut refused = 0;
        for a in &attacks {
            if a.contains(' ') || a.contains('\r') || a.contains('\n') {
                continue;
            }
            let url = format!("/{a}");
            let r = f.t.get_raw_path(&url, "").await;
            if r.status == 200 {
                assert!(r.body == b"fine" || (fallback == "on" && r.body == b"INDEX-PAGE"), "{url:.200}: served {:.100}", String::from_utf8_lossy(&r.body));
                continue;
            }
            check(&f, &url, &r);
            // the secrets and the data live in the first server's directory
            assert!(!String::from_utf8_lossy(&r.body).contains(t.dir.path().to_str().unwrap()), "{url:.200} revealed a path");
            refused += 1;
        }
        assert!(refused > 100, "fallback {fallback}: {refused} refused");
        assert_eq!(f.t.get_raw_path("/ok.gif", "").await.body, b"fine");
        drop(t);
    }
}
