//! Publish jobs (`/api/publish/newRecipe` and `newWorkout` answer `202
//! {jobId}`; `/api/publish-status/:jobId` and its `/stream` tell how they go),
//! in the original's shape: `{jobId, status: pending|processing|completed|failed,
//! progress, message}` plus `transactionId`, `recordToIndex`, `blockchain` when
//! completed and `error` when failed.
//!
//! Bounds: at most `capacity` jobs in the table (finished ones evicted oldest
//! first; when every one is running a new job is refused → 503), finished jobs
//! kept `ttl`; each job's state is one `watch` value, so a stream reader holds
//! only the latest state, never a backlog. Listed in `/api/health/memory` as
//! `publish_jobs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::limits::{BoundReport, BoundSource};

/// A job's state, as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    pub status: &'static str,
    pub progress: u8,
    pub message: String,
    /// `{transactionId, recordToIndex, blockchain, …}` once completed.
    pub result: Option<Value>,
    pub error: Option<String>,
}

impl JobState {
    pub fn finished(&self) -> bool {
        self.status == "completed" || self.status == "failed"
    }

    /// The original's `GET /api/publish-status/:jobId` body.
    pub fn to_json(&self, job_id: &str) -> Value {
        let mut v = json!({"jobId": job_id, "status": self.status, "progress": self.progress, "message": self.message});
        if let (true, Some(r)) = (self.status == "completed", &self.result) {
            for k in ["transactionId", "recordToIndex", "blockchain", "did"] {
                if let Some(x) = r.get(k) {
                    v[k] = x.clone();
                }
            }
        }
        if let Some(e) = &self.error {
            v["error"] = Value::String(e.clone());
        }
        v
    }
}

struct Entry {
    tx: watch::Sender<JobState>,
    finished_at: Option<Instant>,
    created: Instant,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0} publish jobs are running; try again later")]
pub struct JobsFull(pub usize);

/// The job table.
pub struct Jobs {
    jobs: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    ttl: Duration,
}

/// One job's handle for the task doing the work. Dropped before it completed
/// or failed (a panic, a cancelled task), it marks the job failed: no job stays
/// "processing" holding a slot.
pub struct JobHandle {
    pub id: String,
    tx: watch::Sender<JobState>,
    jobs: Arc<Jobs>,
    done: bool,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.id).finish()
    }
}

impl JobHandle {
    pub fn progress(&self, progress: u8, message: impl Into<String>) {
        self.tx.send_replace(JobState { status: "processing", progress: progress.min(100), message: message.into(), result: None, error: None });
    }

    fn finish(mut self, state: JobState) {
        self.done = true;
        self.tx.send_replace(state);
        self.jobs.finished(&self.id);
    }

    pub fn complete(self, result: Value) {
        self.finish(JobState { status: "completed", progress: 100, message: "Job completed successfully".into(), result: Some(result), error: None });
    }

    pub fn fail(self, error: String) {
        self.finish(JobState { status: "failed", progress: 100, message: format!("Job failed: {error}"), result: None, error: Some(error) });
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        if !self.done {
            let error = "the job ended before it finished".to_owned();
            self.tx.send_replace(JobState { status: "failed", progress: 100, message: format!("Job failed: {error}"), result: None, error: Some(error) });
            self.jobs.finished(&self.id);
        }
    }
}

impl Jobs {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Jobs { jobs: Mutex::new(HashMap::new()), capacity: capacity.max(1), ttl }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new pending job of `kind` (its id is `<kind>_<16 hex>`, as the original).
    pub fn create(self: &Arc<Self>, kind: &str, message: &str) -> Result<JobHandle, JobsFull> {
        let mut jobs = self.lock();
        let now = Instant::now();
        jobs.retain(|_, e| e.finished_at.is_none_or(|f| now.duration_since(f) < self.ttl));
        if jobs.len() >= self.capacity {
            let oldest = jobs.iter().filter(|(_, e)| e.finished_at.is_some()).min_by_key(|(_, e)| e.created).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    jobs.remove(&k);
                }
                None => return Err(JobsFull(jobs.len())),
            }
        }
        let mut raw = [0u8; 8];
        getrandom::fill(&mut raw).map_err(|_| JobsFull(jobs.len()))?;
        let id = format!("{kind}_{}", hex::encode(raw));
        let (tx, _) = watch::channel(JobState { status: "pending", progress: 0, message: message.to_owned(), result: None, error: None });
        jobs.insert(id.clone(), Entry { tx: tx.clone(), finished_at: None, created: now });
        Ok(JobHandle { id, tx, jobs: self.clone(), done: false })
    }

    fn finished(&self, id: &str) {
        if let Some(e) = self.lock().get_mut(id) {
            e.finished_at = Some(Instant::now());
        }
    }

    /// The job's state now, and a receiver of its changes.
    pub fn watch(&self, id: &str) -> Option<watch::Receiver<JobState>> {
        let jobs = self.lock();
        let e = jobs.get(id)?;
        if e.finished_at.is_some_and(|f| f.elapsed() >= self.ttl) {
            return None;
        }
        Some(e.tx.subscribe())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BoundSource for Jobs {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "publish_jobs",
            unit: "jobs",
            capacity: self.capacity as u64,
            fill: self.len() as u64,
            config: "--publish-jobs / OIPD_PUBLISH_JOBS (finished kept --publish-job-ttl)",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_finished_evicted_running_refused() {
        let jobs = Arc::new(Jobs::new(2, Duration::from_secs(60)));
        let a = jobs.create("recipe_publish", "x").unwrap();
        assert!(a.id.starts_with("recipe_publish_") && a.id.len() == "recipe_publish_".len() + 16);
        let b = jobs.create("recipe_publish", "x").unwrap();
        assert_eq!(jobs.create("recipe_publish", "x").unwrap_err(), JobsFull(2));
        let a_id = a.id.clone();
        a.complete(json!({"transactionId": "t", "extra": 1}));
        let shown = jobs.watch(&a_id).unwrap().borrow().to_json(&a_id);
        assert_eq!(shown["status"], "completed");
        assert_eq!(shown["transactionId"], "t");
        assert!(shown.get("extra").is_none());
        // full: the finished one makes room
        let c = jobs.create("workout_publish", "x").unwrap();
        assert!(jobs.watch(&a_id).is_none());
        assert_eq!(jobs.len(), 2);
        b.fail("bundler down".into());
        // a handle dropped unfinished (a panicked task) fails its job and frees its slot
        let c_id = c.id.clone();
        drop(c);
        let st = jobs.watch(&c_id).unwrap().borrow().clone();
        assert_eq!(st.status, "failed");
        assert!(jobs.create("k", "x").is_ok(), "the slot is free again");
    }

    #[test]
    fn finished_jobs_expire() {
        let jobs = Arc::new(Jobs::new(4, Duration::from_millis(1)));
        let a = jobs.create("k", "x").unwrap();
        let id = a.id.clone();
        a.fail("e".into());
        std::thread::sleep(Duration::from_millis(5));
        assert!(jobs.watch(&id).is_none());
    }
}
