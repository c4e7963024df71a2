//! [`SecretCache`]: single flight, TTL with jitter, refresh-ahead,
//! serve-stale with backoff, negative caching, a bounded LRU, and a deadline
//! on everything that waits for upstream.
//!
//! All state sits behind one `std::sync::Mutex`. No lock is ever held across
//! an `.await` and the critical sections are a hash lookup and a few
//! comparisons, so a blocking mutex is cheaper than an async one (the same
//! reasoning as mini-redis's `Db`).
//!
//! Two clocks: TTLs, staleness and backoff are read from the injected
//! [`Clock`] (a restore can make it lie, see [`SecretCache::expire_all`]);
//! deadlines and waits are tokio timers, so tests run them on paused time.
//!
//! * [`flight`]: the shared upstream read per key and its deadline;
//! * [`memo`]: per-thread memos of hot bodies, the lock-free hit;
//! * [`slot`]: what is kept per key and how an answer lands;
//! * [`prefetch`]: the start-up loads;
//! * [`batch`]: many values in one upstream call, for the prefetch, the
//!   INVOKE-time refresh and batch reads alike.

mod batch;
mod flight;
mod memo;
mod prefetch;
mod slot;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use lru::LruCache;
use tokio::sync::Semaphore;
use tokio::time::Instant as Deadline;

use self::batch::{BatchPlan, Group};
use self::flight::{deadline_passed, wait_until, Flight};
use self::memo::Memos;
use self::slot::{Failure, Slot, FAILURE_ENTRIES};
use crate::clock::{Clock, RestoreDetector, SystemClock, WallClock, RESTORE_THRESHOLD};
use crate::metrics::{Counters, Metrics};
use crate::{CacheConfig, Cached, Error, ErrorKind, Fetch, Key};

pub use self::prefetch::{PrefetchReport, TagReport};

type Outcome = Result<Arc<Cached>, Error>;

/// A cache of secrets and parameters in front of a [`Fetch`]er.
///
/// A cheap handle: clones share one cache.
pub struct SecretCache<F, C = SystemClock> {
    inner: Arc<Inner<F, C>>,
}

impl<F, C> Clone for SecretCache<F, C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<F, C> std::fmt::Debug for SecretCache<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache").finish_non_exhaustive()
    }
}

struct Inner<F, C> {
    fetcher: F,
    clock: C,
    config: CacheConfig,
    state: Mutex<State>,
    /// Hot bodies per thread; cleared whenever `state`'s values change.
    memos: Memos,
    counters: Counters,
    /// Bounds upstream calls in flight at once ([`CacheConfig::max_upstream`]).
    upstream: Semaphore,
    /// How long healthy upstream calls take: what an INVOKE is held for.
    latency: Latency,
    /// The SnapStart restore check every read makes, once enabled
    /// ([`SecretCache::detect_restores`]).
    restore: OnceLock<Box<dyn Fn(std::time::Instant) -> bool + Send + Sync>>,
}

/// The upstream's observed latency: a running mean (weight 1/8) of the
/// calls that succeeded, in microseconds; zero until one has. Failures are
/// left out, so an outage does not stretch the INVOKE hold it bounds.
#[derive(Default)]
struct Latency(AtomicU64);

impl Latency {
    /// The least an INVOKE is held for a due refresh (a healthy upstream on
    /// a fresh connection takes a few times its usual latency).
    const FLOOR: Duration = Duration::from_millis(50);

    fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let old = self.0.load(Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.0.store(new, Relaxed);
    }

    /// How long a healthy refresh should take at most: four times the
    /// mean, at least [`Latency::FLOOR`], at most `cap` (and `cap` itself
    /// before any call succeeded).
    fn hold(&self, cap: Duration) -> Duration {
        match self.0.load(Relaxed) {
            0 => cap,
            us => (Duration::from_micros(us) * 4).max(Self::FLOOR).min(cap),
        }
    }
}

struct State {
    /// Values. Unbounded by the crate; [`Inner::land`] applies our bounds.
    entries: LruCache<Key, Slot>,
    /// Failures of keys without a value, bounded apart from the values.
    failures: LruCache<Key, Failure>,
    bytes: usize,
    flights: HashMap<Key, Flight>,
    /// The id of the last flight registered.
    next_flight: u64,
    closed: bool,
    /// Reads answered fresh. Counted here, under the lock a hit holds
    /// anyway, rather than in [`Counters`]: an atomic of its own is one
    /// more cache line the workers pass back and forth on every hit.
    hits: u64,
}

/// What [`SecretCache::refresh_due`] did, for the extension's log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Refreshes this call started.
    pub started: usize,
    /// Upstream reads it waited for (its own and those already in flight).
    pub waited_for: usize,
    /// Of those, how many did not answer in time: they ran out of their
    /// deadline, or were still in flight when the budget ran out.
    pub timed_out: usize,
    /// Reads in flight it did not wait for: the last attempt for their key
    /// timed out, or an earlier INVOKE already waited its whole hold for
    /// this one, so waiting again would only be billed.
    pub skipped: usize,
}

/// How a read treats the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Cached,
    /// Cached, the body only, memoized for this thread on a plain hit.
    Body,
    RefreshNow,
}

/// What the locked part of a read decided. A hit's answer is `T`, what
/// the reader takes from the value while the lock is held.
enum Plan<T = Arc<Cached>> {
    Done(Result<T, Error>),
    Wait {
        flight: Flight,
        /// A value to fall back on if the flight is slow or fails
        /// transiently, and until when it may be served.
        stale: Option<(Arc<Cached>, Option<std::time::Instant>)>,
    },
}

/// What a slot tells a cached read.
enum Verdict<T> {
    /// Answer with this (taken from a hit or a stale serve), maybe starting
    /// a background refresh.
    Answer { value: T, refresh: bool },
    /// Wait for upstream, falling back on this value if given.
    Wait(Option<(Arc<Cached>, Option<std::time::Instant>)>),
    /// Answer with the failure that stands.
    Fail(Error),
}

impl<F: Fetch> SecretCache<F, SystemClock> {
    /// A cache over `fetcher` with the system clock.
    pub fn new(fetcher: F, config: CacheConfig) -> Self {
        Self::with_clock(fetcher, config, SystemClock)
    }
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// A cache over `fetcher` reading time from `clock`.
    pub fn with_clock(fetcher: F, config: CacheConfig, clock: C) -> Self {
        let failures = NonZeroUsize::new(FAILURE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        let upstream = Semaphore::new(config.max_upstream.max(1));
        Self {
            inner: Arc::new(Inner {
                fetcher,
                clock,
                config,
                state: Mutex::new(State {
                    entries: LruCache::unbounded(),
                    failures: LruCache::new(failures),
                    bytes: 0,
                    flights: HashMap::new(),
                    next_flight: 0,
                    closed: false,
                    hits: 0,
                }),
                memos: Memos::default(),
                counters: Counters::default(),
                upstream,
                latency: Latency::default(),
                restore: OnceLock::new(),
            }),
        }
    }

    /// The policy this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Detect SnapStart restores on every read, by how far `wall` ran ahead
    /// of the cache's monotonic clock ([`RestoreDetector`]), and make every
    /// value due when one is found ([`SecretCache::expire_all`]). A read
    /// between a restore and the next Lambda event (a runtime's
    /// `afterRestore` hook, the handler racing the extension's `/next`)
    /// then never gets a value stored before the snapshot as fresh. The
    /// first call sets it; later ones change nothing.
    pub fn detect_restores<W: WallClock>(&self, wall: W) {
        let detector = RestoreDetector::with_wall(wall, RESTORE_THRESHOLD, self.inner.clock.now());
        let _ = self
            .inner
            .restore
            .set(Box::new(move |now| detector.check(now)));
    }

    /// Check for a restore now, as every read does once
    /// [`SecretCache::detect_restores`] is on (the extension checks on every
    /// Lambda event too). Whether one was found: every value is then due.
    pub fn check_restore(&self) -> bool {
        self.restored(self.inner.clock.now())
    }

    fn restored(&self, now: std::time::Instant) -> bool {
        let found = self.inner.restore.get().is_some_and(|check| check(now));
        if found {
            tracing::info!("restored from a snapshot: every cached value is due");
            self.expire_all();
        }
        found
    }

    /// Read `key`: from the cache when fresh, else from upstream (one call
    /// however many callers ask at once). An expired value still within
    /// `max_stale` (if capped) is answered if the refresh fails transiently or has not
    /// answered within `stale_wait`; without one the read ends by the kind's
    /// deadline, with [`ErrorKind::Timeout`] if upstream is silent.
    pub async fn get(&self, key: &Key) -> Result<Arc<Cached>, Error> {
        self.read(key, Mode::Cached, Arc::clone).await
    }

    /// [`get`](Self::get) `key`'s wire [`body`](Cached::body) only: the
    /// HTTP API's hot path. A plain hit is answered from this thread's memo
    /// when it has the key ([`memo`]): no lock shared with other threads and
    /// no reference count they touch too.
    pub async fn get_body(&self, key: &Key) -> Result<Bytes, Error> {
        if let Some(body) = self.body_now(key) {
            return Ok(body);
        }
        self.read(key, Mode::Body, |v| v.body()).await
    }

    /// [`get_body`](Self::get_body)'s answer when it is at hand: a plain
    /// hit in this thread's memo, found without waiting for anything.
    /// `None` is no verdict: ask `get_body`, which answers everything else.
    ///
    /// For a server that can answer in the call that received the request
    /// (issue 31): no future is built, moved into the connection and polled
    /// for the hot path's answer.
    pub fn body_now(&self, key: &Key) -> Option<Bytes> {
        let inner = &self.inner;
        if !inner.config.caching_enabled(key.kind()) {
            return None;
        }
        let now = inner.clock.now();
        self.restored(now);
        inner.memos.get(key, now)
    }

    /// Read `key` from upstream now and refill the cache (`refreshNow`).
    /// Callers asking at the same moment share one upstream call.
    pub async fn refresh_now(&self, key: &Key) -> Result<Arc<Cached>, Error> {
        self.read(key, Mode::RefreshNow, Arc::clone).await
    }

    async fn read<T>(
        &self,
        key: &Key,
        mode: Mode,
        take: impl Fn(&Arc<Cached>) -> T,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        if !inner.config.caching_enabled(key.kind()) {
            return self.read_uncached(key).await.map(|v| take(&v));
        }
        match self.plan(key, mode, &take) {
            // A hit reads no tokio clock: only a wait needs a start.
            Plan::Done(outcome) => outcome,
            // The same plan, typed for `finish`, which answers whole values.
            Plan::Wait { flight, stale } => self
                .finish(key, Deadline::now(), Plan::Wait { flight, stale })
                .await
                .map(|v| take(&v)),
        }
    }

    /// The waiting half of a read that began at `began`: the plan's answer,
    /// or its flight's within the read's deadline, or the stale value.
    async fn finish(&self, key: &Key, began: Deadline, plan: Plan) -> Outcome {
        let inner = &self.inner;
        let (mut flight, stale) = match plan {
            Plan::Done(outcome) => return outcome,
            Plan::Wait { flight, stale } => (flight, stale),
        };
        let Some((value, stale_until)) = stale else {
            // Nothing to fall back on: wait for upstream, never past our own
            // deadline (the flight may be a prefetch's, with a later one).
            let until = began + inner.config.deadline(key.kind());
            return wait_until(&mut flight.rx, until)
                .await
                .unwrap_or_else(|| Err(deadline_passed(key.kind())));
        };
        // Counted from the refresh's start: once it has been slow for
        // `stale_wait`, every reader gets the old value at once.
        let patience = flight.started + inner.config.stale_wait;
        match wait_until(&mut flight.rx, patience).await {
            Some(Err(e)) if !(e.is_transient() && servable(inner.clock.now(), stale_until)) => {
                Err(e)
            }
            Some(Ok(fresh)) => Ok(fresh),
            Some(Err(_)) | None => {
                Counters::inc(&inner.counters.stale);
                Ok(value)
            }
        }
    }

    /// The locked half of a read: answer from the slot, or pick the flight
    /// to wait on.
    fn plan<T>(&self, key: &Key, mode: Mode, take: impl FnOnce(&Arc<Cached>) -> T) -> Plan<T> {
        let inner = &self.inner;
        let now = inner.clock.now();
        self.restored(now);
        let mut state = inner.lock();
        if state.closed {
            return Plan::Done(Err(closed()));
        }
        let st = &mut *state;
        // Asked only where it decides something, never on a plain hit: a
        // second hash lookup per read is measurable on the hot path.
        let in_flight = || st.flights.contains_key(key);
        // A hit on the most recently used value leaves the LRU list as it
        // is: moving a node to where it already is writes three nodes'
        // links, cache lines the workers would pass back and forth.
        let mut slot = if st.entries.peek_mru().is_some_and(|(k, _)| k == key) {
            st.entries.peek_mut(key)
        } else {
            st.entries.get_mut(key)
        };
        // A forced read of a value a forced read fetched under a second ago,
        // or of one backing off after a transient failure, is answered as a
        // cached read: a function that sends `refreshNow` on every read under
        // throttling made up to three upstream calls per read (issue 26).
        let mode = match (mode, slot.as_deref_mut()) {
            (Mode::RefreshNow, Some(slot)) => {
                let recent = slot.forced_at.is_some_and(|at| now < at + FORCED_EVERY);
                let backing_off = slot.failure.as_ref().is_some_and(|f| now < f.retry_at);
                if recent || backing_off {
                    Mode::Cached
                } else {
                    Mode::RefreshNow
                }
            }
            (mode, _) => mode,
        };
        let verdict = match (mode, slot) {
            (Mode::RefreshNow, _) => match st.failures.peek(key) {
                // A cold key's forced read respects its backoff or not-found
                // marker as any read does.
                Some(f) if now < f.retry_at => Verdict::Fail(f.error.clone()),
                _ => Verdict::Wait(None),
            },
            (Mode::Cached | Mode::Body, Some(slot)) => {
                // Written only when it changes, for the same reason.
                if !slot.read {
                    slot.read = true;
                }
                let in_backoff = slot.failure.as_ref().is_some_and(|f| now < f.retry_at);
                if now < slot.fresh_until {
                    st.hits += 1;
                    // An immutable version never needs reading ahead.
                    let refresh =
                        now >= slot.refresh_from && !in_backoff && !key.is_pinned() && !in_flight();
                    // A plain hit until the refresh-ahead window begins
                    // (a pinned version has none: until the TTL ends).
                    let plain_until = if key.is_pinned() {
                        slot.fresh_until
                    } else {
                        slot.refresh_from
                    };
                    if mode == Mode::Body && slot.failure.is_none() && now < plain_until {
                        inner.memos.put(key, slot.value.body(), plain_until);
                    }
                    Verdict::Answer {
                        value: take(&slot.value),
                        refresh,
                    }
                } else if servable(now, slot.stale_until) && slot.failure.is_some() {
                    // Upstream is known to be failing: answer stale at once
                    // (never make readers wait on a service that is down),
                    // and retry in the background once the backoff allows.
                    Counters::inc(&inner.counters.stale);
                    let refresh = !in_backoff && !in_flight();
                    Verdict::Answer {
                        value: take(&slot.value),
                        refresh,
                    }
                } else if servable(now, slot.stale_until) && in_flight() {
                    // Its refresh is already on its way (a reader before
                    // this one waits for it, up to `stale_wait`): answer the
                    // old value rather than queue behind it. Under a slow
                    // or throttled upstream, every reader of a value that
                    // keeps expiring would otherwise pay the wait.
                    Counters::inc(&inner.counters.stale);
                    Verdict::Answer {
                        value: take(&slot.value),
                        refresh: false,
                    }
                } else if servable(now, slot.stale_until) {
                    Verdict::Wait(Some((Arc::clone(&slot.value), slot.stale_until)))
                } else if let Some(f) = slot.failure.as_ref().filter(|_| in_backoff) {
                    Verdict::Fail(f.error.clone())
                } else {
                    Verdict::Wait(None)
                }
            }
            (Mode::Cached | Mode::Body, None) => match st.failures.get(key) {
                Some(f) if now < f.retry_at => Verdict::Fail(f.error.clone()),
                _ => Verdict::Wait(None),
            },
        };
        match verdict {
            Verdict::Answer { value, refresh } => {
                if refresh {
                    Counters::inc(&inner.counters.refreshes);
                    self.start_flight(&mut state, key);
                }
                Plan::Done(Ok(value))
            }
            Verdict::Fail(error) => Plan::Done(Err(error)),
            Verdict::Wait(stale) => {
                Counters::inc(&inner.counters.misses);
                // At most one read of a key in flight: a forced read joins
                // the one on its way.
                let flight = match state.flights.get(key) {
                    Some(flight) => flight.clone(),
                    None => self.start_flight(&mut state, key),
                };
                if let Some(f) = state.flights.get_mut(key) {
                    f.awaited = true;
                    f.forced |= mode == Mode::RefreshNow;
                }
                Plan::Wait { flight, stale }
            }
        }
    }

    /// Read past the cache entirely (caching off for the key's kind).
    async fn read_uncached(&self, key: &Key) -> Outcome {
        let inner = &self.inner;
        if inner.lock().closed {
            return Err(closed());
        }
        Counters::inc(&inner.counters.misses);
        let deadline = Deadline::now() + inner.config.flight_deadline(key);
        let result = inner
            .call(key.kind(), deadline, inner.fetcher.fetch(key))
            .await;
        result.map(|r| Arc::new(Cached::from_record(r)))
    }

    /// Start a refresh of every value that was read since it was stored, is
    /// in its refresh-ahead window or past its TTL, is not backing off and is
    /// not pinned to a version; then wait, up to `budget`, for those and for
    /// every upstream read already in flight. Meant for Lambda's INVOKE
    /// event: the only time a frozen environment runs, and off the
    /// function's path.
    ///
    /// Waiting for reads this call did not start matters: a hit during the
    /// same INVOKE may have begun the refresh first. Returning before it
    /// lands would let Lambda freeze the environment mid-request, and the
    /// read would then time out after the thaw instead of refreshing. But
    /// each held INVOKE is billed, so it is held only while that pays
    /// (issue 26: under a hung upstream every INVOKE was held up to 1 s):
    ///
    /// * never past the latest deadline of those reads (a read past its
    ///   deadline has ended as a timeout), and not at all when nothing is
    ///   due or in flight;
    /// * never for a read whose key's last attempt timed out (the next one
    ///   most likely will too), nor for one an earlier INVOKE already waited
    ///   its whole hold for;
    /// * at most four times the upstream's observed latency (at least
    ///   50 ms, at most `budget`): a healthy refresh lands well inside it,
    ///   a hung one is not waited for to its deadline.
    pub async fn refresh_due(&self, budget: Duration) -> RefreshReport {
        let mut report = RefreshReport::default();
        self.check_restore();
        self.repack_sparse();
        let flights: Vec<(Key, Flight)> = {
            let inner = &self.inner;
            let now = inner.clock.now();
            let mut state = inner.lock();
            if state.closed {
                return report;
            }
            let due = self.due(&state, now);
            report.started = self.start_refreshes(&mut state, due, now);
            let now = Deadline::now();
            let st = &*state;
            let timed_out_last = |key: &Key| {
                let failure = match st.entries.peek(key) {
                    Some(slot) => slot.failure.as_deref(),
                    None => st.failures.peek(key),
                };
                failure.is_some_and(|f| f.error.kind() == ErrorKind::Timeout)
            };
            let mut waits = Vec::new();
            for (key, flight) in st.flights.iter().filter(|(_, f)| f.deadline > now) {
                if flight.outwaited || timed_out_last(key) {
                    report.skipped += 1;
                } else {
                    waits.push((key.clone(), flight.clone()));
                }
            }
            waits
        };
        let Some(latest) = flights.iter().map(|(_, f)| f.deadline).max() else {
            return report;
        };
        report.waited_for = flights.len();
        let until = latest.min(Deadline::now() + self.inner.latency.hold(budget));
        let mut outwaited = Vec::new();
        for (key, mut flight) in flights {
            match wait_until(&mut flight.rx, until).await {
                Some(Err(e)) if e.kind() == ErrorKind::Timeout => report.timed_out += 1,
                None => {
                    report.timed_out += 1;
                    outwaited.push((key, flight.id));
                }
                Some(_) => {}
            }
        }
        if !outwaited.is_empty() {
            let mut state = self.inner.lock();
            for (key, id) in outwaited {
                if let Some(f) = state.flights.get_mut(&key).filter(|f| f.id == id) {
                    f.outwaited = true;
                }
            }
        }
        report
    }

    /// Start every refresh [`refresh_due`](Self::refresh_due) would start,
    /// without waiting for any: for an environment that is never frozen
    /// (Lambda Managed Instances), where sidekey's own timer, not an INVOKE,
    /// keeps read values fresh ([`next_due`](Self::next_due) says when).
    /// Returns how many started.
    pub fn start_due(&self) -> usize {
        self.check_restore();
        self.repack_sparse();
        let now = self.inner.clock.now();
        let mut state = self.inner.lock();
        if state.closed {
            return 0;
        }
        let due = self.due(&state, now);
        self.start_refreshes(&mut state, due, now)
    }

    /// When [`start_due`](Self::start_due) may next have something to
    /// start, by the cache's clock: the soonest refresh window (or end of
    /// backoff) of a value read since it was stored; or of a value not read
    /// yet whose window is still ahead (a read before then makes it due
    /// then, and nothing else would wake a timer for it). `None`: nothing
    /// is held that could come due, short of a new value being stored,
    /// whose window opens no sooner than [`CacheConfig::earliest_refresh`]
    /// after it lands.
    pub fn next_due(&self) -> Option<std::time::Instant> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let state = inner.lock();
        if state.closed {
            return None;
        }
        state
            .entries
            .iter()
            .filter(|(key, _)| {
                !key.is_pinned()
                    && inner.config.caching_enabled(key.kind())
                    && !state.flights.contains_key(*key)
            })
            .filter_map(|(_, slot)| match slot.read {
                true => Some(match &slot.failure {
                    Some(f) => slot.refresh_from.max(f.retry_at),
                    None => slot.refresh_from,
                }),
                false => (slot.refresh_from > now).then_some(slot.refresh_from),
            })
            .min()
    }

    /// The values due a refresh at `now`: read since stored, in their
    /// refresh window or past it, not backing off, not pinned to a version,
    /// cached at all, and not already being read.
    fn due(&self, state: &State, now: std::time::Instant) -> Vec<Key> {
        let config = &self.inner.config;
        state
            .entries
            .iter()
            .filter(|(key, slot)| {
                slot.read
                    && now >= slot.refresh_from
                    && slot.failure.as_ref().is_none_or(|f| now >= f.retry_at)
                    && !key.is_pinned()
                    && config.caching_enabled(key.kind())
                    && !state.flights.contains_key(*key)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Start the refreshes `refresh_due` found due. Current secrets and
    /// latest parameters go in batches (one call for up to 20 secrets or 10
    /// parameters): with them go the other values of the same kind that are
    /// read, unpinned, not in flight nor backing off, and past half their
    /// TTL, which would otherwise each need a call of their own soon after.
    /// A batch call costs what a single read costs, so an environment that
    /// reads five secrets pays one call per TTL instead of five (the fleet
    /// simulation, `bench/`). A group of one is read on its own.
    fn start_refreshes(&self, state: &mut State, due: Vec<Key>, now: std::time::Instant) -> usize {
        let inner = &self.inner;
        let mut groups: Vec<(Group, Vec<Key>)> = Vec::new();
        let mut started = 0;
        for key in due {
            // A secret that failed to refresh is retried on its own:
            // GetSecretValue's quota is a hundred times BatchGetSecretValue's,
            // and a fleet retrying through an outage in batches ran past the
            // latter (the fleet simulation, `bench/`). A parameter stays in
            // its batch: GetParameter shares GetParameters' quota.
            let failing = state
                .entries
                .peek(&key)
                .is_some_and(|s| s.failure.is_some());
            // With the version check on, a secret is checked on its own
            // (`DescribeSecret`), not read in a batch.
            let alone = inner.config.version_check || failing;
            let group = Group::of(&key).filter(|g| !(alone && *g == Group::Secrets));
            match group {
                Some(g) => match groups.iter_mut().find(|(k, _)| *k == g) {
                    Some((_, keys)) => keys.push(key),
                    None => groups.push((g, vec![key])),
                },
                None => {
                    Counters::inc(&inner.counters.refreshes);
                    self.start_flight(state, &key);
                    started += 1;
                }
            }
        }
        for (group, keys) in &mut groups {
            let half = inner.config.ttl(group.kind()) / 2;
            let riders: Vec<Key> = state
                .entries
                .iter()
                .filter(|(key, slot)| {
                    slot.read
                        && Group::of(key) == Some(*group)
                        && now + half >= slot.fresh_until
                        && slot.failure.is_none()
                        && !state.flights.contains_key(*key)
                        && !keys.contains(key)
                })
                .map(|(key, _)| key.clone())
                .collect();
            keys.extend(riders);
        }
        for (group, keys) in groups {
            started += keys.len();
            for _ in &keys {
                Counters::inc(&inner.counters.refreshes);
            }
            if keys.len() == 1 {
                self.start_flight(state, &keys[0]);
            } else {
                let deadline = inner.config.deadline(group.kind());
                let limit = inner.fetcher.batch_limit(group.kind()).max(1);
                let batches = u32::try_from(keys.len().div_ceil(limit)).unwrap_or(u32::MAX);
                let plan = BatchPlan {
                    batched: true,
                    call: deadline,
                    singles_until: None,
                    refresh: true,
                };
                let latest = Deadline::now() + deadline.saturating_mul(batches.saturating_add(1));
                self.spawn_batch(state, group, keys, latest, plan);
            }
        }
        started
    }

    /// Write again, into the page being filled, every body that keeps a
    /// mostly dead page alive (its neighbours all replaced or dropped; see
    /// `record/pages.rs`): a pinned `versionId` or an unread value is never
    /// refreshed, and alone in its page it kept 64 KiB alive while the byte
    /// bound counted its own size (issue 26). Made at each `refresh_due`;
    /// returns how many moved.
    pub fn repack_sparse(&self) -> usize {
        let mut state = self.inner.lock();
        let mut moved = 0;
        for (_, slot) in state.entries.iter_mut() {
            if slot.value.sparse() {
                slot.value = Arc::new(slot.value.repacked());
                moved += 1;
            }
        }
        if moved > 0 {
            // The memos hold the old bodies: they would keep the pages.
            self.inner.memos.clear();
        }
        moved
    }

    /// Make every value due, as after a SnapStart restore (see
    /// [`RestoreDetector`](crate::clock::RestoreDetector)): the monotonic
    /// clock did not count the time the snapshot lay stored, so no expiry
    /// computed before can be trusted. The next read of each value goes
    /// upstream, waiting at most `stale_wait` before it is answered with
    /// the old value, which stays servable for `max_stale` from now.
    /// Backoffs and not-found markers are forgotten, and reads in flight are
    /// stopped: their connections did not survive the snapshot, and a dead
    /// read would hold an upstream slot until its deadline. Their waiters
    /// get a transient error (a stale value if they have one); the next
    /// reader starts afresh, and nothing an old read answers is stored.
    pub fn expire_all(&self) {
        let now = self.inner.clock.now();
        let stale_until = self.inner.config.stale_until(now);
        let mut state = self.inner.lock();
        self.inner.memos.clear();
        for (_, slot) in state.entries.iter_mut() {
            slot.fresh_until = now;
            slot.refresh_from = now;
            slot.stale_until = stale_until;
            slot.failure = None;
        }
        state.failures.clear();
        for (_, flight) in state.flights.drain() {
            if let Some(task) = flight.task {
                task.abort();
            }
        }
    }

    /// Forget what is held for the keys `matches` picks (given the key and,
    /// for a value, the value): the values, their not-found markers and
    /// backoffs, and the reads in flight for them (their waiters get what
    /// they read, but it is not kept). For a write to the service: the
    /// next read reads it back. Returns how many keys were forgotten.
    pub fn invalidate(&self, matches: impl Fn(&Key, Option<&Cached>) -> bool) -> usize {
        let mut state = self.inner.lock();
        let values: Vec<Key> = state
            .entries
            .iter()
            .filter(|(key, slot)| matches(key, Some(&slot.value)))
            .map(|(key, _)| key.clone())
            .collect();
        let markers: Vec<Key> = state
            .failures
            .iter()
            .filter(|(key, _)| matches(key, None))
            .map(|(key, _)| key.clone())
            .collect();
        let flights: Vec<Key> = state
            .flights
            .keys()
            .filter(|key| matches(key, None) || values.contains(key))
            .cloned()
            .collect();
        for key in &values {
            if let Some(slot) = state.entries.pop(key) {
                state.bytes -= slot.size;
            }
        }
        for key in &markers {
            state.failures.pop(key);
        }
        for key in &flights {
            state.flights.remove(key);
        }
        if !values.is_empty() {
            self.inner.memos.clear();
        }
        values.len() + markers.len()
    }

    /// Drop every value and refuse all further reads: for SHUTDOWN.
    /// Reads already waiting on upstream get their answer, which is not stored.
    pub fn close(&self) {
        let mut state = self.inner.lock();
        state.closed = true;
        self.inner.memos.clear();
        state.entries.clear();
        state.failures.clear();
        state.bytes = 0;
    }

    /// Whether a value (fresh or stale) is held for `key`. Does not count as use.
    pub fn contains(&self, key: &Key) -> bool {
        self.inner.lock().entries.contains(key)
    }

    /// A snapshot of the counters and the current size.
    pub fn metrics(&self) -> Metrics {
        let state = self.inner.lock();
        let mut metrics = self.inner.counters.snapshot(
            state.hits + self.inner.memos.hits(),
            state.entries.len(),
            state.bytes,
        );
        metrics.fallback_reads = self.inner.fetcher.fallback_reads();
        metrics
    }
}

impl<F, C> Inner<F, C> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the map half-updated (every update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a value may still be served stale at `now`.
fn servable(now: std::time::Instant, stale_until: Option<std::time::Instant>) -> bool {
    stale_until.is_none_or(|until| now < until)
}

/// Forced reads (`refreshNow`) of one key go upstream at most this often.
const FORCED_EVERY: Duration = Duration::from_secs(1);

fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the cache is shut down")
}

#[cfg(test)]
mod tests;
