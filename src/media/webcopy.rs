//! `web-setup`: a copy of a stored item under the static web root
//! (`<data-dir>/media/web/<project>/<filename>`, served at `/media/...`), as the
//! original's media flow made one for its pages. The copy streams from the item's
//! byte source into a temp file beside the destination, is made durable and then
//! published without clobbering: a name already holding the same bytes is
//! success, a name holding other bytes is a conflict (the original overwrote
//! whatever was there, anyone's). The name is one plain path segment.
//!
//! Bounds: one chunk of the source in memory at a time; the name is at most
//! [`MAX_NAME_BYTES`].

use std::io::Write;
use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::item::{is_no_space, StoredMedia};

/// Bound: bytes of a web-setup file name.
pub const MAX_NAME_BYTES: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum WebCopyError {
    #[error("filename must be one plain media file name (image, video or audio extension; no '/', '\\', leading '.', control characters; at most {MAX_NAME_BYTES} bytes)")]
    BadName,
    #[error("a different file already has that name")]
    Conflict,
    #[error("no space left on the data directory's filesystem")]
    NoSpace,
    #[error("copy failed: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for WebCopyError {
    fn from(e: std::io::Error) -> Self {
        if is_no_space(&e) {
            WebCopyError::NoSpace
        } else {
            WebCopyError::Io(e)
        }
    }
}

/// Extensions a web copy may have: media a browser shows without running
/// anything (the `/media/` mount serves by extension, with no sandbox: an HTML or
/// SVG copy would script the node's origin, where the pages keep their tokens).
pub const WEB_COPY_EXTENSIONS: &[&str] =
    &["gif", "jpg", "jpeg", "png", "webp", "avif", "bmp", "ico", "mp4", "webm", "mov", "m4v", "mp3", "wav", "ogg", "oga", "m4a", "aac", "flac", "opus"];

/// Is `name` a plain media file name a web copy may take?
pub fn valid_copy_name(name: &str) -> bool {
    valid_name(name)
        && name.rsplit_once('.').is_some_and(|(stem, ext)| !stem.is_empty() && WEB_COPY_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// Is `name` one plain, visible file name?
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control() || c == '\0')
        && name != "."
        && name != ".."
}

/// Copy `item` (whose content hash is `media_id`) to `dir/name`; returns the path.
pub async fn copy_to(item: StoredMedia, media_id: &str, dir: &Path, name: &str) -> Result<PathBuf, WebCopyError> {
    if !valid_copy_name(name) {
        return Err(WebCopyError::BadName);
    }
    let dest = dir.join(name);
    let (dir_owned, dest_owned) = (dir.to_path_buf(), dest.clone());
    let tmp = crate::memory::track::spawn_blocking(move || -> std::io::Result<tempfile::NamedTempFile> {
        std::fs::create_dir_all(&dir_owned)?;
        tempfile::Builder::new().prefix(".web-setup_").tempfile_in(&dir_owned)
    })
    .await
    .map_err(|e| WebCopyError::Io(std::io::Error::other(e)))??;
    let mut tmp = Some(tmp);
    let mut chunks = item.source.range(0, item.size);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let mut t = tmp.take().expect("the temp file is put back after every write");
        let back = crate::memory::track::spawn_blocking(move || t.write_all(&chunk).map(|()| t))
            .await
            .map_err(|e| WebCopyError::Io(std::io::Error::other(e)))??;
        tmp = Some(back);
    }
    let t = tmp.take().expect("the temp file is there after the loop");
    let expected = media_id.to_owned();
    let size = item.size;
    crate::memory::track::spawn_blocking(move || publish(t, &dest_owned, &expected, size))
        .await
        .map_err(|e| WebCopyError::Io(std::io::Error::other(e)))??;
    Ok(dest)
}

fn publish(tmp: tempfile::NamedTempFile, dest: &Path, media_id: &str, size: u64) -> Result<(), WebCopyError> {
    tmp.as_file().sync_all()?;
    match tmp.persist_noclobber(dest) {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            // the same bytes under that name already: done (sizes first: no hashing
            // of a file that cannot match)
            let existing = std::fs::File::open(dest)?;
            if existing.metadata()?.len() != size {
                return Err(WebCopyError::Conflict);
            }
            let hash = crate::http::etag::sha256_hex(existing)?;
            if hash == media_id {
                Ok(())
            } else {
                Err(WebCopyError::Conflict)
            }
        }
        Err(e) => Err(e.error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn copy_names_are_inert_media() {
        use super::valid_copy_name;
        for ok in ["clip.gif", "Squat Loop.MP4", "a.b.webm"] {
            assert!(valid_copy_name(ok), "{ok}");
        }
        for bad in ["x.html", "x.svg", "x.htm", "x.xml", "x.js", "x", ".gif", "x.gif.html", "x.pdf"] {
            assert!(!valid_copy_name(bad), "{bad}");
        }
    }

    #[test]
    fn names() {
        for ok in ["clip.gif", "my clip (1).webm", "ünïcode.png"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", ".env", "a/b.gif", "..\\x", "a\nb", "nul\0.gif", &"x".repeat(256)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
