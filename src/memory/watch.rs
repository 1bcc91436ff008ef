//! The memory watch: the background task that samples resident memory into the
//! sampler's ring every interval and writes one heap profile per threshold the
//! first time resident memory crosses it (telling the diagnostics log). It runs
//! under the task supervisor and stops when its token is cancelled.
//!
//! Bounds: the sampler's ring ([`super::sampler`]); one profile per threshold,
//! ever; thresholds are a short configured list.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::diag::{Diagnostics, Event};
use super::sampler::{Sample, Sampler};

pub struct MemoryWatch {
    pub sampler: Arc<Sampler>,
    /// Heap-profile thresholds (MB) not crossed yet.
    thresholds: Mutex<Vec<u64>>,
    /// Where threshold profiles go (`<data-dir>/logs/heap-profiles`).
    profile_dir: PathBuf,
    diagnostics: Option<Arc<Diagnostics>>,
}

impl MemoryWatch {
    pub fn new(sampler: Arc<Sampler>, thresholds_mb: Vec<u64>, profile_dir: PathBuf, diagnostics: Option<Arc<Diagnostics>>) -> Self {
        MemoryWatch { sampler, thresholds: Mutex::new(thresholds_mb), profile_dir, diagnostics }
    }

    /// One sample at start, then one per interval, until `cancel`. `on_sample` is
    /// told of each sample taken (the supervisor's "last success").
    pub async fn run(self: Arc<Self>, cancel: CancellationToken, on_sample: impl Fn()) -> Result<(), String> {
        let mut tick = tokio::time::interval(self.sampler.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                _ = tick.tick() => {}
            }
            let s = crate::memory::track::spawn_blocking(Sample::now).await.map_err(|e| e.to_string())?;
            self.sampler.push(s);
            self.check_thresholds(s.rss).await;
            on_sample();
        }
    }

    /// Write one heap profile per threshold the first time resident memory passes it.
    async fn check_thresholds(&self, rss: u64) {
        let crossed: Vec<u64> = {
            let mut t = self.thresholds.lock().unwrap_or_else(|p| p.into_inner());
            let (hit, rest): (Vec<u64>, Vec<u64>) = t.iter().partition(|mb| rss >= **mb * 1024 * 1024);
            *t = rest;
            hit
        };
        // Only the highest newly crossed threshold gets a profile (one per check).
        let Some(mb) = crossed.last().copied() else { return };
        let name = format!("heapprofile_threshold_{mb}MB_{}.pb.gz", crate::civil::iso_now().replace([':', '.'], "-"));
        let event = match super::profile::write_heap_profile(&self.profile_dir, &name).await {
            Ok((file, took)) => {
                tracing::warn!(threshold_mb = mb, file = %file.display(), pause_ms = took.as_millis() as u64, "resident memory crossed a threshold: heap profile written");
                Event::Threshold { mb, file, took }
            }
            Err(e) => {
                tracing::warn!(threshold_mb = mb, error = %e, "resident memory crossed a threshold: heap profile failed");
                Event::ProfileFailed { mb, error: e.to_string() }
            }
        };
        if let Some(d) = &self.diagnostics {
            d.send(event);
        }
    }
}
