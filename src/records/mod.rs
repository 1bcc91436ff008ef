//! OIP records: the document model, the query language of `GET /api/records`,
//! deep resolution (batched per level, privacy-checked, bounded), the streaming
//! JSON renderer, import, and demo data.

pub mod demo;
pub mod import;
pub mod model;
pub mod query;
pub mod render;
pub mod resolve;
pub mod service;
