//! HTTP semantics for file responses (RFC 9110 §8.8, §13, §14), as plain code
//! testable without a socket: one concern per file. Knows nothing of the API
//! above it: failures are [`error::HttpError`], bytes come from a
//! [`source::ByteSource`].

pub mod body;
pub mod conditional;
pub mod error;
pub mod etag;
pub mod file;
pub mod open_cache;
pub mod range;
pub mod safe_path;
pub mod sendfile;
pub mod source;
