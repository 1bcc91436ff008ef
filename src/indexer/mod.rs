//! The Arweave indexer's library pieces: what a transaction is and how the
//! original node dispatches it ([`tx`]), creator signatures ([`verify`]),
//! creator handles ([`handle`]), record expansion from the compressed wire
//! form and back ([`expand`]), and the JavaScript semantics all of them must
//! reproduce to agree with the original byte for byte ([`js`]).
//!
//! Gateways ([`gateway`]): GraphQL discovery and the chain tip over ordered,
//! failing-over gateways with backoff, breakers and honoured 429s.
//!
//! Processing ([`process`]): one transaction → its effect on the store, with
//! signatures, ownership and the record-type policy checked. The indexer itself
//! ([`run`]): discovery from the resume height, bounded fetches, batches written
//! with their ledger rows, the fork check, health and metrics; run by the
//! supervisor in `oipd serve` and by `oipd index --once`.
//!
//! Bounds: [`gateway`] and [`run`] do the I/O (through the outbound client,
//! answers capped); the rest are plain functions over one transaction at a time;
//! each module names its own limits.

pub mod expand;
pub mod gateway;
#[cfg(test)]
mod fixtures;
pub mod handle;
pub mod js;
pub mod process;
pub mod run;
pub mod tx;
pub mod verify;
