//! Counters the cache keeps about itself. Relaxed atomics: they are
//! statistics, read as a snapshot, never used to make decisions.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use crate::ErrorKind;

#[derive(Default, Debug)]
pub(crate) struct Counters {
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub refreshes: AtomicU64,
    pub upstream_calls: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub throttled: AtomicU64,
    pub timeouts: AtomicU64,
    pub unavailable: AtomicU64,
    pub denied: AtomicU64,
    pub evictions: AtomicU64,
    pub version_checks: AtomicU64,
    pub unchanged: AtomicU64,
}

impl Counters {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Count a failed call, and its class if it has one of those an
    /// operator tells apart: throttling, timeouts, the service's 5xx, and
    /// refusals (access denied, refused credentials).
    pub fn failed(&self, kind: ErrorKind) {
        Self::inc(&self.upstream_errors);
        let class = match kind {
            ErrorKind::Throttled => &self.throttled,
            ErrorKind::Timeout => &self.timeouts,
            ErrorKind::Unavailable => &self.unavailable,
            ErrorKind::AccessDenied | ErrorKind::Credentials => &self.denied,
            _ => return,
        };
        Self::inc(class);
    }
}

/// A point-in-time copy of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Reads answered from a fresh cached value.
    pub hits: u64,
    /// Reads that had to wait for upstream (cold, expired, or `refresh_now`).
    pub misses: u64,
    /// Reads answered with a stale value because upstream was failing, or
    /// too slow to answer within `stale_wait`.
    pub stale: u64,
    /// Background refreshes started (refresh-ahead, INVOKE-time, backoff retries).
    pub refreshes: u64,
    /// Calls made to the service (a batch call counts once).
    pub upstream_calls: u64,
    /// Calls that failed, timeouts included (a read that timed out waiting
    /// for an upstream slot made no call and is not counted).
    pub upstream_errors: u64,
    /// Of those, the service throttled.
    pub upstream_throttled: u64,
    /// Of those, no answer in time (the call's or the read's deadline).
    pub upstream_timeouts: u64,
    /// Of those, the service answered 5xx.
    pub upstream_5xx: u64,
    /// Of those, access was denied or the credentials refused.
    pub upstream_denied: u64,
    /// Values dropped to stay within the entry or byte bound.
    pub evictions: u64,
    /// Version checks made after a TTL (`DescribeSecret`).
    pub version_checks: u64,
    /// Of those, how many found the held version still current (kept for
    /// another TTL, no read).
    pub unchanged: u64,
    /// Reads a replica region answered (the home region failing).
    pub fallback_reads: u64,
    /// Entries held now.
    pub entries: u64,
    /// Bytes held now (values, bodies and keys).
    pub bytes: u64,
}

impl Counters {
    /// The counters with the figures kept under the cache's lock.
    pub fn snapshot(&self, hits: u64, entries: usize, bytes: usize) -> Metrics {
        Metrics {
            hits,
            misses: self.misses.load(Relaxed),
            stale: self.stale.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
            upstream_calls: self.upstream_calls.load(Relaxed),
            upstream_errors: self.upstream_errors.load(Relaxed),
            upstream_throttled: self.throttled.load(Relaxed),
            upstream_timeouts: self.timeouts.load(Relaxed),
            upstream_5xx: self.unavailable.load(Relaxed),
            upstream_denied: self.denied.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            version_checks: self.version_checks.load(Relaxed),
            unchanged: self.unchanged.load(Relaxed),
            fallback_reads: 0,
            entries: entries as u64,
            bytes: bytes as u64,
        }
    }
}
