//! The OIP domain, backend-neutral and HTTP-free: the record document model and
//! what a store indexes of it ([`model`]), the typed query language of
//! `GET /api/records` ([`query`]), what a query *means* as filters, scores and
//! sort keys ([`plan`]: each store backend translates it, none re-decides it),
//! and identities ([`did`]).

pub mod did;
pub mod model;
pub mod plan;
pub mod query;
