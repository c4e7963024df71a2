//! Lambda as it scales, for one account and region ("Lambda scaling
//! behavior" in the Lambda developer guide):
//!
//! * **concurrency**: every invocation in flight (its INIT included, and
//!   the time an extension holds the INVOKE) takes one unit of the
//!   account's concurrency limit, 1,000 by default; an invocation arriving
//!   with none left is throttled (429, `TooManyRequestsException`);
//! * **scaling rate**: each function adds at most 1,000 execution
//!   environments every 10 s ("In each AWS Region, and for each function,
//!   your concurrency scaling rate is 1,000 execution environment instances
//!   every 10 seconds"; refilled continuously, so a token bucket of 1,000
//!   refilled at 100 a second); an invocation that needs a new environment
//!   past it is throttled too. A surge of 10,000 environments in 10 s
//!   therefore needs at least ten functions, which share the account's
//!   concurrency and every service quota.

use std::sync::Mutex;

use tokio::time::Instant;

use super::service::Bucket;

/// The account's default concurrency limit (Lambda quotas: "Concurrent
/// executions 1,000", adjustable).
pub const ACCOUNT_CONCURRENCY: usize = 1_000;

/// Environments one function may add per 10 s.
pub const SCALING_PER_10S: f64 = 1_000.0;

struct State {
    busy: usize,
    peak: usize,
    scaling: Vec<Bucket>,
}

/// The account's Lambda quotas, shared by every function of a run.
pub struct Account {
    limit: usize,
    state: Mutex<State>,
}

impl Account {
    /// `functions` functions under a concurrency limit of `limit`.
    pub fn new(limit: usize, functions: usize, start: Instant) -> Self {
        let bucket = || Bucket::new(SCALING_PER_10S / 10.0, SCALING_PER_10S, start);
        Self {
            limit,
            state: Mutex::new(State {
                busy: 0,
                peak: 0,
                scaling: (0..functions.max(1)).map(|_| bucket()).collect(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admit one invocation of `function`, on a new environment when
    /// `new_env`: `false` when Lambda throttles it.
    pub fn admit(&self, function: usize, new_env: bool, now: Instant) -> bool {
        let mut s = self.lock();
        if s.busy >= self.limit {
            return false;
        }
        if new_env {
            let n = s.scaling.len();
            if !s.scaling[function % n].take(now) {
                return false;
            }
        }
        s.busy += 1;
        s.peak = s.peak.max(s.busy);
        true
    }

    /// An admitted invocation ended.
    pub fn release(&self) {
        let mut s = self.lock();
        s.busy = s.busy.saturating_sub(1);
    }

    /// The most invocations in flight at once.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }
}
