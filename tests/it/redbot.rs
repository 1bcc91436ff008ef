//! An independent judge: REDbot (PyPI `redbot`, pinned in scripts/test.sh, which
//! installs it into `target/redbot-venv`) checks `/media/...`, the generated-media
//! mount and `/api/media/...` on a real `oipd` process — anonymous and with the
//! owner's token — through `scripts/redbot-check.py`, which fails on any of
//! REDbot's error-level (`bad`) notes or on a failed probe request.

use std::path::PathBuf;

use crate::common::*;

fn redbot_python() -> PathBuf {
    let p = std::env::var_os("REDBOT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/redbot-venv/bin/python"));
    assert!(p.exists(), "REDbot is not installed at {} — run scripts/test.sh, which installs it", p.display());
    p
}

fn check(python: &PathBuf, base: &str, headers: &[String], paths: &[String]) {
    let mut cmd = std::process::Command::new(python);
    cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/redbot-check.py"));
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(base).args(paths);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "REDbot found error-level problems:\n{text}");
    assert!(text.contains(&format!("OK: {} URL(s)", paths.len())));
}

#[tokio::test]
async fn redbot_finds_no_errors() {
    let python = redbot_python();
    let dir = tempfile::tempdir().unwrap();
    let generated = dir.path().join("generated");
    write_file(&generated.join("note.txt"), b"a note");
    let srv = Oipd::serve_env(
        &dir.path().join("data"),
        &["--demo", "--generate-media-dir", generated.to_str().unwrap()],
        &[("JWT_SECRET", SECRET)],
    );
    let gif = std::fs::read_dir(dir.path().join("data/media/web/fitnessally"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".gif"))
        .expect("a demo GIF");
    // real GIF bytes everywhere, so REDbot's content sniffing agrees with the type
    let gif_bytes = std::fs::read(dir.path().join("data/media/web/fitnessally").join(&gif)).unwrap();
    write_file(&generated.join("tts/clip.gif"), &gif_bytes);
    let owner = token("owner");
    let mut ids = Vec::new();
    for (i, level) in ["public", "private"].iter().enumerate() {
        let data = [&gif_bytes[..], &vec![0u8; i][..]].concat();
        let (_, v) = upload_to(&srv.url("/api/media/upload"), Some(&owner), data, "image/gif", Some(level)).await;
        ids.push(v["mediaId"].as_str().unwrap().to_owned());
    }
    let base = srv.url("");
    let python2 = python.clone();
    let anonymous: Vec<String> = vec![
        format!("/media/fitnessally/{gif}"),
        "/media/fitnessally/nope.gif".into(),
        "/api/generate/media/tts/clip.gif".into(),
        "/api/generate/media?id=note.txt".into(),
        format!("/api/media/{}", ids[0]),
        format!("/api/media/{}/info", ids[0]),
        format!("/api/media/{}", ids[1]),
        "/api/media/not-an-id".into(),
    ];
    let b = base.clone();
    tokio::task::spawn_blocking(move || check(&python2, &b, &[], &anonymous)).await.unwrap();
    let as_owner: Vec<String> = vec![format!("/api/media/{}", ids[1]), format!("/api/media/{}/info", ids[1]), format!("/api/media/{}", ids[0])];
    let h = vec![format!("Authorization: Bearer {owner}")];
    tokio::task::spawn_blocking(move || check(&python, &base, &h, &as_owner)).await.unwrap();
}
