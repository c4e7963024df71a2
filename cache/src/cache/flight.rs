//! Flights: the one upstream read per key that concurrent callers share, and
//! the deadline machinery around every upstream call.
//!
//! Two guarantees live here. A flight always ends: its task gives up at the
//! flight's deadline with [`ErrorKind::Timeout`], answers every waiter and
//! unregisters itself (a guard unregisters it even if the task dies). And no
//! caller waits on a flight past a deadline of its own ([`wait_until`]), so
//! an upstream that accepts a connection and never answers costs a caller a
//! bounded, configured time.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant as Deadline;

use super::{Inner, Outcome, SecretCache};
use crate::clock::Clock;
use crate::metrics::Counters;
use crate::{Cached, Error, ErrorKind, Fetch, Key, Kind, Record};

/// The answer channel of a flight.
pub(super) type Answer = watch::Sender<Option<Outcome>>;

/// A registered upstream read, as its waiters see it.
#[derive(Clone)]
pub(super) struct Flight {
    /// Tells this flight from a later one for the same key, so a flight
    /// that was detached ([`SecretCache::expire_all`]) or superseded never
    /// unregisters or overwrites its successor.
    pub id: u64,
    pub rx: watch::Receiver<Option<Outcome>>,
    /// When it was registered: a reader holding a stale value waits for it
    /// only until `started + stale_wait`.
    pub started: Deadline,
    /// When it ends at the latest (its answer, or a timeout).
    pub deadline: Deadline,
    /// The task running the read, once spawned, so a detached flight can be
    /// stopped and give its upstream slot back at once.
    pub task: Option<AbortHandle>,
    /// An INVOKE already waited its whole hold for it (set on the
    /// registered flight only): a read that slow is not waited for again.
    pub outwaited: bool,
    /// A forced read (`refreshNow`) joined or started it (registered flight
    /// only): the value it lands counts as forced for the rate limit.
    pub forced: bool,
    /// A reader waits for it (registered flight only): the value it lands
    /// counts as read, so it is refreshed once before it expires, as a
    /// value read from the cache is (a prefetch's or a refresh's is not).
    pub awaited: bool,
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// Register a new flight for `key`, ending by `deadline`, and return it
    /// with the sender that answers it. The caller starts the read.
    pub(super) fn register(
        &self,
        state: &mut super::State,
        key: &Key,
        deadline: Deadline,
    ) -> (Flight, Answer) {
        let (tx, rx) = watch::channel(None);
        state.next_flight = state.next_flight.wrapping_add(1);
        let flight = Flight {
            id: state.next_flight,
            rx,
            started: Deadline::now(),
            deadline,
            task: None,
            outwaited: false,
            forced: false,
            awaited: false,
        };
        state.flights.insert(key.clone(), flight.clone());
        (flight, tx)
    }

    /// Spawn the one upstream read for `key` and register it as the flight.
    pub(super) fn start_flight(&self, state: &mut super::State, key: &Key) -> Flight {
        let deadline = Deadline::now() + self.inner.config.flight_deadline(key);
        let (flight, tx) = self.register(state, key, deadline);
        self.spawn_fetch(state, key.clone(), flight.id, tx, deadline);
        flight
    }

    /// Spawn the upstream read of `key` that ends its registered flight `id`
    /// by `deadline`, answering the flight's waiters through `tx`. Spawned,
    /// so a caller that goes away (a dropped HTTP request) never cancels a
    /// read other callers are waiting on.
    pub(super) fn spawn_fetch(
        &self,
        state: &mut super::State,
        key: Key,
        id: u64,
        tx: Answer,
        deadline: Deadline,
    ) {
        let flight = key.clone();
        // Nothing servable held: a cold read, which may try more (a
        // replica region) than a refresh, whose readers get the old value.
        let now = self.inner.clock.now();
        let cold = !state.entries.peek(&key).is_some_and(|slot| {
            now < slot.fresh_until || slot.stale_until.is_none_or(|until| now < until)
        });
        let guard = FlightGuard {
            cache: self.clone(),
            key: Some(key),
            id,
        };
        let task = tokio::spawn(async move {
            let mut guard = guard;
            let Some(key) = guard.key.clone() else {
                return;
            };
            let inner = &guard.cache.inner;
            let value = match guard.cache.still_current(&key, deadline).await {
                // Unchanged: the same value, for another TTL.
                Ok(Some(held)) => Ok(held),
                Ok(None) if cold => inner
                    .call(key.kind(), deadline, inner.fetcher.fetch_cold(&key))
                    .await
                    .map(|record: Record| Arc::new(Cached::from_record(record))),
                Ok(None) => inner
                    .call(key.kind(), deadline, inner.fetcher.fetch(&key))
                    .await
                    .map(|record: Record| Arc::new(Cached::from_record(record))),
                Err(e) => Err(e),
            };
            let now = inner.clock.now();
            let outcome = inner.land(&mut inner.lock(), &key, id, value, now);
            guard.key = None;
            // Nobody waiting is fine: the value is cached all the same.
            let _ = tx.send(Some(outcome));
        });
        if let Some(f) = state.flights.get_mut(&flight).filter(|f| f.id == id) {
            f.deadline = deadline;
            f.task = Some(task.abort_handle());
        }
    }
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// With the version check on, the value held for `key` if the service
    /// says it is still the current one (`Ok(Some)`), `Ok(None)` to read
    /// it; the check's failure fails the refresh as a read's would.
    async fn still_current(
        &self,
        key: &Key,
        deadline: Deadline,
    ) -> Result<Option<Arc<Cached>>, Error> {
        let inner = &self.inner;
        if !inner.config.version_check || key.kind() != Kind::Secret || key.is_pinned() {
            return Ok(None);
        }
        let held = inner
            .lock()
            .entries
            .peek(key)
            .map(|slot| Arc::clone(&slot.value));
        let Some((held, version)) = held.and_then(|v| v.version_id().map(|id| (v, id))) else {
            return Ok(None);
        };
        Counters::inc(&inner.counters.version_checks);
        let current = inner
            .call(
                key.kind(),
                deadline,
                inner.fetcher.revalidate(key, &version),
            )
            .await?;
        if current {
            Counters::inc(&inner.counters.unchanged);
        }
        Ok(current.then_some(held))
    }
}

impl<F: Fetch, C: Clock> Inner<F, C> {
    /// Run one upstream `call` for a `kind` under the concurrency bound and
    /// within `deadline` (waiting for a slot included), counting it.
    pub(super) async fn call<T>(
        &self,
        kind: Kind,
        deadline: Deadline,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut called = false;
        let attempt = async {
            // The semaphore is never closed; were it, reading unbounded
            // beats failing every read.
            let _permit = self.upstream.acquire().await.ok();
            called = true;
            Counters::inc(&self.counters.upstream_calls);
            let began = Deadline::now();
            let result = call.await;
            if result.is_ok() {
                self.latency.record(began.elapsed());
            }
            result
        };
        let result = match tokio::time::timeout_at(deadline, attempt).await {
            Ok(result) => result,
            Err(_) => Err(deadline_passed(kind)),
        };
        if let (true, Err(e)) = (called, &result) {
            self.counters.failed(e.kind());
        }
        result
    }
}

/// Unregisters a flight whose task died before landing (a panicking
/// fetcher), so the key is not stuck behind a flight that never lands.
struct FlightGuard<F: Fetch, C: Clock> {
    cache: SecretCache<F, C>,
    key: Option<Key>,
    id: u64,
}

impl<F: Fetch, C: Clock> Drop for FlightGuard<F, C> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            unregister(&mut self.cache.inner.lock(), &key, self.id);
        }
    }
}

/// The flights a batch read (a prefetch, a batch of secrets or
/// parameters) registered and has not answered yet. Dropped early (the
/// caller went away mid-call, the prefetch was cancelled), it unregisters
/// them: their other waiters get an error at once instead of waiting, and
/// the next reader reads afresh.
pub(super) struct PendingFlights<F: Fetch, C: Clock> {
    pub cache: SecretCache<F, C>,
    pub flights: HashMap<Key, (u64, Answer)>,
}

impl<F: Fetch, C: Clock> Drop for PendingFlights<F, C> {
    fn drop(&mut self) {
        if self.flights.is_empty() {
            return;
        }
        let mut state = self.cache.inner.lock();
        for (key, (id, _)) in &self.flights {
            unregister(&mut state, key, *id);
        }
    }
}

/// Remove `key`'s flight if it is still flight `id`; whether it was.
pub(super) fn unregister(state: &mut super::State, key: &Key, id: u64) -> bool {
    if state.flights.get(key).is_some_and(|f| f.id == id) {
        state.flights.remove(key);
        true
    } else {
        false
    }
}

/// Wait for a flight's answer until `until`; `None` if it has not come by then.
pub(super) async fn wait_until(
    rx: &mut watch::Receiver<Option<Outcome>>,
    until: Deadline,
) -> Option<Outcome> {
    let answer = async {
        match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(abandoned())),
            Err(_) => Err(abandoned()),
        }
    };
    tokio::time::timeout_at(until, answer).await.ok()
}

/// The error of a read that ran out of time. Transient: the cache serves
/// stale through it and backs off.
pub(super) fn deadline_passed(kind: Kind) -> Error {
    let service = match kind {
        Kind::Secret => "Secrets Manager",
        Kind::Parameter => "Parameter Store",
    };
    Error::new(
        ErrorKind::Timeout,
        format!("no answer from {service} within the read deadline"),
    )
}

/// The error of a read whose flight went away unanswered (a cancelled
/// prefetch, a read detached by a restore). Like a broken connection it
/// says nothing about the value: transient, so a stale value is served.
fn abandoned() -> Error {
    Error::new(ErrorKind::Connection, "the upstream read was abandoned")
}
