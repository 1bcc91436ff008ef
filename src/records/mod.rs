//! OIP records as use cases: the service the handlers call (list, record types,
//! templates, writes), deep resolution (batched per level, privacy-checked,
//! bounded), the streaming JSON renderer, import, and demo data. The document
//! model and the query language are the domain's ([`crate::oip`]).

pub mod demo;
pub mod import;
pub mod render;
pub mod resolve;
pub mod service;
