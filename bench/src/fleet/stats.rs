//! What one (scenario, policy) run counted, and the figures the report
//! prints from it.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::service::{Api, ApiStats};

/// Counted while the fleet runs.
pub struct Tally {
    pub invocations: u64,
    pub cold_starts: u64,
    pub reads: u64,
    pub failed: u64,
    /// Reads answered with a version older than the service's current one.
    pub old_reads: u64,
    /// When the last of them happened, from the run's start.
    pub last_old: Option<Duration>,
    /// Read latency in microseconds (a hit counts as 1 µs).
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            invocations: 0,
            cold_starts: 0,
            reads: 0,
            failed: 0,
            old_reads: 0,
            last_old: None,
            latency: Histogram::new_with_bounds(1, 120_000_000, 2).expect("histogram bounds"),
        }
    }
}

impl Tally {
    /// One read by the function: the version served (none: it failed).
    pub fn read(&mut self, served: Option<u32>, current: u32, latency: Duration, at: Duration) {
        self.reads += 1;
        let us = (latency.as_micros() as u64).clamp(1, 120_000_000);
        let _ = self.latency.record(us);
        match served {
            None => self.failed += 1,
            Some(v) if v < current => {
                self.old_reads += 1;
                self.last_old = Some(at);
            }
            Some(_) => {}
        }
    }
}

/// Per API, in the report and `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiFigures {
    pub api: String,
    pub quota_rps: f64,
    pub calls: u64,
    pub throttled: u64,
    pub failed: u64,
    pub peak_rps: u32,
}

/// One policy in one scenario.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub policy: String,
    pub invocations: u64,
    pub cold_starts: u64,
    pub reads: u64,
    pub reads_failed: u64,
    pub reads_failed_pct: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub upstream_calls: u64,
    pub throttled: u64,
    /// Whether any API called was run past its quota as the service
    /// enforces it (a token bucket with a second of burst): it throttled.
    /// A busiest second above the quota that the burst absorbed is not.
    pub over_quota: bool,
    /// USD per million invocations at $0.05 per 10,000 API calls.
    pub cost_per_million: f64,
    /// After a rotation: reads answered with the old version, and when the
    /// last one was (seconds from the rotation).
    pub old_reads: u64,
    pub converged_s: Option<f64>,
    pub apis: Vec<ApiFigures>,
    /// Requests per second per API over the run (for the chart).
    pub per_second: Vec<(String, Vec<u32>)>,
}

impl Outcome {
    pub fn new(
        policy: &str,
        t: &Tally,
        apis: &[ApiStats; 3],
        rotated_at: Option<Duration>,
    ) -> Self {
        let figures: Vec<ApiFigures> = Api::ALL
            .iter()
            .zip(apis)
            .filter(|(_, s)| s.calls > 0)
            .map(|(api, s)| ApiFigures {
                api: api.name().to_owned(),
                quota_rps: api.quota(),
                calls: s.calls,
                throttled: s.throttled,
                failed: s.failed,
                peak_rps: s.peak(),
            })
            .collect();
        let calls: u64 = figures.iter().map(|f| f.calls).sum();
        let pct = |n: u64, d: u64| {
            if d == 0 {
                0.0
            } else {
                100.0 * n as f64 / d as f64
            }
        };
        let ms = |q: f64| t.latency.value_at_quantile(q) as f64 / 1e3;
        Outcome {
            policy: policy.to_owned(),
            invocations: t.invocations,
            cold_starts: t.cold_starts,
            reads: t.reads,
            reads_failed: t.failed,
            reads_failed_pct: pct(t.failed, t.reads),
            p50_ms: if ms(0.5) <= 0.001 { 0.0 } else { ms(0.5) },
            p99_ms: if ms(0.99) <= 0.001 { 0.0 } else { ms(0.99) },
            upstream_calls: calls,
            throttled: figures.iter().map(|f| f.throttled).sum(),
            over_quota: figures.iter().any(|f| f.throttled > 0),
            cost_per_million: if t.invocations == 0 {
                0.0
            } else {
                calls as f64 * 0.05 / 10_000.0 * 1e6 / t.invocations as f64
            },
            old_reads: t.old_reads,
            converged_s: rotated_at.map(|r| {
                t.last_old
                    .map_or(0.0, |l| l.saturating_sub(r).as_secs_f64())
            }),
            apis: figures,
            per_second: Api::ALL
                .iter()
                .zip(apis)
                .filter(|(_, s)| s.calls > 0)
                .map(|(api, s)| (api.name().to_owned(), s.per_second.clone()))
                .collect(),
        }
    }
}
