//! What one (scenario, policy, seed) run counted, the figures derived from
//! it, and their spread over seeds.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::service::{Api, ApiStats, APIS};

/// Secrets Manager: USD per API call ($0.05 per 10,000).
pub const SM_PER_CALL: f64 = 0.05 / 10_000.0;
/// Parameter Store with higher throughput: USD per API interaction
/// ($0.05 per 10,000; standard throughput is free, at 40 requests/s).
pub const SSM_HT_PER_CALL: f64 = 0.05 / 10_000.0;
/// KMS: USD per request ($0.03 per 10,000), charged for a customer-managed
/// key's `Decrypt` behind each secret value read.
pub const KMS_PER_REQUEST: f64 = 0.03 / 10_000.0;

/// Counted while the fleet runs.
pub struct Tally {
    /// Invocations admitted that ran to their end.
    pub invocations: u64,
    /// Invocations Lambda refused (429): concurrency or scaling rate.
    pub throttled_invocations: u64,
    /// Invocations past the function's timeout.
    pub timeouts: u64,
    /// Invocations whose environment's INIT failed.
    pub failed_invocations: u64,
    pub cold_starts: u64,
    pub init_failures: u64,
    pub reads: u64,
    pub failed: u64,
    /// Of them, of an id a read in the same environment (process, for an
    /// in-process cache) had been served before: a value the policy had
    /// and did not serve.
    pub failed_held: u64,
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
            throttled_invocations: 0,
            timeouts: 0,
            failed_invocations: 0,
            cold_starts: 0,
            init_failures: 0,
            reads: 0,
            failed: 0,
            failed_held: 0,
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

    /// `n` reads the function never got to make (its invocation timed out
    /// or failed first): failed, without a latency.
    pub fn unserved(&mut self, n: usize) {
        self.reads += n as u64;
        self.failed += n as u64;
    }

    /// An invocation whose INIT failed: every read it needed failed.
    pub fn failed_invocation(&mut self, reads: usize) {
        self.failed_invocations += 1;
        self.unserved(reads);
    }
}

/// Per API, in the report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiFigures {
    pub api: String,
    pub quota_rps: f64,
    pub calls: u64,
    pub throttled: u64,
    pub failed: u64,
    /// Secret values returned (a batch returns several).
    pub returned: u64,
    pub peak_rps: u32,
}

/// One policy in one scenario with one seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Outcome {
    pub policy: String,
    /// Invocations Lambda admitted (ran, timed out or failed at INIT).
    pub invocations: u64,
    pub throttled_invocations: u64,
    pub timeouts: u64,
    pub cold_starts: u64,
    pub reads: u64,
    pub reads_failed: u64,
    /// Of them, of a value the environment had been served before.
    pub reads_failed_held: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Calls to every API in both regions.
    pub upstream_calls: u64,
    /// Of them, throttled by a service quota.
    pub throttled: u64,
    pub kms_decrypts: u64,
    pub replica_calls: u64,
    pub peak_concurrency: u64,
    /// USD per million admitted invocations, batches billed per call.
    pub cost_per_call: f64,
    /// The same with `BatchGetSecretValue` billed per secret returned.
    pub cost_per_secret: f64,
    /// After a rotation: reads answered with the old version, and when the
    /// last one was (seconds from the rotation).
    pub old_reads: u64,
    pub converged_s: Option<f64>,
    pub apis: Vec<ApiFigures>,
    /// The busiest second of each minute, per API called (the chart).
    pub series: Vec<(String, Vec<u32>)>,
}

/// What one run's services and Lambda saw besides the tally.
pub struct Seen<'a> {
    pub home: &'a [ApiStats; APIS],
    pub replica: Option<&'a [ApiStats; APIS]>,
    pub kms_decrypts: u64,
    pub cmk: bool,
    pub peak_concurrency: usize,
    pub rotated_at: Option<Duration>,
}

impl Outcome {
    pub fn new(policy: &str, t: &Tally, seen: &Seen<'_>) -> Self {
        let apis: Vec<ApiFigures> = Api::ALL
            .iter()
            .zip(seen.home)
            .filter(|(_, s)| s.calls > 0)
            .map(|(api, s)| ApiFigures {
                api: api.name().to_owned(),
                quota_rps: api.quota(),
                calls: s.calls,
                throttled: s.throttled,
                failed: s.failed,
                returned: s.returned,
                peak_rps: s.peak(),
            })
            .collect();
        let all: Vec<(&Api, &ApiStats)> = Api::ALL
            .iter()
            .zip(seen.home)
            .chain(
                seen.replica
                    .into_iter()
                    .flat_map(|r| Api::ALL.iter().zip(r)),
            )
            .collect();
        let calls: u64 = all.iter().map(|(_, s)| s.calls).sum();
        let sm = |per_secret: bool| -> f64 {
            all.iter()
                .map(|(api, s)| match api {
                    Api::GetParameter => s.calls as f64 * SSM_HT_PER_CALL,
                    Api::BatchGetSecretValue if per_secret => {
                        let ok = s.calls - s.throttled - s.failed;
                        (s.calls - ok + s.returned) as f64 * SM_PER_CALL
                    }
                    _ => s.calls as f64 * SM_PER_CALL,
                })
                .sum()
        };
        let kms = if seen.cmk {
            seen.kms_decrypts as f64 * KMS_PER_REQUEST
        } else {
            0.0
        };
        let admitted = t.invocations + t.timeouts + t.failed_invocations;
        let per_million = |usd: f64| {
            if admitted == 0 {
                0.0
            } else {
                usd * 1e6 / admitted as f64
            }
        };
        let ms = |q: f64| {
            let v = t.latency.value_at_quantile(q) as f64 / 1e3;
            if v <= 0.001 {
                0.0
            } else {
                v
            }
        };
        Outcome {
            policy: policy.to_owned(),
            invocations: admitted,
            throttled_invocations: t.throttled_invocations,
            timeouts: t.timeouts,
            cold_starts: t.cold_starts,
            reads: t.reads,
            reads_failed: t.failed,
            reads_failed_held: t.failed_held,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            upstream_calls: calls,
            throttled: all.iter().map(|(_, s)| s.throttled).sum(),
            kms_decrypts: if seen.cmk { seen.kms_decrypts } else { 0 },
            replica_calls: seen.replica.map_or(0, |r| r.iter().map(|s| s.calls).sum()),
            peak_concurrency: seen.peak_concurrency as u64,
            cost_per_call: per_million(sm(false) + kms),
            cost_per_secret: per_million(sm(true) + kms),
            old_reads: t.old_reads,
            converged_s: seen.rotated_at.map(|r| {
                t.last_old
                    .map_or(0.0, |l| l.saturating_sub(r).as_secs_f64())
            }),
            apis,
            series: Api::ALL
                .iter()
                .zip(seen.home)
                .filter(|(_, s)| s.calls > 0)
                .map(|(api, s)| (api.name().to_owned(), s.per_minute_peaks()))
                .collect(),
        }
    }

    /// The figures the report shows with their spread, by name.
    pub fn figures(&self) -> Vec<(&'static str, f64)> {
        let mut f = vec![
            ("invocations", self.invocations as f64),
            ("throttled_invocations", self.throttled_invocations as f64),
            ("timeouts", self.timeouts as f64),
            ("cold_starts", self.cold_starts as f64),
            ("reads", self.reads as f64),
            ("reads_failed", self.reads_failed as f64),
            ("reads_failed_held", self.reads_failed_held as f64),
            ("p50_ms", self.p50_ms),
            ("p99_ms", self.p99_ms),
            ("upstream_calls", self.upstream_calls as f64),
            ("throttled", self.throttled as f64),
            ("kms_decrypts", self.kms_decrypts as f64),
            ("replica_calls", self.replica_calls as f64),
            ("peak_concurrency", self.peak_concurrency as f64),
            ("cost_per_call", self.cost_per_call),
            ("cost_per_secret", self.cost_per_secret),
            ("old_reads", self.old_reads as f64),
        ];
        if let Some(c) = self.converged_s {
            f.push(("converged_s", c));
        }
        f
    }
}

/// A figure over seeds: least, median, most.
pub type Spread = [f64; 3];

/// One policy in one scenario over every seed (`results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub policy: String,
    /// Each figure of [`Outcome::figures`] as [min, median, max].
    pub figures: BTreeMap<String, Spread>,
    /// Per API: calls, throttled and the busiest second, each a spread.
    pub apis: Vec<(String, f64, Spread, Spread, Spread)>,
    /// The first seed's per-minute peaks, per API, as one line each.
    pub series: Vec<(String, String)>,
}

/// Least, median and most of `values` (not empty).
pub fn spread(mut values: Vec<f64>) -> Spread {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return [0.0; 3];
    }
    let mid = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    [values[0], mid, values[n - 1]]
}

impl Row {
    /// The row of `runs`, one per seed (the first seed's series kept).
    pub fn of(runs: &[Outcome]) -> Row {
        let mut figures = BTreeMap::new();
        for (name, _) in runs[0].figures() {
            let values = runs
                .iter()
                .filter_map(|o| o.figures().into_iter().find(|(n, _)| *n == name))
                .map(|(_, v)| v)
                .collect();
            figures.insert(name.to_owned(), spread(values));
        }
        let mut names: Vec<(String, f64)> = Vec::new();
        for o in runs {
            for a in &o.apis {
                if !names.iter().any(|(n, _)| *n == a.api) {
                    names.push((a.api.clone(), a.quota_rps));
                }
            }
        }
        let apis = names
            .into_iter()
            .map(|(name, quota)| {
                let of = |f: &dyn Fn(&ApiFigures) -> f64| {
                    spread(
                        runs.iter()
                            .map(|o| o.apis.iter().find(|a| a.api == name).map_or(0.0, f))
                            .collect(),
                    )
                };
                let calls = of(&|a| a.calls as f64);
                let throttled = of(&|a| a.throttled as f64);
                let peak = of(&|a| f64::from(a.peak_rps));
                (name, quota, calls, throttled, peak)
            })
            .collect();
        let series = runs[0]
            .series
            .iter()
            .map(|(api, v)| {
                let line: Vec<String> = v.iter().map(u32::to_string).collect();
                (api.clone(), line.join(","))
            })
            .collect();
        Row {
            policy: runs[0].policy.clone(),
            figures,
            apis,
            series,
        }
    }

    /// A figure's spread (zeros when absent).
    pub fn get(&self, name: &str) -> Spread {
        self.figures.get(name).copied().unwrap_or([0.0; 3])
    }
}
