//! Heap profiles from jemalloc's sampling profiler (always on, one stack per
//! ~512 KiB allocated), in pprof format (gzipped protobuf: `go tool pprof`,
//! `pprof`, Polar Signals, Grafana Pyroscope all read it). Taking one walks the
//! sampled allocations under jemalloc's profiler lock: the process keeps serving;
//! the dump's duration is returned so it can be reported.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("jemalloc heap profiling is not available in this process")]
    Unavailable,
    #[error("heap profile: {0}")]
    Dump(String),
    #[error("writing the heap profile: {0}")]
    Io(#[from] std::io::Error),
}

/// A pprof heap profile now, and how long taking it took.
pub async fn heap_pprof() -> Result<(Vec<u8>, Duration), ProfileError> {
    let ctl = jemalloc_pprof::PROF_CTL.as_ref().ok_or(ProfileError::Unavailable)?;
    let mut ctl = ctl.lock().await;
    if !ctl.activated() {
        return Err(ProfileError::Unavailable);
    }
    let started = Instant::now();
    // The dump is blocking work (a file write and a parse): keep it off the workers.
    let bytes = tokio::task::block_in_place(|| ctl.dump_pprof()).map_err(|e| ProfileError::Dump(e.to_string()))?;
    Ok((bytes, started.elapsed()))
}

/// Write a profile to `dir/<name>`; returns its path and the dump's duration.
pub async fn write_heap_profile(dir: &Path, name: &str) -> Result<(PathBuf, Duration), ProfileError> {
    let (bytes, took) = heap_pprof().await?;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, &path)?;
    Ok((path, took))
}
