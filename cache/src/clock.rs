//! Time, injected. The cache never calls `Instant::now()` itself, so TTL,
//! refresh-ahead, stale and backoff logic is tested by moving a
//! manual clock (the tests' `testutil::ManualClock`) instead of sleeping.
//!
//! Also the [`RestoreDetector`]: under Lambda SnapStart a snapshot taken
//! after INIT may be restored hours later, and the monotonic clock does not
//! count the time the snapshot lay on disk. Cached values would look as
//! fresh as at INIT. The wall clock does move across a restore, so comparing
//! the two between checks tells a restore apart from ordinary running.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Tells a SnapStart restore apart from ordinary running by how far the
/// wall clock ran ahead of the monotonic one since the last check.
///
/// It is cheap enough to run on every read (issue 26: checked only on
/// Lambda events, a read between a restore and the next event, such as a
/// runtime `afterRestore` hook or the handler racing the extension's
/// `/next`, was served a cache that may be days old as fresh): the caller
/// passes the monotonic instant it read anyway, the check reads the wall
/// clock once and compares one offset, lock-free, and writes only when
/// that offset moved (a restore, an NTP step).
#[derive(Debug)]
pub struct RestoreDetector<W = SystemClock> {
    wall: W,
    threshold: Duration,
    /// The monotonic origin the offset is measured from.
    base: Instant,
    /// Wall-clock nanoseconds since the epoch less monotonic nanoseconds
    /// since `base`, at the last check that moved it.
    offset: AtomicI64,
}

/// How far the offset may move before it is taken again (slewing and
/// small NTP steps); a restore moves it by at least the threshold.
const DRIFT: Duration = Duration::from_millis(100);

impl RestoreDetector {
    /// A detector over the system's wall clock with [`RESTORE_THRESHOLD`],
    /// its monotonic origin `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_wall(SystemClock, RESTORE_THRESHOLD, now)
    }
}

impl<W: WallClock> RestoreDetector<W> {
    /// A detector over an injected wall clock, firing when it gains more
    /// than `threshold` on the monotonic clock between checks; `now` is the
    /// monotonic clock's current instant (the clock the checks pass).
    pub fn with_wall(wall: W, threshold: Duration, now: Instant) -> Self {
        let detector = Self {
            wall,
            threshold,
            base: now,
            offset: AtomicI64::new(0),
        };
        detector.offset.store(detector.offset_at(now), Relaxed);
        detector
    }

    fn offset_at(&self, now: Instant) -> i64 {
        let mono = nanos(now.saturating_duration_since(self.base));
        let wall = self.wall.wall().duration_since(UNIX_EPOCH).map_or(0, nanos);
        wall.saturating_sub(mono)
    }

    /// Whether the process was (most likely) restored from a snapshot since
    /// the previous check, `now` being the monotonic clock's instant. Of
    /// callers racing on one restore, one is told. A wall clock that went
    /// backwards (an NTP step) is not a restore; either way the next check
    /// measures from here.
    pub fn check(&self, now: Instant) -> bool {
        let offset = self.offset_at(now);
        let last = self.offset.load(Relaxed);
        let gained = offset.saturating_sub(last);
        let threshold = i64::try_from(self.threshold.as_nanos()).unwrap_or(i64::MAX);
        let drift = i64::try_from(DRIFT.as_nanos()).unwrap_or(i64::MAX);
        if gained.unsigned_abs() <= drift.unsigned_abs() {
            return false;
        }
        let moved = self
            .offset
            .compare_exchange(last, offset, Relaxed, Relaxed)
            .is_ok();
        moved && gained > threshold
    }
}

/// A duration in nanoseconds, saturating (an `i64` holds 292 years): in
/// 64-bit arithmetic, where `as_nanos` is 128-bit, on every read.
fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_secs())
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::ManualClock;

    fn detector() -> (RestoreDetector<ManualClock>, ManualClock, ManualClock) {
        let (mono, wall) = (ManualClock::new(), ManualClock::new());
        let d = RestoreDetector::with_wall(wall.clone(), RESTORE_THRESHOLD, mono.now());
        (d, mono, wall)
    }

    #[test]
    fn clocks_moving_together_are_not_a_restore() {
        let (d, mono, wall) = detector();
        for _ in 0..100 {
            mono.advance(Duration::from_secs(60));
            wall.advance(Duration::from_secs(60) + Duration::from_millis(50));
            assert!(!d.check(mono.now()));
        }
    }

    #[test]
    fn wall_clock_far_ahead_of_monotonic_is_a_restore_once() {
        let (d, mono, wall) = detector();
        mono.advance(Duration::from_secs(1));
        wall.advance(Duration::from_secs(3 * 3600));
        assert!(d.check(mono.now()));
        assert!(
            !d.check(mono.now()),
            "the next check measures from the restore"
        );
        mono.advance(Duration::from_secs(10));
        wall.advance(Duration::from_secs(10));
        assert!(!d.check(mono.now()));
    }

    #[test]
    fn small_steps_and_a_wall_clock_going_back_are_not_a_restore() {
        let (d, mono, wall) = detector();
        wall.advance(Duration::from_secs(4));
        assert!(!d.check(mono.now()));
        let (d, mono, _wall) = detector();
        mono.advance(Duration::from_secs(3600)); // wall "went back" an hour
        assert!(!d.check(mono.now()));
        // Measured from there: a restore after it is still caught.
        assert!(!d.check(mono.now()));
    }

    #[test]
    fn slow_drift_does_not_add_up_to_a_restore() {
        let (d, mono, wall) = detector();
        for _ in 0..1000 {
            mono.advance(Duration::from_secs(1));
            wall.advance(Duration::from_millis(1010));
            assert!(!d.check(mono.now()));
        }
    }
}
