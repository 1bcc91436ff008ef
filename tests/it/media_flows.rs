//! The original's media-to-record and web-copy flows for stored media the caller
//! owns: `POST /api/media/createRecord` (an image/video/audio record as a private
//! GUN record, `localId` `media_<id>`) and `POST /api/media/web-setup` (a copy
//! served under `/media/<project>/<file>`); someone else's media is answered as
//! missing; names are one plain segment; a name taken by other bytes is 409.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn create_record_describes_owned_media_only() {
    let t = TestServer::start().await;
    let (alice, bob) = (token("alice"), token("bob"));
    let gif = bytes(300_000, 7);
    let (s, up) = t.upload(Some(&alice), gif.clone(), "image/gif", Some("private")).await;
    assert_eq!(s, 200, "{up}");
    let id = up["mediaId"].as_str().unwrap().to_owned();

    let body = json!({"mediaId": id, "recordType": "image", "basicInfo": {"name": "Squat loop", "tagItems": ["legs"]}, "width": 320, "height": 240});
    let (s, v) = t.post_json("/api/media/createRecord", Some(&alice), &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["recordType"], "image");
    assert_eq!(v["storage"], "gun");
    assert_eq!(v["message"], "Image record created successfully");
    let did = v["did"].as_str().unwrap().to_owned();
    assert!(did.starts_with("did:gun:") && did.ends_with(&format!(":media_{id}")), "{did}");

    // the record is alice's, private, with the media's facts
    let (_, r) = t.get_json(&format!("/api/records?did={did}"), Some(&alice)).await;
    let rec = &r["records"][0];
    assert_eq!(rec["data"]["basic"]["name"], "Squat loop");
    assert_eq!(rec["data"]["basic"]["tagItems"], json!(["legs"]));
    assert_eq!(rec["data"]["image"]["size"], gif.len());
    assert_eq!(rec["data"]["image"]["contentType"], "image/gif");
    assert_eq!(rec["data"]["image"]["width"], 320.0);
    assert_eq!(rec["data"]["accessControl"]["access_level"], "private");
    let (_, anon) = t.get_json(&format!("/api/records?did={did}"), None).await;
    assert_eq!(anon["searchResults"], 0, "private to everyone else");

    // bob cannot describe alice's media: answered as missing
    let (s, v) = t.post_json("/api/media/createRecord", Some(&bob), &body).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("Media file not found. Upload file first.")));
    let (s2, v2) = t.post_json("/api/media/createRecord", Some(&bob), &json!({"mediaId": "b".repeat(64), "recordType": "image"})).await;
    assert_eq!((s2, v2), (s, v), "missing and not-yours are the same answer");
    // bad input
    for (b, want) in [
        (json!({"recordType": "image"}), "mediaId and recordType are required"),
        (json!({"mediaId": id, "recordType": "song"}), "recordType must be image, video, or audio"),
    ] {
        let (s, v) = t.post_json("/api/media/createRecord", Some(&alice), &b).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(want)));
    }
    let (s, _) = t.post_json("/api/media/createRecord", None, &body).await;
    assert_eq!(s, 401);
    // video and audio shapes
    for rt in ["video", "audio"] {
        let (s, v) = t.post_json("/api/media/createRecord", Some(&alice), &json!({"mediaId": id, "recordType": rt, "duration": 12.5})).await;
        assert_eq!(s, 200, "{rt}: {v}");
    }
}

#[tokio::test]
async fn web_setup_copies_owned_media_under_media() {
    let t = TestServer::start().await;
    let (alice, bob) = (token("alice"), token("bob"));
    let gif = bytes(200_000, 9);
    let (_, up) = t.upload(Some(&alice), gif.clone(), "image/gif", Some("private")).await;
    let id = up["mediaId"].as_str().unwrap().to_owned();

    let (s, v) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": id, "filename": "squat loop.gif"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "Web access setup successfully");
    let url = v["webUrl"].as_str().unwrap();
    assert!(url.ends_with("/media/oip-arweave-indexer/squat%20loop.gif"), "{url}");
    let path = &url[url.find("/media/").unwrap()..];
    let r = t.get_raw_path(path, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, gif, "the same bytes, served from the web root");
    assert!(r.header("etag").is_some());
    // the same bytes again under the same name: fine; other bytes: 409, nothing overwritten
    let (s, _) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": id, "filename": "squat loop.gif"})).await;
    assert_eq!(s, 200);
    let (_, other) = t.upload(Some(&alice), bytes(1000, 3), "image/gif", Some("public")).await;
    let (s, v) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": other["mediaId"], "filename": "squat loop.gif"})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(t.get_raw_path(path, "").await.body, gif);
    // names are one plain segment
    for bad in ["../escape.gif", "a/b.gif", ".hidden", "..", "x\\y.gif"] {
        let (s, v) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": id, "filename": bad})).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    assert!(!t.web_root().join("escape.gif").exists() && !t.dir.path().join("data/media/escape.gif").exists());
    // only media names and media bytes: an HTML or SVG copy would script this origin
    for bad in ["page.html", "icon.svg", "x.js", "noext"] {
        let (s, v) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": id, "filename": bad})).await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (_, html) = t.upload(Some(&alice), b"<script>alert(1)</script>".to_vec(), "text/html", Some("public")).await;
    let (s, v) = t.post_json("/api/media/web-setup", Some(&alice), &json!({"mediaId": html["mediaId"], "filename": "innocent.gif"})).await;
    assert_eq!(s, 400, "{v}");
    assert!(!t.web_root().join("oip-arweave-indexer/innocent.gif").exists());
    // not the owner: missing
    let (s, _) = t.post_json("/api/media/web-setup", Some(&bob), &json!({"mediaId": id, "filename": "bob.gif"})).await;
    assert_eq!(s, 404);
    assert!(!t.web_root().join("oip-arweave-indexer/bob.gif").exists());
    // no temp files left in the web directory
    let leftovers: Vec<_> = std::fs::read_dir(t.web_root().join("oip-arweave-indexer")).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn clear_cache_answers_the_original_shape() {
    let t = TestServer::start().await;
    let (s, v) = t.post_json("/api/records/clear-cache", None, &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "success");
    assert!(v["message"].as_str().unwrap().contains("no records cache"));
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(t.get_raw_path("/api/records/clear-cache", "").await.status, 405);
}
