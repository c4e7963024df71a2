//! The cache's policy knobs, with the official extension's defaults.

use std::time::Duration;

use crate::Kind;

/// How long values live and how much the cache may hold.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheConfig {
    /// Time to live of a secret; zero disables caching of secrets.
    pub secret_ttl: Duration,
    /// Time to live of a parameter; zero disables caching of parameters.
    pub parameter_ttl: Duration,
    /// Each entry's TTL is shortened by a random fraction up to this much,
    /// so a fleet of environments does not refresh in lock step.
    pub ttl_jitter: f64,
    /// A hit in the last `refresh_ahead` fraction of an entry's TTL answers at
    /// once and starts one background refresh.
    pub refresh_ahead: f64,
    /// How long past its TTL a value may still be served while upstream
    /// fails with transient errors.
    pub max_stale: Duration,
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
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            secret_ttl: Duration::from_secs(300),
            parameter_ttl: Duration::from_secs(300),
            ttl_jitter: 0.1,
            refresh_ahead: 0.2,
            max_stale: Duration::from_secs(900),
            negative_ttl: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_entries: 1000,
            max_bytes: 32 * 1024 * 1024,
        }
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

    /// A TTL shortened by up to `ttl_jitter`, drawn from `unit` in [0, 1).
    pub(crate) fn jittered(&self, ttl: Duration, unit: f64) -> Duration {
        let jitter = self.ttl_jitter.clamp(0.0, 1.0);
        ttl.mul_f64(1.0 - jitter * unit.clamp(0.0, 1.0))
    }

    /// Retry delay after `failures` consecutive transient failures: capped
    /// exponential, with the upper half jittered by `unit` in [0, 1).
    pub(crate) fn backoff(&self, failures: u32, unit: f64) -> Duration {
        let exp = failures.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        full.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
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
        assert_eq!(c.backoff(30, 0.0), Duration::from_secs(30));
    }
}
