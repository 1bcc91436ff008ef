//! Mapping a request path onto a file under a root directory, so that no request
//! can name a byte outside the root.
//!
//! The URL path (still percent-encoded, as it came off the wire) is split on `/`
//! and every segment is decoded exactly once. Refused with 400: a decoded segment
//! holding `/`, `\`, NUL or a control character, `.` or `..`, invalid UTF-8
//! (overlong encodings included), an empty segment inside the path (`a//b`, which
//! also catches absolute forms like `//etc/passwd`), a path over [`MAX_PATH_BYTES`].
//! Refused with 404, indistinguishable from absence: dotfiles and dot-directories,
//! directories, anything that is not a regular file, and anything whose canonical
//! path (symlinks resolved) is not under the canonical root. Double encoding
//! (`%252e`) decodes once to a literal `%2e`, an ordinary (and absent) name.

use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

/// Bound: the longest request path (encoded) we will look at.
pub const MAX_PATH_BYTES: usize = 4096;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("Invalid path")]
    Invalid,
    #[error("Not found")]
    NotFound,
}

/// Check and decode `raw` (the part of the URL path after the mount prefix) into a
/// relative path. Does not touch the filesystem.
pub fn decode(raw: &str) -> Result<PathBuf, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::Invalid);
    }
    if raw.is_empty() {
        return Err(PathError::NotFound);
    }
    let segments: Vec<&str> = raw.split('/').collect();
    let last = segments.len() - 1;
    let mut out = PathBuf::new();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            // trailing slash = a directory listing; empty inner segment = hostile
            return Err(if i == last { PathError::NotFound } else { PathError::Invalid });
        }
        let decoded = percent_decode_str(seg).decode_utf8().map_err(|_| PathError::Invalid)?;
        if decoded == "." || decoded == ".." {
            return Err(PathError::Invalid);
        }
        if decoded.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
            return Err(PathError::Invalid);
        }
        if decoded.starts_with('.') {
            return Err(PathError::NotFound);
        }
        out.push(decoded.as_ref());
    }
    // Belt and braces: what we built is relative and plain.
    if !out.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(PathError::Invalid);
    }
    Ok(out)
}

/// Resolve `raw` under `root` (which must already be canonical) to the canonical
/// path of an existing regular file inside it.
pub fn resolve(root: &Path, raw: &str) -> Result<PathBuf, PathError> {
    let rel = decode(raw)?;
    let canonical = std::fs::canonicalize(root.join(rel)).map_err(|_| PathError::NotFound)?;
    let inside = canonical.strip_prefix(root).map_err(|_| PathError::NotFound)?;
    // A symlink inside the root may still point at a dotfile inside it.
    if inside
        .components()
        .any(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with('.')))
    {
        return Err(PathError::NotFound);
    }
    let meta = std::fs::metadata(&canonical).map_err(|_| PathError::NotFound)?;
    if !meta.is_file() {
        return Err(PathError::NotFound);
    }
    Ok(canonical)
}

/// [`resolve`], then open the file and check what was actually opened: the open
/// file's real path (from `/proc/self/fd`) must still be inside `root`, so a
/// symlink swapped in between the check and the open cannot escape.
pub fn open(root: &Path, raw: &str) -> Result<(PathBuf, std::fs::File, std::fs::Metadata), PathError> {
    use std::os::fd::AsRawFd;
    let path = resolve(root, raw)?;
    let file = std::fs::File::open(&path).map_err(|_| PathError::NotFound)?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(|_| PathError::NotFound)?;
    let inside = real.strip_prefix(root).map_err(|_| PathError::NotFound)?;
    if inside.components().any(|c| matches!(c, Component::Normal(n) if n.to_string_lossy().starts_with('.'))) {
        return Err(PathError::NotFound);
    }
    let meta = file.metadata().map_err(|_| PathError::NotFound)?;
    if !meta.is_file() {
        return Err(PathError::NotFound);
    }
    Ok((real, file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathError::*;

    #[test]
    fn decode_table() {
        let ok = [
            ("fitnessally/a.gif", "fitnessally/a.gif"),
            ("a%20b.gif", "a b.gif"),
            ("%252e%252e/x", "%2e%2e/x"), // double encoding: one decode, literal name
            ("caf%C3%A9.gif", "café.gif"),
            ("C:/x", "C:/x"), // just a name on Unix
            ("..a", "..a"),   // not a dot segment; starts with '.', see below
        ];
        for (raw, want) in ok {
            if raw == "..a" {
                assert_eq!(decode(raw), Err(NotFound));
                continue;
            }
            assert_eq!(decode(raw), Ok(PathBuf::from(want)), "{raw}");
        }
        let bad = [
            ("../etc/passwd", Invalid),
            ("a/../../etc/passwd", Invalid),
            ("%2e%2e/etc/passwd", Invalid),
            ("%2E%2E/etc/passwd", Invalid),
            (".%2e/x", Invalid),
            ("a%2f..%2f..%2fetc%2fpasswd", Invalid),
            ("a%5c..%5cetc", Invalid),
            ("..\\..\\etc\\passwd", Invalid),
            ("a\\b", Invalid),
            ("a%00.gif", Invalid),
            ("%c0%ae%c0%ae/etc/passwd", Invalid), // overlong UTF-8
            ("%ff.gif", Invalid),
            ("//etc/passwd", Invalid),
            ("a//b", Invalid),
            ("./a", Invalid),
            ("a/%0a", Invalid),
            (".env", NotFound),
            ("a/.git/config", NotFound),
            ("%2eenv", NotFound),
            ("", NotFound),
            ("/", Invalid),
            ("/etc/passwd", Invalid),
            ("/fitnessally/a.gif", Invalid),
            ("dir/", NotFound),
        ];
        for (raw, want) in bad {
            assert_eq!(decode(raw), Err(want), "{raw}");
        }
        assert_eq!(decode(&"a/".repeat(3000)), Err(Invalid));
    }

    #[test]
    fn resolve_stays_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/ok.gif"), b"x").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), b"secret").unwrap();
        std::fs::write(root.join(".hidden"), b"h").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("escape.txt")).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join("escdir")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok.gif"), root.join("inside.gif")).unwrap();
        std::os::unix::fs::symlink(root.join(".hidden"), root.join("tohidden")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();

        assert_eq!(resolve(&root, "sub/ok.gif").unwrap(), root.join("sub/ok.gif"));
        assert_eq!(resolve(&root, "inside.gif").unwrap(), root.join("sub/ok.gif"));
        assert_eq!(resolve(&root, "escape.txt"), Err(NotFound));
        assert_eq!(resolve(&root, "escdir/secret.txt"), Err(NotFound));
        assert_eq!(resolve(&root, "tohidden"), Err(NotFound));
        assert_eq!(resolve(&root, "sub"), Err(NotFound));
        assert_eq!(resolve(&root, "missing.gif"), Err(NotFound));
        assert_eq!(resolve(&root, "../secret.txt"), Err(Invalid));
        let (real, _, meta) = open(&root, "inside.gif").unwrap();
        assert_eq!(real, root.join("sub/ok.gif"));
        assert_eq!(meta.len(), 1);
        assert!(open(&root, "escape.txt").is_err());
    }
}
