//! The Arweave indexer's library pieces: what a transaction is and how the
//! original node dispatches it ([`tx`]), creator signatures ([`verify`]),
//! creator handles ([`handle`]), record expansion from the compressed wire
//! form and back ([`expand`]), and the JavaScript semantics all of them must
//! reproduce to agree with the original byte for byte ([`js`]).
//!
//! Gateways ([`gateway`]): GraphQL discovery and the chain tip over ordered,
//! failing-over gateways with backoff, breakers and honoured 429s.
//!
//! Bounds: no store here; only [`gateway`] does I/O (through the outbound
//! client, answers capped); the rest are plain functions over one transaction at
//! a time; each module names its own limits. The supervised indexer task that
//! ties them to the store is not built yet (issue 13).

pub mod expand;
pub mod gateway;
#[cfg(test)]
mod fixtures;
pub mod handle;
pub mod js;
pub mod tx;
pub mod verify;
