//! Many values in one read: [`SecretCache::get_secrets`] and
//! [`SecretCache::get_parameters`].
//!
//! Each value is its own entry, the very one a single read uses, so a batch
//! and a single read of the same id share the value, its TTL and its
//! flight. What is held (fresh, stale or being refreshed), already in
//! flight, or failed and backing off takes the ordinary read path. The
//! rest, the cold misses, are registered as flights first, so concurrent
//! readers of any of them wait for this batch, and then fetched together:
//! one `BatchGetSecretValue` (20 ids) or `GetParameters` (10 names) per
//! chunk. What the batch call does not answer, for an id or at all
//! (throttled, not allowed, not offered by the fetcher, out of time), is
//! read one by one under the flights already registered.
//!
//! Time: the batch call has half the read's deadline, so the single reads
//! it may fall back to still have the other half; every value ends by the
//! read's own deadline, as a single read does.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant as Deadline;

use super::flight::PendingFlights;
use super::{closed, Mode, Plan, SecretCache};
use crate::clock::Clock;
use crate::fetch::{BatchItem, PARAMETERS_BATCH, SECRETS_BATCH};
use crate::metrics::Counters;
use crate::{Cached, Error, Fetch, Key, Kind};

/// The batch call that reads a group's cold misses.
#[derive(Clone, Copy)]
enum Call {
    /// `BatchGetSecretValue`: current versions of secrets.
    Secrets,
    /// `GetParameters`: latest versions of parameters.
    Parameters { with_decryption: bool },
}

impl Call {
    fn kind(self) -> Kind {
        match self {
            Call::Secrets => Kind::Secret,
            Call::Parameters { .. } => Kind::Parameter,
        }
    }

    fn chunk(self) -> usize {
        match self {
            Call::Secrets => SECRETS_BATCH,
            Call::Parameters { .. } => PARAMETERS_BATCH,
        }
    }

    fn key(self, id: &str) -> Key {
        match self {
            Call::Secrets => Key::secret(id),
            Call::Parameters { with_decryption } => Key::parameter(id, with_decryption),
        }
    }
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// The current versions of secrets `ids`, in order, each its own entry
    /// (the same one [`SecretCache::get`] reads with [`Key::secret`]). Held
    /// values are answered as by `get`; the cold misses are read together
    /// with `BatchGetSecretValue`. One id's failure is that id's outcome,
    /// never the others'.
    pub async fn get_secrets(&self, ids: &[String]) -> Vec<Result<Arc<Cached>, Error>> {
        self.read_group(ids, Call::Secrets).await
    }

    /// The latest versions of parameters `names`, in order, as
    /// [`SecretCache::get_secrets`] does for secrets, with `GetParameters`
    /// (see [`Fetch::fetch_parameters`]).
    pub async fn get_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> Vec<Result<Arc<Cached>, Error>> {
        self.read_group(names, Call::Parameters { with_decryption })
            .await
    }

    async fn read_group(&self, ids: &[String], call: Call) -> Vec<Result<Arc<Cached>, Error>> {
        let inner = &self.inner;
        let kind = call.kind();
        let keys: Vec<Key> = ids.iter().map(|id| call.key(id)).collect();
        if !inner.config.caching_enabled(kind) {
            // Nothing is kept: each read goes upstream as a single read would.
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                out.push(self.read_uncached(key).await);
            }
            return out;
        }
        let began = Deadline::now();
        let deadline = began + inner.config.deadline(kind);
        let mut pending = PendingFlights {
            cache: self.clone(),
            flights: HashMap::new(),
        };
        // Per key: the plan of a held, in-flight or failed key, or the
        // flight registered for a cold miss (the plan of which is to wait).
        let mut plans: Vec<Option<Plan>> = Vec::with_capacity(keys.len());
        let mut cold: Vec<&String> = Vec::new();
        {
            let now = inner.clock.now();
            let mut state = inner.lock();
            if state.closed {
                return keys.iter().map(|_| Err(closed())).collect();
            }
            for (id, key) in ids.iter().zip(&keys) {
                let backing_off = state.failures.peek(key).is_some_and(|f| now < f.retry_at);
                let ordinary =
                    state.entries.contains(key) || state.flights.contains_key(key) || backing_off;
                if ordinary {
                    plans.push(None);
                } else {
                    Counters::inc(&inner.counters.misses);
                    let (flight, tx) = self.register(&mut state, key, deadline);
                    pending.flights.insert(key.clone(), (flight.id, tx));
                    cold.push(id);
                    plans.push(Some(Plan::Wait {
                        flight,
                        stale: None,
                    }));
                }
            }
        }
        // The ordinary reads start now (their flights run meanwhile).
        for (plan, key) in plans.iter_mut().zip(&keys) {
            if plan.is_none() {
                *plan = Some(self.plan(key, Mode::Cached, Arc::clone));
            }
        }
        let batch_deadline = began + inner.config.deadline(kind) / 2;
        for chunk in cold.chunks(call.chunk()) {
            let chunk: Vec<String> = chunk.iter().map(|id| (*id).clone()).collect();
            let items = match call {
                Call::Secrets => {
                    let fetch = inner.fetcher.fetch_batch(&chunk);
                    inner.call(kind, batch_deadline, fetch).await
                }
                Call::Parameters { with_decryption } => {
                    let fetch = inner.fetcher.fetch_parameters(&chunk, with_decryption);
                    inner.call(kind, batch_deadline, fetch).await
                }
            };
            let items = items.unwrap_or_else(|e| {
                tracing::debug!(error = %e, "batch read failed; reading one by one");
                Vec::new()
            });
            self.land_batch(&mut pending, call, &chunk, items, deadline);
        }
        let mut out = Vec::with_capacity(keys.len());
        for (plan, key) in plans.into_iter().zip(&keys) {
            let plan = plan.unwrap_or_else(|| Plan::Done(Err(closed())));
            out.push(self.finish(key, began, plan).await);
        }
        out
    }

    /// Land what a batch call answered for `chunk`, and start single reads,
    /// ending by `deadline`, for the ids it left unanswered.
    fn land_batch(
        &self,
        pending: &mut PendingFlights<F, C>,
        call: Call,
        chunk: &[String],
        items: Vec<BatchItem>,
        deadline: Deadline,
    ) {
        let inner = &self.inner;
        let mut answers = Vec::with_capacity(items.len());
        {
            let now = inner.clock.now();
            let mut state = inner.lock();
            for (id, result) in items {
                // An id the call was not asked for, or answered twice.
                let Some((flight, tx)) = pending.flights.remove(&call.key(&id)) else {
                    continue;
                };
                let key = call.key(&id);
                let outcome = result.map(|record| Arc::new(Cached::from_record(record)));
                answers.push((tx, inner.land(&mut state, &key, flight, outcome, now)));
            }
            for id in chunk {
                let key = call.key(id);
                if let Some((flight, tx)) = pending.flights.remove(&key) {
                    self.spawn_fetch(&mut state, key, flight, tx, deadline);
                }
            }
        }
        for (tx, outcome) in answers {
            let _ = tx.send(Some(outcome));
        }
    }
}

#[cfg(test)]
mod tests;
