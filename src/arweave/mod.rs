//! Arweave as plain library code (no HTTP): what publishing records needs to make
//! ANS-104 data items signed by the node's Arweave wallet, and what reading them
//! back needs to check them.
//!
//! - [`deephash`]: Arweave's deep-hash (SHA-384 over nested byte strings), with a
//!   streamed blob so large data is hashed as it arrives.
//! - [`jwk`]: an Arweave wallet from its JWK file; owner and address.
//! - [`tags`]: the Avro tag encoding of ANS-104, bounded both ways.
//! - [`dataitem`]: build, sign, serialise, parse and verify data items with
//!   signature type 1 (RSA-PSS, 4096-bit keys), the data streamed in chunks.
//!
//! Bounds: a data item header is at most [`dataitem::MAX_HEADER_BYTES`]; data is
//! never held whole here, only hashed. Posting items to a bundler and reading the
//! wallet file are the callers' (`clients/`, config).

pub mod dataitem;
pub mod deephash;
pub mod jwk;
pub mod tags;

#[cfg(test)]
pub(crate) mod test_vectors;
