//! [`SecretCache::prefetch`] and [`SecretCache::prefetch_parameters`]: the
//! start-up loads, under the same flights readers use and through the one
//! batch landing ([`super::batch`]).

use std::sync::Arc;

use tokio::time::Instant as Deadline;

use super::batch::{BatchPlan, Group};
use super::flight::{deadline_passed, wait_until, Flight};
use super::{closed, SecretCache};
use crate::clock::Clock;
use crate::{Error, Fetch, Key, Kind};

/// What [`SecretCache::prefetch_tagged`] did.
#[derive(Debug, Default)]
pub struct TagReport {
    /// Secrets loaded.
    pub loaded: usize,
    /// Pages read (`BatchGetSecretValue` calls).
    pub pages: usize,
    /// The tags matched more secrets than the cache holds: loading stopped
    /// at its entry bound.
    pub truncated: bool,
    /// Tags whose pages could not be read, with why.
    pub failed: Vec<(String, Error)>,
}

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
    /// times better), else in `BatchGetSecretValue` calls of the fetcher's
    /// batch limit, reading one by one whatever a batch call could not
    /// answer (the role may not call `BatchGetSecretValue`, the call was
    /// throttled or ran out of its deadline). Batches go one after the
    /// other: at start-up a whole fleet prefetches at once, against a quota
    /// of 100 batch calls per second per account.
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
        let mut waits: Vec<(&String, Flight)> = Vec::new();
        // The latest a flight of ours can end: every batch before its own
        // runs to the deadline, then its single read does.
        let limit = inner.fetcher.batch_limit(Kind::Secret).max(1);
        let batches = u32::try_from(ids.len().div_ceil(limit)).unwrap_or(u32::MAX);
        let latest = Deadline::now() + deadline.saturating_mul(batches.saturating_add(1));
        {
            let mut state = inner.lock();
            if state.closed {
                report.failed = ids.iter().map(|id| (id.clone(), closed())).collect();
                return report;
            }
            if !inner.config.caching_enabled(Kind::Secret) {
                return report;
            }
            let mut ours: Vec<Key> = Vec::new();
            // Per id: the flight already reading it, or its place in `ours`.
            let mut waiting: Vec<(&String, Result<Flight, usize>)> = Vec::new();
            for id in ids {
                let key = Key::secret(id.clone());
                let wait = match state.flights.get(&key) {
                    // Already being read: wait for that read.
                    Some(flight) => Ok(flight.clone()),
                    // Listed twice: wait for our own read of it.
                    None => Err(match ours.iter().position(|k| *k == key) {
                        Some(i) => i,
                        None => {
                            ours.push(key);
                            ours.len() - 1
                        }
                    }),
                };
                waiting.push((id, wait));
            }
            let plan = BatchPlan {
                batched: ours.len() > inner.config.prefetch_singles_up_to,
                call: deadline,
                singles_until: None,
                refresh: false,
            };
            let mine = self.spawn_batch(&mut state, Group::Secrets, ours, latest, plan);
            for (id, wait) in waiting {
                let flight = match wait {
                    Ok(flight) => Some(flight),
                    Err(i) => mine.get(i).cloned(),
                };
                if let Some(flight) = flight {
                    waits.push((id, flight));
                }
            }
        }
        for (id, mut flight) in waits {
            match wait_until(&mut flight.rx, latest).await {
                Some(Ok(_)) => report.loaded.push(id.clone()),
                Some(Err(e)) => report.failed.push((id.clone(), e)),
                None => report
                    .failed
                    .push((id.clone(), deadline_passed(Kind::Secret))),
            }
        }
        report
    }

    /// Load the current version of every secret tagged with each of `tags`
    /// (a key, and a value if given; [`Fetch::fetch_tagged`]), page by page
    /// (`BatchGetSecretValue`, 20 a page), one page after the other as the
    /// prefetch by ids does (a fleet's cold starts share the batch call's
    /// quota of 100 a second). Each value is stored under its name, the
    /// entry a read of that name uses; one already held is kept. Loading
    /// stops at the cache's entry bound: a tag that matches more than the
    /// cache holds is reported (`truncated`), not an error.
    pub async fn prefetch_tagged(&self, tags: &[(String, Option<String>)]) -> TagReport {
        let inner = &self.inner;
        let mut report = TagReport::default();
        if !inner.config.caching_enabled(Kind::Secret) {
            return report;
        }
        'tags: for (key, value) in tags {
            let mut next: Option<String> = None;
            loop {
                if inner.lock().entries.len() >= inner.config.max_entries {
                    report.truncated = true;
                    break 'tags;
                }
                let until = Deadline::now() + inner.config.deadline(Kind::Secret);
                let call = inner
                    .fetcher
                    .fetch_tagged(key, value.as_deref(), next.as_deref());
                let (items, token) = match inner.call(Kind::Secret, until, call).await {
                    Ok(page) => page,
                    Err(e) => {
                        let tag = value.as_ref().map_or(key.clone(), |v| format!("{key}={v}"));
                        report.failed.push((tag, e));
                        break;
                    }
                };
                report.pages += 1;
                for (name, result) in items {
                    if let Ok(record) = result {
                        report.loaded += usize::from(self.put(Key::secret(name), record));
                    }
                }
                match token {
                    Some(token) => next = Some(token),
                    None => break,
                }
            }
        }
        report
    }

    /// Store `record` under `key` as if a read had fetched it, unless a
    /// value is held or a read in flight for it; whether it was stored.
    fn put(&self, key: Key, record: crate::Record) -> bool {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut state = inner.lock();
        if state.closed || state.entries.contains(&key) || state.flights.contains_key(&key) {
            return false;
        }
        let (flight, _tx) = self.register(&mut state, &key, Deadline::now());
        let value = Arc::new(crate::Cached::from_record(record));
        inner
            .land(&mut state, &key, flight.id, Ok(value), now)
            .is_ok()
    }

    /// Start loading the latest versions of `names` in `GetParameters`
    /// calls, and return at once: readers meanwhile wait on the same
    /// flights. Parameter Store's quota (40 requests/s by default, shared by
    /// `GetParameter` and `GetParameters`) is the tightest a fleet meets: a
    /// cold start reading 5 parameters one by one costs 5 of it, a prefetch
    /// 1 (the fleet simulation, `bench/`). Names already held or in flight
    /// are skipped; returns how many loads it started.
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
        let deadline = inner.config.deadline(Kind::Parameter);
        let limit = inner.fetcher.batch_limit(Kind::Parameter).max(1);
        let batches = u32::try_from(keys.len().div_ceil(limit)).unwrap_or(u32::MAX);
        let plan = BatchPlan {
            batched: true,
            call: deadline,
            singles_until: None,
            refresh: false,
        };
        let group = Group::Parameters { with_decryption };
        let latest = Deadline::now() + deadline.saturating_mul(batches.saturating_add(1));
        self.spawn_batch(&mut state, group, keys, latest, plan);
        started
    }
}
