//! Memory figures of the process: the allocator's exact statistics (jemalloc,
//! when it is the global allocator — the `oipd` binary) and the kernel's view.

pub mod diag;
pub mod exposition;
pub mod metrics;
pub mod profile;
pub mod sampler;
pub mod track;
pub mod watch;

use serde::Serialize;

/// jemalloc's statistics, in bytes (see `man jemalloc`, `stats.*`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AllocatorStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes in active pages (allocated + fragmentation within pages).
    pub active: u64,
    /// Bytes in physically resident allocator pages (incl. metadata).
    pub resident: u64,
    /// Bytes mapped by the allocator.
    pub mapped: u64,
    /// Bytes retained (unmapped from use but kept as virtual memory).
    pub retained: u64,
    /// Allocator metadata.
    pub metadata: u64,
}

/// Current allocator statistics; `None` when jemalloc is not the allocator in
/// use (tests) or its statistics are unavailable.
pub fn allocator_stats() -> Option<AllocatorStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    let s = AllocatorStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        mapped: stats::mapped::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
        metadata: stats::metadata::read().ok()? as u64,
    };
    // In a process where jemalloc is linked but not the global allocator, it has
    // served nothing.
    (s.allocated > 0).then_some(s)
}

/// The route-slot table of [`track`], as a bound.
pub struct RouteSlots;

impl crate::limits::BoundSource for RouteSlots {
    fn report(&self, out: &mut Vec<crate::limits::BoundReport>) {
        out.push(crate::limits::BoundReport {
            name: "memory_route_slots",
            unit: "routes",
            capacity: track::MAX_ROUTES as u64,
            fill: track::route_slots_used() as u64,
            config: "const memory::track::MAX_ROUTES",
        });
        out.push(crate::limits::BoundReport {
            name: "blocking_threads",
            unit: "jobs",
            capacity: crate::MAX_BLOCKING_THREADS as u64,
            fill: track::blocking_running() as u64,
            config: "const MAX_BLOCKING_THREADS",
        });
    }
}

/// The original's ten categories, in its order: the first whose substrings occur
/// in a route names it; none → `other`.
const CATEGORIES: &[(&[&str], &str)] = &[
    (&["records"], "api_records"),
    (&["voice"], "api_voice"),
    (&["alfred"], "api_alfred"),
    (&["gun_sync", "sync"], "gun_sync"),
    (&["elasticsearch", "es_query"], "elasticsearch_query"),
    (&["graphql"], "graphql_query"),
    (&["media", "gif"], "static_media"),
    (&["deletion", "delete"], "gun_deletion"),
    (&["keepdb", "arweave_check"], "keepdb_cycle"),
];

/// The original's category for a route (first substring hit, in its order).
pub fn category(route: &str) -> &'static str {
    let r = route.to_ascii_lowercase();
    CATEGORIES
        .iter()
        .find(|(subs, _)| subs.iter().any(|x| r.contains(x)))
        .map_or("other", |(_, name)| name)
}
