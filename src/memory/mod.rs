//! Memory figures of the process: the allocator's exact statistics (jemalloc,
//! when it is the global allocator — the `oipd` binary) and the kernel's view.

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
