//! What the file-response machinery can answer instead of a body. The API layer
//! maps each case to its status and JSON (`api::error`).

use crate::limits::Overloaded;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 412: an `If-Match` / `If-Unmodified-Since` precondition failed.
    #[error("Precondition Failed")]
    PreconditionFailed,
    /// 416: no requested range overlaps the representation of `size` bytes.
    #[error("Range Not Satisfiable")]
    RangeNotSatisfiable { size: u64 },
    /// 503: the stream bound was full past its wait.
    #[error(transparent)]
    Overloaded(#[from] Overloaded),
    /// Reading the representation (hashing it for its ETag) failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A header value we built was not valid (our fault).
    #[error("bad header value: {0}")]
    Header(String),
}
