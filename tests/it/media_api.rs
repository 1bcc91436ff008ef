//! `/api/media` over real HTTP: upload (auth, streaming hash, manifest, limits,
//! malformed bodies), first-uploader-owns, the access matrix, info, ranges and
//! conditionals through the shared machinery.

use crate::common::*;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

async fn upload(t: &TestServer, token: Option<&str>, data: Vec<u8>, access: Option<&str>) -> (u16, Value) {
    t.upload(token, data, "image/gif", access).await
}

async fn get(t: &TestServer, path: &str, token: Option<&str>, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(t.url(path));
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn temp_files(t: &TestServer) -> usize {
    std::fs::read_dir(t.media_root().join("temp")).unwrap().count()
}

#[tokio::test]
async fn upload_requires_a_valid_token() {
    let t = TestServer::start().await;
    let (s, v) = upload(&t, None, b"x".to_vec(), None).await;
    assert_eq!((s, v), (401, serde_json::json!({"error": "No token provided"})));
    let (s, v) = upload(&t, Some("not.a.jwt"), b"x".to_vec(), None).await;
    assert_eq!((s, v), (403, serde_json::json!({"error": "Invalid token"})));
    let other = oipd::auth::Auth::new(Some("another-secret"))
        .mint(&oipd::auth::Claims { public_key: Some("pk".into()), ..Default::default() });
    let (s, _) = upload(&t, Some(&other), b"x".to_vec(), None).await;
    assert_eq!(s, 403);
    let expired = oipd::auth::Auth::new(Some(SECRET))
        .mint(&oipd::auth::Claims { public_key: Some("pk".into()), exp: Some(1), ..Default::default() });
    let (s, _) = upload(&t, Some(&expired), b"x".to_vec(), None).await;
    assert_eq!(s, 403);
    assert_eq!(temp_files(&t), 0);
}

#[tokio::test]
async fn upload_stores_content_addressed_with_manifest() {
    let t = TestServer::start().await;
    let data = bytes(700_000, 11);
    let (s, v) = upload(&t, Some(&token("alice")), data.clone(), Some("public")).await;
    assert_eq!(s, 200, "{v}");
    let id = sha256_hex(&data);
    assert_eq!(v["success"], true);
    assert_eq!(v["mediaId"], id.as_str());
    assert_eq!(v["httpUrl"], format!("http://{}/api/media/{id}", t.server.addr));
    assert_eq!(v["size"], 700_000);
    assert_eq!(v["mime"], "image/gif");
    assert_eq!(v["originalName"], "clip.gif");
    assert_eq!(v["access_level"], "public");
    assert_eq!(v["owner"], "alice");
    assert!(v["message"].is_string());
    assert_eq!(v["magnetURI"], "");
    assert_eq!(v["infoHash"], "");
    let dir = t.media_root().join(&id);
    assert_eq!(std::fs::read(dir.join("original")).unwrap(), data);
    let m: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for k in ["mediaId", "originalName", "mimeType", "fileSize", "magnetURI", "infoHash", "httpUrl", "createdAt", "userPublicKey", "accessLevel"] {
        assert!(m.get(k).is_some(), "manifest key {k}");
    }
    assert_eq!(m["userPublicKey"], "alice");
    assert_eq!(m["accessLevel"], "public");
    assert_eq!(m["fileSize"], 700_000);
    let raw = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(raw.contains("\n  \"mediaId\""), "2-space JSON like the original");
    assert_eq!(temp_files(&t), 0);
    // default access level is private
    let (_, v) = upload(&t, Some(&token("alice")), b"other".to_vec(), None).await;
    assert_eq!(v["access_level"], "private");
}

#[tokio::test]
async fn reupload_never_changes_owner_or_access() {
    let t = TestServer::start().await;
    let data = bytes(50_000, 12);
    let (_, a) = upload(&t, Some(&token("alice")), data.clone(), Some("private")).await;
    let (s, b) = upload(&t, Some(&token("mallory")), data.clone(), Some("public")).await;
    assert_eq!(s, 200);
    assert_eq!(a["mediaId"], b["mediaId"]);
    // nothing of alice's private item is revealed to mallory
    for k in ["owner", "access_level", "originalName", "mime", "size"] {
        assert!(b[k].is_null(), "{k} revealed: {b}");
    }
    // alice's own re-upload shows her item, unchanged
    let (_, c) = upload(&t, Some(&token("alice")), data.clone(), Some("public")).await;
    assert_eq!(c["owner"], "alice");
    assert_eq!(c["access_level"], "private");
    let id = a["mediaId"].as_str().unwrap();
    let r = get(&t, &format!("/api/media/{id}"), Some(&token("mallory")), &[]).await;
    assert_eq!(r.status(), 404);
    let r = get(&t, &format!("/api/media/{id}"), Some(&token("alice")), &[]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn upload_errors_are_clear_json_and_leave_nothing() {
    let t = TestServer::start_with(|c| c.media.upload_max_bytes = 100_000).await;
    let tok = token("alice");
    let client = reqwest::Client::new();
    let post = |form: Form| client.post(t.url("/api/media/upload")).bearer_auth(&tok).multipart(form).send();

    // no file
    let r = post(Form::new().text("access_level", "public")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({"error": "No file provided"}));
    // wrong field
    let r = post(Form::new().part("upload", Part::bytes(b"x".to_vec()).file_name("a.gif"))).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("Unexpected field"));
    // two files
    let r = post(Form::new().part("file", Part::bytes(b"a".to_vec()).file_name("a")).part("file", Part::bytes(b"b".to_vec()).file_name("b")))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // bad access level
    let r = post(Form::new().text("access_level", "everyone").part("file", Part::bytes(b"a".to_vec()).file_name("a")))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // over the limit (streamed, no Content-Length shortcut possible for the part)
    let r = post(Form::new().part("file", Part::bytes(bytes(150_000, 13)).file_name("big.gif"))).await.unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "File too large");
    assert_eq!(v["limit"], 100_000);
    // not multipart
    let r = client.post(t.url("/api/media/upload")).bearer_auth(&tok).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // truncated multipart body
    let body = "--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\npartial data with no closing boundary";
    let req = format!(
        "POST /api/media/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let r = t.raw(&req).await;
    assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["error"].as_str().unwrap().contains("multipart"));
    // huge declared Content-Length is refused before reading
    let req = format!(
        "POST /api/media/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(t.raw(&req).await.status, 413);

    // nothing was stored, no temp file is left
    assert_eq!(temp_files(&t), 0);
    let stored: Vec<_> = std::fs::read_dir(t.media_root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 64)
        .collect();
    assert!(stored.is_empty(), "{stored:?}");
}

#[tokio::test]
async fn client_abort_mid_upload_leaves_no_temp_file() {
    use tokio::io::AsyncWriteExt;
    let t = TestServer::start().await;
    let tok = token("alice");
    let head = format!(
        "POST /api/media/upload HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {tok}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 10000000\r\n\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n\r\n"
    );
    let mut s = tokio::net::TcpStream::connect(t.server.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&bytes(600_000, 14)).await.unwrap();
    // wait until the upload's temp file exists, then vanish
    for _ in 0..100 {
        if temp_files(&t) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(temp_files(&t), 1);
    drop(s);
    for _ in 0..100 {
        if temp_files(&t) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(temp_files(&t), 0, "temp file removed after client abort");
}

async fn r_www(t: &TestServer, id: &str) -> String {
    let r = get(t, &format!("/api/media/{id}"), None, &[]).await;
    r.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn access_matrix() {
    let t = TestServer::start().await;
    let mut ids = std::collections::HashMap::new();
    for (i, level) in ["public", "private", "organization"].iter().enumerate() {
        let (_, v) = upload(&t, Some(&token("owner")), bytes(1000 + i, 20 + i as u64), Some(level)).await;
        ids.insert(*level, v["mediaId"].as_str().unwrap().to_owned());
    }
    let owner = token("owner");
    let other = token("other");
    let forged = oipd::auth::Auth::new(Some("wrong")).mint(&oipd::auth::Claims { public_key: Some("owner".into()), ..Default::default() });
    let expired = oipd::auth::Auth::new(Some(SECRET))
        .mint(&oipd::auth::Claims { public_key: Some("owner".into()), exp: Some(1), ..Default::default() });
    // (level, caller, status for GET/HEAD/Range/info)
    let callers: [(&str, Option<&str>); 6] = [
        ("anonymous", None),
        ("owner", Some(&owner)),
        ("other", Some(&other)),
        ("garbage", Some("x.y.z")),
        ("forged", Some(&forged)),
        ("expired", Some(&expired)),
    ];
    for level in ["public", "private", "organization"] {
        let id = &ids[level];
        for (who, tok) in callers {
            let want: u16 = match (level, who) {
                ("public", _) => 200,
                (_, "owner") => 200,
                (_, "other") => 404, // signed in but not allowed: as if it did not exist
                _ => 401, // anonymous, and bad tokens count as anonymous on GET routes
            };
            let r = get(&t, &format!("/api/media/{id}"), tok, &[]).await;
            assert_eq!(r.status().as_u16(), want, "GET {level} as {who}");
            let r = get(&t, &format!("/api/media/{id}"), tok, &[("range", "bytes=0-3")]).await;
            assert_eq!(r.status().as_u16(), if want == 200 { 206 } else { want }, "Range {level} as {who}");
            if want != 200 {
                let body = r.text().await.unwrap();
                assert!(body.contains("error"), "{body}");
            }
            let r = reqwest::Client::new()
                .head(t.url(&format!("/api/media/{id}")))
                .header("authorization", tok.map(|t| format!("Bearer {t}")).unwrap_or_default())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "HEAD {level} as {who}");
            let r = get(&t, &format!("/api/media/{id}/info"), tok, &[]).await;
            assert_eq!(r.status().as_u16(), want, "info {level} as {who}");
        }
    }
    // wording of the original
    let r = get(&t, &format!("/api/media/{}", ids["private"]), None, &[]).await;
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "Authentication required for private media");
    assert_eq!(r_www(&t, &ids["private"]).await, "Bearer realm=\"oipd\"");
    // a hidden item and a missing one are indistinguishable, for either kind of caller
    let missing = "b".repeat(64);
    for (tok, status) in [(None, 401), (Some(other.as_str()), 404)] {
        for level in ["private", "organization"] {
            for (suffix, headers) in [("", &[][..]), ("", &[("range", "bytes=0-3")][..]), ("/info", &[][..]), ("", &[("if-none-match", "*")][..])] {
                let hidden = get(&t, &format!("/api/media/{}{suffix}", ids[level]), tok, headers).await;
                let absent = get(&t, &format!("/api/media/{missing}{suffix}"), tok, headers).await;
                assert_eq!((hidden.status().as_u16(), absent.status().as_u16()), (status, status), "{level}{suffix} {headers:?}");
                let strip = |h: &reqwest::header::HeaderMap| {
                    let mut v: Vec<_> = h.iter().filter(|(k, _)| *k != "date").map(|(k, v)| format!("{k}: {v:?}")).collect();
                    v.sort();
                    v
                };
                assert_eq!(strip(hidden.headers()), strip(absent.headers()), "{level}{suffix}: same headers");
                assert_eq!(hidden.text().await.unwrap(), absent.text().await.unwrap(), "{level}{suffix}: same body");
            }
            let head = |id: String| {
                let c = reqwest::Client::new().head(t.url(&format!("/api/media/{id}")));
                match tok {
                    Some(k) => c.bearer_auth(k),
                    None => c,
                }
                .send()
            };
            let (h, a) = (head(ids[level].clone()).await.unwrap(), head(missing.clone()).await.unwrap());
            assert_eq!((h.status().as_u16(), a.status().as_u16()), (status, status), "HEAD {level}");
        }
    }
    // cache headers follow the level
    let r = get(&t, &format!("/api/media/{}", ids["public"]), None, &[]).await;
    assert_eq!(r.headers()["cache-control"], "public, max-age=31536000, immutable");
    let r = get(&t, &format!("/api/media/{}", ids["private"]), Some(&owner), &[]).await;
    assert!(r.headers()["cache-control"].to_str().unwrap().starts_with("private"));
    assert_eq!(r.headers()["vary"], "Authorization");
}

#[tokio::test]
async fn fetch_semantics_match_the_static_mount() {
    let t = TestServer::start().await;
    let data = bytes(20_000, 30);
    let (_, v) = upload(&t, Some(&token("a")), data.clone(), Some("public")).await;
    let id = v["mediaId"].as_str().unwrap();
    let path = format!("/api/media/{id}");
    let r = t.get_raw_path(&path, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("etag").unwrap(), format!("\"{id}\""));
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("last-modified").is_some());
    assert_eq!(t.get_raw_path(&path, &format!("If-None-Match: \"{id}\"\r\n")).await.status, 304);
    let r = t.get_raw_path(&path, "Range: bytes=-100\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[19_900..]);
    let r = t.get_raw_path(&path, "Range: bytes=20000-\r\n").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */20000"));
    let r = t.get_raw_path(&path, "Range: bytes=garbage\r\n").await;
    assert_eq!(r.status, 200);
    let r = t.get_raw_path(&path, "Range: bytes=0-1,10-11\r\n").await;
    assert_eq!(r.status, 206);
    assert!(r.header("content-type").unwrap().starts_with("multipart/byteranges"));
    // the same bytes under /media carry the same ETag
    let p = t.put_web("same.gif", &data);
    assert_eq!(t.get_raw_path(&p, "").await.header("etag").unwrap(), format!("\"{id}\""));
    // info
    let info: Value = reqwest::get(t.url(&format!("{path}/info"))).await.unwrap().json().await.unwrap();
    assert_eq!(info["mediaId"], id);
    assert_eq!(info["fileSize"], 20_000);
    assert_eq!(info["seeding"], false);
}

#[tokio::test]
async fn ids_and_missing_items() {
    let t = TestServer::start().await;
    for bad in ["abc", "../../etc/passwd", &"z".repeat(64), &"a".repeat(65)] {
        let r = t.get_raw_path(&format!("/api/media/{bad}"), "").await;
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
        assert!(r.json()["error"].is_string());
    }
    let r = t.get_raw_path("/api/media/abc", "").await;
    assert_eq!(r.status, 400);
    // anonymous callers cannot tell a missing id from a private one: 401 for both
    let r = t.get_raw_path(&format!("/api/media/{}", "a".repeat(64)), "").await;
    assert_eq!(r.status, 401);
    let tok = format!("Authorization: Bearer {}\r\n", token("someone"));
    let r = t.get_raw_path(&format!("/api/media/{}", "a".repeat(64)), &tok).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), serde_json::json!({"error": "Media not found"}));
    let r = t.get_raw_path(&format!("/api/media/{}/info", "a".repeat(64)), &tok).await;
    assert_eq!(r.status, 404);
    let r = t.raw(&format!("DELETE /api/media/{} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", "a".repeat(64))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = t.get_raw_path("/api/media/upload", "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
}

#[tokio::test]
async fn manifestless_media_defaults_to_private() {
    let t = TestServer::start().await;
    let data = b"legacy bytes".to_vec();
    let id = sha256_hex(&data);
    write_file(&t.media_root().join(&id).join("original"), &data);
    let r = t.get_raw_path(&format!("/api/media/{id}"), "").await;
    assert_eq!(r.status, 401, "never silently public");
    let r = get(&t, &format!("/api/media/{id}"), Some(&token("anyone")), &[]).await;
    assert_eq!(r.status(), 404, "no owner: visible to nobody");

    let t2 = TestServer::start_with(|c| c.media.default_media_access = "public".into()).await;
    write_file(&t2.media_root().join(&id).join("original"), &data);
    let r = t2.get_raw_path(&format!("/api/media/{id}"), "").await;
    assert_eq!(r.status, 200, "operator opted in to public legacy media");
    assert_eq!(r.body, data);
}

#[tokio::test]
async fn uploads_cannot_script_this_origin() {
    let t = TestServer::start().await;
    let html = b"<script>alert(document.cookie)</script>".to_vec();
    let (_, v) = t.upload(Some(&token("a")), html, "text/html", Some("public")).await;
    let r = t.get_raw_path(&format!("/api/media/{}", v["mediaId"].as_str().unwrap()), "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    assert!(r.header("content-security-policy").unwrap().contains("sandbox"));
    let (_, g) = upload(&t, Some(&token("a")), bytes(100, 77), Some("public")).await;
    let r = t.get_raw_path(&format!("/api/media/{}", g["mediaId"].as_str().unwrap()), "").await;
    assert_eq!(r.header("content-type"), Some("image/gif"));
    assert_eq!(r.header("content-disposition"), None, "images display inline");
    assert!(r.header("content-security-policy").unwrap().contains("sandbox"));
}

#[tokio::test]
async fn an_unreadable_manifest_fails_closed() {
    let t = TestServer::start_with(|c| c.media.default_media_access = "public".into()).await;
    let data = b"bytes with a corrupt manifest".to_vec();
    let id = sha256_hex(&data);
    write_file(&t.media_root().join(&id).join("original"), &data);
    write_file(&t.media_root().join(&id).join("manifest.json"), b"{not json");
    let r = t.get_raw_path(&format!("/api/media/{id}"), "").await;
    assert_eq!(r.status, 401, "private, not the (public) default");
}
