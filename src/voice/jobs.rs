//! The ALFRED notes' async ingestion jobs (`/api/notes/from-audio-async`,
//! `/api/notes/jobs`): a table bounded in entries ([`MAX_JOBS`], finished jobs
//! evicted oldest first), in jobs running at once ([`MAX_RUNNING_JOBS`], each
//! holding at most one uploaded file; past it the caller gets 503), and in age
//! (finished jobs kept [`JOB_RETENTION`], running ones cancelled after
//! [`JOB_MAX_RUN`]). A job is cancelled by `DELETE`, by the sweep and on shutdown;
//! a job is visible only to its owner. Both bounds are listed in
//! `/api/health/memory` (`notes_jobs`, `notes_jobs_running`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::limits::{BoundReport, BoundSource};

/// Bound: jobs in the table (running and finished).
pub const MAX_JOBS: usize = 64;
/// Bound: jobs running at once (each may hold one uploaded file).
pub const MAX_RUNNING_JOBS: usize = 4;
/// Bound: how long a finished job is kept for polling.
pub const JOB_RETENTION: Duration = Duration::from_secs(3600);
/// Bound: how long a job may run before the sweep cancels it.
pub const JOB_MAX_RUN: Duration = Duration::from_secs(1800);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Transcribing,
    Summarizing,
    CreatingRecords,
    Complete,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Transcribing => "transcribing",
            JobStatus::Summarizing => "summarizing",
            JobStatus::CreatingRecords => "creating_records",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
        }
    }
    fn finished(self) -> bool {
        matches!(self, JobStatus::Complete | JobStatus::Failed)
    }
}

struct Job {
    owner: String,
    status: JobStatus,
    progress: u8,
    step: String,
    created_ms: u64,
    updated_ms: u64,
    started: Instant,
    finished: Option<Instant>,
    duration_sec: i64,
    result: Option<Value>,
    error: Option<String>,
    cancel: CancellationToken,
}

impl Job {
    fn public(&self, id: &str) -> Value {
        let remaining = if self.status.finished() {
            0
        } else if self.progress == 0 {
            (self.duration_sec as f64 * 1.5).round() as i64
        } else {
            let el = self.started.elapsed().as_secs_f64();
            ((el / (self.progress as f64 / 100.0)) - el).max(0.0).round() as i64
        };
        json!({
            "id": id,
            "status": self.status.as_str(),
            "progress": self.progress,
            "currentStep": self.step,
            "createdAt": self.created_ms,
            "updatedAt": self.updated_ms,
            "durationSec": self.duration_sec,
            "result": if self.status == JobStatus::Complete { self.result.clone().unwrap_or(Value::Null) } else { Value::Null },
            "error": if self.status == JobStatus::Failed { json!(self.error) } else { Value::Null },
            "errorDetails": Value::Null,
            "estimatedTimeRemaining": remaining,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JobError {
    #[error("the notes job table is full")]
    Full,
    #[error("Job not found")]
    NotFound,
    #[error("Job cannot be cancelled (already complete or failed)")]
    Finished,
}

/// The async ingestion jobs: bounded in entries, running jobs and age.
pub struct NoteJobs {
    jobs: Mutex<HashMap<String, Job>>,
    root: CancellationToken,
}

impl Default for NoteJobs {
    fn default() -> Self {
        NoteJobs { jobs: Mutex::new(HashMap::new()), root: CancellationToken::new() }
    }
}

fn now_ms() -> u64 {
    super::dialogue::now_ms()
}

impl NoteJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new job for `owner`: its id and the token that cancels it. Finished jobs
    /// past their age go first, then the oldest finished one when the table is
    /// full; `Full` when every slot (or every running slot) is taken.
    pub fn create(&self, owner: &str, duration_sec: i64) -> Result<(String, CancellationToken), JobError> {
        let mut jobs = self.lock();
        Self::expire(&mut jobs);
        if jobs.values().filter(|j| !j.status.finished()).count() >= MAX_RUNNING_JOBS {
            return Err(JobError::Full);
        }
        if jobs.len() >= MAX_JOBS {
            let oldest = jobs.iter().filter(|(_, j)| j.status.finished()).min_by_key(|(_, j)| j.updated_ms).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    jobs.remove(&k);
                }
                None => return Err(JobError::Full),
            }
        }
        let id = format!("job_{}_{:06x}", now_ms(), fastrand::u32(..0x100_0000));
        let cancel = self.root.child_token();
        let now = now_ms();
        jobs.insert(
            id.clone(),
            Job {
                owner: owner.to_owned(),
                status: JobStatus::Queued,
                progress: 0,
                step: "Queued for processing".into(),
                created_ms: now,
                updated_ms: now,
                started: Instant::now(),
                finished: None,
                duration_sec,
                result: None,
                error: None,
                cancel: cancel.clone(),
            },
        );
        Ok((id, cancel))
    }

    fn expire(jobs: &mut HashMap<String, Job>) -> usize {
        let before = jobs.len();
        for j in jobs.values_mut() {
            if !j.status.finished() && j.started.elapsed() > JOB_MAX_RUN {
                j.cancel.cancel();
                j.status = JobStatus::Failed;
                j.error = Some(format!("Ran longer than {} s", JOB_MAX_RUN.as_secs()));
                j.finished = Some(Instant::now());
                j.updated_ms = now_ms();
            }
        }
        jobs.retain(|_, j| j.finished.is_none_or(|f| f.elapsed() < JOB_RETENTION));
        before - jobs.len()
    }

    /// Progress of a running job (ignored once it finished: a cancelled job stays failed).
    pub fn update(&self, id: &str, status: JobStatus, progress: u8, step: &str) {
        if let Some(j) = self.lock().get_mut(id).filter(|j| !j.status.finished()) {
            j.status = status;
            j.progress = progress;
            j.step = step.to_owned();
            j.updated_ms = now_ms();
        }
    }

    pub fn finish(&self, id: &str, r: Result<Value, String>) {
        if let Some(j) = self.lock().get_mut(id).filter(|j| !j.status.finished()) {
            match r {
                Ok(v) => {
                    j.status = JobStatus::Complete;
                    j.progress = 100;
                    j.step = "Complete".into();
                    j.result = Some(v);
                }
                Err(e) => {
                    j.status = JobStatus::Failed;
                    j.error = Some(e);
                }
            }
            j.finished = Some(Instant::now());
            j.updated_ms = now_ms();
        }
    }

    /// The job's public status, if it is `owner`'s (someone else's is not found).
    pub fn status(&self, id: &str, owner: &str) -> Option<Value> {
        self.lock().get(id).filter(|j| j.owner == owner).map(|j| j.public(id))
    }

    /// `owner`'s jobs, newest first.
    pub fn list(&self, owner: &str, limit: usize, status: Option<&str>) -> Vec<Value> {
        let jobs = self.lock();
        let mut mine: Vec<(&String, &Job)> = jobs.iter().filter(|(_, j)| j.owner == owner && status.is_none_or(|s| j.status.as_str() == s)).collect();
        mine.sort_by(|a, b| b.1.created_ms.cmp(&a.1.created_ms).then(b.0.cmp(a.0)));
        mine.into_iter().take(limit).map(|(id, j)| j.public(id)).collect()
    }

    /// Counts over the whole table (the original's `stats`).
    pub fn stats(&self) -> Value {
        let jobs = self.lock();
        let count = |f: &dyn Fn(&Job) -> bool| jobs.values().filter(|j| f(j)).count();
        json!({
            "total": jobs.len(),
            "queued": count(&|j| j.status == JobStatus::Queued),
            "processing": count(&|j| !j.status.finished() && j.status != JobStatus::Queued),
            "complete": count(&|j| j.status == JobStatus::Complete),
            "failed": count(&|j| j.status == JobStatus::Failed),
        })
    }

    /// Cancel `owner`'s running job.
    pub fn cancel(&self, id: &str, owner: &str) -> Result<(), JobError> {
        let mut jobs = self.lock();
        let j = jobs.get_mut(id).filter(|j| j.owner == owner).ok_or(JobError::NotFound)?;
        if j.status.finished() {
            return Err(JobError::Finished);
        }
        j.cancel.cancel();
        j.status = JobStatus::Failed;
        j.error = Some("Cancelled by user".into());
        j.finished = Some(Instant::now());
        j.updated_ms = now_ms();
        Ok(())
    }

    /// Drop finished jobs past their age, cancel jobs running too long; how many left.
    pub fn sweep(&self) -> usize {
        Self::expire(&mut self.lock())
    }

    /// Cancel every job (shutdown).
    pub fn shutdown(&self) {
        self.root.cancel();
        self.lock().clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BoundSource for NoteJobs {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let jobs = self.lock();
        out.push(BoundReport { name: "notes_jobs", unit: "jobs", capacity: MAX_JOBS as u64, fill: jobs.len() as u64, config: "const voice::jobs::MAX_JOBS (finished jobs kept 1 h)" });
        out.push(BoundReport {
            name: "notes_jobs_running",
            unit: "jobs",
            capacity: MAX_RUNNING_JOBS as u64,
            fill: jobs.values().filter(|j| !j.status.finished()).count() as u64,
            config: "const voice::jobs::MAX_RUNNING_JOBS (each cancelled after 30 min)",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_bounded_owned_and_cancellable() {
        let j = NoteJobs::default();
        let mut ids = Vec::new();
        for _ in 0..MAX_RUNNING_JOBS {
            ids.push(j.create("alice", 60).unwrap());
        }
        assert_eq!(j.create("alice", 60).unwrap_err(), JobError::Full, "running jobs are bounded");
        assert!(j.status(&ids[0].0, "bob").is_none(), "another owner sees nothing");
        assert_eq!(j.cancel(&ids[0].0, "bob"), Err(JobError::NotFound));
        j.cancel(&ids[0].0, "alice").unwrap();
        assert!(ids[0].1.is_cancelled());
        assert_eq!(j.cancel(&ids[0].0, "alice"), Err(JobError::Finished));
        for (id, _) in &ids[1..] {
            j.finish(id, Ok(json!({"noteHash": "x"})));
        }
        // finished jobs make room; the table holds at most MAX_JOBS
        for _ in 0..MAX_JOBS * 2 {
            let (id, _) = j.create("alice", 60).unwrap();
            j.finish(&id, Err("x".into()));
        }
        assert_eq!(j.len(), MAX_JOBS);
        assert_eq!(j.list("alice", 5, None).len(), 5);
        assert_eq!(j.stats()["total"], json!(MAX_JOBS));
        j.shutdown();
        assert!(j.is_empty());
    }
}
