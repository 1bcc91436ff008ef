//! The tests that need the tracking allocator installed, in a test binary of
//! their own.
//!
//! Why not in `tests/it` with the rest: a `#[global_allocator]` is process-wide,
//! and so are the tables it charges (`oipd::memory::track`: route ids, per-route
//! allocated/freed/live bytes, per-request figures) — one server per process in
//! production. In `tests/it` all its tests would run under it, and the tests running
//! concurrently in that process would be charged to the same routes
//! (`GET /__test/alloc`, `GET /media/{*path}`, ...), breaking the exact figures
//! these suites assert (±5 % of a known allocation, live bytes rising by exactly
//! what a route leaks, `RSS +60.0MB` in the diagnostics log).
//!
//! Within this binary the same holds between the two modules: memory_attribution's
//! tests take turns (its `SERIAL`), and the diagnostics log test, whose 60 MB
//! request would stay the alloc route's lifetime `maxRequestBytes`, re-runs itself
//! alone in a process of its own (`common::in_own_process`).

// The same helpers as tests/it, not a copy; this binary uses only a few of them.
#[path = "../it/common/mod.rs"]
#[allow(dead_code, unused_imports)]
mod common;

mod diagnostics;
mod gun_get;
mod memory_attribution;

use oipd::memory::track::TrackingAlloc;

#[global_allocator]
static ALLOC: TrackingAlloc<std::alloc::System> = TrackingAlloc(std::alloc::System);
