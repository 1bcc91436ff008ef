//! The dialogue registry: which dialogues are open, their SSE clients, the frames
//! kept to replay to a client that connects late, and the turn running in each.
//!
//! Bounds (each listed in `/api/health/memory`):
//! - `voice_dialogues`: dialogues open at once ([`DialogueLimits::max_dialogues`]);
//!   past it a new dialogue is refused ([`DialogueError::Full`] → 503 + `Retry-After`);
//! - `voice_replay_bytes`: bytes of frames one dialogue keeps for late clients
//!   ([`DialogueLimits::replay_bytes`]; the report shows the fullest dialogue);
//!   text frames always, audio only until the first client has connected; a frame
//!   that would pass the bound is not kept (the live clients still get it);
//! - `voice_clients_per_dialogue`: SSE clients of one dialogue;
//! - `voice_client_queue`: frames queued for one client; a client that does not
//!   read is dropped when its queue is full, never buffered for.
//!
//! A dialogue ends, and every byte and task it held with it, when its last client
//! leaves (a turn still running is cancelled then: its upstream requests are
//! dropped), when its last turn ends after a client had come and gone, when its TTL
//! passes without activity (every frame and every client refreshes it: see
//! [`Registry::sweep`]), or on shutdown ([`Registry::shutdown`]). A new turn on
//! the same id cancels the previous turn (barge-in); its clients stay attached.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

use crate::limits::{BoundReport, BoundSource};

/// Bound: bytes of a dialogue id (the original's are ~40).
pub const MAX_ID_BYTES: usize = 128;
/// Interval of the `ping` event on every open stream (the original's 30 s).
pub const PING_INTERVAL: Duration = Duration::from_secs(30);

/// The registry's bounds.
#[derive(Debug, Clone, Copy)]
pub struct DialogueLimits {
    pub max_dialogues: usize,
    pub replay_bytes: usize,
    pub clients_per_dialogue: usize,
    pub client_queue: usize,
    pub ttl: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogueError {
    #[error("too many voice dialogues are open")]
    Full,
    #[error("too many clients on this dialogue")]
    TooManyClients,
    #[error("dialogueId must be 1-{MAX_ID_BYTES} printable ASCII characters")]
    BadId,
}

/// One SSE frame, shared by every client it goes to. Audio frames hold their
/// share of the audio-bytes bound until the last client has taken them.
pub struct Frame {
    pub bytes: Bytes,
    _audio: Option<OwnedSemaphorePermit>,
}

impl Frame {
    /// `event: <event>\ndata: <json>\n\n`.
    pub fn new(event: &str, data: &Value, audio: Option<OwnedSemaphorePermit>) -> Arc<Frame> {
        let mut s = String::with_capacity(32);
        s.push_str("event: ");
        s.push_str(event);
        s.push_str("\ndata: ");
        s.push_str(&data.to_string()); // compact JSON: no newline inside
        s.push_str("\n\n");
        Arc::new(Frame { bytes: Bytes::from(s), _audio: audio })
    }

    fn ping() -> Arc<Frame> {
        Frame::new("ping", &json!({"timestamp": now_ms()}), None)
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A dialogue's status, as `/api/generate/active-dialogues` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Processing,
    Completed,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Processing => "processing",
            Status::Completed => "completed",
            Status::Error => "error",
        }
    }
}

struct Dialogue {
    status: Status,
    started_ms: u64,
    last_activity: Instant,
    clients: Vec<(u64, mpsc::Sender<Arc<Frame>>)>,
    replay: VecDeque<(bool, Arc<Frame>)>,
    replay_bytes: usize,
    /// Some client has connected: audio is no longer kept for replay.
    ever_connected: bool,
    /// The running turn: its number and its cancellation.
    turn: Option<(u64, CancellationToken)>,
}

impl Dialogue {
    fn new() -> Self {
        Dialogue {
            status: Status::Waiting,
            started_ms: now_ms(),
            last_activity: Instant::now(),
            clients: Vec::new(),
            replay: VecDeque::new(),
            replay_bytes: 0,
            ever_connected: false,
            turn: None,
        }
    }

    fn end(&mut self) {
        if let Some((_, t)) = self.turn.take() {
            t.cancel();
        }
        self.clients.clear();
        self.replay.clear();
    }
}

/// Every open dialogue. Its lock is never held across an await.
pub struct Registry {
    limits: DialogueLimits,
    map: Mutex<HashMap<String, Dialogue>>,
    ids: AtomicU64,
    /// Parent of every turn's token: cancelled on shutdown.
    root: CancellationToken,
}

/// Whether a dialogue is open, and what it holds (tests, `active-dialogues`).
#[derive(Debug, Clone)]
pub struct DialogueInfo {
    pub id: String,
    pub clients: usize,
    pub status: &'static str,
    pub start_time: u64,
    pub replay_bytes: usize,
    pub turn_running: bool,
}

impl Registry {
    pub fn new(limits: DialogueLimits) -> Arc<Self> {
        Arc::new(Registry { limits, map: Mutex::new(HashMap::new()), ids: AtomicU64::new(1), root: CancellationToken::new() })
    }

    pub fn limits(&self) -> &DialogueLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Dialogue>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A valid id: printable ASCII without spaces, bounded.
    pub fn check_id(id: &str) -> Result<(), DialogueError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DialogueError::BadId);
        }
        Ok(())
    }

    /// A fresh id in the original's form: `<prefix>-<ms>-<10 base36 chars>`.
    pub fn new_id(prefix: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let tail: String = (0..10).map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char).collect();
        format!("{prefix}-{}-{tail}", now_ms())
    }

    /// Start a turn on `id` (opening the dialogue if needed). A turn already
    /// running there is cancelled (barge-in) and its replayed frames dropped; the
    /// clients stay attached and receive the new turn.
    pub fn begin_turn(self: &Arc<Self>, id: &str) -> Result<Turn, DialogueError> {
        Self::check_id(id)?;
        let mut map = self.lock();
        if !map.contains_key(id) && map.len() >= self.limits.max_dialogues {
            return Err(DialogueError::Full);
        }
        let d = map.entry(id.to_owned()).or_insert_with(Dialogue::new);
        if let Some((_, old)) = d.turn.take() {
            old.cancel();
        }
        d.replay.clear();
        d.replay_bytes = 0;
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let token = self.root.child_token();
        d.turn = Some((n, token.clone()));
        d.status = Status::Processing;
        d.last_activity = Instant::now();
        Ok(Turn { registry: self.clone(), id: id.to_owned(), n, token })
    }

    /// Attach an SSE client to `id` (opening the dialogue, status `waiting`, if
    /// it is not open): the stream starts with a `ping`, then the replayed frames.
    pub fn attach(self: &Arc<Self>, id: &str) -> Result<ClientStream, DialogueError> {
        Self::check_id(id)?;
        let mut map = self.lock();
        if !map.contains_key(id) && map.len() >= self.limits.max_dialogues {
            return Err(DialogueError::Full);
        }
        let d = map.entry(id.to_owned()).or_insert_with(Dialogue::new);
        d.clients.retain(|(_, tx)| !tx.is_closed());
        if d.clients.len() >= self.limits.clients_per_dialogue {
            return Err(DialogueError::TooManyClients);
        }
        let (tx, rx) = mpsc::channel(self.limits.client_queue.max(1) + d.replay.len() + 1);
        let _ = tx.try_send(Frame::ping());
        for (_, f) in &d.replay {
            let _ = tx.try_send(f.clone());
        }
        if !d.ever_connected {
            // audio was kept only for this first client
            d.ever_connected = true;
            d.replay.retain(|(audio, _)| !audio);
            d.replay_bytes = d.replay.iter().map(|(_, f)| f.bytes.len()).sum();
        }
        let client = self.ids.fetch_add(1, Ordering::Relaxed);
        d.clients.push((client, tx));
        d.last_activity = Instant::now();
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(ClientStream { rx, ping, guard: ClientGuard { registry: self.clone(), id: id.to_owned(), client } })
    }

    /// A client's stream ended (disconnect, or dropped for not reading).
    fn detach(&self, id: &str, client: u64) {
        let mut map = self.lock();
        let Some(d) = map.get_mut(id) else { return };
        d.clients.retain(|(c, tx)| *c != client && !tx.is_closed());
        if d.clients.is_empty() {
            // the last listener left: nobody hears the rest of the turn
            if let Some(mut d) = map.remove(id) {
                d.end();
            }
        } else {
            d.last_activity = Instant::now();
        }
    }

    /// Send a frame of turn `n` to the clients of `id`, and keep it for replay
    /// (`keep`: text frames always, audio only while no client has connected).
    /// Returns false when the turn is no longer current (cancelled or ended).
    fn send(&self, id: &str, n: u64, frame: Arc<Frame>, audio: bool) -> bool {
        let mut map = self.lock();
        let Some(d) = map.get_mut(id) else { return false };
        if d.turn.as_ref().is_none_or(|(t, _)| *t != n) {
            return false;
        }
        d.last_activity = Instant::now();
        let before = d.clients.len();
        d.clients.retain(|(_, tx)| tx.try_send(frame.clone()).is_ok());
        if before > 0 && d.clients.is_empty() {
            // every client was gone or too slow: the turn has no audience
            if let Some(mut d) = map.remove(id) {
                d.end();
            }
            return false;
        }
        let keep = !audio || !d.ever_connected;
        let len = frame.bytes.len();
        if keep && d.replay_bytes + len <= self.limits.replay_bytes {
            d.replay_bytes += len;
            d.replay.push_back((audio, frame));
        }
        true
    }

    fn set_status(&self, id: &str, n: u64, status: Status) {
        let mut map = self.lock();
        if let Some(d) = map.get_mut(id) {
            if d.turn.as_ref().is_some_and(|(t, _)| *t == n) {
                d.status = status;
            }
        }
    }

    /// Turn `n` of `id` is over: if a client had come and gone meanwhile, the
    /// dialogue ends now; otherwise it waits for its clients (or its TTL).
    fn end_turn(&self, id: &str, n: u64) {
        let mut map = self.lock();
        let Some(d) = map.get_mut(id) else { return };
        if d.turn.as_ref().is_none_or(|(t, _)| *t != n) {
            return;
        }
        if let Some((_, t)) = d.turn.take() {
            t.cancel(); // its helper tasks end with it
        }
        if d.status == Status::Processing {
            d.status = Status::Completed;
        }
        d.last_activity = Instant::now();
        d.clients.retain(|(_, tx)| !tx.is_closed());
        if d.ever_connected && d.clients.is_empty() {
            if let Some(mut d) = map.remove(id) {
                d.end();
            }
        }
    }

    /// End every dialogue idle for longer than the TTL; returns how many.
    pub fn sweep(&self) -> usize {
        let ttl = self.limits.ttl;
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, d| {
            let keep = d.last_activity.elapsed() <= ttl;
            if !keep {
                d.end();
            }
            keep
        });
        before - map.len()
    }

    /// Shutdown: cancel every turn and close every stream.
    pub fn shutdown(&self) {
        self.root.cancel();
        let mut map = self.lock();
        for d in map.values_mut() {
            d.end();
        }
        map.clear();
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The open dialogues (at most `max_dialogues`).
    pub fn list(&self) -> Vec<DialogueInfo> {
        self.lock()
            .iter()
            .map(|(id, d)| DialogueInfo {
                id: id.clone(),
                clients: d.clients.len(),
                status: d.status.as_str(),
                start_time: d.started_ms,
                replay_bytes: d.replay_bytes,
                turn_running: d.turn.is_some(),
            })
            .collect()
    }
}

impl BoundSource for Registry {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let map = self.lock();
        let l = &self.limits;
        out.push(BoundReport { name: "voice_dialogues", unit: "dialogues", capacity: l.max_dialogues as u64, fill: map.len() as u64, config: "--voice-max-dialogues / OIPD_VOICE_MAX_DIALOGUES" });
        out.push(BoundReport {
            name: "voice_replay_bytes",
            unit: "bytes (fullest dialogue)",
            capacity: l.replay_bytes as u64,
            fill: map.values().map(|d| d.replay_bytes).max().unwrap_or(0) as u64,
            config: "--voice-replay-bytes / OIPD_VOICE_REPLAY_BYTES",
        });
        out.push(BoundReport {
            name: "voice_clients_per_dialogue",
            unit: "clients (busiest dialogue)",
            capacity: l.clients_per_dialogue as u64,
            fill: map.values().map(|d| d.clients.len()).max().unwrap_or(0) as u64,
            config: "--voice-clients-per-dialogue / OIPD_VOICE_CLIENTS_PER_DIALOGUE",
        });
        out.push(BoundReport {
            name: "voice_client_queue",
            unit: "frames (fullest client)",
            capacity: l.client_queue as u64,
            fill: map.values().flat_map(|d| d.clients.iter()).map(|(_, tx)| tx.max_capacity() - tx.capacity()).max().unwrap_or(0) as u64,
            config: "--voice-client-queue / OIPD_VOICE_CLIENT_QUEUE",
        });
    }
}

/// A running turn's handle on its dialogue. Dropping it ends the turn.
pub struct Turn {
    registry: Arc<Registry>,
    id: String,
    n: u64,
    token: CancellationToken,
}

impl Turn {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Cancelled by barge-in, by the last client leaving, by the TTL or by shutdown.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Send (and keep for replay) a text frame; false when the turn is over.
    pub fn send(&self, event: &str, data: &Value) -> bool {
        self.registry.send(&self.id, self.n, Frame::new(event, data, None), false)
    }

    /// Send an audio frame (holding its audio-bytes permit until every client took it).
    pub fn send_audio(&self, data: &Value, permit: Option<OwnedSemaphorePermit>) -> bool {
        self.registry.send(&self.id, self.n, Frame::new("audioChunk", data, permit), true)
    }

    pub fn set_status(&self, status: Status) {
        self.registry.set_status(&self.id, self.n, status);
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.registry.end_turn(&self.id, self.n);
    }
}

struct ClientGuard {
    registry: Arc<Registry>,
    id: String,
    client: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.registry.detach(&self.id, self.client);
    }
}

/// One SSE client's body: its queued frames, and a `ping` every 30 s. Dropping
/// it (the client disconnected) detaches the client.
pub struct ClientStream {
    rx: mpsc::Receiver<Arc<Frame>>,
    ping: tokio::time::Interval,
    guard: ClientGuard,
}

impl ClientStream {
    pub fn dialogue_id(&self) -> &str {
        &self.guard.id
    }
}

impl Stream for ClientStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(frame)) => return Poll::Ready(Some(Ok(frame.bytes.clone()))),
            // the dialogue ended, or dropped this client for not reading
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if self.ping.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::ping().bytes.clone())));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn limits() -> DialogueLimits {
        DialogueLimits { max_dialogues: 2, replay_bytes: 200, clients_per_dialogue: 2, client_queue: 4, ttl: Duration::from_millis(50) }
    }

    async fn next_text(s: &mut ClientStream) -> String {
        String::from_utf8(s.next().await.unwrap().unwrap().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn replay_then_live_and_end_on_last_client() {
        let r = Registry::new(limits());
        let turn = r.begin_turn("d1").unwrap();
        assert!(turn.send("textChunk", &json!({"role": "user", "text": "hi"})));
        let mut c = r.attach("d1").unwrap();
        assert!(next_text(&mut c).await.starts_with("event: ping\ndata: {\"timestamp\":"));
        assert_eq!(next_text(&mut c).await, "event: textChunk\ndata: {\"role\":\"user\",\"text\":\"hi\"}\n\n");
        assert!(turn.send("textChunk", &json!({"text": "live"})));
        assert!(next_text(&mut c).await.contains("live"));
        drop(c);
        assert_eq!(r.len(), 0, "last client gone: dialogue ended");
        assert!(turn.is_cancelled(), "and its turn cancelled");
        assert!(!turn.send("textChunk", &json!({"text": "late"})));
    }

    #[tokio::test]
    async fn bounds_hold() {
        let r = Registry::new(limits());
        let _a = r.begin_turn("a").unwrap();
        let _b = r.begin_turn("b").unwrap();
        assert_eq!(r.begin_turn("c").err(), Some(DialogueError::Full));
        assert_eq!(r.attach("c").err(), Some(DialogueError::Full));
        let _c1 = r.attach("a").unwrap();
        let _c2 = r.attach("a").unwrap();
        assert_eq!(r.attach("a").err(), Some(DialogueError::TooManyClients));
        assert_eq!(Registry::check_id("has space"), Err(DialogueError::BadId));
        assert_eq!(Registry::check_id(&"x".repeat(MAX_ID_BYTES + 1)), Err(DialogueError::BadId));
    }

    #[tokio::test]
    async fn replay_is_bounded_and_slow_clients_are_dropped() {
        let r = Registry::new(limits());
        let turn = r.begin_turn("d").unwrap();
        for _ in 0..10 {
            turn.send("textChunk", &json!({"text": "0123456789012345678901234567890123456789"}));
        }
        let info = &r.list()[0];
        assert!(info.replay_bytes <= 200, "{}", info.replay_bytes);
        let slow = r.attach("d").unwrap(); // never read
        let mut fast = r.attach("d").unwrap();
        for i in 0..20 {
            turn.send("textChunk", &json!({"text": i}));
            while let Some(Some(_)) = fast.now_or_never_helper() {}
        }
        assert_eq!(r.list()[0].clients, 1, "the client that does not read was dropped");
        drop(slow);
        assert_eq!(r.len(), 1);
    }

    #[tokio::test]
    async fn barge_in_cancels_the_previous_turn_and_keeps_clients() {
        let r = Registry::new(limits());
        let t1 = r.begin_turn("d").unwrap();
        let mut c = r.attach("d").unwrap();
        let _ = next_text(&mut c).await;
        let t2 = r.begin_turn("d").unwrap();
        assert!(t1.is_cancelled());
        assert!(!t1.send("textChunk", &json!({"text": "old"})), "the old turn can no longer speak");
        drop(t1); // must not end the new turn
        assert!(t2.send("textChunk", &json!({"text": "new"})));
        assert!(next_text(&mut c).await.contains("new"));
    }

    #[tokio::test]
    async fn ttl_and_shutdown() {
        let r = Registry::new(limits());
        let t = r.begin_turn("d").unwrap();
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(r.sweep(), 1);
        assert!(t.is_cancelled());
        let t = r.begin_turn("e").unwrap();
        r.shutdown();
        assert!(t.is_cancelled());
        assert_eq!(r.len(), 0);
    }

    trait NowOrNever: Stream + Unpin {
        fn now_or_never_helper(&mut self) -> Option<Option<Self::Item>> {
            let waker = std::task::Waker::noop();
            let mut cx = Context::from_waker(waker);
            match Pin::new(self).poll_next(&mut cx) {
                Poll::Ready(x) => Some(x),
                Poll::Pending => None,
            }
        }
    }
    impl<S: Stream + Unpin> NowOrNever for S {}
}
