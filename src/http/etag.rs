//! Entity tags (RFC 9110 §8.8.3): parsing `If-Match`/`If-None-Match`/`If-Range`
//! values, strong and weak comparison, and the content-derived strong ETags of the
//! static mounts.
//!
//! A static file's ETag is the hex SHA-256 of its bytes, so two nodes serving the
//! same bytes give the same tag whatever the file's mtime or inode, and a file under
//! `/media` has the same tag as the same bytes under `/api/media/<sha256>`.
//! Hashing a file costs a full read, so hashes are cached by (path, size, mtime) in
//! [`ContentHashCache`], an LRU with a fixed number of entries (`--etag-cache-entries`),
//! and computed by at most [`HASH_CONCURRENCY`] requests at once.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Bound: files being hashed at once (a CPU- and disk-bound job; more in parallel
/// than cores only queues in the kernel).
pub const HASH_CONCURRENCY: usize = 4;

/// Read size when hashing a file.
const HASH_READ_CHUNK: usize = 64 * 1024;

/// One entity-tag from a header list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag<'a> {
    pub weak: bool,
    /// Between the quotes.
    pub opaque: &'a str,
}

/// `*`, or a list of entity-tags.
#[derive(Debug, PartialEq, Eq)]
pub enum TagList<'a> {
    Any,
    Tags(Vec<EntityTag<'a>>),
}

impl TagList<'_> {
    /// Strong comparison (If-Match): both strong, same opaque.
    pub fn matches_strong(&self, ours: &str) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| !t.weak && t.opaque == ours),
        }
    }

    /// Weak comparison (If-None-Match): same opaque, weakness ignored.
    pub fn matches_weak(&self, ours: &str) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| t.opaque == ours),
        }
    }
}

/// Parse one entity-tag at the start of `s`; returns it and the rest.
pub fn parse_one(s: &str) -> Option<(EntityTag<'_>, &str)> {
    let (weak, rest) = match s.strip_prefix("W/") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let opaque = &rest[..end];
    // etagc = %x21 / %x23-7E / obs-text
    if !opaque.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
        return None;
    }
    Some((EntityTag { weak, opaque }, &rest[end + 1..]))
}

/// Parse an `If-Match` / `If-None-Match` value (already joined across header lines).
/// `None` = syntactically invalid.
pub fn parse_list(value: &str) -> Option<TagList<'_>> {
    let value = value.trim();
    if value == "*" {
        return Some(TagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (tag, r) = parse_one(rest)?;
        tags.push(tag);
        rest = r.trim_start_matches([' ', '\t']);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return None;
        }
    }
    if tags.is_empty() {
        None
    } else {
        Some(TagList::Tags(tags))
    }
}

/// Format a strong ETag header value from its opaque part.
pub fn strong(opaque: &str) -> String {
    format!("\"{opaque}\"")
}

/// A file's identity for the cache: a replaced file (new inode) or one rewritten
/// in place (new ctime) misses, even with the same size and a restored mtime.
#[derive(Hash, PartialEq, Eq, Clone)]
struct HashKey {
    path: PathBuf,
    size: u64,
    mtime: SystemTime,
    ino: u64,
    ctime: (i64, i64),
}

/// Bounded LRU of content hashes (hex SHA-256) for the static mounts.
pub struct ContentHashCache {
    entries: Mutex<lru::LruCache<HashKey, String>>,
    capacity: usize,
    hashing: Semaphore,
}

impl ContentHashCache {
    pub fn new(capacity: usize) -> Self {
        let cap = std::num::NonZeroUsize::new(capacity.max(1)).expect("max(1) is non-zero");
        ContentHashCache {
            entries: Mutex::new(lru::LruCache::new(cap)),
            capacity: cap.get(),
            hashing: Semaphore::new(HASH_CONCURRENCY),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Files being hashed right now.
    pub fn hashing_now(&self) -> usize {
        HASH_CONCURRENCY - self.hashing.available_permits()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<HashKey, String>> {
        // A panic while holding this lock cannot leave the LRU inconsistent for our
        // purposes (worst case a missing entry), so recover from poisoning.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The content hash of `file` (opened from `path`, with this `size` and `mtime`),
    /// from the cache or by reading it once on the blocking pool.
    pub async fn get_or_compute(
        &self,
        path: &Path,
        file: &std::sync::Arc<std::fs::File>,
        size: u64,
        mtime: SystemTime,
    ) -> std::io::Result<String> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        let key = HashKey { path: path.to_path_buf(), size, mtime, ino: meta.ino(), ctime: (meta.ctime(), meta.ctime_nsec()) };
        if let Some(h) = self.lock().get(&key) {
            return Ok(h.clone());
        }
        let _permit = self.hashing.acquire().await.map_err(std::io::Error::other)?;
        // Another request may have finished hashing while we waited.
        if let Some(h) = self.lock().get(&key) {
            return Ok(h.clone());
        }
        let file = file.clone();
        let hash = crate::memory::track::spawn_blocking(move || hash_file(&file, size))
            .await
            .map_err(std::io::Error::other)??;
        self.lock().put(key, hash.clone());
        Ok(hash)
    }
}

/// Hex SHA-256 of the first `size` bytes of `file`, read with positioned reads so
/// the file's cursor is untouched.
fn hash_file(file: &std::fs::File, size: u64) -> std::io::Result<String> {
    use std::os::unix::fs::FileExt;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_READ_CHUNK];
    let mut off = 0u64;
    while off < size {
        let want = ((size - off) as usize).min(buf.len());
        let n = file.read_at(&mut buf[..want], off)?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "file shrank while hashing"));
        }
        hasher.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Hex SHA-256 of a reader (tests and tools).
pub fn sha256_hex(mut r: impl Read) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_READ_CHUNK];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        assert_eq!(parse_list("*"), Some(TagList::Any));
        assert_eq!(
            parse_list(r#""a", W/"b" ,"c""#),
            Some(TagList::Tags(vec![
                EntityTag { weak: false, opaque: "a" },
                EntityTag { weak: true, opaque: "b" },
                EntityTag { weak: false, opaque: "c" },
            ]))
        );
        assert_eq!(parse_list(r#""""#), Some(TagList::Tags(vec![EntityTag { weak: false, opaque: "" }])));
        for bad in ["", "abc", r#""abc"#, r#"W/abc"#, r#""a" "b""#, r#""a b""#, ",", r#"w/"a""#] {
            assert_eq!(parse_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn comparisons() {
        // RFC 9110 §8.8.3.2 table
        let weak1 = parse_list(r#"W/"1""#).unwrap();
        let strong1 = parse_list(r#""1""#).unwrap();
        let strong2 = parse_list(r#""2""#).unwrap();
        assert!(!weak1.matches_strong("1"));
        assert!(weak1.matches_weak("1"));
        assert!(strong1.matches_strong("1"));
        assert!(strong1.matches_weak("1"));
        assert!(!strong2.matches_strong("1"));
        assert!(!strong2.matches_weak("1"));
        assert!(TagList::Any.matches_strong("x"));
    }

    #[tokio::test]
    async fn cache_is_bounded_and_keyed_by_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ContentHashCache::new(2);
        let mut paths = Vec::new();
        for i in 0..3 {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, format!("content {i}")).unwrap();
            paths.push(p);
        }
        for p in &paths {
            let f = std::sync::Arc::new(std::fs::File::open(p).unwrap());
            let m = f.metadata().unwrap();
            let h = cache.get_or_compute(p, &f, m.len(), m.modified().unwrap()).await.unwrap();
            assert_eq!(h, sha256_hex(std::fs::File::open(p).unwrap()).unwrap());
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.capacity(), 2);
    }
}
