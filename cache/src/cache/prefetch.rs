//! [`SecretCache::prefetch`]: the start-up load, under the same flights
//! readers use; and the batched refresh `refresh_due` makes at INVOKE.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant as Deadline;

use super::flight::{deadline_passed, wait_until, Flight, PendingFlights};
use super::{closed, SecretCache};
use crate::clock::Clock;
use crate::{Cached, Error, ErrorKind, Fetch, Key, Kind};

/// Most ids `BatchGetSecretValue` takes per call.
const BATCH: usize = 20;

/// What [`SecretCache::prefetch`] did.
#[derive(Debug, Default)]
pub struct PrefetchReport {
    /// Ids now cached.
    pub loaded: Vec<String>,
    /// Ids that could not be read, with why.
    pub failed: Vec<(String, Error)>,
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// Load the current versions of `ids`: one by one when there are at
    /// most [`CacheConfig::prefetch_singles_up_to`](crate::CacheConfig)
    /// (the quota of single reads fits a fleet's cold-start surge five
    /// times better), else 20 per `BatchGetSecretValue`, reading one by one
    /// whatever a batch call could not answer (the role may not call
    /// `BatchGetSecretValue`, the call was throttled or ran out of its
    /// deadline). Batches go one after the other: at start-up a whole fleet
    /// prefetches at once, against a quota of 100 batch calls per second
    /// per account.
    ///
    /// Every id is registered as in flight before the first batch call, so
    /// a reader asking for one meanwhile (the function's init, racing the
    /// prefetch) waits for the batch instead of reading it a second time.
    ///
    /// With caching of secrets off it does nothing: nothing read would be
    /// kept.
    pub async fn prefetch(&self, ids: &[String]) -> PrefetchReport {
        let inner = &self.inner;
        let mut report = PrefetchReport::default();
        let deadline = inner.config.deadline(Kind::Secret);
        let mut batch = PendingFlights {
            cache: self.clone(),
            flights: HashMap::new(),
        };
        let mut ours: Vec<&String> = Vec::new();
        let mut waits: Vec<(&String, Flight)> = Vec::new();
        {
            let mut state = inner.lock();
            if state.closed {
                report.failed = ids.iter().map(|id| (id.clone(), closed())).collect();
                return report;
            }
            if !inner.config.caching_enabled(Kind::Secret) {
                return report;
            }
            // The latest a flight of ours can end: every batch before its
            // own runs to the deadline, then its single read does.
            let batches = u32::try_from(ids.len().div_ceil(BATCH)).unwrap_or(u32::MAX);
            let latest = Deadline::now() + deadline.saturating_mul(batches.saturating_add(1));
            for id in ids {
                let key = Key::secret(id.clone());
                let flight = match state.flights.get(&key) {
                    // Already being read (or listed twice): wait for that read.
                    Some(flight) => flight.clone(),
                    None => {
                        let (flight, tx) = self.register(&mut state, &key, latest);
                        batch.flights.insert(key, (flight.id, tx));
                        ours.push(id);
                        flight
                    }
                };
                waits.push((id, flight));
            }
        }
        let batched = ours.len() > inner.config.prefetch_singles_up_to;
        for chunk in ours.chunks(BATCH) {
            let chunk: Vec<String> = chunk.iter().map(|id| (*id).clone()).collect();
            let items = if batched {
                let call = inner.fetcher.fetch_batch(&chunk);
                match inner
                    .call(Kind::Secret, Deadline::now() + deadline, call)
                    .await
                {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::debug!(error = %e, "batch read failed; reading one by one");
                        Vec::new()
                    }
                }
            } else {
                // Nothing answered: every id is read one by one below.
                Vec::new()
            };
            let mut answers = Vec::with_capacity(items.len());
            {
                let now = inner.clock.now();
                let mut state = inner.lock();
                for (id, result) in items {
                    let key = Key::secret(id);
                    // An id the call was not asked for, or answered twice.
                    let Some((flight, tx)) = batch.flights.remove(&key) else {
                        continue;
                    };
                    let outcome = result.map(|record| Arc::new(Cached::from_record(record)));
                    answers.push((tx, inner.land(&mut state, &key, flight, outcome, now)));
                }
                // What the batch left unanswered is read one by one, each
                // under the flight its readers already wait on, with a
                // deadline of its own.
                for id in chunk {
                    let key = Key::secret(id);
                    if let Some((flight, tx)) = batch.flights.remove(&key) {
                        let single = Deadline::now() + deadline;
                        self.spawn_fetch(&mut state, key, flight, tx, single);
                    }
                }
            }
            for (tx, outcome) in answers {
                let _ = tx.send(Some(outcome));
            }
        }
        // Every flight waited on now ends within one deadline: ours are
        // single reads just spawned, the others were started earlier.
        let until = Deadline::now() + deadline;
        for (id, mut flight) in waits {
            match wait_until(&mut flight.rx, until).await {
                Some(Ok(_)) => report.loaded.push(id.clone()),
                Some(Err(e)) => report.failed.push((id.clone(), e)),
                None => report
                    .failed
                    .push((id.clone(), deadline_passed(Kind::Secret))),
            }
        }
        report
    }
}

/// Most names `GetParameters` takes per call.
const PARAMETER_BATCH: usize = 10;

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// Start loading the latest versions of `names`, 10 per
    /// `GetParameters`, and return at once: readers meanwhile wait on the
    /// same flights. Parameter Store's quota (40 requests/s by default,
    /// shared by `GetParameter` and `GetParameters`) is the tightest a
    /// fleet meets: a cold start reading 5 parameters one by one costs 5 of
    /// it, a prefetch 1 (the fleet simulation, `bench/`). Names already
    /// held or in flight are skipped; returns how many loads it started.
    pub fn prefetch_parameters(&self, names: &[String], with_decryption: bool) -> usize {
        let inner = &self.inner;
        let mut state = inner.lock();
        if state.closed || !inner.config.caching_enabled(Kind::Parameter) {
            return 0;
        }
        let mut keys: Vec<Key> = Vec::new();
        for name in names {
            let key = Key::parameter(name.clone(), with_decryption);
            if !state.entries.contains(&key)
                && !state.flights.contains_key(&key)
                && !keys.contains(&key)
            {
                keys.push(key);
            }
        }
        let started = keys.len();
        match started {
            0 => {}
            1 => {
                self.start_flight(&mut state, &keys[0]);
            }
            _ => {
                self.spawn_batch_refresh(&mut state, Kind::Parameter, keys);
            }
        }
        started
    }

    /// Refresh `keys` (current secrets, or latest parameters read with one
    /// `with_decryption`; at least two, none in flight) with batch calls,
    /// 20 secrets per `BatchGetSecretValue` or 10 parameters per
    /// `GetParameters`, in a task of its own; whatever a batch does not
    /// answer is read one by one under the same flight. Returns the
    /// flights, which end by two deadlines at the latest (the batch, then
    /// a single read).
    pub(super) fn spawn_batch_refresh(
        &self,
        state: &mut super::State,
        kind: Kind,
        keys: Vec<Key>,
    ) -> Vec<Flight> {
        let deadline = self.inner.config.deadline(kind);
        let latest = Deadline::now() + deadline.saturating_mul(2);
        let mut batch = PendingFlights {
            cache: self.clone(),
            flights: HashMap::new(),
        };
        let mut flights = Vec::with_capacity(keys.len());
        for key in &keys {
            let (flight, tx) = self.register(state, key, latest);
            batch.flights.insert(key.clone(), (flight.id, tx));
            flights.push(flight);
        }
        let size = match kind {
            Kind::Secret => BATCH,
            Kind::Parameter => PARAMETER_BATCH,
        };
        let todo = keys.clone();
        let task = tokio::spawn(async move {
            let mut batch = batch;
            let inner = &batch.cache.inner;
            for chunk in todo.chunks(size) {
                let ids: Vec<String> = chunk.iter().map(|k| k.id().to_owned()).collect();
                let until = Deadline::now() + deadline;
                let answer = match chunk.first() {
                    Some(Key::Parameter(p)) => {
                        let call = inner.fetcher.fetch_parameters(&ids, p.with_decryption);
                        inner.call(kind, until, call).await
                    }
                    _ => {
                        let call = inner.fetcher.fetch_batch(&ids);
                        inner.call(kind, until, call).await
                    }
                };
                // A batch that failed as a whole is read one by one only
                // where that can help: the call was not permitted, or was
                // throttled and single reads have a quota of their own
                // (GetSecretValue; GetParameter shares GetParameters'), or
                // the key holds no value to serve meanwhile. Otherwise the
                // refresh fails at once and the values are served stale:
                // single reads against a service that is down, or against
                // the very quota that throttled, only feed the storm (the
                // fleet simulation, `bench/`).
                let (items, failed) = match answer {
                    Ok(items) => (items, None),
                    Err(e) => (Vec::new(), Some(e)),
                };
                let mut answers = Vec::with_capacity(items.len());
                {
                    let now = inner.clock.now();
                    let mut state = inner.lock();
                    for (id, result) in items {
                        // The key asked for under this id (same selector).
                        let Some(key) = chunk.iter().find(|k| k.id() == id) else {
                            continue;
                        };
                        let Some((flight, tx)) = batch.flights.remove(key) else {
                            continue;
                        };
                        let outcome = result.map(|record| Arc::new(Cached::from_record(record)));
                        answers.push((tx, inner.land(&mut state, key, flight, outcome, now)));
                    }
                    for key in chunk {
                        let Some((flight, tx)) = batch.flights.remove(key) else {
                            continue;
                        };
                        let give_up = failed.as_ref().filter(|e| {
                            e.is_transient()
                                && !(e.kind() == ErrorKind::Throttled && kind == Kind::Secret)
                                && state.entries.contains(key)
                        });
                        match give_up {
                            Some(e) => {
                                let outcome = Err(e.clone());
                                answers
                                    .push((tx, inner.land(&mut state, key, flight, outcome, now)));
                            }
                            None => {
                                let single = Deadline::now() + deadline;
                                batch.cache.spawn_fetch(
                                    &mut state,
                                    key.clone(),
                                    flight,
                                    tx,
                                    single,
                                );
                            }
                        }
                    }
                }
                for (tx, outcome) in answers {
                    let _ = tx.send(Some(outcome));
                }
            }
        });
        let abort = task.abort_handle();
        for key in &keys {
            if let Some(f) = state.flights.get_mut(key) {
                f.task = Some(abort.clone());
            }
        }
        flights
    }
}
