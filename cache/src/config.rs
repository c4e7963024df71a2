//! The cache's policy knobs, with the official extension's defaults.

use std::time::Duration;

use crate::Kind;

/// The overall deadline of one upstream read when none (or zero) is
/// configured. Lambda's default function timeout is 3 s: a function that
/// reads a secret in its handler must get an answer (a value or a clear
/// timeout) with time left to handle it, so the cache gives up at 2 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);

/// How long values live, how much the cache may hold, and how long anything
/// may wait on upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheConfig {
    /// Time to live of a secret; zero disables caching of secrets (every
    /// read goes upstream, prefetch and INVOKE-time refresh do nothing).
    pub secret_ttl: Duration,
    /// Time to live of a parameter; zero disables caching of parameters.
    pub parameter_ttl: Duration,
    /// Each entry's TTL is shortened by a random fraction up to this much,
    /// so a fleet of environments does not refresh in lock step.
    pub ttl_jitter: f64,
    /// A hit in the last `refresh_ahead` fraction of an entry's TTL answers at
    /// once and starts one background refresh (only for entries that are
    /// being read, and never for a pinned version).
    pub refresh_ahead: f64,
    /// How long past its TTL a value may still be served while upstream
    /// fails with transient errors or is slow to answer a refresh; `None`,
    /// the default, for as long as the failures last. A regional incident
    /// lasts longer than any fixed cap one would pick (the peer agent keeps
    /// serving too); a permanent answer (deleted, denied, undecryptable)
    /// still ends it at once.
    pub max_stale: Option<Duration>,
    /// How long a not-found (or other non-transient) answer is remembered, so
    /// a typo does not hammer the service.
    pub negative_ttl: Duration,
    /// First retry delay after a transient failure; doubles per failure.
    pub backoff_base: Duration,
    /// Upper bound of the retry delay.
    pub backoff_max: Duration,
    /// Most entries held (least recently used go first).
    pub max_entries: usize,
    /// Most bytes held.
    pub max_bytes: usize,
    /// Overall deadline of one Secrets Manager read (`GetSecretValue`, or a
    /// `BatchGetSecretValue` call), waiting for an upstream slot included.
    /// Past it the read ends as [`ErrorKind::Timeout`](crate::ErrorKind) for
    /// every caller waiting on it. Zero means [`DEFAULT_DEADLINE`], never
    /// "wait forever": an upstream that accepts a connection and never
    /// answers (a NAT gateway's dropped flow, a request frozen with the
    /// environment) must not hold a function until its own timeout.
    pub secret_deadline: Duration,
    /// Overall deadline of one Parameter Store read; as `secret_deadline`.
    pub parameter_deadline: Duration,
    /// Overall deadline of reading one parameter tree, every page (each
    /// page a Parameter Store read of its own, with its deadline). A reader
    /// waits for a tree only its read deadline; the read goes on to this
    /// one, so a tree of many pages on a slow day lands for the next reader
    /// rather than failing every reader after 2 s (issue 26).
    pub tree_deadline: Duration,
    /// How long the read that starts the refresh of an expired value (still
    /// within `max_stale`) waits for it before it is answered with the old
    /// value; reads arriving while the refresh is on its way get the old
    /// value at once. Short: long enough for a healthy upstream
    /// (tens of milliseconds) to answer fresh, short enough that a slow or
    /// hung one costs a reader a fraction of a 3 s function timeout, not the
    /// whole deadline.
    pub stale_wait: Duration,
    /// Most upstream calls in flight at once (the extension sets it from
    /// `PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS`). Bounds what one
    /// environment adds to an account-wide quota; time spent waiting for a
    /// slot counts against the read's deadline. Zero is taken as one.
    pub max_upstream: usize,
    /// After a secret's TTL, ask whether its version changed
    /// ([`Fetch::revalidate`](crate::Fetch::revalidate), `DescribeSecret`)
    /// before reading it again; keep it another TTL if not. It spares
    /// `GetSecretValue`'s quota, the KMS `Decrypt` behind each read of a
    /// secret under a customer-managed key, and bytes; it costs a second
    /// call when the version did change. Secrets are then refreshed one by
    /// one (each its own check), not in batches.
    pub version_check: bool,
    /// A prefetch of at most this many secrets reads them one by one
    /// (`GetSecretValue`); longer lists go 20 per `BatchGetSecretValue`.
    /// Cold starts come in surges, and per secret `GetSecretValue`'s quota
    /// is five times `BatchGetSecretValue`'s (10,000 calls/s against 100
    /// calls of 20): 10,000 environments starting in 10 s with 10 secrets
    /// each ask 1,000 batch calls/s of a quota of 100, while 10 single
    /// reads each fit (the fleet simulation, `bench/`).
    pub prefetch_singles_up_to: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            secret_ttl: Duration::from_secs(300),
            parameter_ttl: Duration::from_secs(300),
            ttl_jitter: 0.1,
            refresh_ahead: 0.2,
            max_stale: None,
            negative_ttl: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_entries: 1000,
            max_bytes: 32 * 1024 * 1024,
            secret_deadline: DEFAULT_DEADLINE,
            parameter_deadline: DEFAULT_DEADLINE,
            tree_deadline: Duration::from_secs(10),
            stale_wait: Duration::from_millis(250),
            max_upstream: 3,
            prefetch_singles_up_to: 20,
            version_check: false,
        }
    }
}

/// How big a parameter tree (`GetParametersByPath`, every page) may be. A
/// fetcher stops paging as soon as a tree is past a bound and answers the
/// bound's error (`ParameterTreeTooLarge`): a tree is served whole or not
/// at all, and one careless path cannot fill the cache or page for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeLimits {
    /// Most parameters in one tree.
    pub max_parameters: usize,
    /// Most bytes of one tree's merged JSON body.
    pub max_bytes: usize,
}

impl Default for TreeLimits {
    /// 500 parameters (50 pages of 10) and 1 MiB: an application's whole
    /// configuration, well inside the cache's 32 MiB.
    fn default() -> Self {
        Self {
            max_parameters: 500,
            max_bytes: 1024 * 1024,
        }
    }
}

impl TreeLimits {
    /// Most pages one tree is read in: twice what `max_parameters` fill at
    /// 10 a page (the service's most), and at least 10. The service may
    /// answer a page short, or empty, with a token for the next: it reads
    /// a fixed number of entries per page and filters them after.
    pub fn max_pages(&self) -> usize {
        (self.max_parameters.div_ceil(10) * 2).max(10)
    }
}

impl CacheConfig {
    /// The configured TTL for a kind.
    pub fn ttl(&self, kind: Kind) -> Duration {
        match kind {
            Kind::Secret => self.secret_ttl,
            Kind::Parameter => self.parameter_ttl,
        }
    }

    /// The least time from storing a value to its refresh window: the
    /// shortest TTL of a kind that is cached, at its most jittered, less
    /// the refresh-ahead share. A timer that wakes at least this often
    /// ([`SecretCache::next_due`](crate::SecretCache::next_due)) sees every
    /// window open, even of values stored after it went to sleep. `None`
    /// when nothing is cached.
    pub fn earliest_refresh(&self) -> Option<Duration> {
        let shortest = [Kind::Secret, Kind::Parameter]
            .into_iter()
            .filter(|k| self.caching_enabled(*k))
            .map(|k| self.ttl(k))
            .min()?;
        let ttl = self.jittered(shortest, 1.0);
        Some(ttl - ttl.mul_f64(self.refresh_ahead.clamp(0.0, 1.0)))
    }

    /// Whether values of `kind` are kept at all: a TTL of zero, or no room
    /// (zero entries or bytes), turns caching of that kind off. The
    /// extension logs it once at start; the cache then reads every request
    /// upstream and prefetch and INVOKE-time refresh do nothing.
    pub fn caching_enabled(&self, kind: Kind) -> bool {
        !self.ttl(kind).is_zero() && self.max_entries > 0 && self.max_bytes > 0
    }

    /// The overall deadline of one upstream read of `kind`: the configured
    /// one, or [`DEFAULT_DEADLINE`] when it is zero.
    pub fn deadline(&self, kind: Kind) -> Duration {
        let configured = match kind {
            Kind::Secret => self.secret_deadline,
            Kind::Parameter => self.parameter_deadline,
        };
        or_default_deadline(configured)
    }

    /// Until when a value stored (or made due) at `now` may be served stale:
    /// `None` for no limit.
    pub(crate) fn stale_until(&self, from: std::time::Instant) -> Option<std::time::Instant> {
        self.max_stale.and_then(|cap| from.checked_add(cap))
    }

    /// How long the upstream read of `key` may take in all: a tree's
    /// pages get [`CacheConfig::tree_deadline`] (at least the read
    /// deadline), a single value its kind's [`CacheConfig::deadline`].
    pub fn flight_deadline(&self, key: &crate::Key) -> Duration {
        let read = self.deadline(key.kind());
        match key {
            crate::Key::Path(_) => self.tree_deadline.max(read),
            _ => read,
        }
    }

    /// A TTL shortened by up to `ttl_jitter`, drawn from `unit` in [0, 1).
    pub(crate) fn jittered(&self, ttl: Duration, unit: f64) -> Duration {
        let jitter = self.ttl_jitter.clamp(0.0, 1.0);
        ttl.mul_f64(1.0 - jitter * unit.clamp(0.0, 1.0))
    }

    /// Retry delay after `failures` consecutive transient failures: capped
    /// exponential with *full* jitter, drawn by `unit` in [0, 1) over the
    /// whole `[0, cap)`. A fleet meets an outage or a throttle at one
    /// instant; jittering only the upper half of each delay kept every
    /// environment's n-th retry inside the same `[cap/2, cap)` window, so the
    /// fleet came back in waves (the fleet simulation, `bench/`). Full
    /// jitter spreads them evenly (the AWS SDKs' own retry does the same).
    pub(crate) fn backoff(&self, failures: u32, unit: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        full.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A configured deadline, or [`DEFAULT_DEADLINE`] when it is zero: zero
/// means "the default", never "wait forever" (the cache's deadline and the
/// SDK's timeouts both follow it).
pub fn or_default_deadline(configured: Duration) -> Duration {
    if configured.is_zero() {
        DEFAULT_DEADLINE
    } else {
        configured
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds() {
        let c = CacheConfig::default();
        let ttl = Duration::from_secs(300);
        assert_eq!(c.jittered(ttl, 0.0), ttl);
        assert_eq!(c.jittered(ttl, 1.0), Duration::from_secs(270));
        for _ in 0..1000 {
            let t = c.jittered(ttl, fastrand::f64());
            assert!(t <= ttl && t >= Duration::from_secs(270), "{t:?}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = CacheConfig::default();
        assert_eq!(c.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(c.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(c.backoff(3, 1.0), Duration::from_secs(4));
        assert_eq!(c.backoff(30, 1.0), Duration::from_secs(60));
    }

    #[test]
    fn backoff_jitter_spans_the_whole_window() {
        // Retries of a fleet that failed at one instant must not bunch in
        // the upper half of the window: the n-th retry may come anywhere in
        // [0, cap).
        let c = CacheConfig::default();
        assert_eq!(c.backoff(30, 0.0), Duration::ZERO);
        assert_eq!(c.backoff(3, 0.25), Duration::from_secs(1));
        let mut rng = fastrand::Rng::with_seed(7);
        let delays: Vec<Duration> = (0..1000).map(|_| c.backoff(3, rng.f64())).collect();
        let early = delays
            .iter()
            .filter(|d| **d < Duration::from_secs(2))
            .count();
        assert!(
            (400..600).contains(&early),
            "{early} of 1000 in the lower half"
        );
        assert!(delays.iter().all(|d| *d < Duration::from_secs(4)));
    }

    #[test]
    fn zero_deadline_means_the_default_not_forever() {
        let c = CacheConfig {
            secret_deadline: Duration::ZERO,
            parameter_deadline: Duration::from_millis(500),
            ..CacheConfig::default()
        };
        assert_eq!(c.deadline(Kind::Secret), DEFAULT_DEADLINE);
        assert_eq!(c.deadline(Kind::Parameter), Duration::from_millis(500));
    }

    #[test]
    fn caching_is_off_with_ttl_zero_or_no_room() {
        let c = CacheConfig {
            parameter_ttl: Duration::ZERO,
            ..CacheConfig::default()
        };
        assert!(c.caching_enabled(Kind::Secret));
        assert!(!c.caching_enabled(Kind::Parameter));
        let no_room = CacheConfig {
            max_entries: 0,
            ..CacheConfig::default()
        };
        assert!(!no_room.caching_enabled(Kind::Secret));
    }
}
