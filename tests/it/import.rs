//! `oipd import`: every accepted format, idempotent upserts by DID, bad documents
//! reported with their position and skipped, never a partial record.

use std::path::{Path, PathBuf};

use crate::common::*;

use oipd::records::import::{import_files, ImportError, ImportSummary};
use serde_json::{json, Value};

fn rec(i: u32) -> Value {
    record(&format!("did:arweave:imp{i}"), "post", &format!("Post {i}"), json!({"post": {"articleText": "t"}}))
}

/// A store on its own runtime, as `oipd import` uses it.
struct Store {
    rt: tokio::runtime::Runtime,
    stores: oipd::store::backends::Stores,
}

impl Store {
    fn open(dir: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let stores = crate::common::open_stores(dir);
        Store { rt, stores }
    }
    fn import(&self, files: &[PathBuf]) -> Result<ImportSummary, ImportError> {
        import_files(&self.stores, self.rt.handle(), files, false)
    }
    fn count(&self) -> u64 {
        self.rt.block_on(self.stores.records.count_all()).unwrap()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn every_format_imports_and_reimport_changes_nothing() {
    crate::common::each_backend_blocking(|| {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let array = write(tmp.path(), "a.json", &serde_json::to_string(&vec![rec(1), rec(2)]).unwrap());
        let ndjson = write(tmp.path(), "b.ndjson", &format!("{}\n\n{}\n", rec(3), rec(4)));
        let es = json!({"took": 3, "hits": {"total": {"value": 2}, "hits": [
            {"_index": "records", "_id": "did:arweave:imp5", "_source": rec(5)},
            {"_index": "records", "_id": "did:arweave:imp6", "_source": rec(6)}
        ]}});
        let es = write(tmp.path(), "c.json", &serde_json::to_string_pretty(&es).unwrap());
        let dump = write(
            tmp.path(),
            "d.ndjson",
            &format!(
                "{}\n{}\n",
                json!({"_index": "records", "_type": "_doc", "_id": "did:arweave:imp7", "_source": rec(7)}),
                json!({"_index": "creatorregistrations", "_id": "x", "_source": {"data": {}}})
            ),
        );
        let files = vec![array, ndjson, es, dump];
        let s = store.import(&files).unwrap();
        assert_eq!((s.imported, s.updated, s.unchanged, s.skipped), (7, 0, 0, 1), "{s}");
        assert!(s.skips[0].contains("d.ndjson:line 2") && s.skips[0].contains("creatorregistrations"), "{:?}", s.skips);
        assert_eq!(store.count(), 7);

        let again = store.import(&files).unwrap();
        assert_eq!((again.imported, again.updated, again.unchanged), (0, 0, 7), "idempotent");

        // a changed document updates in place
        let mut r = rec(1);
        r["data"]["basic"]["name"] = json!("Renamed");
        let f = write(tmp.path(), "e.json", &serde_json::to_string(&vec![r]).unwrap());
        let s = store.import(&[f]).unwrap();
        assert_eq!((s.imported, s.updated), (0, 1));
        assert_eq!(store.count(), 7);
    });
}

#[test]
fn bad_documents_are_skipped_with_positions() {
    crate::common::each_backend_blocking(|| {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path());
        let text = format!(
            "{}\n{{not json\n{}\n{}\n{}\n",
            rec(1),
            json!({"data": {"basic": {}}}),
            json!({"oip": {"did": "not-a-did"}, "data": {}}),
            rec(2)
        );
        let f = write(tmp.path(), "bad.ndjson", &text);
        let s = store.import(&[f]).unwrap();
        assert_eq!((s.imported, s.skipped), (2, 3), "{s}");
        assert!(s.skips[0].contains("line 2") && s.skips[0].contains("invalid JSON"), "{:?}", s.skips);
        assert!(s.skips[1].contains("line 3") && s.skips[1].contains("oip"), "{:?}", s.skips);
        assert!(s.skips[2].contains("line 4") && s.skips[2].contains("did"), "{:?}", s.skips);
        // arrays: a non-document element is skipped, the rest imported
        let f = write(tmp.path(), "arr.json", &format!("[{}, 42, {}]", rec(3), rec(4)));
        let s = store.import(&[f]).unwrap();
        assert_eq!((s.imported, s.skipped), (2, 1));
        assert!(s.skips[0].contains("element 1"));
        // garbage file: a clear error, nothing written
        let f = write(tmp.path(), "garbage.txt", "hello");
        assert!(store.import(&[f]).is_err());
        assert_eq!(store.count(), 4);
    });
}

#[test]
fn the_cli_imports_and_prints_a_summary() {
    crate::common::each_backend_blocking(|| {
        let tmp = tempfile::tempdir().unwrap();
        let f = write(tmp.path(), "x.ndjson", &format!("{}\n{}\nnope\n", rec(1), rec(2)));
        let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_oipd"));
        cli.args(["import", "--data-dir"]).arg(tmp.path().join("data"));
        if let Some(url) = (crate::common::current_backend().url)(&tmp.path().join("data")) {
            cli.args(["--store", &url]);
        }
        let out = cli.arg(&f).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("imported 2 new"), "{stdout}");
        assert!(stdout.contains("skipped 1"), "{stdout}");
        assert!(stdout.contains("line 3"), "{stdout}");
        assert_eq!(Store::open(&tmp.path().join("data")).count(), 2);
    });
}
