//! Exact per-route memory attribution.
//!
//! [`TrackingAlloc`] wraps the real allocator. Every block carries a small header
//! naming the route that allocated it, so a free is charged back to that route
//! wherever it happens (another request, another thread, much later): a route's
//! **live bytes** are exactly what it allocated and nobody has freed yet, and a
//! leak shows as a route whose live bytes climb.
//!
//! Which route is "current" is a thread-local set while a request's future or its
//! response body is being polled ([`Tracked`], [`TrackedBody`]) and inside
//! blocking work started for it ([`spawn_blocking`]). A per-thread counter of
//! bytes allocated lets the wrappers measure each request's own allocations
//! exactly, however many requests interleave on the same threads.
//!
//! Bounds: [`MAX_ROUTES`] route slots (static arrays of atomics; route templates
//! past it share the `other` slot); [`HEADER`] bytes per allocation.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll};

/// Bound: distinct routes tracked (slot 0 is "unattributed", the last is "other").
pub const MAX_ROUTES: usize = 64;
/// Bytes in front of every block: the owning route (and padding for alignment).
pub const HEADER: usize = 16;

const UNATTRIBUTED: u16 = 0;
const OTHER: u16 = (MAX_ROUTES - 1) as u16;

thread_local! {
    /// The request being served on this thread right now: where blocking work
    /// started for it adds the bytes it allocated (not touched by the allocator).
    static REQUEST: std::cell::RefCell<Option<std::sync::Arc<AtomicU64>>> = const { std::cell::RefCell::new(None) };
    /// The route charged for allocations on this thread right now.
    static CURRENT: Cell<u16> = const { Cell::new(UNATTRIBUTED) };
    /// Bytes allocated on this thread, ever (wrapping).
    static ALLOCATED_HERE: Cell<u64> = const { Cell::new(0) };
}

struct Counters {
    allocated: AtomicU64,
    freed: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: Counters = Counters { allocated: AtomicU64::new(0), freed: AtomicU64::new(0) };
static COUNTERS: [Counters; MAX_ROUTES] = [ZERO; MAX_ROUTES];

/// Whether a [`TrackingAlloc`] is the global allocator (set on its first use).
static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The global allocator wrapper. `A` is the real allocator (jemalloc in `oipd`).
pub struct TrackingAlloc<A>(pub A);

#[inline]
fn padded(layout: Layout) -> Option<(Layout, usize)> {
    let offset = HEADER.max(layout.align());
    let l = Layout::from_size_align(layout.size().checked_add(offset)?, layout.align().max(HEADER)).ok()?;
    Some((l, offset))
}

#[inline]
fn current() -> u16 {
    CURRENT.try_with(Cell::get).unwrap_or(UNATTRIBUTED)
}

#[inline]
fn charge(route: u16, bytes: usize) {
    COUNTERS[route as usize].allocated.fetch_add(bytes as u64, Relaxed);
    let _ = ALLOCATED_HERE.try_with(|c| c.set(c.get().wrapping_add(bytes as u64)));
}

/// Write the owner header into a fresh block from the inner allocator and
/// charge it; returns the pointer handed to the caller.
///
/// # Safety
/// `base` is null or a block of `padded(layout)` bytes, `offset` its header offset.
#[inline]
unsafe fn stamp(base: *mut u8, offset: usize, layout: Layout) -> *mut u8 {
    if base.is_null() {
        return base;
    }
    let route = current();
    // SAFETY: `base + offset` is inside the block; the header word sits just
    // before it and is 2-byte aligned (offset ≥ 16, alignment ≥ 16).
    unsafe {
        let p = base.add(offset);
        (p.sub(2) as *mut u16).write(route);
        charge(route, layout.size());
        if !ACTIVE.load(Relaxed) {
            ACTIVE.store(true, Relaxed);
        }
        p
    }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for TrackingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some((l, offset)) = padded(layout) else { return std::ptr::null_mut() };
        // SAFETY: `l` has a non-zero size (it includes the header); `stamp` gets
        // the block it describes.
        unsafe { stamp(self.0.alloc(l), offset, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let Some((l, offset)) = padded(layout) else { return std::ptr::null_mut() };
        // SAFETY: as in `alloc`; the inner allocator zeroes (often for free).
        unsafe { stamp(self.0.alloc_zeroed(l), offset, layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some((l, offset)) = padded(layout) else { return };
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe {
            let route = (ptr.sub(2) as *const u16).read();
            COUNTERS[route as usize].freed.fetch_add(layout.size() as u64, Relaxed);
            self.0.dealloc(ptr.sub(offset), l);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((l, offset)) = padded(layout) else { return std::ptr::null_mut() };
        let Some(new_total) = new_size.checked_add(offset) else { return std::ptr::null_mut() };
        // SAFETY: as in dealloc; the header moves with the block.
        unsafe {
            let route = (ptr.sub(2) as *const u16).read();
            let base = self.0.realloc(ptr.sub(offset), l, new_total);
            if base.is_null() {
                return base;
            }
            // The block keeps its owner; the size change is charged to it.
            let c = &COUNTERS[route as usize];
            if new_size >= layout.size() {
                c.allocated.fetch_add((new_size - layout.size()) as u64, Relaxed);
                let _ = ALLOCATED_HERE.try_with(|h| h.set(h.get().wrapping_add((new_size - layout.size()) as u64)));
            } else {
                c.freed.fetch_add((layout.size() - new_size) as u64, Relaxed);
            }
            base.add(offset)
        }
    }
}

/// Whether allocations are being tracked (a [`TrackingAlloc`] is global).
pub fn active() -> bool {
    ACTIVE.load(Relaxed)
}

/// Bytes allocated on this thread so far (for per-poll deltas).
pub fn allocated_here() -> u64 {
    ALLOCATED_HERE.try_with(Cell::get).unwrap_or(0)
}

/// Run `f` with `route` as the current route on this thread.
pub fn with_route<T>(route: RouteId, f: impl FnOnce() -> T) -> T {
    let prev = CURRENT.try_with(|c| c.replace(route.0)).unwrap_or(UNATTRIBUTED);
    let out = f();
    let _ = CURRENT.try_with(|c| c.set(prev));
    out
}

/// The route current on this thread.
pub fn current_route() -> RouteId {
    RouteId(current())
}

/// Blocking jobs running right now (all of oipd's blocking work runs in a [`Scope`]).
static BLOCKING_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct DecOnDrop(&'static std::sync::atomic::AtomicUsize);

impl Drop for DecOnDrop {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Blocking jobs running right now, on the runtime's bounded blocking pool.
pub fn blocking_running() -> usize {
    BLOCKING_RUNNING.load(Relaxed)
}

/// Where allocations are charged: a route and, within a request, its counter.
/// Captured where work is handed to another thread, and run there.
#[derive(Clone)]
pub struct Scope {
    route: RouteId,
    request: Option<std::sync::Arc<AtomicU64>>,
}

impl Scope {
    /// The scope of the current thread.
    pub fn current() -> Self {
        Scope { route: current_route(), request: REQUEST.try_with(|r| r.borrow().clone()).ok().flatten() }
    }

    /// Run `f` in this scope: its allocations are charged to the route, and
    /// added to the request's total before `run` returns.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        BLOCKING_RUNNING.fetch_add(1, Relaxed);
        let _running = DecOnDrop(&BLOCKING_RUNNING);
        let before = allocated_here();
        let out = with_route(self.route, f);
        if let Some(req) = &self.request {
            req.fetch_add(allocated_here().wrapping_sub(before), Relaxed);
        }
        out
    }
}

/// `tokio::task::spawn_blocking`, in the scope of the caller (see [`Scope`]).
pub fn spawn_blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let scope = Scope::current();
    tokio::task::spawn_blocking(move || scope.run(f))
}

/// Poll `f` as part of the request counted by `req`.
fn in_request<T>(req: &std::sync::Arc<AtomicU64>, f: impl FnOnce() -> T) -> T {
    let prev = REQUEST.try_with(|r| r.replace(Some(req.clone()))).ok().flatten();
    let out = f();
    let _ = REQUEST.try_with(|r| *r.borrow_mut() = prev);
    out
}

/// A slot in the per-route tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteId(pub u16);

/// Per-request statistics of a route (updated when a request's response ends).
#[derive(Default)]
struct RequestStats {
    requests: AtomicU64,
    /// Bytes allocated by its requests (handler + body), summed.
    request_bytes: AtomicU64,
    max_request_bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const RZERO: RequestStats =
    RequestStats { requests: AtomicU64::new(0), request_bytes: AtomicU64::new(0), max_request_bytes: AtomicU64::new(0) };
static REQUESTS: [RequestStats; MAX_ROUTES] = [RZERO; MAX_ROUTES];

/// Route names by slot.
fn names() -> &'static Mutex<Vec<String>> {
    static NAMES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    NAMES.get_or_init(|| Mutex::new(vec!["(unattributed)".to_owned()]))
}

/// The slot of a route template such as `GET /api/records` (created on first use).
pub fn route_id(name: &str) -> RouteId {
    let mut n = names().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = n.iter().position(|x| x == name) {
        return RouteId(i as u16);
    }
    if n.len() >= OTHER as usize {
        if n.len() == OTHER as usize {
            n.push("(other)".to_owned());
        }
        return RouteId(OTHER);
    }
    n.push(name.to_owned());
    RouteId((n.len() - 1) as u16)
}

/// One request finished: `bytes` allocated by it.
pub fn record_request(route: RouteId, bytes: u64) {
    let r = &REQUESTS[route.0 as usize];
    r.requests.fetch_add(1, Relaxed);
    r.request_bytes.fetch_add(bytes, Relaxed);
    r.max_request_bytes.fetch_max(bytes, Relaxed);
}

/// A route's figures.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteStats {
    pub route: String,
    pub requests: u64,
    /// All bytes allocated while serving it (requests, bodies, their blocking work).
    pub allocated_bytes: u64,
    pub freed_bytes: u64,
    /// Allocated by it and not yet freed, wherever the free happens.
    pub live_bytes: u64,
    /// Bytes allocated by its requests, summed (handler + body).
    pub request_bytes: u64,
    pub mean_request_bytes: u64,
    pub max_request_bytes: u64,
}

/// Every route seen so far (and the unattributed slot).
pub fn routes() -> Vec<RouteStats> {
    let n = names().lock().unwrap_or_else(|p| p.into_inner()).clone();
    n.into_iter()
        .enumerate()
        .map(|(i, route)| {
            let c = &COUNTERS[i];
            let (a, f) = (c.allocated.load(Relaxed), c.freed.load(Relaxed));
            let r = &REQUESTS[i];
            let requests = r.requests.load(Relaxed);
            RouteStats {
                route,
                requests,
                allocated_bytes: a,
                freed_bytes: f,
                live_bytes: a.saturating_sub(f),
                request_bytes: r.request_bytes.load(Relaxed),
                mean_request_bytes: r.request_bytes.load(Relaxed).checked_div(requests).unwrap_or(0),
                max_request_bytes: r.max_request_bytes.load(Relaxed),
            }
        })
        .collect()
}

/// A route's live bytes now.
pub fn live_bytes(route: RouteId) -> i64 {
    let c = &COUNTERS[route.0 as usize];
    c.allocated.load(Relaxed) as i64 - c.freed.load(Relaxed) as i64
}

/// Called with the request's total bytes when its response ends.
pub type OnDone = Box<dyn FnOnce(u64) + Send>;

/// The used route slots, for `/api/health/memory` bounds.
pub fn route_slots_used() -> usize {
    names().lock().unwrap_or_else(|p| p.into_inner()).len()
}

pin_project_lite::pin_project! {
    /// A future polled with `route` current; counts the bytes it (and the
    /// blocking work it starts) allocates into the request's counter.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        route: RouteId,
        bytes: std::sync::Arc<AtomicU64>,
    }
}

impl<F> Tracked<F> {
    pub fn new(inner: F, route: RouteId) -> Self {
        Tracked { inner, route, bytes: std::sync::Arc::new(AtomicU64::new(0)) }
    }
}

impl<F: Future> Future for Tracked<F> {
    /// The output and the request's counter (handed on to its body).
    type Output = (F::Output, std::sync::Arc<AtomicU64>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let before = allocated_here();
        let r = in_request(this.bytes, || with_route(*this.route, || this.inner.poll(cx)));
        this.bytes.fetch_add(allocated_here().wrapping_sub(before), Relaxed);
        r.map(|out| (out, this.bytes.clone()))
    }
}

pin_project_lite::pin_project! {
    /// A response body polled with `route` current. When it is dropped (sent, or
    /// the client gone) the request's total is recorded.
    pub struct TrackedBody<B> {
        #[pin]
        inner: B,
        route: RouteId,
        bytes: std::sync::Arc<AtomicU64>,
        finished: fn(RouteId, u64),
        on_done: Option<OnDone>,
    }
    impl<B> PinnedDrop for TrackedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let bytes = this.bytes.load(Relaxed);
            record_request(*this.route, bytes);
            (this.finished)(*this.route, bytes);
            if let Some(f) = this.on_done.take() {
                f(bytes);
            }
        }
    }
}

impl<B> TrackedBody<B> {
    /// `bytes`: the request's counter, holding what its handler allocated;
    /// `finished` is told the request's total (e.g. a metrics histogram), then
    /// `on_done` if any.
    pub fn new(inner: B, route: RouteId, bytes: std::sync::Arc<AtomicU64>, finished: fn(RouteId, u64), on_done: Option<OnDone>) -> Self {
        TrackedBody { inner, route, bytes, finished, on_done }
    }
}

impl<B: http_body::Body> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let before = allocated_here();
        let r = in_request(this.bytes, || with_route(*this.route, || this.inner.poll_frame(cx)));
        this.bytes.fetch_add(allocated_here().wrapping_sub(before), Relaxed);
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
