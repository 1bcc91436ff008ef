//! The memory sampler: every `MEMORY_MONITOR_INTERVAL` it records resident
//! memory (from /proc), the allocator's figures, open fds and threads into a ring
//! of [`RING_CAPACITY`] samples — a bound, not an ever-growing list — from which
//! growth rates over 1, 5 and 15 minutes are computed.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Bound: samples kept (at the default 60 s interval, 17 hours; at 1 s, 17 minutes).
pub const RING_CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Unix time, milliseconds.
    pub at: u64,
    pub rss: u64,
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
    pub retained: u64,
    pub mapped: u64,
    pub metadata: u64,
    pub open_fds: u64,
    pub threads: u64,
    #[serde(skip)]
    pub instant: Option<Instant>,
}

impl Sample {
    /// Read every figure now.
    pub fn now() -> Self {
        let a = super::allocator_stats().unwrap_or_default();
        Sample {
            at: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64,
            rss: crate::proc::resident_bytes().unwrap_or(0),
            allocated: a.allocated,
            active: a.active,
            resident: a.resident,
            retained: a.retained,
            mapped: a.mapped,
            metadata: a.metadata,
            open_fds: crate::proc::open_fds().unwrap_or(0) as u64,
            threads: crate::proc::threads().unwrap_or(0),
            instant: Some(Instant::now()),
        }
    }
}

/// Growth in MB/min over the last 1, 5 and 15 minutes (`None` until the ring
/// spans enough of the window to say).
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Growth {
    pub rss_mb_per_min_1m: Option<f64>,
    pub rss_mb_per_min_5m: Option<f64>,
    pub rss_mb_per_min_15m: Option<f64>,
    pub allocated_mb_per_min_1m: Option<f64>,
    pub allocated_mb_per_min_5m: Option<f64>,
    pub allocated_mb_per_min_15m: Option<f64>,
}

pub struct Sampler {
    ring: Mutex<VecDeque<Sample>>,
    pub interval: Duration,
}

impl Sampler {
    pub fn new(interval: Duration) -> Self {
        Sampler { ring: Mutex::new(VecDeque::with_capacity(RING_CAPACITY)), interval: interval.max(Duration::from_secs(1)) }
    }

    pub fn push(&self, s: Sample) {
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if r.len() == RING_CAPACITY {
            r.pop_front();
        }
        r.push_back(s);
    }

    pub fn len(&self) -> usize {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn samples(&self) -> Vec<Sample> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect()
    }

    pub fn latest(&self) -> Option<Sample> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).back().copied()
    }

    /// MB/min of `field` between the newest sample and the newest one at least
    /// `window` older (if the ring reaches that far back, within 10 %).
    fn rate(samples: &[Sample], window: Duration, field: fn(&Sample) -> u64) -> Option<f64> {
        let last = samples.last()?;
        let t_last = last.instant?;
        let first = samples.iter().rev().find(|s| s.instant.is_some_and(|t| t_last.duration_since(t) >= window.mul_f64(0.9)))?;
        let minutes = t_last.duration_since(first.instant?).as_secs_f64() / 60.0;
        (minutes > 0.0).then(|| ((field(last) as f64 - field(first) as f64) / 1_048_576.0 / minutes * 100.0).round() / 100.0)
    }

    pub fn growth(&self) -> Growth {
        let s = self.samples();
        let rss = |x: &Sample| x.rss;
        let alloc = |x: &Sample| x.allocated;
        let m = Duration::from_secs(60);
        Growth {
            rss_mb_per_min_1m: Self::rate(&s, m, rss),
            rss_mb_per_min_5m: Self::rate(&s, m * 5, rss),
            rss_mb_per_min_15m: Self::rate(&s, m * 15, rss),
            allocated_mb_per_min_1m: Self::rate(&s, m, alloc),
            allocated_mb_per_min_5m: Self::rate(&s, m * 5, alloc),
            allocated_mb_per_min_15m: Self::rate(&s, m * 15, alloc),
        }
    }
}

impl crate::limits::BoundSource for Sampler {
    fn report(&self, out: &mut Vec<crate::limits::BoundReport>) {
        out.push(crate::limits::BoundReport {
            name: "memory_samples",
            unit: "samples",
            capacity: RING_CAPACITY as u64,
            fill: self.len() as u64,
            config: "const memory::sampler::RING_CAPACITY",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_rates_need_their_window() {
        let s = Sampler::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..(RING_CAPACITY + 10) as u64 {
            let mut x = Sample::now();
            x.instant = Some(t0 + Duration::from_secs(i));
            x.rss = i * 1_048_576; // +1 MB per second = 60 MB/min
            s.push(x);
        }
        assert_eq!(s.len(), RING_CAPACITY);
        let g = s.growth();
        assert_eq!(g.rss_mb_per_min_1m, Some(60.0));
        assert_eq!(g.rss_mb_per_min_15m, Some(60.0));
        let short = Sampler::new(Duration::from_secs(1));
        short.push(Sample::now());
        assert_eq!(short.growth().rss_mb_per_min_1m, None);
    }
}
