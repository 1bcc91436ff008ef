//! The integration tests: one test binary (one link of the crate) with a module
//! per concern. Each module's tests run against their own in-process server on
//! 127.0.0.1:0 with its own temp data dir, or against their own `oipd` child
//! process, so they run concurrently like any tests of one binary.
//!
//! The two suites that install the tracking allocator live apart in `tests/alloc`
//! (see there why).

mod common;

mod accounts;
mod admin_page;
mod attack_http;
mod attack_paths;
mod attack_queries;
mod cors;
mod faults;
mod file_fast_path;
mod gun_relay;
mod gun_store;
mod gun_sync;
mod import;
mod indexer;
mod indexer_gateway;
mod layers;
mod media_api;
mod media_flows;
mod media_s3;
mod memory;
mod migrate;
mod nodes;
mod notes;
mod page_contracts;
mod pages;
mod parser_props;
mod publish;
mod records_api;
mod records_memory;
mod redbot;
mod resolve_props;
mod security_headers;
mod static_media;
mod streams;
mod voice;
