//! The task supervisor: every long-running background task of the process (the
//! indexer, GUN sync, the memory sampler, the diagnostics writer, ...) is started
//! here, by name, so that one place can cancel them all, restart the ones that
//! fail, and show what each one is doing in the `tasks` section of `/api/health`.
//!
//! A task is given as a *factory*, `Fn(TaskCtx) -> Future`, called once per run,
//! so a failed run can be replaced by a fresh one. Each run is spawned as its own
//! tokio task: a panic is caught at its `JoinHandle` (`JoinError::is_panic`) and
//! handled like an `Err`. A small driver task per registered task runs the
//! factory, waits for the run, applies the [`RestartPolicy`] (exponential backoff
//! with jitter) and keeps the task's [`TaskState`] up to date. Allocations made
//! while a run is polled are charged to the memory route [`MEMORY_ROUTE`].
//!
//! Shutdown is one explicit call, [`Supervisor::shutdown`]: the root
//! [`CancellationToken`] is cancelled (every task holds a child of it), every task
//! gets the grace period to return, the rest are aborted and named in the answer.
//! Dropping the supervisor cancels the root token too.
//!
//! Bounds: [`MAX_TASKS`] registered tasks (each is one driver and at most one run
//! task at a time); every text a task reports is cut to [`MAX_ERROR_BYTES`] or
//! [`MAX_DETAIL_BYTES`] while it is formatted, so a task's status never grows.

use std::any::Any;
use std::fmt::{self, Display, Write as _};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::limits::{BoundReport, BoundSource};

/// Bound: tasks registered with one supervisor (finished ones keep their slot, so
/// their last state stays visible). Background work is registered at startup, a
/// handful of tasks per capability; 64 leaves room and keeps `/api/health` short.
pub const MAX_TASKS: usize = 64;

/// Bound: bytes kept of a task's last error (a returned error or a panic
/// message), cut at a character boundary while it is formatted.
pub const MAX_ERROR_BYTES: usize = 512;

/// Bound: bytes kept of a task's free-form detail ([`TaskCtx::set_detail`]).
pub const MAX_DETAIL_BYTES: usize = 256;

/// Floor of a restart delay, whatever the policy says: a task that fails at once
/// with `initial: 0` would otherwise restart in a busy loop.
pub const MIN_RESTART_DELAY: Duration = Duration::from_millis(10);

/// The memory-attribution route (`memory::track`) of every task's allocations:
/// one slot for all tasks, so tasks never crowd HTTP routes out of the
/// `MAX_ROUTES` table.
pub const MEMORY_ROUTE: &str = "background tasks";

/// Jitter of a restart delay: the delay is shortened by a random fraction in
/// `[0, JITTER_FRACTION)`, so tasks failing together do not restart together.
/// With doubling delays, 0.25 keeps every delay longer than the one before.
pub const JITTER_FRACTION: f64 = 0.25;

/// What happens when a run returns `Err` or panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// The task is marked `failed` and stays so.
    Never,
    /// Restart after `initial`, doubling on each consecutive failure up to `max`
    /// (minus jitter). A run that reported [`TaskCtx::succeeded`] resets the
    /// delay to `initial`.
    OnFailure { initial: Duration, max: Duration },
}

impl RestartPolicy {
    /// The restart delay after `failures` consecutive failures (1 = the first),
    /// before jitter.
    fn delay(initial: Duration, max: Duration, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        initial.saturating_mul(1u32 << doublings).min(max.max(initial)).max(MIN_RESTART_DELAY)
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// A run is in progress.
    Running,
    /// Waiting before a retry: between two runs (the supervisor's backoff) or
    /// inside a run (the task said so with [`TaskCtx::backing_off`]).
    BackingOff,
    /// The last run failed and the policy says not to restart.
    Failed,
    /// Cancelled (shutdown), or its supervisor is shut down.
    Stopped,
    /// The run returned `Ok(())` without being cancelled.
    Finished,
}

/// One task, as shown in `/api/health`. Times are ISO 8601 UTC with milliseconds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    pub name: &'static str,
    pub state: TaskState,
    /// The last error or panic message, at most [`MAX_ERROR_BYTES`].
    pub last_error: Option<String>,
    /// When the task last reported [`TaskCtx::succeeded`].
    pub last_success: Option<String>,
    /// When the current (or last) run started.
    pub started_at: Option<String>,
    /// Runs started after the first one.
    pub restarts: u32,
    /// While `backing_off`: when the wait ends.
    pub backoff_until: Option<String>,
    /// Free-form detail the task set, at most [`MAX_DETAIL_BYTES`].
    pub detail: Option<String>,
}

/// Why a task could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpawnError {
    #[error("task limit reached ({max} tasks)")]
    TooMany { max: usize },
    #[error("a task named {0:?} is already registered")]
    Duplicate(&'static str),
    #[error("the supervisor is shut down")]
    ShutDown,
    #[error("no tokio runtime to spawn on")]
    NoRuntime,
}

/// The mutable part of a task's status (behind the slot's mutex).
#[derive(Debug)]
struct Status {
    state: TaskState,
    last_error: Option<String>,
    last_success_ms: Option<i64>,
    started_at_ms: Option<i64>,
    restarts: u32,
    backoff_until_ms: Option<i64>,
    detail: Option<String>,
    /// Which run the status belongs to: a [`TaskCtx`] kept by a finished run
    /// (a clone moved elsewhere) cannot change the status of the next one.
    run: u64,
    /// The current run called `succeeded()` (resets the backoff).
    succeeded_this_run: bool,
}

/// A registered task's shared status.
#[derive(Debug)]
struct Slot {
    name: &'static str,
    status: Mutex<Status>,
}

impl Slot {
    fn new(name: &'static str) -> Self {
        Slot {
            name,
            status: Mutex::new(Status {
                state: TaskState::Running,
                last_error: None,
                last_success_ms: None,
                started_at_ms: None,
                restarts: 0,
                backoff_until_ms: None,
                detail: None,
                run: 0,
                succeeded_this_run: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A run starts: returns its number.
    fn begin_run(&self) -> u64 {
        let mut s = self.lock();
        s.run += 1;
        s.state = TaskState::Running;
        s.started_at_ms = Some(now_ms());
        s.backoff_until_ms = None;
        s.succeeded_this_run = false;
        s.run
    }

    /// The run ended for good in `state`.
    fn end(&self, state: TaskState, error: Option<String>) {
        let mut s = self.lock();
        s.state = state;
        s.backoff_until_ms = None;
        if error.is_some() {
            s.last_error = error;
        }
    }

    /// Apply a [`TaskCtx`] update if the ctx belongs to the current run and the
    /// task is still live.
    fn update(&self, run: u64, f: impl FnOnce(&mut Status)) {
        let mut s = self.lock();
        if s.run == run && matches!(s.state, TaskState::Running | TaskState::BackingOff) {
            f(&mut s);
        }
    }

    fn report(&self) -> TaskReport {
        let s = self.lock();
        TaskReport {
            name: self.name,
            state: s.state,
            last_error: s.last_error.clone(),
            last_success: s.last_success_ms.map(iso),
            started_at: s.started_at_ms.map(iso),
            restarts: s.restarts,
            backoff_until: s.backoff_until_ms.map(iso),
            detail: s.detail.clone(),
        }
    }
}

/// What a task gets: its cancellation token and a way to report progress.
/// Cheap to clone.
#[derive(Clone)]
pub struct TaskCtx {
    token: CancellationToken,
    slot: Arc<Slot>,
    run: u64,
}

impl TaskCtx {
    /// The task's name.
    pub fn name(&self) -> &'static str {
        self.slot.name
    }

    /// The task's token: a child of the supervisor's root, cancelled at shutdown.
    /// Hand children of it to sub-tasks.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves when the task should stop.
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }

    /// The task did a unit of useful work: records the time, marks it `running`,
    /// and makes the next restart (if any) start from the initial delay.
    pub fn succeeded(&self) {
        self.slot.update(self.run, |s| {
            s.last_success_ms = Some(now_ms());
            s.state = TaskState::Running;
            s.backoff_until_ms = None;
            s.succeeded_this_run = true;
        });
    }

    /// The task is waiting `wait` before retrying something that failed with
    /// `error`, without returning (it handles its own retries).
    pub fn backing_off(&self, wait: Duration, error: impl Display) {
        let error = bounded(&error, MAX_ERROR_BYTES);
        self.slot.update(self.run, |s| {
            s.state = TaskState::BackingOff;
            s.backoff_until_ms = Some(now_ms().saturating_add(millis(wait)));
            s.last_error = Some(error);
        });
    }

    /// The task is working again after [`TaskCtx::backing_off`].
    pub fn running(&self) {
        self.slot.update(self.run, |s| {
            s.state = TaskState::Running;
            s.backoff_until_ms = None;
        });
    }

    /// [`TaskCtx::backing_off`], then wait `wait` unless cancelled first, then
    /// [`TaskCtx::running`]. Returns `false` if the task was cancelled meanwhile.
    pub async fn back_off(&self, wait: Duration, error: impl Display) -> bool {
        self.backing_off(wait, error);
        tokio::select! {
            _ = self.token.cancelled() => false,
            _ = tokio::time::sleep(wait) => {
                self.running();
                true
            }
        }
    }

    /// A short free-form note shown with the task (cursor position, peer, ...).
    pub fn set_detail(&self, detail: impl Display) {
        let detail = bounded(&detail, MAX_DETAIL_BYTES);
        self.slot.update(self.run, |s| s.detail = Some(detail));
    }
    /// The same task with its own child token: cancelling it stops what was
    /// handed this context, not the task ([`singleton`] uses it when a lease is lost).
    pub fn child(&self) -> (TaskCtx, CancellationToken) {
        let token = self.token.child_token();
        (TaskCtx { token: token.clone(), slot: self.slot.clone(), run: self.run }, token)
    }
}

/// How a [`singleton`] task holds its lease.
#[derive(Clone)]
pub struct LeaseSpec {
    pub leases: Arc<dyn crate::store::lease::LeaseStore>,
    /// This process, unique among the nodes sharing the store.
    pub holder: String,
    /// How long a lease lasts unrenewed: a dead holder's work moves to another
    /// node within about this long (plus one renewal period).
    pub ttl: Duration,
}

impl LeaseSpec {
    /// Renewals (and standby polls) happen this often: three per TTL.
    pub fn period(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_millis(100))
    }
}

/// A factory for [`Supervisor::spawn`] running `factory`'s runs only while this
/// node holds the lease `name` ([`crate::store::lease`]): on standby it polls for
/// the lease; holding it, it runs the work and renews every
/// [`LeaseSpec::period`]. When a renewal is refused, or renewals have failed for
/// `ttl - period` (so the lease may be about to expire), the work is cancelled
/// and dropped, and the task is on standby again; when the work returns, the
/// lease is released at once.
pub fn singleton<F, Fut, E>(name: &'static str, spec: LeaseSpec, factory: F) -> impl Fn(TaskCtx) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync + 'static
where
    F: Fn(TaskCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let factory = Arc::new(factory);
    move |ctx: TaskCtx| {
        let (spec, factory) = (spec.clone(), factory.clone());
        Box::pin(async move {
            let period = spec.period();
            loop {
                let started = std::time::Instant::now();
                match spec.leases.lease_acquire(name, &spec.holder, spec.ttl).await {
                    Ok(true) => {}
                    Ok(false) => {
                        ctx.set_detail("standby: another node holds the lease");
                        tokio::select! {
                            _ = ctx.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(period) => continue,
                        }
                    }
                    Err(e) => {
                        if !ctx.back_off(period, format!("lease {name}: {e}")).await {
                            return Ok(());
                        }
                        continue;
                    }
                }
                tracing::info!(lease = name, holder = %spec.holder, "took the lease; starting");
                let (child, token) = ctx.child();
                let work = factory(child);
                tokio::pin!(work);
                // The lease runs from the start of the last successful call: the
                // work stops before it can have expired in the database.
                let mut renewed = started;
                let lost = loop {
                    tokio::select! {
                        // the timer first: after a pause (a stalled VM) the lease is
                        // checked before the work is polled again
                        biased;
                        _ = tokio::time::sleep(period) => {
                            let now = std::time::Instant::now();
                            let left = (renewed + spec.ttl).saturating_duration_since(now);
                            if left.is_zero() {
                                break "the lease ran out before it could be renewed";
                            }
                            match tokio::time::timeout(left, spec.leases.lease_acquire(name, &spec.holder, spec.ttl)).await {
                                Ok(Ok(true)) => renewed = now,
                                Ok(Ok(false)) => break "another node took it",
                                Ok(Err(_)) if renewed.elapsed() + period < spec.ttl => {}
                                Ok(Err(_)) | Err(_) => break "renewals failed",
                            }
                        }
                        r = &mut work => {
                            let _ = spec.leases.lease_release(name, &spec.holder).await;
                            return r.map_err(|e| e.to_string());
                        }
                    }
                };
                token.cancel();
                tracing::warn!(lease = name, holder = %spec.holder, why = lost, "lost the lease; stopping");
                ctx.set_detail(format!("standby: lost the lease ({lost})"));
            }
        })
    }
}

/// A registered task: its status and its driver (taken at shutdown).
struct Entry {
    slot: Arc<Slot>,
    driver: Option<JoinHandle<()>>,
}

/// The supervisor. One per process; share it behind an `Arc`.
pub struct Supervisor {
    /// Parent of every task's token: cancelling it asks every task to stop.
    root: CancellationToken,
    /// Registered tasks in registration order; at most [`MAX_TASKS`].
    tasks: Mutex<Vec<Entry>>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor { root: CancellationToken::new(), tasks: Mutex::new(Vec::new()) }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register and start a task. `factory` is called for each run (the first and
    /// every restart) on the current tokio runtime.
    pub fn spawn<F, Fut, E>(&self, name: &'static str, policy: RestartPolicy, factory: F) -> Result<(), SpawnError>
    where
        F: Fn(TaskCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        let mut tasks = self.lock();
        if self.root.is_cancelled() {
            return Err(SpawnError::ShutDown);
        }
        if tasks.len() >= MAX_TASKS {
            return Err(SpawnError::TooMany { max: MAX_TASKS });
        }
        if tasks.iter().any(|e| e.slot.name == name) {
            return Err(SpawnError::Duplicate(name));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SpawnError::NoRuntime)?;
        let slot = Arc::new(Slot::new(name));
        let driver = runtime.spawn(drive(slot.clone(), self.root.child_token(), policy, factory));
        tasks.push(Entry { slot, driver: Some(driver) });
        Ok(())
    }

    /// Every task's status, in registration order.
    pub fn report(&self) -> Vec<TaskReport> {
        self.lock().iter().map(|e| e.slot.report()).collect()
    }

    /// Tasks registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancel every task, give them `grace` (in all) to return, abort the rest.
    /// Returns the names of the tasks that had to be aborted. Afterwards every
    /// task is `stopped` and no task can be spawned.
    pub async fn shutdown(&self, grace: Duration) -> Vec<&'static str> {
        self.root.cancel();
        let drivers: Vec<(Arc<Slot>, Option<JoinHandle<()>>)> =
            self.lock().iter_mut().map(|e| (e.slot.clone(), e.driver.take())).collect();
        let deadline = tokio::time::Instant::now() + grace;
        let mut aborted = Vec::new();
        for (slot, driver) in drivers {
            if let Some(mut driver) = driver {
                // `timeout_at` polls the driver before looking at the clock, so a
                // task that already returned counts as joined even past the deadline.
                if tokio::time::timeout_at(deadline, &mut driver).await.is_err() {
                    // Aborting the driver drops its run's handle guard, which aborts the run.
                    driver.abort();
                    let _ = driver.await;
                    aborted.push(slot.name);
                }
            }
            slot.end(TaskState::Stopped, None);
        }
        if !aborted.is_empty() {
            tracing::warn!(tasks = ?aborted, "tasks ignored cancellation and were aborted");
        }
        aborted
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.root.cancel();
    }
}

impl BoundSource for Supervisor {
    fn report(&self, out: &mut Vec<BoundReport>) {
        out.push(BoundReport {
            name: "tasks",
            unit: "tasks",
            capacity: MAX_TASKS as u64,
            fill: self.len() as u64,
            config: "MAX_TASKS (src/tasks.rs)",
        });
    }
}

/// Aborts the run when the driver is dropped (aborted at shutdown), so no run
/// outlives its driver.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How one run ended.
enum Outcome {
    Ok,
    Failed(String),
    /// Aborted from outside (only the supervisor's shutdown does that).
    Aborted,
}

/// Run `factory` until it finishes, fails for good, or is cancelled.
async fn drive<F, Fut, E>(slot: Arc<Slot>, token: CancellationToken, policy: RestartPolicy, factory: F)
where
    F: Fn(TaskCtx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let route = crate::memory::track::route_id(MEMORY_ROUTE);
    let mut failures: u32 = 0;
    loop {
        let run = slot.begin_run();
        let ctx = TaskCtx { token: token.clone(), slot: slot.clone(), run };
        let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| factory(ctx))) {
            Err(payload) => Outcome::Failed(panic_text(payload.as_ref())),
            Ok(fut) => {
                let mut handle = AbortOnDrop(tokio::spawn(crate::memory::track::Tracked::new(fut, route)));
                match (&mut handle.0).await {
                    Ok((Ok(()), _)) => Outcome::Ok,
                    Ok((Err(e), _)) => Outcome::Failed(bounded(&e, MAX_ERROR_BYTES)),
                    Err(e) if e.is_panic() => Outcome::Failed(panic_text(e.into_panic().as_ref())),
                    Err(_) => Outcome::Aborted,
                }
            }
        };
        let error = match outcome {
            Outcome::Ok if token.is_cancelled() => return slot.end(TaskState::Stopped, None),
            Outcome::Ok => return slot.end(TaskState::Finished, None),
            Outcome::Aborted => return slot.end(TaskState::Stopped, None),
            Outcome::Failed(error) => error,
        };
        tracing::warn!(task = slot.name, error = %error, "task failed");
        let (initial, max) = match policy {
            _ if token.is_cancelled() => return slot.end(TaskState::Stopped, Some(error)),
            RestartPolicy::Never => return slot.end(TaskState::Failed, Some(error)),
            RestartPolicy::OnFailure { initial, max } => (initial, max),
        };
        failures = if slot.lock().succeeded_this_run { 1 } else { failures.saturating_add(1) };
        let delay = jittered(RestartPolicy::delay(initial, max, failures));
        {
            let mut s = slot.lock();
            s.state = TaskState::BackingOff;
            s.backoff_until_ms = Some(now_ms().saturating_add(millis(delay)));
            s.last_error = Some(error);
        }
        tokio::select! {
            _ = token.cancelled() => return slot.end(TaskState::Stopped, None),
            _ = tokio::time::sleep(delay) => {}
        }
        slot.lock().restarts += 1;
    }
}

/// `d` shortened by a random fraction in `[0, JITTER_FRACTION)`.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(1.0 - JITTER_FRACTION * fastrand::f64())
}

/// A panic payload as text (panics carry a `&str` or a `String`, or anything).
fn panic_text(payload: &(dyn Any + Send)) -> String {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "(non-text payload)"
    };
    bounded(&format_args!("panicked: {msg}"), MAX_ERROR_BYTES)
}

/// A `fmt::Write` that keeps at most `max` bytes (whole characters) and then
/// stops the formatting, so a huge `Display` never becomes a huge string.
struct Bounded {
    out: String,
    max: usize,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max - self.out.len();
        if s.len() <= room {
            self.out.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.out.push_str(&s[..cut]);
        Err(fmt::Error)
    }
}

/// `x` formatted, cut to at most `max` bytes.
fn bounded(x: &dyn Display, max: usize) -> String {
    let mut w = Bounded { out: String::new(), max };
    let _ = write!(w, "{x}");
    w.out
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(millis).unwrap_or(0)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// ISO 8601 of Unix milliseconds (the one date code is `civil`).
fn iso(ms: i64) -> String {
    crate::civil::iso_from_unix_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use tokio::time::Instant;

    fn state_of(sup: &Supervisor, name: &str) -> TaskReport {
        sup.report().into_iter().find(|r| r.name == name).expect("task registered")
    }

    /// Let the paused clock run until `f` holds (bounded).
    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..10_000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test(start_paused = true)]
    async fn failure_backs_off_and_restarts_with_growing_delay() {
        let sup = Supervisor::new();
        let starts = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let s = starts.clone();
        let policy = RestartPolicy::OnFailure { initial: Duration::from_millis(100), max: Duration::from_secs(10) };
        sup.spawn("flaky", policy, move |_ctx| {
            s.lock().unwrap().push(Instant::now());
            async { Err::<(), _>("boom") }
        })
        .unwrap();

        // After the first failure it waits, marked backing_off with the error.
        until(|| starts.lock().unwrap().len() == 1).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let r = state_of(&sup, "flaky");
        assert_eq!(r.state, TaskState::BackingOff);
        assert_eq!(r.last_error.as_deref(), Some("boom"));
        assert!(r.backoff_until.is_some());
        assert_eq!(r.restarts, 0);

        until(|| starts.lock().unwrap().len() == 5).await;
        let t = starts.lock().unwrap().clone();
        let gaps: Vec<Duration> = t.windows(2).map(|w| w[1] - w[0]).collect();
        // 100, 200, 400, 800 ms, each minus at most 25 % jitter.
        for (i, g) in gaps.iter().enumerate() {
            let base = Duration::from_millis(100 << i);
            assert!(*g <= base + Duration::from_millis(5), "gap {i} = {g:?}");
            assert!(*g >= base.mul_f64(0.75) - Duration::from_millis(5), "gap {i} = {g:?}");
        }
        assert!(gaps.windows(2).all(|w| w[1] > w[0]), "{gaps:?}");
        assert!(state_of(&sup, "flaky").restarts >= 4);
        assert!(sup.shutdown(Duration::from_secs(1)).await.is_empty());
        assert_eq!(state_of(&sup, "flaky").state, TaskState::Stopped);
    }

    #[test]
    fn delays_double_up_to_the_max() {
        let (i, m) = (Duration::from_millis(100), Duration::from_millis(1000));
        let d: Vec<u128> = (1..=6).map(|n| RestartPolicy::delay(i, m, n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(RestartPolicy::delay(Duration::ZERO, Duration::ZERO, 1), MIN_RESTART_DELAY);
        assert_eq!(RestartPolicy::delay(i, m, u32::MAX), m);
    }

    #[tokio::test(start_paused = true)]
    async fn panic_is_caught_and_restarted() {
        let sup = Supervisor::new();
        let runs = Arc::new(AtomicU32::new(0));
        let r = runs.clone();
        let policy = RestartPolicy::OnFailure { initial: Duration::from_millis(50), max: Duration::from_secs(1) };
        sup.spawn("panicky", policy, move |ctx| {
            let n = r.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    panic!("first run explodes");
                }
                ctx.succeeded();
                Ok::<(), String>(())
            }
        })
        .unwrap();
        until(|| state_of(&sup, "panicky").state == TaskState::Finished).await;
        let r = state_of(&sup, "panicky");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(r.restarts, 1);
        assert_eq!(r.last_error.as_deref(), Some("panicked: first run explodes"));
        assert!(r.last_success.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn never_policy_marks_failed() {
        let sup = Supervisor::new();
        sup.spawn("once", RestartPolicy::Never, |_ctx| async { Err::<(), _>(String::from("nope")) }).unwrap();
        until(|| state_of(&sup, "once").state == TaskState::Failed).await;
        assert_eq!(state_of(&sup, "once").last_error.as_deref(), Some("nope"));
        assert_eq!(state_of(&sup, "once").restarts, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_joins_a_cooperative_task() {
        let sup = Supervisor::new();
        let saw_cancel = Arc::new(AtomicBool::new(false));
        let s = saw_cancel.clone();
        sup.spawn("polite", RestartPolicy::Never, move |ctx| {
            let s = s.clone();
            async move {
                ctx.cancelled().await;
                s.store(true, Ordering::SeqCst);
                Ok::<(), String>(())
            }
        })
        .unwrap();
        tokio::task::yield_now().await;
        assert_eq!(state_of(&sup, "polite").state, TaskState::Running);
        let t = Instant::now();
        let aborted = sup.shutdown(Duration::from_secs(5)).await;
        assert!(aborted.is_empty());
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(saw_cancel.load(Ordering::SeqCst));
        assert_eq!(state_of(&sup, "polite").state, TaskState::Stopped);
        assert_eq!(
            sup.spawn("late", RestartPolicy::Never, |_| async { Ok::<(), String>(()) }),
            Err(SpawnError::ShutDown)
        );
    }

    /// Sets its flag when dropped (the stubborn run was really aborted).
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_ignoring_cancellation_is_aborted_after_the_grace() {
        let sup = Supervisor::new();
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        sup.spawn("stubborn", RestartPolicy::Never, move |_ctx| {
            let flag = DropFlag(d.clone());
            async move {
                let _flag = flag;
                loop {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                #[allow(unreachable_code)]
                Ok::<(), String>(())
            }
        })
        .unwrap();
        sup.spawn("polite", RestartPolicy::Never, |ctx| async move {
            ctx.cancelled().await;
            Ok::<(), String>(())
        })
        .unwrap();
        tokio::task::yield_now().await;
        let t = Instant::now();
        let aborted = sup.shutdown(Duration::from_millis(300)).await;
        let took = t.elapsed();
        assert_eq!(aborted, vec!["stubborn"]);
        assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(400), "{took:?}");
        until(|| dropped.load(Ordering::SeqCst)).await;
        assert!(sup.report().iter().all(|r| r.state == TaskState::Stopped));
    }

    #[tokio::test(start_paused = true)]
    async fn report_fields() {
        let sup = Supervisor::new();
        let policy = RestartPolicy::OnFailure { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        sup.spawn("worker", policy, |ctx| async move {
            ctx.set_detail(format_args!("cursor {}", 42));
            ctx.succeeded();
            if !ctx.back_off(Duration::from_secs(60), "x".repeat(10_000)).await {
                return Ok(());
            }
            Ok::<(), String>(())
        })
        .unwrap();
        until(|| state_of(&sup, "worker").state == TaskState::BackingOff).await;
        let r = state_of(&sup, "worker");
        assert_eq!(r.detail.as_deref(), Some("cursor 42"));
        assert_eq!(r.last_error.as_ref().map(String::len), Some(MAX_ERROR_BYTES));
        assert!(r.started_at.is_some() && r.last_success.is_some() && r.backoff_until.is_some());
        assert!(r.backoff_until > r.last_success);

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["state"], "backing_off");
        for key in ["name", "lastError", "lastSuccess", "startedAt", "restarts", "backoffUntil", "detail"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let started = json["startedAt"].as_str().unwrap();
        assert!(regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap().is_match(started), "{started}");

        sup.shutdown(Duration::from_secs(1)).await;
        let r = state_of(&sup, "worker");
        assert_eq!((r.state, r.backoff_until), (TaskState::Stopped, None));
    }

    #[tokio::test]
    async fn max_tasks_enforced_and_reported() {
        let sup = Supervisor::new();
        for i in 0..MAX_TASKS {
            let name: &'static str = Box::leak(format!("t{i}").into_boxed_str());
            sup.spawn(name, RestartPolicy::Never, |ctx| async move {
                ctx.cancelled().await;
                Ok::<(), String>(())
            })
            .unwrap();
        }
        let extra = sup.spawn("one-too-many", RestartPolicy::Never, |_| async { Ok::<(), String>(()) });
        assert_eq!(extra, Err(SpawnError::TooMany { max: MAX_TASKS }));
        let dup = Supervisor::new();
        dup.spawn("a", RestartPolicy::Never, |_| async { Ok::<(), String>(()) }).unwrap();
        assert_eq!(dup.spawn("a", RestartPolicy::Never, |_| async { Ok::<(), String>(()) }), Err(SpawnError::Duplicate("a")));

        let mut bounds = Vec::new();
        BoundSource::report(&sup, &mut bounds);
        assert_eq!((bounds[0].name, bounds[0].capacity, bounds[0].fill), ("tasks", MAX_TASKS as u64, MAX_TASKS as u64));
        assert!(sup.shutdown(Duration::from_secs(5)).await.is_empty());
    }

    #[test]
    fn bounded_cuts_at_char_boundaries() {
        assert_eq!(bounded(&"héllo", 2), "h");
        assert_eq!(bounded(&"héllo", 3), "hé");
        assert_eq!(bounded(&"abc", 10), "abc");
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
    }
}
