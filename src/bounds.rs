//! The registry of bounded structures: every cache, queue, semaphore and map that
//! could grow registers here, and `/api/health` endpoints list each one with its
//! capacity and current fill. A reviewer asking "what stops this from growing?"
//! finds the answer at the declaration; an operator finds it here, live.

use std::sync::Arc;

use serde::Serialize;

/// One bound, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct BoundReport {
    pub name: &'static str,
    /// What is counted (`permits`, `entries`, `requests`, ...).
    pub unit: &'static str,
    pub capacity: u64,
    pub fill: u64,
    /// Where it is configured.
    pub config: &'static str,
}

/// Anything holding one or more bounds.
pub trait BoundSource: Send + Sync {
    fn report(&self, out: &mut Vec<BoundReport>);
}

/// All bound sources of the process.
#[derive(Default, Clone)]
pub struct Bounds {
    sources: Vec<Arc<dyn BoundSource>>,
}

impl Bounds {
    pub fn register(&mut self, source: Arc<dyn BoundSource>) {
        self.sources.push(source);
    }

    pub fn report(&self) -> Vec<BoundReport> {
        let mut out = Vec::new();
        for s in &self.sources {
            s.report(&mut out);
        }
        out
    }
}
