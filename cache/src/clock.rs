//! Time, injected. The cache never calls `Instant::now()` itself, so TTL,
//! refresh-ahead, stale and backoff logic is tested by moving a
//! manual clock (the tests' `testutil::ManualClock`) instead of sleeping.
//!
//! Also the [`RestoreDetector`]: under Lambda SnapStart a snapshot taken
//! after INIT may be restored hours later, and the monotonic clock does not
//! count the time the snapshot lay on disk. Cached values would look as
//! fresh as at INIT. The wall clock does move across a restore, so comparing
//! the two between checks tells a restore apart from ordinary running.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// A monotonic clock.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// A wall clock (calendar time). Only the [`RestoreDetector`] reads it: it
/// can jump (NTP, a restore), so no TTL is ever measured with it.
pub trait WallClock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn wall(&self) -> SystemTime;
}

/// The process's monotonic clock, and the system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

impl WallClock for SystemClock {
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How far the wall clock may run ahead of the monotonic one between two
/// checks before it counts as a restore. Ordinary drift and NTP slewing are
/// milliseconds; a restore is the time a snapshot was stored, seconds at
/// the very least. Five seconds keeps a small NTP step from flushing the
/// cache while any real restore is caught.
pub const RESTORE_THRESHOLD: Duration = Duration::from_secs(5);

/// Tells a SnapStart restore apart from ordinary running by comparing the
/// progress of the wall clock with that of the monotonic clock between
/// calls to [`check`](Self::check). The extension checks on every Lambda
/// event and calls [`SecretCache::expire_all`](crate::SecretCache::expire_all)
/// when it fires.
#[derive(Debug)]
pub struct RestoreDetector<C = SystemClock, W = SystemClock> {
    monotonic: C,
    wall: W,
    threshold: Duration,
    last: Mutex<(Instant, SystemTime)>,
}

impl RestoreDetector {
    /// A detector over the system's clocks with [`RESTORE_THRESHOLD`].
    pub fn new() -> Self {
        Self::with_clocks(SystemClock, SystemClock, RESTORE_THRESHOLD)
    }
}

impl Default for RestoreDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock, W: WallClock> RestoreDetector<C, W> {
    /// A detector over injected clocks, firing when the wall clock gains
    /// more than `threshold` on the monotonic one between checks.
    pub fn with_clocks(monotonic: C, wall: W, threshold: Duration) -> Self {
        let last = Mutex::new((monotonic.now(), wall.wall()));
        Self {
            monotonic,
            wall,
            threshold,
            last,
        }
    }

    /// Whether the process was (most likely) restored from a snapshot since
    /// the previous check. A wall clock that went backwards (an NTP step) is
    /// not a restore; either way the next check measures from now.
    pub fn check(&self) -> bool {
        let (mono_now, wall_now) = (self.monotonic.now(), self.wall.wall());
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (mono_then, wall_then) = std::mem::replace(&mut *last, (mono_now, wall_now));
        let mono = mono_now.saturating_duration_since(mono_then);
        let wall = wall_now.duration_since(wall_then).unwrap_or(Duration::ZERO);
        wall > mono.saturating_add(self.threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ManualClock;

    fn detector() -> (
        RestoreDetector<ManualClock, ManualClock>,
        ManualClock,
        ManualClock,
    ) {
        let (mono, wall) = (ManualClock::new(), ManualClock::new());
        let d = RestoreDetector::with_clocks(mono.clone(), wall.clone(), RESTORE_THRESHOLD);
        (d, mono, wall)
    }

    #[test]
    fn clocks_moving_together_are_not_a_restore() {
        let (d, mono, wall) = detector();
        for _ in 0..100 {
            mono.advance(Duration::from_secs(60));
            wall.advance(Duration::from_secs(61));
            assert!(!d.check());
        }
    }

    #[test]
    fn wall_clock_far_ahead_of_monotonic_is_a_restore_once() {
        let (d, mono, wall) = detector();
        mono.advance(Duration::from_secs(1));
        wall.advance(Duration::from_secs(3 * 3600));
        assert!(d.check());
        assert!(!d.check(), "the next check measures from the restore");
        mono.advance(Duration::from_secs(10));
        wall.advance(Duration::from_secs(10));
        assert!(!d.check());
    }

    #[test]
    fn small_steps_and_a_wall_clock_going_back_are_not_a_restore() {
        let (d, _mono, wall) = detector();
        wall.advance(Duration::from_secs(4));
        assert!(!d.check());
        let (d, mono, _wall) = detector();
        mono.advance(Duration::from_secs(3600)); // wall "went back" an hour
        assert!(!d.check());
    }
}
