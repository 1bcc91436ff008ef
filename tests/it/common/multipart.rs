//! Multipart bodies both ways: building upload forms (`multipart/form-data`,
//! as a browser sends them) and taking `multipart/byteranges` answers apart.

use super::server::TestServer;

/// `POST <upload_url>` as a browser form: field `file` (named `clip.<ext of mime>`
/// with the given type) and, if given, `access_level`: (status, JSON answer).
pub async fn upload_to(upload_url: &str, token: Option<&str>, data: Vec<u8>, mime: &str, access: Option<&str>) -> (u16, serde_json::Value) {
    use reqwest::multipart::{Form, Part};
    let ext = mime.rsplit('/').next().unwrap_or("bin");
    let mut form = Form::new().part("file", Part::bytes(data).file_name(format!("clip.{ext}")).mime_str(mime).unwrap());
    if let Some(a) = access {
        form = form.text("access_level", a.to_owned());
    }
    let mut req = reqwest::Client::new().post(upload_url).multipart(form);
    if let Some(tok) = token {
        req = req.bearer_auth(tok);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

impl TestServer {
    /// [`upload_to`] this server.
    pub async fn upload(&self, token: Option<&str>, data: Vec<u8>, mime: &str, access: Option<&str>) -> (u16, serde_json::Value) {
        upload_to(&self.url("/api/media/upload"), token, data, mime, access).await
    }
}

/// Parse a multipart/byteranges body into (content-range, bytes) parts.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Vec<(String, Vec<u8>)> {
    let delim = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    let mut rest = body;
    // body starts with CRLF--boundary
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delim.as_bytes()).expect("first boundary");
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            break;
        }
        let hdr_end = find(rest, b"\r\n\r\n").expect("part header end");
        let hdrs = std::str::from_utf8(&rest[..hdr_end]).unwrap();
        let cr = hdrs
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .expect("part Content-Range")
            .to_owned();
        rest = &rest[hdr_end + 4..];
        let next = find(rest, delim.as_bytes()).expect("next boundary");
        parts.push((cr, rest[..next].to_vec()));
        rest = &rest[next + delim.len()..];
    }
    parts
}
