//! The open-file and metadata cache of the static mounts (nginx's
//! `open_file_cache`): a file once resolved under its root (path rules, realpath,
//! the opened descriptor's real-path re-check, all in [`super::safe_path::open`])
//! and hashed for its ETag is kept open, so that a 304 or a hot GIF needs no trip
//! to the blocking pool — a hit is one `fstat` of the open descriptor.
//!
//! Validity: an entry serves for at most `--open-file-cache-valid-secs` after it
//! was opened, and each hit first `fstat`s the descriptor: a file changed in place
//! (size, mtime, ctime), unlinked or renamed away (link count 0, new ctime) is a
//! miss at once and is resolved afresh. What only a fresh resolve can see — the
//! path now naming another file while the old one is still linked elsewhere (a
//! symlink re-pointed, a hard link) — shows within the validity at the latest,
//! as with nginx. The cached descriptor itself passed the symlink-swap check when
//! it was opened, so a hit can never name a byte outside the root.
//!
//! Bound: `--open-file-cache-entries` entries (0 turns the cache off), each one
//! open descriptor and ~300 bytes plus its path; listed with its fill in
//! `/api/health/memory` as `open_file_cache`. Full: expired entries go first,
//! then the oldest.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// An opened, checked file of a static mount and what describes it.
#[derive(Debug)]
pub struct OpenFile {
    /// Canonical (real) path of what was opened.
    pub path: PathBuf,
    pub file: Arc<File>,
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// The strong ETag's opaque part (content hash).
    pub etag: String,
    /// Header values prepared once: `ETag`, `Last-Modified`, `Content-Type`
    /// (by the file name's extension).
    pub etag_header: http::HeaderValue,
    pub last_modified_header: Option<http::HeaderValue>,
    pub content_type: http::HeaderValue,
    ino: u64,
    ctime: (i64, i64),
}

impl OpenFile {
    /// Describe `file` (opened from `path`) by its current metadata.
    pub fn new(path: PathBuf, file: Arc<File>, meta: &std::fs::Metadata, etag: String) -> Self {
        use std::os::unix::fs::MetadataExt;
        let modified = meta.modified().ok();
        let etag_header = http::HeaderValue::from_str(&super::etag::strong(&etag)).unwrap_or_else(|_| http::HeaderValue::from_static("\"\""));
        let last_modified_header = modified
            .map(|m| httpdate::fmt_http_date(super::conditional::to_http_precision(m)))
            .and_then(|d| http::HeaderValue::from_str(&d).ok());
        let content_type = mime_guess::from_path(&path)
            .first_raw()
            .map(http::HeaderValue::from_static)
            .unwrap_or_else(|| http::HeaderValue::from_static("application/octet-stream"));
        OpenFile {
            path,
            file,
            size: meta.len(),
            modified,
            etag,
            etag_header,
            last_modified_header,
            content_type,
            ino: meta.ino(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// Does the open descriptor still describe the same bytes (and is it still linked)?
    fn unchanged(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = self.file.metadata() else { return false };
        meta.nlink() > 0
            && meta.len() == self.size
            && meta.modified().ok() == self.modified
            && meta.ino() == self.ino
            && (meta.ctime(), meta.ctime_nsec()) == self.ctime
    }
}

struct Cached {
    file: Arc<OpenFile>,
    opened: Instant,
}

/// Root → raw request path (as it came off the wire) → entry; looked up without
/// allocating.
pub struct OpenFileCache {
    map: Mutex<(HashMap<PathBuf, HashMap<String, Cached>>, usize)>,
    capacity: usize,
    valid: Duration,
}

impl OpenFileCache {
    pub fn new(capacity: usize, valid: Duration) -> Self {
        OpenFileCache { map: Mutex::new((HashMap::new(), 0)), capacity, valid }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.lock().1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<PathBuf, HashMap<String, Cached>>, usize)> {
        // A panic under this lock leaves at worst a stale count; recover.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for `raw` under `root`, if still valid and unchanged on disk.
    pub fn get(&self, root: &Path, raw: &str) -> Option<Arc<OpenFile>> {
        if self.capacity == 0 {
            return None;
        }
        let file = {
            let mut g = self.lock();
            let (map, len) = &mut *g;
            let per_root = map.get_mut(root)?;
            let e = per_root.get(raw)?;
            if e.opened.elapsed() < self.valid {
                e.file.clone()
            } else {
                per_root.remove(raw);
                *len -= 1;
                return None;
            }
        };
        // fstat outside the lock: an inode already in memory, no path walk
        if file.unchanged() {
            return Some(file);
        }
        self.remove(root, raw, &file);
        None
    }

    fn remove(&self, root: &Path, raw: &str, which: &Arc<OpenFile>) {
        let mut g = self.lock();
        let (map, len) = &mut *g;
        if let Some(per_root) = map.get_mut(root) {
            // only if no other request replaced it meanwhile
            if per_root.get(raw).is_some_and(|e| Arc::ptr_eq(&e.file, which)) {
                per_root.remove(raw);
                *len -= 1;
            }
        }
    }

    /// Remember `file` as what `raw` under `root` resolved to.
    pub fn insert(&self, root: &Path, raw: &str, file: Arc<OpenFile>) {
        if self.capacity == 0 || raw.len() > super::safe_path::MAX_PATH_BYTES {
            return;
        }
        let mut g = self.lock();
        let (map, len) = &mut *g;
        let fresh = Cached { file, opened: Instant::now() };
        if let Some(e) = map.get_mut(root).and_then(|m| m.get_mut(raw)) {
            *e = fresh;
            return;
        }
        if *len >= self.capacity {
            // expired ones first, then the oldest
            let valid = self.valid;
            for m in map.values_mut() {
                let before = m.len();
                m.retain(|_, e| e.opened.elapsed() < valid);
                *len -= before - m.len();
            }
            if *len >= self.capacity {
                let oldest = map
                    .iter()
                    .flat_map(|(root, m)| m.iter().map(move |(raw, e)| (e.opened, root, raw)))
                    .min_by_key(|(opened, _, _)| *opened)
                    .map(|(_, root, raw)| (root.clone(), raw.clone()));
                if let Some((root, raw)) = oldest {
                    if let Some(m) = map.get_mut(&root) {
                        m.remove(&raw);
                        *len -= 1;
                    }
                }
            }
        }
        map.entry(root.to_path_buf()).or_default().insert(raw.to_owned(), fresh);
        *len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &Path) -> Arc<OpenFile> {
        let file = Arc::new(File::open(path).unwrap());
        let meta = file.metadata().unwrap();
        Arc::new(OpenFile::new(path.to_path_buf(), file, &meta, "tag".into()))
    }

    #[test]
    fn hits_until_changed_removed_or_expired() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let p = root.join("a.gif");
        std::fs::write(&p, b"one").unwrap();
        let cache = OpenFileCache::new(2, Duration::from_secs(60));
        assert!(cache.get(root, "a.gif").is_none());
        cache.insert(root, "a.gif", open(&p));
        assert_eq!(cache.get(root, "a.gif").unwrap().size, 3);
        assert!(cache.get(root, "b.gif").is_none());
        assert!(cache.get(Path::new("/elsewhere"), "a.gif").is_none());

        // rewritten in place: a miss, and the entry is gone
        std::fs::write(&p, b"three").unwrap();
        assert!(cache.get(root, "a.gif").is_none());
        assert_eq!(cache.len(), 0);

        // unlinked: a miss
        cache.insert(root, "a.gif", open(&p));
        assert!(cache.get(root, "a.gif").is_some());
        std::fs::remove_file(&p).unwrap();
        assert!(cache.get(root, "a.gif").is_none());

        // replaced by a rename over it: the old inode is unlinked, a miss
        std::fs::write(&p, b"x").unwrap();
        cache.insert(root, "a.gif", open(&p));
        let q = root.join("new.gif");
        std::fs::write(&q, b"y").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert!(cache.get(root, "a.gif").is_none());

        // expiry
        let short = OpenFileCache::new(2, Duration::from_millis(0));
        short.insert(root, "a.gif", open(&p));
        assert!(short.get(root, "a.gif").is_none());
        assert_eq!(short.len(), 0);

        // off
        let off = OpenFileCache::new(0, Duration::from_secs(60));
        off.insert(root, "a.gif", open(&p));
        assert!(off.get(root, "a.gif").is_none());
    }

    #[test]
    fn bounded_by_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let cache = OpenFileCache::new(3, Duration::from_secs(60));
        for i in 0..10 {
            let p = root.join(format!("{i}.gif"));
            std::fs::write(&p, b"x").unwrap();
            cache.insert(root, &format!("{i}.gif"), open(&p));
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.len(), 3);
        let hits = (0..10).filter(|i| cache.get(root, &format!("{i}.gif")).is_some()).count();
        assert_eq!(hits, 3);
    }
}
