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

/// Bound: allocations of C code (SQLite) at or above this size are mapped and
/// unmapped on their own, so freeing them gives the memory back.
pub const C_MMAP_THRESHOLD: i32 = 128 * 1024;

/// Give glibc's malloc — which SQLite uses; Rust code uses jemalloc — a fixed
/// mmap threshold and trim threshold. By default glibc raises its threshold
/// each time a large block is freed (up to 32 MiB), after which such blocks
/// stay in the heap and resident: measured while indexing 100,000 records,
/// resident memory climbed ~6 MB/min in steps as SQLite's full-text merges grew;
/// with the fixed threshold it stayed flat (`bench/run indexer`). Call once, at
/// start, before threads; a no-op elsewhere than glibc.
pub fn configure_c_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, C_MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, C_MMAP_THRESHOLD);
    }
}

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
