//! Login attempt limiting: brute force gets `429` + `Retry-After` while the real
//! user keeps logging in. Two independent counters per attempt:
//!
//! - **per client address** (IPv4 address; IPv6 grouped by /64, the block one
//!   host usually holds) — *strict* (default [`DEFAULT_PER_ADDRESS_FAILURES`]
//!   failures per [`DEFAULT_WINDOW`]). A locked address is refused for every
//!   account.
//! - **per account** (the trimmed, lowercased email) — *generous* (default
//!   [`DEFAULT_PER_ACCOUNT_FAILURES`]), a cap on the guesses many addresses
//!   together can make. A locked account is refused from every address *except
//!   the few that logged into it successfully before* (up to
//!   [`MAX_KNOWN_ADDRESSES`] per account, while its entry is tracked).
//!
//! Trade-offs, chosen deliberately:
//! - One address cannot lock an account: it is locked itself after a few
//!   failures and its lockouts double, so within one window it reaches far fewer
//!   than the account's threshold (a test hammers from one address for hours).
//! - Many addresses together can lock an account for *new* addresses (that is
//!   the cap doing its job); the owner's usual address stays exempt. A user on a
//!   new address during such an attack waits for the `Retry-After`.
//! - Users behind one NAT share an address counter: one of them guessing locks
//!   the others out for a while. A success from that address clears it.
//!
//! Lockout: once a key reaches its threshold within the window it is locked for
//! `lockout_base`, doubling with each further lockout up to `lockout_max`; a key
//! that stays quiet for a whole window after its last lockout starts afresh.
//!
//! Races: [`LoginLimiter::check`] counts the attempt as a failure *before* the
//! password is verified and hands back an [`Attempt`]; [`LoginLimiter::succeeded`]
//! takes that back. So concurrent requests cannot all slip past the threshold
//! while their (slow) verifications run, and an attempt whose outcome is never
//! reported stays a failure.
//!
//! Bounds: each map holds at most `max_tracked` keys ([`DEFAULT_MAX_TRACKED`]);
//! when full the least recently used key is forgotten (an attacker would need
//! that many fresh keys, each costing failures, to push a lock out). Account keys
//! are SHA-256 digests of the email, so every entry has a fixed size (~200 bytes
//! with the map's overhead: ~2 MiB per map at the default). Both maps are listed
//! in `/api/health/memory` via [`BoundSource`].

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::limits::{BoundReport, BoundSource};

/// Default failures one address may make within the window before it is locked.
pub const DEFAULT_PER_ADDRESS_FAILURES: u32 = 5;
/// Default failures one account may take (from all addresses) within the window.
pub const DEFAULT_PER_ACCOUNT_FAILURES: u32 = 20;
/// Default window failures are counted in.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Default first lockout; each further lockout doubles it.
pub const DEFAULT_LOCKOUT_BASE: Duration = Duration::from_secs(60);
/// Default longest lockout.
pub const DEFAULT_LOCKOUT_MAX: Duration = Duration::from_secs(60 * 60);
/// Bound: default keys tracked per map (accounts, addresses).
pub const DEFAULT_MAX_TRACKED: usize = 10_000;
/// Bound: addresses remembered per account as having logged in successfully
/// (exempt from the account's lockout). The oldest is replaced.
pub const MAX_KNOWN_ADDRESSES: usize = 4;
/// Bound: longest window or lockout accepted from configuration (one day), so
/// instant arithmetic can never overflow.
pub const MAX_CONFIGURED_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub per_account_failures: u32,
    pub per_address_failures: u32,
    pub window: Duration,
    pub lockout_base: Duration,
    pub lockout_max: Duration,
    pub max_tracked: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_account_failures: DEFAULT_PER_ACCOUNT_FAILURES,
            per_address_failures: DEFAULT_PER_ADDRESS_FAILURES,
            window: DEFAULT_WINDOW,
            lockout_base: DEFAULT_LOCKOUT_BASE,
            lockout_max: DEFAULT_LOCKOUT_MAX,
            max_tracked: DEFAULT_MAX_TRACKED,
        }
    }
}

/// Refused: locked out for this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins; retry in {} s", self.secs())]
pub struct RetryAfter(pub Duration);

impl RetryAfter {
    /// Whole seconds for a `Retry-After` header, rounded up, at least 1.
    pub fn secs(&self) -> u64 {
        let s = self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0);
        s.max(1)
    }
}

/// An admitted attempt, already counted as a failure. Report a success with
/// [`LoginLimiter::succeeded`]; [`LoginLimiter::failed`] (or dropping it) leaves
/// it counted.
#[must_use = "report the outcome with succeeded() or failed()"]
#[derive(Debug)]
pub struct Attempt {
    account: AccountKey,
    address: AddrKey,
    /// The account lock this attempt's failure set, if it set one (undone on
    /// success; the address's entry is simply cleared).
    account_lock: Option<LockUndo>,
    /// The address lock it set, if any (undone when the attempt is cancelled).
    address_lock: Option<LockUndo>,
}

#[derive(Debug, Clone, Copy)]
struct LockUndo {
    set: Instant,
    previous: Option<Instant>,
    previous_strikes: u32,
}

type AccountKey = [u8; 32];

/// An address as limited: IPv4 (also IPv4-mapped IPv6) whole, IPv6 by /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4([u8; 4]),
    V6Net([u8; 8]),
}

impl AddrKey {
    fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(v4) => AddrKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    AddrKey::V6Net([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

fn account_key(email: &str) -> AccountKey {
    Sha256::digest(email.trim().to_lowercase().as_bytes()).into()
}

/// Failures of one key and its lockout state.
#[derive(Debug, Clone, Copy)]
struct Counter {
    failures: u32,
    window_start: Instant,
    last_failure: Instant,
    /// Lockouts so far in this busy period: the next lasts base × 2^strikes.
    strikes: u32,
    locked_until: Option<Instant>,
}

impl Counter {
    /// Take back one counted failure, and the lock it alone set (only if no later
    /// failure replaced that lock meanwhile).
    fn take_back(&mut self, lock: Option<LockUndo>) {
        self.failures = self.failures.saturating_sub(1);
        if let Some(undo) = lock {
            if self.locked_until == Some(undo.set) {
                self.locked_until = undo.previous;
                self.strikes = undo.previous_strikes;
            }
        }
    }

    fn new(now: Instant) -> Self {
        Counter {
            failures: 0,
            window_start: now,
            last_failure: now,
            strikes: 0,
            locked_until: None,
        }
    }

    fn remaining(&self, now: Instant) -> Option<Duration> {
        let until = self.locked_until?;
        let left = until.checked_duration_since(now)?;
        (!left.is_zero()).then_some(left)
    }

    /// Count one failure; returns the lock it set, if any.
    fn fail(&mut self, now: Instant, threshold: u32, limits: &LoginLimits) -> Option<LockUndo> {
        let quiet_since = self.locked_until.map_or(self.last_failure, |u| u.max(self.last_failure));
        let after = |t: Instant| t.checked_add(limits.window).is_some_and(|end| now >= end);
        if after(quiet_since) {
            // quiet for a whole window: start afresh
            *self = Counter::new(now);
        } else if after(self.window_start) {
            // busy, but the window moved on: the count restarts, the strikes stay
            self.failures = 0;
            self.window_start = now;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        if self.failures < threshold {
            return None;
        }
        let factor = 1u32.checked_shl(self.strikes).unwrap_or(u32::MAX);
        let lockout = limits.lockout_base.saturating_mul(factor).min(limits.lockout_max);
        let undo = LockUndo {
            set: now.checked_add(lockout).unwrap_or(now),
            previous: self.locked_until,
            previous_strikes: self.strikes,
        };
        self.locked_until = Some(undo.set);
        self.strikes = self.strikes.saturating_add(1);
        Some(undo)
    }
}

struct AccountEntry {
    counter: Counter,
    /// Addresses that logged in successfully (ring; `next` is the slot to replace).
    known: [Option<AddrKey>; MAX_KNOWN_ADDRESSES],
    next: usize,
}

impl AccountEntry {
    fn new(now: Instant) -> Self {
        AccountEntry {
            counter: Counter::new(now),
            known: [None; MAX_KNOWN_ADDRESSES],
            next: 0,
        }
    }

    fn knows(&self, addr: AddrKey) -> bool {
        self.known.contains(&Some(addr))
    }

    fn remember(&mut self, addr: AddrKey) {
        if !self.knows(addr) {
            self.known[self.next] = Some(addr);
            self.next = (self.next + 1) % MAX_KNOWN_ADDRESSES;
        }
    }
}

struct Maps {
    accounts: LruCache<AccountKey, AccountEntry>,
    addresses: LruCache<AddrKey, Counter>,
}

/// The login limiter: one per node, shared by the login route.
pub struct LoginLimiter {
    limits: LoginLimits,
    maps: Mutex<Maps>,
    /// How its two maps are named in `/api/health/memory` (accounts, addresses).
    names: (&'static str, &'static str),
}

impl LoginLimiter {
    /// Thresholds below 1 are taken as 1; durations are clamped to
    /// [`MAX_CONFIGURED_DURATION`]; `max_tracked` below 1 is taken as 1.
    pub fn new(limits: LoginLimits) -> Self {
        let clamp = |d: Duration| d.min(MAX_CONFIGURED_DURATION);
        let limits = LoginLimits {
            per_account_failures: limits.per_account_failures.max(1),
            per_address_failures: limits.per_address_failures.max(1),
            window: clamp(limits.window),
            lockout_base: clamp(limits.lockout_base),
            lockout_max: clamp(limits.lockout_max),
            max_tracked: limits.max_tracked.max(1),
        };
        let cap = NonZeroUsize::new(limits.max_tracked).unwrap_or(NonZeroUsize::MIN);
        LoginLimiter {
            limits,
            maps: Mutex::new(Maps {
                accounts: LruCache::new(cap),
                addresses: LruCache::new(cap),
            }),
            names: ("login_accounts", "login_addresses"),
        }
    }

    /// The same limiter under other names in `/api/health/memory` (another use of
    /// it, e.g. registrations).
    pub fn named(mut self, accounts: &'static str, addresses: &'static str) -> Self {
        self.names = (accounts, addresses);
        self
    }

    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // Nothing panics while the lock is held; a poisoned map is still consistent.
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before verifying a password: refused if the address is locked, or the
    /// account is locked and this address is not one it knows. Otherwise the
    /// attempt is counted as a failure now (see the module doc) and returned.
    pub fn check(&self, email: &str, addr: IpAddr) -> Result<Attempt, RetryAfter> {
        self.check_at(email, addr, Instant::now())
    }

    /// [`LoginLimiter::check`] at a given instant (tests, simulations).
    pub fn check_at(&self, email: &str, addr: IpAddr, now: Instant) -> Result<Attempt, RetryAfter> {
        let account = account_key(email);
        let address = AddrKey::of(addr);
        let limits = self.limits;
        let mut maps = self.maps();
        let address_wait = maps.addresses.get(&address).and_then(|c| c.remaining(now));
        let account_wait = maps
            .accounts
            .get(&account)
            .filter(|e| !e.knows(address))
            .and_then(|e| e.counter.remaining(now));
        if let Some(wait) = address_wait.max(account_wait) {
            return Err(RetryAfter(wait));
        }
        let address_lock = maps
            .addresses
            .get_or_insert_mut(address, || Counter::new(now))
            .fail(now, limits.per_address_failures, &limits);
        let account_lock = maps
            .accounts
            .get_or_insert_mut(account, || AccountEntry::new(now))
            .counter
            .fail(now, limits.per_account_failures, &limits);
        Ok(Attempt {
            account,
            address,
            account_lock,
            address_lock,
        })
    }

    /// The password was wrong. The attempt was counted by `check`; this consumes it.
    pub fn failed(&self, attempt: Attempt) {
        drop(attempt);
    }

    /// The password was right: the address's counter is cleared, the account takes
    /// back this attempt's failure (and a lock it alone set), and remembers the
    /// address as one of its own.
    pub fn succeeded(&self, attempt: Attempt) {
        self.succeeded_at(attempt, Instant::now())
    }

    /// [`LoginLimiter::succeeded`] at a given instant (tests, simulations).
    pub fn succeeded_at(&self, attempt: Attempt, now: Instant) {
        let mut maps = self.maps();
        maps.addresses.pop(&attempt.address);
        let entry = maps.accounts.get_or_insert_mut(attempt.account, || AccountEntry::new(now));
        entry.counter.take_back(attempt.account_lock);
        entry.remember(attempt.address);
    }

    /// The attempt could not be judged (the server was busy, or failed): it is
    /// taken back on both keys, neither clearing nor adding anything else, so a
    /// busy server never locks anyone out.
    pub fn cancel(&self, attempt: Attempt) {
        let mut maps = self.maps();
        if let Some(c) = maps.addresses.peek_mut(&attempt.address) {
            c.take_back(attempt.address_lock);
        }
        if let Some(entry) = maps.accounts.peek_mut(&attempt.account) {
            entry.counter.take_back(attempt.account_lock);
        }
    }

    /// Keys tracked now: (accounts, addresses).
    pub fn tracked(&self) -> (usize, usize) {
        let maps = self.maps();
        (maps.accounts.len(), maps.addresses.len())
    }
}

impl BoundSource for LoginLimiter {
    fn report(&self, out: &mut Vec<BoundReport>) {
        let (accounts, addresses) = self.tracked();
        for (name, fill) in [(self.names.0, accounts), (self.names.1, addresses)] {
            out.push(BoundReport {
                name,
                unit: "entries",
                capacity: self.limits.max_tracked as u64,
                fill: fill as u64,
                config: "accounts::limiter::LoginLimits::max_tracked",
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const MIN: Duration = Duration::from_secs(60);

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(LoginLimits::default())
    }

    /// `n` failed attempts at `now`; panics if one is refused.
    fn fail_n(l: &LoginLimiter, email: &str, addr: IpAddr, n: u32, now: Instant) {
        for i in 0..n {
            let a = l.check_at(email, addr, now).unwrap_or_else(|e| panic!("attempt {i} refused: {e}"));
            l.failed(a);
        }
    }

    #[test]
    fn address_locked_after_n_failures() {
        let l = limiter();
        let t0 = Instant::now();
        fail_n(&l, "a@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES, t0);
        let e = l.check_at("a@x.org", ip(1), t0).unwrap_err();
        assert_eq!(e, RetryAfter(DEFAULT_LOCKOUT_BASE));
        assert_eq!(e.secs(), 60);
        // the address is locked for every account
        assert!(l.check_at("b@x.org", ip(1), t0 + Duration::from_secs(30)).is_err());
        // and free again after the lockout
        assert!(l.check_at("b@x.org", ip(1), t0 + MIN).is_ok());
    }

    #[test]
    fn cancelled_attempts_count_for_nothing() {
        let l = limiter();
        let t0 = Instant::now();
        fail_n(&l, "a@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES - 1, t0);
        // the attempt that would lock the address, cancelled (the server was busy), many times
        for _ in 0..20 {
            let a = l.check_at("a@x.org", ip(1), t0).expect("not locked");
            l.cancel(a);
        }
        // the next real failure is the one that locks
        let a = l.check_at("a@x.org", ip(1), t0).expect("still not locked");
        l.failed(a);
        assert!(l.check_at("a@x.org", ip(1), t0).is_err());
    }

    #[test]
    fn retry_after_grows_to_the_max() {
        let l = limiter();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..9 {
            // fail until refused (one try right after a lockout while the window
            // lasts; a fresh set once the window has moved on), then wait it out
            let wait = loop {
                match l.check_at("a@x.org", ip(1), now) {
                    Ok(a) => l.failed(a),
                    Err(e) => break e.0,
                }
            };
            waits.push(wait.as_secs() / 60);
            now += wait;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn quiet_window_forgives() {
        let l = limiter();
        let t0 = Instant::now();
        // failures spread wider than the window never lock
        for i in 0..20 {
            fail_n(&l, "a@x.org", ip(1), 1, t0 + DEFAULT_WINDOW * i);
        }
        // after a lockout and a quiet window, the backoff starts over
        let t1 = t0 + DEFAULT_WINDOW * 30;
        fail_n(&l, "a@x.org", ip(1), 5, t1);
        fail_n(&l, "a@x.org", ip(1), 1, t1 + MIN);
        assert_eq!(l.check_at("a@x.org", ip(1), t1 + MIN).unwrap_err().0, 2 * MIN);
        let t2 = t1 + 3 * MIN + DEFAULT_WINDOW;
        fail_n(&l, "a@x.org", ip(1), 5, t2);
        assert_eq!(l.check_at("a@x.org", ip(1), t2).unwrap_err().0, MIN);
    }

    #[test]
    fn other_address_unaffected() {
        let l = limiter();
        let t0 = Instant::now();
        fail_n(&l, "alice@x.org", ip(66), DEFAULT_PER_ADDRESS_FAILURES, t0);
        assert!(l.check_at("alice@x.org", ip(66), t0).is_err());
        // the owner, from her own address, logs in with the right password
        let a = l.check_at("alice@x.org", ip(1), t0).expect("other address admitted");
        l.succeeded_at(a, t0);
        assert!(l.check_at("alice@x.org", ip(66), t0).is_err(), "attacker still locked");
    }

    #[test]
    fn success_resets_the_address_counter() {
        let l = limiter();
        let t0 = Instant::now();
        fail_n(&l, "a@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES - 1, t0);
        let a = l.check_at("a@x.org", ip(1), t0).expect("admitted");
        l.succeeded_at(a, t0);
        // the counter starts over: a full set of failures before a lock
        fail_n(&l, "a@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES, t0);
        assert!(l.check_at("a@x.org", ip(1), t0).is_err());
    }

    #[test]
    fn the_nth_attempt_may_still_succeed() {
        let l = limiter();
        let t0 = Instant::now();
        fail_n(&l, "a@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES - 1, t0);
        let a = l.check_at("a@x.org", ip(1), t0).expect("5th admitted");
        l.succeeded_at(a, t0);
        assert!(l.check_at("a@x.org", ip(1), t0).is_ok(), "a success lifts the lock it would have set");
    }

    #[test]
    fn concurrent_attempts_cannot_pass_the_threshold() {
        let l = limiter();
        let t0 = Instant::now();
        // five verifications in flight, none reported yet
        let in_flight: Vec<Attempt> = (0..DEFAULT_PER_ADDRESS_FAILURES)
            .map(|_| l.check_at("a@x.org", ip(1), t0).expect("admitted"))
            .collect();
        assert!(l.check_at("a@x.org", ip(1), t0).is_err(), "the sixth waits");
        in_flight.into_iter().for_each(|a| l.failed(a));
    }

    fn account_locked(l: &LoginLimiter, email: &str, now: Instant) -> bool {
        let mut maps = l.maps();
        maps.accounts.get(&account_key(email)).is_some_and(|e| e.counter.remaining(now).is_some())
    }

    #[test]
    fn one_address_cannot_lock_the_account() {
        let l = limiter();
        let t0 = Instant::now();
        // an attacker tries every second for six hours, whenever admitted
        let mut admitted = 0;
        for s in 0..6 * 3600 {
            let now = t0 + Duration::from_secs(s);
            if let Ok(a) = l.check_at("alice@x.org", ip(66), now) {
                admitted += 1;
                l.failed(a);
            }
            assert!(!account_locked(&l, "alice@x.org", now), "account locked by one address at {s}s");
        }
        assert!(admitted < 150, "{admitted} guesses in six hours");
        // so the owner, even from an address the account has never seen, gets in
        assert!(l.check_at("alice@x.org", ip(1), t0 + Duration::from_secs(6 * 3600)).is_ok());
    }

    #[test]
    fn many_addresses_lock_the_account_but_not_for_its_owner() {
        let l = limiter();
        let t0 = Instant::now();
        let owner = l.check_at("alice@x.org", ip(1), t0).expect("owner");
        l.succeeded_at(owner, t0);
        for bot in 0..4 {
            fail_n(&l, "alice@x.org", ip(100 + bot), DEFAULT_PER_ADDRESS_FAILURES, t0);
        }
        // 20 failures: locked for new addresses...
        let e = l.check_at("alice@x.org", ip(200), t0).unwrap_err();
        assert_eq!(e.0, DEFAULT_LOCKOUT_BASE);
        // ...other accounts from that address are fine...
        assert!(l.check_at("bob@x.org", ip(200), t0).is_ok());
        // ...and the owner's known address still gets in
        let a = l.check_at("Alice@X.org ", ip(1), t0).expect("known address admitted");
        l.succeeded_at(a, t0);
    }

    #[test]
    fn ipv6_grouped_by_64_and_mapped_v4_is_v4() {
        let l = limiter();
        let t0 = Instant::now();
        let host = |h: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, h));
        for h in 0..DEFAULT_PER_ADDRESS_FAILURES as u16 {
            fail_n(&l, "a@x.org", host(h), 1, t0);
        }
        assert!(l.check_at("b@x.org", host(999), t0).is_err(), "same /64");
        let other_net = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert!(l.check_at("b@x.org", other_net, t0).is_ok(), "next /64");

        fail_n(&l, "a@x.org", ip(9), DEFAULT_PER_ADDRESS_FAILURES, t0);
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
        assert!(l.check_at("b@x.org", mapped, t0).is_err());
    }

    #[test]
    fn maps_are_bounded_and_evict_the_oldest() {
        let l = LoginLimiter::new(LoginLimits { max_tracked: 3, ..LoginLimits::default() });
        let t0 = Instant::now();
        fail_n(&l, "first@x.org", ip(1), DEFAULT_PER_ADDRESS_FAILURES, t0);
        assert!(l.check_at("z@x.org", ip(1), t0).is_err());
        for i in 2..=10 {
            fail_n(&l, &format!("user{i}@x.org"), ip(i), 1, t0);
        }
        assert_eq!(l.tracked(), (3, 3));
        // the oldest address was forgotten, lock and all
        assert!(l.check_at("z@x.org", ip(1), t0).is_ok());
    }

    #[test]
    fn bound_source_reports_fill() {
        let l = LoginLimiter::new(LoginLimits { max_tracked: 50, ..LoginLimits::default() });
        let t0 = Instant::now();
        fail_n(&l, "a@x.org", ip(1), 1, t0);
        fail_n(&l, "b@x.org", ip(1), 1, t0);
        fail_n(&l, "A@x.org", ip(2), 1, t0);
        let mut out = Vec::new();
        l.report(&mut out);
        let got: Vec<(&str, u64, u64)> = out.iter().map(|b| (b.name, b.capacity, b.fill)).collect();
        assert_eq!(got, [("login_accounts", 50, 2), ("login_addresses", 50, 2)]);
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(RetryAfter(Duration::from_millis(1)).secs(), 1);
        assert_eq!(RetryAfter(Duration::from_millis(59_001)).secs(), 60);
        assert_eq!(RetryAfter(Duration::ZERO).secs(), 1);
    }
}
