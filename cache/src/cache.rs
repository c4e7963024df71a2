//! [`SecretCache`]: single flight, TTL with jitter, refresh-ahead,
//! serve-stale with backoff, negative caching and a bounded LRU.
//!
//! All state sits behind one `std::sync::Mutex`. No lock is ever held across
//! an `.await` and the critical sections are a hash lookup and a few
//! comparisons, so a blocking mutex is cheaper than an async one (the same
//! reasoning as mini-redis's `Db`). Upstream reads run in spawned tasks, so a
//! caller that goes away (a dropped HTTP request) never cancels a read other
//! callers are waiting on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::metrics::{Counters, Metrics};
use crate::{CacheConfig, Cached, Error, ErrorKind, Fetch, Key, Record};

type Outcome = Result<Arc<Cached>, Error>;
type Flight = watch::Receiver<Option<Outcome>>;

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
    counters: Counters,
}

struct State {
    /// Unbounded by the crate; [`Inner::enforce_bounds`] applies our bounds.
    entries: LruCache<Key, Slot>,
    bytes: usize,
    flights: HashMap<Key, Flight>,
    closed: bool,
}

/// What the cache knows about one key.
struct Slot {
    /// The last good value, if any and if still allowed to be served.
    value: Option<Arc<Cached>>,
    /// Served as fresh until then.
    fresh_until: Instant,
    /// A hit from then on starts a background refresh.
    refresh_from: Instant,
    /// Past `fresh_until`, served while upstream fails transiently until then.
    stale_until: Instant,
    /// The last failed read, while it stands.
    failure: Option<Failure>,
    /// Bytes charged to this slot.
    size: usize,
}

struct Failure {
    error: Error,
    /// Consecutive transient failures (drives the backoff).
    count: u32,
    /// No upstream read for this key before then.
    retry_at: Instant,
}

/// What [`SecretCache::prefetch`] did.
#[derive(Debug, Default)]
pub struct PrefetchReport {
    /// Ids now cached.
    pub loaded: Vec<String>,
    /// Ids that could not be read, with why.
    pub failed: Vec<(String, Error)>,
}

/// How a read treats the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Cached,
    RefreshNow,
}

/// What the locked part of a read decided.
enum Plan {
    Done(Outcome),
    Wait {
        flight: Flight,
        stale: Option<(Arc<Cached>, Instant)>,
    },
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
        Self {
            inner: Arc::new(Inner {
                fetcher,
                clock,
                config,
                state: Mutex::new(State {
                    entries: LruCache::unbounded(),
                    bytes: 0,
                    flights: HashMap::new(),
                    closed: false,
                }),
                counters: Counters::default(),
            }),
        }
    }

    /// The policy this cache runs with.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// The fetcher behind the cache.
    pub fn fetcher(&self) -> &F {
        &self.inner.fetcher
    }

    /// Read `key`: from the cache when fresh, else from upstream (one call
    /// however many callers ask at once), else a stale value while upstream
    /// fails transiently and `max_stale` allows.
    pub async fn get(&self, key: &Key) -> Result<Arc<Cached>, Error> {
        self.read(key, Mode::Cached).await
    }

    /// Read `key` from upstream now and refill the cache (`refreshNow`).
    /// Callers asking at the same moment share one upstream call.
    pub async fn refresh_now(&self, key: &Key) -> Result<Arc<Cached>, Error> {
        self.read(key, Mode::RefreshNow).await
    }

    async fn read(&self, key: &Key, mode: Mode) -> Outcome {
        let inner = &self.inner;
        if inner.config.ttl(key.kind()).is_zero() {
            return self.read_uncached(key).await;
        }
        let plan = self.plan(key, mode);
        match plan {
            Plan::Done(outcome) => outcome,
            Plan::Wait { mut flight, stale } => {
                let outcome = wait(&mut flight).await;
                match (outcome, stale) {
                    (Err(e), Some((value, stale_until)))
                        if e.is_transient() && inner.clock.now() < stale_until =>
                    {
                        Counters::inc(&inner.counters.stale);
                        Ok(value)
                    }
                    (outcome, _) => outcome,
                }
            }
        }
    }

    /// The locked half of a read: answer from the slot, or pick the flight
    /// to wait on.
    fn plan(&self, key: &Key, mode: Mode) -> Plan {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut state = inner.lock();
        if state.closed {
            return Plan::Done(Err(closed()));
        }
        let mut stale = None;
        let in_flight = state.flights.contains_key(key);
        if let Some(slot) = state.entries.get(key) {
            let in_backoff = slot.failure.as_ref().is_some_and(|f| now < f.retry_at);
            match (&slot.value, mode) {
                (Some(value), Mode::Cached) if now < slot.fresh_until => {
                    let value = Arc::clone(value);
                    let refresh = now >= slot.refresh_from && !in_backoff;
                    Counters::inc(&inner.counters.hits);
                    if refresh && !in_flight {
                        Counters::inc(&inner.counters.refreshes);
                        self.start_flight(&mut state, key);
                    }
                    return Plan::Done(Ok(value));
                }
                // Upstream is known to be failing: answer stale at once (never
                // make readers wait on a service that is down), and retry in
                // the background once the backoff allows.
                (Some(value), Mode::Cached)
                    if now < slot.stale_until
                        && slot
                            .failure
                            .as_ref()
                            .is_some_and(|f| f.error.is_transient()) =>
                {
                    let value = Arc::clone(value);
                    Counters::inc(&inner.counters.stale);
                    if !in_backoff && !in_flight {
                        Counters::inc(&inner.counters.refreshes);
                        self.start_flight(&mut state, key);
                    }
                    return Plan::Done(Ok(value));
                }
                // A refresh is already on its way (started ahead of expiry, or
                // by another reader) and the value is within max-stale: answer
                // it rather than queue behind a slow or retrying upstream call.
                (Some(value), Mode::Cached) if now < slot.stale_until && in_flight => {
                    Counters::inc(&inner.counters.stale);
                    return Plan::Done(Ok(Arc::clone(value)));
                }
                (_, Mode::Cached) if in_backoff => {
                    let error = slot.failure.as_ref().map(|f| f.error.clone());
                    return Plan::Done(Err(error.unwrap_or_else(closed)));
                }
                (Some(value), _) if now < slot.stale_until && mode == Mode::Cached => {
                    stale = Some((Arc::clone(value), slot.stale_until));
                }
                _ => {}
            }
        }
        Counters::inc(&inner.counters.misses);
        let flight = match state.flights.get(key) {
            Some(flight) => flight.clone(),
            None => self.start_flight(&mut state, key),
        };
        Plan::Wait { flight, stale }
    }

    /// Spawn the one upstream read for `key` and register it as the flight.
    fn start_flight(&self, state: &mut State, key: &Key) -> Flight {
        let (tx, rx) = watch::channel(None);
        state.flights.insert(key.clone(), rx.clone());
        self.spawn_fetch(key.clone(), tx);
        rx
    }

    /// Spawn the upstream read of `key` that ends its registered flight,
    /// answering the flight's waiters through `tx`.
    fn spawn_fetch(&self, key: Key, tx: watch::Sender<Option<Outcome>>) {
        let guard = FlightGuard {
            cache: self.clone(),
            key: Some(key),
        };
        tokio::spawn(async move {
            let mut guard = guard;
            let inner = &guard.cache.inner;
            let Some(key) = guard.key.as_ref() else {
                return;
            };
            Counters::inc(&inner.counters.upstream_calls);
            let result = inner.fetcher.fetch(key).await;
            let outcome = guard.cache.complete(key, result);
            guard.key = None;
            // Nobody waiting is fine: the value is cached all the same.
            let _ = tx.send(Some(outcome));
        });
    }

    /// Record the result of an upstream read of `key` and end its flight.
    fn complete(&self, key: &Key, result: Result<Record, Error>) -> Outcome {
        let inner = &self.inner;
        if result.is_err() {
            Counters::inc(&inner.counters.upstream_errors);
        }
        let value = result.map(|record| Arc::new(Cached::from_record(record)));
        let now = inner.clock.now();
        inner.land(&mut inner.lock(), key, value, now)
    }

    /// Read past the cache entirely (TTL zero).
    async fn read_uncached(&self, key: &Key) -> Outcome {
        let inner = &self.inner;
        if inner.lock().closed {
            return Err(closed());
        }
        Counters::inc(&inner.counters.misses);
        Counters::inc(&inner.counters.upstream_calls);
        let result = inner.fetcher.fetch(key).await;
        if result.is_err() {
            Counters::inc(&inner.counters.upstream_errors);
        }
        result.map(|r| Arc::new(Cached::from_record(r)))
    }

    /// Start a refresh of every value in the refresh-ahead window or past
    /// its TTL (and not backing off), and wait up to `budget` for those and
    /// for every upstream read already in flight. Returns how many were
    /// started. Meant for Lambda's INVOKE event: the only time a frozen
    /// environment runs, and off the function's path.
    ///
    /// Waiting for reads this call did not start matters: a hit during the
    /// same INVOKE may have begun the refresh first. Returning before it
    /// lands would let Lambda freeze the environment mid-request, and the
    /// read would then time out after the thaw instead of refreshing.
    pub async fn refresh_due(&self, budget: Duration) -> usize {
        let (started, flights): (usize, Vec<Flight>) = {
            let now = self.inner.clock.now();
            let mut state = self.inner.lock();
            if state.closed {
                return 0;
            }
            let due: Vec<Key> = state
                .entries
                .iter()
                .filter(|(key, slot)| {
                    slot.value.is_some()
                        && now >= slot.refresh_from
                        && slot.failure.as_ref().is_none_or(|f| now >= f.retry_at)
                        && !state.flights.contains_key(*key)
                })
                .map(|(key, _)| key.clone())
                .collect();
            let mut flights: Vec<Flight> = state.flights.values().cloned().collect();
            for key in &due {
                Counters::inc(&self.inner.counters.refreshes);
                flights.push(self.start_flight(&mut state, key));
            }
            (due.len(), flights)
        };
        let all = async {
            for mut flight in flights {
                let _ = wait(&mut flight).await;
            }
        };
        let _ = tokio::time::timeout(budget, all).await;
        started
    }

    /// Load the current versions of `ids`, 20 per `BatchGetSecretValue`,
    /// reading one by one whatever the batch call could not answer (for
    /// instance when the role may not call `BatchGetSecretValue`).
    ///
    /// Every id is registered as in flight before the first batch call, so
    /// a reader asking for one meanwhile (the function's init, racing the
    /// prefetch) waits for the batch instead of reading it a second time.
    pub async fn prefetch(&self, ids: &[String]) -> PrefetchReport {
        let mut report = PrefetchReport::default();
        let mut batch = BatchFlights {
            cache: self.clone(),
            pending: HashMap::new(),
        };
        let mut ours: Vec<&String> = Vec::new();
        let mut waits: Vec<(&String, Flight)> = Vec::new();
        {
            let mut state = self.inner.lock();
            if state.closed {
                report.failed = ids.iter().map(|id| (id.clone(), closed())).collect();
                return report;
            }
            for id in ids {
                let key = Key::secret(id.clone());
                let flight = match state.flights.get(&key) {
                    // Already being read (or listed twice): wait for that read.
                    Some(flight) => flight.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        state.flights.insert(key.clone(), rx.clone());
                        batch.pending.insert(key, tx);
                        ours.push(id);
                        rx
                    }
                };
                waits.push((id, flight));
            }
        }
        for chunk in ours.chunks(20) {
            let chunk: Vec<String> = chunk.iter().map(|id| (*id).clone()).collect();
            Counters::inc(&self.inner.counters.upstream_calls);
            let items = match self.inner.fetcher.fetch_batch(&chunk).await {
                Ok(items) => items,
                Err(e) => {
                    Counters::inc(&self.inner.counters.upstream_errors);
                    tracing::debug!(error = %e, "batch read failed; reading one by one");
                    Vec::new()
                }
            };
            let mut answers = Vec::with_capacity(items.len());
            {
                let now = self.inner.clock.now();
                let mut state = self.inner.lock();
                for (id, result) in items {
                    let key = Key::secret(id);
                    // An id the call was not asked for, or answered twice.
                    let Some(tx) = batch.pending.remove(&key) else {
                        continue;
                    };
                    let outcome = result.map(|record| Arc::new(Cached::from_record(record)));
                    answers.push((tx, self.inner.land(&mut state, &key, outcome, now)));
                }
            }
            for (tx, outcome) in answers {
                let _ = tx.send(Some(outcome));
            }
            // What the batch left unanswered is read one by one, each under
            // the flight its readers already wait on.
            for id in chunk {
                let key = Key::secret(id);
                if let Some(tx) = batch.pending.remove(&key) {
                    self.spawn_fetch(key, tx);
                }
            }
        }
        for (id, mut flight) in waits {
            match wait(&mut flight).await {
                Ok(_) => report.loaded.push(id.clone()),
                Err(e) => report.failed.push((id.clone(), e)),
            }
        }
        report
    }

    /// Drop every value (each is wiped as its last reference goes) and keep
    /// serving.
    pub fn clear(&self) {
        let mut state = self.inner.lock();
        state.entries.clear();
        state.bytes = 0;
    }

    /// Drop every value and refuse all further reads: for SHUTDOWN.
    /// Reads already waiting on upstream get their answer, which is not stored.
    pub fn close(&self) {
        let mut state = self.inner.lock();
        state.closed = true;
        state.entries.clear();
        state.bytes = 0;
    }

    /// Whether a value (fresh or stale) is held for `key`. Does not count as use.
    pub fn contains(&self, key: &Key) -> bool {
        self.inner
            .lock()
            .entries
            .peek(key)
            .is_some_and(|s| s.value.is_some())
    }

    /// A snapshot of the counters and the current size.
    pub fn metrics(&self) -> Metrics {
        let state = self.inner.lock();
        self.inner
            .counters
            .snapshot(state.entries.len(), state.bytes)
    }
}

impl<F, C: Clock> Inner<F, C> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere never leaves the map half-updated (every update
        // is a single insert or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// End `key`'s flight with what upstream answered: keep the value (or
    /// remember the failure) unless the cache was closed meanwhile.
    fn land(&self, state: &mut State, key: &Key, outcome: Outcome, now: Instant) -> Outcome {
        state.flights.remove(key);
        if !state.closed {
            match &outcome {
                Ok(value) => self.store(state, key, Arc::clone(value), now),
                Err(e) => self.record_failure(state, key, e, now),
            }
        }
        outcome
    }

    fn store(&self, state: &mut State, key: &Key, value: Arc<Cached>, now: Instant) {
        let ttl = self
            .config
            .jittered(self.config.ttl(key.kind()), fastrand::f64());
        let ahead = ttl.mul_f64(self.config.refresh_ahead.clamp(0.0, 1.0));
        let size = value.size() + key.heap_size() + std::mem::size_of::<Slot>();
        let slot = Slot {
            value: Some(value),
            fresh_until: now + ttl,
            refresh_from: now + (ttl - ahead),
            stale_until: now + ttl + self.config.max_stale,
            failure: None,
            size,
        };
        self.put(state, key, slot);
    }

    fn record_failure(&self, state: &mut State, key: &Key, error: &Error, now: Instant) {
        let transient = error.is_transient();
        let previous = state.entries.peek(key).and_then(|s| s.failure.as_ref());
        let count = match previous {
            Some(f) if transient && f.error.is_transient() => f.count.saturating_add(1),
            _ => 1,
        };
        let retry_at = if transient {
            now + self.config.backoff(count, fastrand::f64())
        } else {
            now + self.config.negative_ttl
        };
        let failure = Failure {
            error: error.clone(),
            count,
            retry_at,
        };
        if let Some(slot) = state.entries.peek_mut(key) {
            slot.failure = Some(failure);
            if !transient {
                // Deleted, denied or invalid: an answer, not an outage. Stop
                // serving the old value.
                let freed = slot.value.take().map_or(0, |v| v.size());
                slot.size -= freed;
                state.bytes -= freed;
            }
        } else {
            let slot = Slot {
                value: None,
                fresh_until: now,
                refresh_from: now,
                stale_until: now,
                failure: Some(failure),
                size: key.heap_size() + std::mem::size_of::<Slot>(),
            };
            self.put(state, key, slot);
        }
    }

    fn put(&self, state: &mut State, key: &Key, slot: Slot) {
        state.bytes += slot.size;
        if let Some(old) = state.entries.put(key.clone(), slot) {
            state.bytes -= old.size;
        }
        self.enforce_bounds(state);
    }

    fn enforce_bounds(&self, state: &mut State) {
        while state.entries.len() > self.config.max_entries || state.bytes > self.config.max_bytes {
            match state.entries.pop_lru() {
                Some((_, slot)) => {
                    state.bytes -= slot.size;
                    Counters::inc(&self.counters.evictions);
                }
                None => break,
            }
        }
    }
}

/// Ends a flight whose task died before completing (a panicking fetcher),
/// so the key is not stuck behind a flight that will never land.
struct FlightGuard<F: Fetch, C: Clock> {
    cache: SecretCache<F, C>,
    key: Option<Key>,
}

impl<F: Fetch, C: Clock> Drop for FlightGuard<F, C> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cache.inner.lock().flights.remove(&key);
        }
    }
}

/// The flights a prefetch registered and has not answered yet. Dropped
/// early (the prefetch cancelled), it unregisters them: their waiters get
/// an error instead of waiting forever, and the next reader reads afresh.
struct BatchFlights<F: Fetch, C: Clock> {
    cache: SecretCache<F, C>,
    pending: HashMap<Key, watch::Sender<Option<Outcome>>>,
}

impl<F: Fetch, C: Clock> Drop for BatchFlights<F, C> {
    fn drop(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut state = self.cache.inner.lock();
        for key in self.pending.keys() {
            state.flights.remove(key);
        }
    }
}

async fn wait(flight: &mut Flight) -> Outcome {
    match flight.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(abandoned())),
        Err(_) => Err(abandoned()),
    }
}

fn abandoned() -> Error {
    Error::new(ErrorKind::Other, "the upstream read was abandoned")
}

fn closed() -> Error {
    Error::new(ErrorKind::Closed, "the cache is shut down")
}

#[cfg(test)]
mod tests;
