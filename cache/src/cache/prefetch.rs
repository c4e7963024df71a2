//! [`SecretCache::prefetch`]: the start-up load, 20 secrets per
//! `BatchGetSecretValue`, under the same flights readers use.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant as Deadline;

use super::flight::{deadline_passed, unregister, wait_until, Answer, Flight};
use super::{closed, SecretCache};
use crate::clock::Clock;
use crate::{Cached, Error, Fetch, Key, Kind};

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
        let mut batch = BatchFlights {
            cache: self.clone(),
            pending: HashMap::new(),
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
                        batch.pending.insert(key, (flight.id, tx));
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
                    let Some((flight, tx)) = batch.pending.remove(&key) else {
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
                    if let Some((flight, tx)) = batch.pending.remove(&key) {
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

/// The flights a prefetch registered and has not answered yet. Dropped
/// early (the prefetch cancelled), it unregisters them: their waiters get
/// an error instead of waiting, and the next reader reads afresh.
struct BatchFlights<F: Fetch, C: Clock> {
    cache: SecretCache<F, C>,
    pending: HashMap<Key, (u64, Answer)>,
}

impl<F: Fetch, C: Clock> Drop for BatchFlights<F, C> {
    fn drop(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut state = self.cache.inner.lock();
        for (key, (id, _)) in &self.pending {
            unregister(&mut state, key, *id);
        }
    }
}
