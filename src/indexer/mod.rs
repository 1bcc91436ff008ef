//! The Arweave indexer's library pieces: what a transaction is and how the
//! original node dispatches it ([`tx`]), creator signatures ([`verify`]),
//! creator handles ([`handle`]), record expansion from the compressed wire
//! form and back ([`expand`]), and the JavaScript semantics all of them must
//! reproduce to agree with the original byte for byte ([`js`]).
//!
//! Bounds: no I/O, no network, no store here — plain functions over one
//! transaction at a time; each module names its own limits. Fetching (the
//! gateway client, which caps data size) and storing live elsewhere.

pub mod expand;
pub mod gateway;
#[cfg(test)]
mod fixtures;
pub mod handle;
pub mod js;
pub mod tx;
pub mod verify;
