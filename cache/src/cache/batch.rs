//! Many values in one upstream call, in one place: the batch landing that
//! the prefetch, the INVOKE-time refresh and the batch reads
//! ([`SecretCache::get_secrets`], [`SecretCache::get_parameters`]) share.
//!
//! Each value is its own entry, the very one a single read uses, so a batch
//! and a single read of the same id share the value, its TTL and its
//! flight. A batch registers a flight for each key it reads first, so a
//! reader of any of them meanwhile waits for the batch; then one task,
//! spawned so that no caller going away cancels what others wait on,
//! makes one `BatchGetSecretValue` or `GetParameters` call per chunk of the
//! fetcher's [`batch_limit`](crate::Fetch::batch_limit), lands what each
//! answers, and reads the rest one by one under the flights already
//! registered ([`SecretCache::spawn_batch`]).
//!
//! A batch read takes what is held (fresh, stale or being refreshed),
//! already in flight, or failed and backing off down the ordinary read
//! path; only its cold misses go into a batch. The batch call has half the
//! read's deadline, so the single reads it may fall back to still have the
//! other half.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant as Deadline;

use super::flight::{Flight, PendingFlights};
use super::{closed, Mode, Plan, SecretCache, State};
use crate::clock::Clock;
use crate::key::Role;
use crate::metrics::Counters;
use crate::{Cached, Error, ErrorKind, Fetch, Key, Kind};

/// The keys one batch call can read together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Group {
    /// `BatchGetSecretValue`: current versions of secrets.
    Secrets,
    /// `GetParameters`: latest versions of parameters, one decryption
    /// setting for all names.
    Parameters { with_decryption: bool },
}

impl Group {
    /// The batch call that can read `key`, if any: only the current
    /// version of a secret (`BatchGetSecretValue` reads no other) and the
    /// latest version of a parameter (`GetParameters` takes names; a
    /// selector read stays out of batches, so answers are never matched
    /// across versions), read as the function itself (a role's reads go
    /// one by one: rare, and each role its own credentials).
    pub fn of(key: &Key) -> Option<Group> {
        if key.role().is_some() {
            return None;
        }
        match key {
            Key::Secret(r) if r.version_id.is_none() && r.version_stage.is_none() => {
                Some(Group::Secrets)
            }
            Key::Parameter(p) if p.version.is_none() && p.label.is_none() => {
                Some(Group::Parameters {
                    with_decryption: p.with_decryption,
                })
            }
            _ => None,
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Group::Secrets => Kind::Secret,
            Group::Parameters { .. } => Kind::Parameter,
        }
    }
}

/// How a batch treats its keys.
#[derive(Clone, Copy, Debug)]
pub(super) struct BatchPlan {
    /// Whether batch calls are made at all: a short prefetch reads one by
    /// one, on `GetSecretValue`'s larger quota.
    pub batched: bool,
    /// Each batch call's budget, from its start.
    pub call: Duration,
    /// When the single reads of what a call left unanswered end: at this
    /// instant, or one read deadline after they start.
    pub singles_until: Option<Deadline>,
    /// A refresh spares single reads after a batch call that failed as a
    /// whole, where they cannot help (see [`spares`]).
    pub refresh: bool,
}

impl<F: Fetch, C: Clock> SecretCache<F, C> {
    /// The current versions of secrets `ids`, in order, each its own entry
    /// (the same one [`SecretCache::get`] reads with [`Key::secret`]). Held
    /// values are answered as by `get`; the cold misses are read together
    /// with `BatchGetSecretValue`. One id's failure is that id's outcome,
    /// never the others'.
    pub async fn get_secrets(&self, ids: &[String]) -> Vec<Result<Arc<Cached>, Error>> {
        self.get_secrets_as(ids, None).await
    }

    /// [`SecretCache::get_secrets`] read as `role` (one by one, each its
    /// own entry of that role).
    pub async fn get_secrets_as(
        &self,
        ids: &[String],
        role: Role,
    ) -> Vec<Result<Arc<Cached>, Error>> {
        let keys = ids
            .iter()
            .map(|id| Key::secret(id.as_str()).with_role(role.clone()))
            .collect();
        self.read_group(keys, Kind::Secret).await
    }

    /// The latest versions of parameters `names`, in order, as
    /// [`SecretCache::get_secrets`] does for secrets, with `GetParameters`
    /// (see [`Fetch::fetch_parameters`]).
    pub async fn get_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> Vec<Result<Arc<Cached>, Error>> {
        self.get_parameters_as(names, with_decryption, None).await
    }

    /// [`SecretCache::get_parameters`] read as `role` (one by one).
    pub async fn get_parameters_as(
        &self,
        names: &[String],
        with_decryption: bool,
        role: Role,
    ) -> Vec<Result<Arc<Cached>, Error>> {
        let keys = names
            .iter()
            .map(|name| Key::parameter(name.as_str(), with_decryption).with_role(role.clone()))
            .collect();
        self.read_group(keys, Kind::Parameter).await
    }

    /// Read `keys` (all of `kind`): the cold misses a batch call can read
    /// go in one batch, the others one by one.
    async fn read_group(&self, keys: Vec<Key>, kind: Kind) -> Vec<Result<Arc<Cached>, Error>> {
        let inner = &self.inner;
        if !inner.config.caching_enabled(kind) {
            // Nothing is kept: each read goes upstream as a single read would.
            let mut out = Vec::with_capacity(keys.len());
            for key in &keys {
                out.push(self.read_uncached(key).await);
            }
            return out;
        }
        self.check_restore();
        let began = Deadline::now();
        let deadline = began + inner.config.deadline(kind);
        // Per key: the plan of a held, in-flight or failed key (made below,
        // once the cold ones are registered), or the cold key's flight.
        let mut plans: Vec<Option<Plan>> = Vec::with_capacity(keys.len());
        {
            let now = inner.clock.now();
            let mut state = inner.lock();
            if state.closed {
                return keys.iter().map(|_| Err(closed())).collect();
            }
            let mut cold: Vec<Key> = Vec::new();
            for key in &keys {
                let backing_off = state.failures.peek(key).is_some_and(|f| now < f.retry_at);
                let ordinary =
                    state.entries.contains(key) || state.flights.contains_key(key) || backing_off;
                plans.push(None);
                if !ordinary && !cold.contains(key) {
                    Counters::inc(&inner.counters.misses);
                    cold.push(key.clone());
                }
            }
            let plan = BatchPlan {
                batched: true,
                call: inner.config.deadline(kind) / 2,
                singles_until: Some(deadline),
                refresh: false,
            };
            // Keys no batch call reads are read one by one.
            let (batched, single): (Vec<Key>, Vec<Key>) =
                cold.into_iter().partition(|k| Group::of(k).is_some());
            let mut flights: Vec<(Key, Flight)> = single
                .into_iter()
                .map(|key| {
                    let flight = self.start_flight(&mut state, &key);
                    (key, flight)
                })
                .collect();
            if let Some(group) = batched.first().and_then(Group::of) {
                let started = self.spawn_batch(&mut state, group, batched.clone(), deadline, plan);
                flights.extend(batched.into_iter().zip(started));
            }
            for (key, flight) in flights {
                if let Some(f) = state.flights.get_mut(&key) {
                    f.awaited = true;
                }
                let i = keys.iter().position(|k| *k == key).unwrap_or_default();
                plans[i] = Some(Plan::Wait {
                    flight,
                    stale: None,
                });
            }
        }
        // The ordinary reads start now (the batch runs meanwhile).
        for (plan, key) in plans.iter_mut().zip(&keys) {
            if plan.is_none() {
                *plan = Some(self.plan(key, Mode::Cached, Arc::clone));
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for (plan, key) in plans.into_iter().zip(&keys) {
            let plan = plan.unwrap_or_else(|| Plan::Done(Err(closed())));
            out.push(self.finish(key, began, plan).await);
        }
        out
    }

    /// Register a flight, ending by `flights_until`, for each of `keys`
    /// (of one `group`, none in flight), and spawn the one task that reads
    /// them as `plan` says: one batch call per chunk of the fetcher's batch
    /// limit, one after the other (a fleet's cold starts meet the batch
    /// call's small quota), landing what each answers; what a call leaves
    /// unanswered is read one by one under the flight its readers already
    /// wait on. Returns the flights, in the order of `keys`.
    ///
    /// The task owns the flights: if it is aborted (a restore detaches
    /// every flight) they are unregistered and their waiters told at once.
    pub(super) fn spawn_batch(
        &self,
        state: &mut State,
        group: Group,
        keys: Vec<Key>,
        flights_until: Deadline,
        plan: BatchPlan,
    ) -> Vec<Flight> {
        if keys.is_empty() {
            return Vec::new();
        }
        let mut pending = PendingFlights {
            cache: self.clone(),
            flights: HashMap::new(),
        };
        let mut flights = Vec::with_capacity(keys.len());
        for key in &keys {
            let (flight, tx) = self.register(state, key, flights_until);
            pending.flights.insert(key.clone(), (flight.id, tx));
            flights.push(flight);
        }
        let cache = self.clone();
        let todo = keys.clone();
        let task = tokio::spawn(async move {
            let mut pending = pending;
            let limit = cache.inner.fetcher.batch_limit(group.kind()).max(1);
            for chunk in todo.chunks(limit) {
                cache.read_chunk(&mut pending, group, chunk, plan).await;
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

    /// One batch call for `chunk` (unless the plan reads one by one), its
    /// answers landed, and single reads started for the rest.
    async fn read_chunk(
        &self,
        pending: &mut PendingFlights<F, C>,
        group: Group,
        chunk: &[Key],
        plan: BatchPlan,
    ) {
        let inner = &self.inner;
        let kind = group.kind();
        let (items, failed) = if plan.batched && chunk.len() > 1 {
            let ids: Vec<String> = chunk.iter().map(|k| k.id().to_owned()).collect();
            let until = Deadline::now() + plan.call;
            let answer = match group {
                Group::Secrets => {
                    inner
                        .call(kind, until, inner.fetcher.fetch_batch(&ids))
                        .await
                }
                Group::Parameters { with_decryption } => {
                    let call = inner.fetcher.fetch_parameters(&ids, with_decryption);
                    inner.call(kind, until, call).await
                }
            };
            match answer {
                Ok(items) => (items, None),
                Err(e) => {
                    tracing::debug!(error = %e, "batch call failed; reading one by one");
                    (Vec::new(), Some(e))
                }
            }
        } else {
            // Nothing answered: every key is read one by one below.
            (Vec::new(), None)
        };
        let mut answers = Vec::with_capacity(items.len());
        {
            let now = inner.clock.now();
            let mut state = inner.lock();
            for (id, result) in items {
                // The key asked for under this id; an id the call was not
                // asked for, or answered twice, is dropped.
                let Some(key) = chunk.iter().find(|k| k.id() == id) else {
                    continue;
                };
                let Some((flight, tx)) = pending.flights.remove(key) else {
                    continue;
                };
                let outcome = result.map(|record| Arc::new(Cached::from_record(record)));
                answers.push((tx, inner.land(&mut state, key, flight, outcome, now)));
            }
            let singles_until = plan
                .singles_until
                .unwrap_or_else(|| Deadline::now() + inner.config.deadline(kind));
            for key in chunk {
                let Some((flight, tx)) = pending.flights.remove(key) else {
                    continue;
                };
                let spared = failed
                    .as_ref()
                    .filter(|e| plan.refresh && spares(e, kind, state.entries.contains(key)));
                match spared {
                    Some(e) => {
                        let outcome = Err(e.clone());
                        answers.push((tx, inner.land(&mut state, key, flight, outcome, now)));
                    }
                    None => self.spawn_fetch(&mut state, key.clone(), flight, tx, singles_until),
                }
            }
        }
        for (tx, outcome) in answers {
            // Nobody waiting is fine: the value is cached all the same.
            let _ = tx.send(Some(outcome));
        }
    }
}

/// Whether a refresh whose batch call failed as a whole with `error` ends
/// there for a key (served stale meanwhile) instead of reading it alone.
///
/// Single reads help only where the call was not permitted, or was
/// throttled and single reads have a quota of their own (`GetSecretValue`;
/// `GetParameter` shares `GetParameters`'), or the key holds no value to
/// serve meanwhile. Otherwise single reads against a service that is down,
/// or against the very quota that throttled, only feed the storm (the
/// fleet simulation, `bench/`).
fn spares(error: &Error, kind: Kind, held: bool) -> bool {
    error.is_transient() && !(error.kind() == ErrorKind::Throttled && kind == Kind::Secret) && held
}

#[cfg(test)]
mod tests;
