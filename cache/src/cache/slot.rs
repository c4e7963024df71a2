//! What the cache keeps per key, and how an upstream answer lands in it.
//!
//! Values live in the LRU `entries`, bounded by count and bytes. Failures of
//! keys that have no value (not-found markers, backoffs of cold reads) live
//! apart, in the small `failures` LRU: a flood of reads of ids that do not
//! exist then never pushes a good value out of the cache.

use std::sync::Arc;
use std::time::Instant;

use super::flight::unregister;
use super::{Inner, Outcome, State};
use crate::clock::Clock;
use crate::metrics::Counters;
use crate::{Cached, Error, Key};

/// Most keys whose last read failed and that hold no value. A marker only
/// saves an upstream call for `negative_ttl` or a backoff; losing one early
/// costs one call, so a small bound is enough.
pub(super) const FAILURE_ENTRIES: usize = 256;

/// A value and its timing.
pub(super) struct Slot {
    pub value: Arc<Cached>,
    /// Served as fresh until then.
    pub fresh_until: Instant,
    /// A hit from then on starts a background refresh.
    pub refresh_from: Instant,
    /// Past `fresh_until`, served while upstream fails or is slow until
    /// then (`None`: for as long as that lasts).
    pub stale_until: Option<Instant>,
    /// The last transient failure to refresh it, while it stands. A
    /// non-transient one drops the slot. Boxed: rare, and inline it would
    /// make every slot (one per cached value) 56 bytes bigger.
    pub failure: Option<Box<Failure>>,
    /// Read since it was last stored (the read that waited for the store
    /// counts). Only such entries are refreshed ahead of a read: one read
    /// once and never again is refreshed once, not re-read every TTL.
    pub read: bool,
    /// When a forced read (`refreshNow`) last landed for it: the next one
    /// goes upstream no sooner than a second later.
    pub forced_at: Option<Instant>,
    /// Bytes charged to this slot.
    pub size: usize,
}

/// A failed read.
pub(super) struct Failure {
    pub error: Error,
    /// Consecutive transient failures (drives the backoff).
    pub count: u32,
    /// No upstream read for this key before then.
    pub retry_at: Instant,
}

impl<F, C: Clock> Inner<F, C> {
    /// End `key`'s flight `id` with what upstream answered: keep the value
    /// (or remember the failure) unless the cache was closed or the flight
    /// was detached meanwhile. Either way its own waiters get the answer.
    pub(super) fn land(
        &self,
        state: &mut State,
        key: &Key,
        id: u64,
        outcome: Outcome,
        now: Instant,
    ) -> Outcome {
        let (forced, awaited) = match state.flights.get(key).filter(|f| f.id == id) {
            Some(f) => (f.forced, f.awaited),
            None => (false, false),
        };
        if unregister(state, key, id) && !state.closed {
            match &outcome {
                Ok(value) => self.store(state, key, Arc::clone(value), now),
                Err(e) => self.record_failure(state, key, e, now),
            }
            if let Some(slot) = state.entries.peek_mut(key) {
                if forced {
                    slot.forced_at = Some(now);
                }
                // A refresh that a reader waited for (the value had expired)
                // lands read, as a cold read does.
                slot.read |= awaited && outcome.is_ok();
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
            value,
            fresh_until: now + ttl,
            refresh_from: now + (ttl - ahead),
            stale_until: self.config.stale_until(now + ttl),
            failure: None,
            read: false,
            // Kept across refreshes: the rate limit is per key.
            forced_at: state.entries.peek(key).and_then(|s| s.forced_at),
            size,
        };
        state.failures.pop(key);
        self.memos.clear();
        state.bytes += slot.size;
        if let Some(old) = state.entries.put(key.clone(), slot) {
            state.bytes -= old.size;
        }
        self.enforce_bounds(state);
    }

    fn record_failure(&self, state: &mut State, key: &Key, error: &Error, now: Instant) {
        let transient = error.is_transient();
        let previous = match state.entries.peek(key) {
            Some(slot) => slot.failure.as_deref(),
            None => state.failures.peek(key),
        };
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
        if transient {
            if let Some(slot) = state.entries.peek_mut(key) {
                // An outage, not an answer: keep serving the value stale.
                slot.failure = Some(Box::new(failure));
                self.memos.clear();
                return;
            }
        } else if let Some(old) = state.entries.pop(key) {
            // Deleted, denied or invalid: an answer, not an outage. Stop
            // serving the old value (wiped as its last reference goes).
            state.bytes -= old.size;
            self.memos.clear();
        }
        state.failures.put(key.clone(), failure);
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
