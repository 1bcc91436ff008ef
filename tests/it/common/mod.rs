//! Shared helpers for the integration tests, by job; everything is re-exported
//! here, so a test file says `use crate::common::*;`.
//!
//! Used by both test binaries: `tests/it` declares it as `mod common;`, and
//! `tests/alloc` includes this same file with `#[path]` (and allows what it
//! leaves unused).

mod bundler;
mod chain;
mod contract;
mod fixtures;
mod multipart;
mod pg;
mod process;
mod raw;
mod s3;
mod server;

pub use bundler::*;
pub use chain::*;
pub use contract::*;
pub use fixtures::*;
pub use multipart::*;
pub use pg::*;
pub use process::*;
pub use raw::*;
pub use s3::*;
pub use server::*;
