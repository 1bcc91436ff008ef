//! Faults: a full disk under uploads, and `kill -9` in the middle of an upload
//! and of an import. Afterwards the stores open cleanly, nothing half-written is
//! ever served, and re-running the work completes it.
//!
//! The full-disk test mounts a 4 MiB tmpfs (the suite runs as root in CI, as the
//! README says); it fails loudly rather than skipping if it cannot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs for the full-disk test failed (the suite needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn media_dirs(media: &Path) -> Vec<String> {
    std::fs::read_dir(media)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.len() == 64).collect())
        .unwrap_or_default()
}

async fn upload(t: &TestServer, data: Vec<u8>) -> (u16, Value) {
    t.upload(Some(&token("owner")), data, "image/gif", Some("public")).await
}

#[tokio::test]
async fn full_disk_upload_is_507_and_leaves_nothing() {
    let fs = Tmpfs::mount("4m");
    let data_dir = fs.path().join("data");
    let t = TestServer::start_with(|c| c.data_dir = data_dir.clone()).await;
    let media = data_dir.join("media");

    // bigger than the whole filesystem
    let big = bytes(6 << 20, 77);
    let (status, v) = upload(&t, big.clone()).await;
    assert_eq!(status, 507, "{v}");
    assert_eq!(v["error"], "Insufficient storage");
    assert!(media_dirs(&media).is_empty(), "nothing published: {:?}", media_dirs(&media));
    assert!(files_under(&media.join("temp")).is_empty(), "temp file removed");
    let id = sha256_hex(&big);
    let r = t.get_raw_path(&format!("/api/media/{id}"), &format!("Authorization: Bearer {}\r\n", token("owner"))).await;
    assert_eq!(r.status, 404);

    // once there is room again, uploads work
    let small = bytes(200_000, 78);
    let (status, v) = upload(&t, small.clone()).await;
    assert_eq!(status, 200, "{v}");
    let r = t.get_raw_path(&format!("/api/media/{}", v["mediaId"].as_str().unwrap()), "").await;
    assert_eq!(r.body, small);

    // fill the disk with something else, then upload into the last free bytes
    let mut filler = std::fs::File::create(fs.path().join("filler")).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while filler.write_all(&chunk).is_ok() {}
    let _ = filler.flush();
    let (status, v) = upload(&t, bytes(300_000, 79)).await;
    assert_eq!(status, 507, "{v}");
    assert_eq!(media_dirs(&media).len(), 1, "only the earlier upload is published");
    assert!(files_under(&media.join("temp")).is_empty(), "temp file removed");
    // exactly enough room for the upload's bytes but not for its manifest: the
    // failure comes at publish time, and still nothing of it stays
    drop(filler);
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    let avail = || -> u64 {
        let out = std::process::Command::new("df").args(["-B1", "--output=avail"]).arg(fs.path()).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().nth(1).unwrap().trim().parse().unwrap()
    };
    let upload_len = 40 * 4096;
    std::fs::File::create(fs.path().join("filler")).unwrap().write_all(&vec![0u8; (avail() - upload_len) as usize]).unwrap();
    assert_eq!(avail(), upload_len);
    let data = bytes(upload_len as usize, 80);
    let (status, v) = upload(&t, data.clone()).await;
    assert_eq!(status, 507, "{v}");
    assert!(!media.join(sha256_hex(&data)).exists(), "no item directory left behind");
    assert_eq!(media_dirs(&media).len(), 1);
    assert!(files_under(&media.join("temp")).is_empty(), "temp file removed");

    // a record write on the full disk is a 507 too, and reads still work
    let body = json!({"basic": {"name": "note"}, "note": {"text": "x".repeat(200_000)}});
    let (status, v) = t.post_json("/api/records/newRecord?recordType=note&storage=gun&localId=n1", Some(&token("owner")), &body).await;
    assert_eq!(status, 507, "{v}");
    let (status, _) = t.get_json("/api/records?limit=5", None).await;
    assert_eq!(status, 200);
    // health still answers on a full disk
    assert_eq!(t.get_raw_path("/api/health", "").await.status, 200);
    drop(t);
}

/// Start a large upload on a real `oipd` process, kill -9 it mid-body, restart:
/// nothing of the upload is visible, and uploading again completes.
#[tokio::test]
async fn kill_9_during_upload_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let env = [("JWT_SECRET", SECRET)];
    let mut srv = Oipd::serve_env(&data_dir, &[], &env);
    let tok = token("owner");
    let data = bytes(8 << 20, 91);
    let id = sha256_hex(&data);

    let boundary = "XXkillXX";
    let head = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"k.gif\"\r\nContent-Type: image/gif\r\n\r\n");
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + data.len() + tail.len();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", srv.port)).await.unwrap();
    s.write_all(
        format!(
            "POST /api/media/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\r\n{head}"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.write_all(&data[..5 << 20]).await.unwrap();
    let temp = data_dir.join("media/temp");
    let until = Instant::now() + Duration::from_secs(10);
    while files_under(&temp).iter().all(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) < 1 << 20) {
        assert!(Instant::now() < until, "upload never reached its temp file");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL mid-body
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    drop(s);
    assert!(media_dirs(&data_dir.join("media")).is_empty(), "nothing published by a killed upload");

    // restart on the same data dir
    let srv = Oipd::serve_env(&data_dir, &[], &env);
    let c = reqwest::Client::new();
    let r = c.get(srv.url(&format!("/api/media/{id}"))).bearer_auth(&tok).send().await.unwrap();
    assert_eq!(r.status(), 404, "the half upload is not served");
    assert!(files_under(&temp).is_empty(), "the killed upload's temp file was swept at restart: {:?}", files_under(&temp));
    assert_eq!(c.get(srv.url("/api/health")).send().await.unwrap().status(), 200);
    // re-run completes
    let (status, v) = upload_to(&srv.url("/api/media/upload"), Some(&tok), data.clone(), "image/gif", Some("public")).await;
    assert_eq!(status, 200);
    assert_eq!(v["mediaId"], id);
    let got = c.get(srv.url(&format!("/api/media/{id}"))).send().await.unwrap().bytes().await.unwrap();
    assert!(got == data, "served bytes are the uploaded bytes");
}

fn rec(i: u32) -> Value {
    record(
        &format!("did:arweave:crash{i}"),
        "post",
        &format!("Post number {i}"),
        json!({"post": {"articleText": "x".repeat(400 + (i % 50) as usize)}}),
    )
}

/// `oipd import` killed with SIGKILL part-way: the store opens cleanly (SQLite
/// integrity check), holds only whole batches, and a re-run completes the import.
#[test]
fn kill_9_during_import_then_rerun() {
    const N: u32 = 60_000;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let file = dir.path().join("records.ndjson");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..N {
            writeln!(w, "{}", rec(i)).unwrap();
        }
    }
    let import = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_oipd"))
            .args(["import", "--data-dir"])
            .arg(&data_dir)
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let db = data_dir.join("oipd.sqlite");
    let count = || -> u64 {
        let c = rusqlite::Connection::open(&db).unwrap();
        let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(ok, "ok");
        c.query_row("SELECT count(*) FROM records", [], |r| r.get(0)).unwrap()
    };
    let mut child = import();
    // kill once some batches have committed, well before the end
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < until, "import made no progress");
        if child.try_wait().unwrap().is_some() {
            panic!("import finished before it could be killed; make N larger");
        }
        let wal = data_dir.join("oipd.sqlite-wal");
        if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 4 << 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // the store opens cleanly and holds whole batches only
    let partial = count();
    assert!(partial < N as u64, "killed before the end ({partial})");
    assert_eq!(partial % oipd::records::import::BATCH as u64, 0, "only whole transactions: {partial}");

    // a server opens it too, and answers
    let rt = tokio::runtime::Runtime::new().unwrap();
    {
        let srv = Oipd::serve(&data_dir, &[]);
        let v: Value = rt.block_on(async {
            reqwest::get(srv.url("/api/records?recordType=post&limit=1")).await.unwrap().json().await.unwrap()
        });
        assert_eq!(v["searchResults"], partial);
    }

    // the re-run completes the import: every record, once
    let status = import().wait().unwrap();
    assert!(status.success());
    assert_eq!(count(), N as u64);
    let srv = Oipd::serve(&data_dir, &[]);
    let v: Value = rt.block_on(async {
        reqwest::get(srv.url("/api/records?did=did:arweave:crash59999")).await.unwrap().json().await.unwrap()
    });
    assert_eq!(v["searchResults"], 1);
}
