//! The fleet simulation (issues 13 and 30): thousands of Lambda
//! environments, each running the real `sidekey-cache` (or a rival's
//! model), against a model of one account's Lambda, Secrets Manager,
//! Parameter Store and KMS quotas, in virtual time, over several seeds.
//!
//! Every (scenario, policy, seed) is one job: a current-thread tokio
//! runtime with paused time, one task per slot and per invocation, the
//! cache's TTL clock read from tokio's virtual clock ([`env::VirtualClock`]).
//! Paused time advances to the next timer whenever every task waits, so a
//! simulated hour costs what its events cost. Jobs run on a few threads.
//!
//! Determinism: arrivals, latencies and retry jitter come from seeded
//! `fastrand::Rng`s; the cache's own jitter draws from fastrand's
//! thread-local generator, which each job seeds with `fastrand::seed`
//! before it starts (one job per thread at a time). A current-thread
//! runtime polls tasks in a fixed order.
//!
//! * [`service`]: quotas, throttling, latency, outages, versions, KMS.
//! * [`retry`]: the clients: sidekey's fetcher and the SDKs' retry.
//! * [`lambda`]: concurrency and the scaling rate.
//! * [`policy`]: sidekey and the rivals, each with its source.
//! * [`env`]: environments and invocations.
//! * [`stats`]: what is counted, the figures, their spread over seeds.
//! * [`report`]: the report section and `results.json`.

mod chart;
pub mod env;
pub mod lambda;
mod notes;
pub mod policy;
pub mod report;
pub mod retry;
pub mod service;
pub mod stats;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sidekey_cache::{Key, Kind};

use self::env::{Ctx, Tuning, Workload};
use self::lambda::{Account, ACCOUNT_CONCURRENCY};
use self::policy::Policy;
use self::service::{Failure, Outage, Region, Service};
use self::stats::{Outcome, Row, Seen, Tally};

/// One scenario.
#[derive(Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub title: String,
    /// Invocation streams (standard Lambda) or environments (LMI).
    pub slots: usize,
    /// Functions the slots are spread over (they share the account).
    pub functions: usize,
    /// Each slot's first invocation (a cold start) is drawn uniformly in
    /// `[0, ramp)`.
    pub ramp: Duration,
    pub workload: Workload,
    pub outage: Option<Outage>,
    /// A replica region holds the secrets and stays up.
    pub replica: bool,
    /// Rotate the first id at this time.
    pub rotate: Option<Duration>,
    /// The secrets are under a customer-managed KMS key: each value read
    /// costs a KMS `Decrypt`.
    pub cmk: bool,
    /// What "sidekey (configured)" sets.
    pub tuning: Tuning,
}

impl Scenario {
    /// The policies that apply (the agent has no Parameter Store).
    pub fn policies(&self) -> Vec<Policy> {
        Policy::ALL
            .into_iter()
            .filter(|p| self.workload.kind == Kind::Secret || p.reads_parameters())
            .collect()
    }
}

const MIN: u64 = 60;

/// 1M invocations an hour over 2,000 slots.
const STEADY_RATE: f64 = 1_000_000.0 / 3600.0 / 2000.0;

/// How big a run is: the full fleet (`1.0`, `1.0`), or the quick run's
/// (fewer slots, shorter windows).
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Scales the slots (and the invocations with them).
    pub slots: f64,
    /// Scales every window and the times of events in it.
    pub time: f64,
}

impl Size {
    pub const FULL: Size = Size {
        slots: 1.0,
        time: 1.0,
    };
    /// The quick run (the test command's): 2% of the fleet, 35% of the
    /// time (the outage, 21 min, still outlasts a TTL four times).
    pub const QUICK: Size = Size {
        slots: 0.02,
        time: 0.35,
    };
}

fn workload(kind: Kind, n: usize, rate: f64, window: Duration) -> Workload {
    let prefix = match kind {
        Kind::Secret => "prod/app/secret",
        Kind::Parameter => "/prod/app/param",
    };
    Workload {
        ids: (0..n).map(|i| format!("{prefix}-{i}")).collect(),
        kind,
        rate,
        init: Duration::from_millis(150),
        work: Duration::from_millis(20),
        timeout: Duration::from_secs(3),
        reap_idle: Duration::from_secs(10 * MIN),
        lifetime: (Duration::from_secs(15 * MIN), Duration::from_secs(90 * MIN)),
        window,
        ttl: Duration::from_secs(300),
        lmi: None,
    }
}

/// Every scenario, at `size`.
pub fn scenarios(size: Size) -> Vec<Scenario> {
    let t = |min: u64| Duration::from_secs(min * MIN).mul_f64(size.time);
    let n = |slots: usize| ((slots as f64 * size.slots).round() as usize).max(10);
    let steady = |window: Duration| workload(Kind::Secret, 5, STEADY_RATE, window);
    let prefetch = Tuning {
        prefetch: true,
        ..Tuning::default()
    };
    let base = Scenario {
        name: "steady",
        title: String::new(),
        slots: n(2_000),
        functions: 10,
        ramp: t(5),
        workload: steady(t(60)),
        outage: None,
        replica: false,
        rotate: None,
        cmk: false,
        tuning: prefetch,
    };
    let hour_outage = Some(Outage {
        from: t(10),
        until: t(70),
        failure: Failure::HangOr503,
    });
    let mut lmi = workload(Kind::Secret, 5, STEADY_RATE, t(30));
    lmi.lmi = Some(16);
    vec![
        Scenario {
            name: "surge",
            title: format!(
                "1. Cold-start surge: {} environments in 10 s across 10 functions, 10 secrets each, 0.1 invocations/s each, {} s",
                n(10_000),
                Duration::from_secs(120).as_secs()
            ),
            slots: n(10_000),
            ramp: Duration::from_secs(10),
            workload: workload(Kind::Secret, 10, 0.1, Duration::from_secs(120)),
            ..base.clone()
        },
        Scenario {
            title: format!(
                "2. Steady state: 1M invocations/hour over {} invocation streams (10 functions), 5 secrets, TTL 300 s, {} min",
                n(2_000),
                t(60).as_secs() / MIN
            ),
            ..base.clone()
        },
        Scenario {
            name: "rotation",
            title: format!(
                "3. Rotation: as 2, one secret rotated at {} min, {} min",
                t(12).as_secs() / MIN,
                t(30).as_secs() / MIN
            ),
            workload: steady(t(30)),
            rotate: Some(t(12)),
            ..base.clone()
        },
        Scenario {
            name: "outage",
            title: format!(
                "4. Outage: as 2, from {} to {} min every call answers 503 or hangs (half each), {} min",
                t(10).as_secs() / MIN,
                t(70).as_secs() / MIN,
                t(80).as_secs() / MIN
            ),
            workload: steady(t(80)),
            outage: hour_outage,
            ..base.clone()
        },
        Scenario {
            name: "regional",
            title: format!(
                "5. Regional outage: as 4, the secrets replicated to a second region that stays up ({} min)",
                t(80).as_secs() / MIN
            ),
            workload: steady(t(80)),
            outage: hour_outage,
            replica: true,
            tuning: Tuning {
                prefetch: true,
                fallback: true,
                ..Tuning::default()
            },
            ..base.clone()
        },
        Scenario {
            name: "parameters",
            title: format!(
                "6. Parameter Store: as 2 with 5 parameters, 40 requests/s quota, {} min",
                t(30).as_secs() / MIN
            ),
            workload: workload(Kind::Parameter, 5, STEADY_RATE, t(30)),
            ..base.clone()
        },
        Scenario {
            name: "lmi",
            title: format!(
                "7. Lambda Managed Instances: {} environments never frozen, 16 invocations at once each, 1M invocations/hour, 5 secrets, {} min",
                n(125),
                t(30).as_secs() / MIN
            ),
            slots: n(125),
            workload: lmi,
            ..base.clone()
        },
        Scenario {
            name: "versions",
            title: format!(
                "8. Version check: as 3 (rotation at {} min, {} min), secrets under a customer-managed KMS key; sidekey (configured) = SIDEKEY_VERSION_CHECK=describe, no prefetch",
                t(12).as_secs() / MIN,
                t(30).as_secs() / MIN
            ),
            workload: steady(t(30)),
            rotate: Some(t(12)),
            cmk: true,
            tuning: Tuning {
                version_check: true,
                ..Tuning::default()
            },
            ..base
        },
    ]
}

/// Every figure of one simulation run (`"fleet"` in `bench/results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetResults {
    pub seeds: Vec<u64>,
    /// Wall-clock seconds the whole simulation took on this machine.
    pub wall_secs: f64,
    /// The CPU it ran on (`lscpu`'s model name).
    pub cpu: String,
    pub jobs: usize,
    pub scenarios: Vec<ScenarioResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub title: String,
    pub rows: Vec<Row>,
    /// Every run, per policy then seed (not written out; the quick run's
    /// test reads them).
    #[serde(skip)]
    #[cfg_attr(not(test), allow(dead_code))]
    pub runs: Vec<Vec<Outcome>>,
}

/// Run every scenario under every policy and seed, on `threads` threads.
pub fn run(seeds: &[u64], threads: usize, size: Size, verbose: bool) -> FleetResults {
    let began = std::time::Instant::now();
    let scenarios = scenarios(size);
    let mut jobs: Vec<(usize, Policy, u64)> = Vec::new();
    for (s, sc) in scenarios.iter().enumerate() {
        for p in sc.policies() {
            for &seed in seeds {
                jobs.push((s, p, seed));
            }
        }
    }
    let count = jobs.len();
    // Longest first: the outages, then the hour; pops from the back.
    jobs.sort_by_key(|(s, _, _)| std::cmp::Reverse(scenarios[*s].workload.window));
    jobs.reverse();
    let queue = Mutex::new(jobs);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let Some((s, p, seed)) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop()
                else {
                    return;
                };
                let t = std::time::Instant::now();
                let outcome = run_job(&scenarios[s], s, p, seed);
                if verbose {
                    eprintln!(
                        "  {:<10} {:<30} seed {:<3} {:>6.1} s: {} invocations, {} throttled, {} reads failed, {} upstream calls",
                        scenarios[s].name,
                        outcome.policy,
                        seed,
                        t.elapsed().as_secs_f64(),
                        outcome.invocations,
                        outcome.throttled_invocations,
                        outcome.reads_failed,
                        outcome.upstream_calls
                    );
                }
                done.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(((s, p, seed), outcome));
            });
        }
    });
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let scenarios = scenarios
        .iter()
        .enumerate()
        .map(|(i, sc)| {
            let runs: Vec<Vec<Outcome>> = sc
                .policies()
                .into_iter()
                .map(|p| {
                    seeds
                        .iter()
                        .filter_map(|seed| {
                            done.iter()
                                .find(|((s, q, d), _)| *s == i && *q == p && d == seed)
                                .map(|(_, o)| o.clone())
                        })
                        .collect()
                })
                .collect();
            ScenarioResult {
                name: sc.name.to_owned(),
                title: sc.title.clone(),
                rows: runs.iter().map(|r| Row::of(r)).collect(),
                runs,
            }
        })
        .collect();
    FleetResults {
        seeds: seeds.to_vec(),
        wall_secs: began.elapsed().as_secs_f64(),
        cpu: cpu_name(),
        jobs: count,
        scenarios,
    }
}

/// `lscpu`'s model name, or "unknown".
fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn run_job(sc: &Scenario, index: usize, policy: Policy, seed: u64) -> Outcome {
    let job_seed = seed ^ ((index as u64) << 40) ^ ((policy as u64) << 48);
    // The cache's TTL and backoff jitter draw from this thread's generator.
    fastrand::seed(job_seed);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let start = tokio::time::Instant::now();
        let horizon = sc.workload.window + Duration::from_secs(2 * MIN);
        let home = Region::new(start, job_seed, sc.outage, horizon);
        let replica = sc
            .replica
            .then(|| Region::new(start, job_seed ^ 0x7e9, None, horizon));
        let service = Arc::new(Service::new(home, replica));
        let keys: Vec<Key> = sc
            .workload
            .ids
            .iter()
            .map(|id| match sc.workload.kind {
                Kind::Secret => Key::secret(id.clone()),
                Kind::Parameter => Key::parameter(id.clone(), true),
            })
            .collect();
        let account = Arc::new(Account::new(ACCOUNT_CONCURRENCY, sc.functions, start));
        let ctx = Arc::new(Ctx {
            policy,
            w: sc.workload.clone(),
            tuning: sc.tuning,
            service: Arc::clone(&service),
            account: Arc::clone(&account),
            tally: Mutex::new(Tally::default()),
            start,
            keys,
            fell_back: Arc::new(AtomicU64::new(0)),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for slot in 0..sc.slots {
            // The same traffic for every policy: slot draws depend on the
            // scenario, the seed and the slot only.
            let slot_seed =
                seed ^ ((index as u64) << 40) ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let first = sc.ramp.mul_f64(fastrand::Rng::with_seed(slot_seed).f64());
            let ctx = Arc::clone(&ctx);
            match sc.workload.lmi {
                Some(per_env) => tasks.spawn(env::lmi_slot(
                    ctx,
                    per_env,
                    first,
                    slot_seed.rotate_left(17),
                )),
                None => tasks.spawn(env::slot(
                    ctx,
                    slot % sc.functions.max(1),
                    first,
                    slot_seed.rotate_left(17),
                )),
            };
        }
        if let Some(at) = sc.rotate {
            let service = Arc::clone(&service);
            let id = sc.workload.ids[0].clone();
            tasks.spawn(async move {
                tokio::time::sleep_until(start + at).await;
                service.rotate(&id);
            });
        }
        while tasks.join_next().await.is_some() {}
        let (home, kms_home) = service.home.stats();
        let replica = service.replica.as_ref().map(Region::stats);
        let tally = ctx.tally.lock().unwrap_or_else(|e| e.into_inner());
        Outcome::new(
            policy.name(),
            &tally,
            &Seen {
                home: &home,
                replica: replica.as_ref().map(|(s, _)| s),
                kms_decrypts: kms_home + replica.as_ref().map_or(0, |(_, k)| *k),
                cmk: sc.cmk,
                peak_concurrency: account.peak(),
                rotated_at: sc.rotate,
            },
        )
    })
}

/// Draw `fleet.png`.
pub fn chart_draw(
    r: &FleetResults,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    chart::draw(r, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick run (a twentieth of the fleet, half the time; one seed):
    /// the headline conclusions as counts, never timings.
    #[test]
    fn quick_run_keeps_the_headline_conclusions() {
        let r = run(&[13], 2, Size::QUICK, false);
        assert_eq!(r.scenarios.len(), 8);
        for sc in &r.scenarios {
            let of = |name: &str| {
                let i = sc.rows.iter().position(|row| row.policy == name);
                &sc.runs[i.unwrap_or_else(|| panic!("{}: no {name}", sc.name))][0]
            };
            let rivals: Vec<&Outcome> = sc
                .runs
                .iter()
                .map(|runs| &runs[0])
                .filter(|o| !o.policy.starts_with("sidekey"))
                .collect();
            for sidekey in [of("sidekey (defaults)"), of("sidekey (configured)")] {
                let who = format!("{}: {}", sc.name, sidekey.policy);
                assert!(sidekey.invocations > 0, "{who}: nothing ran");
                // sidekey fails no read of a value it holds: what an
                // environment read once it serves through any outage.
                assert_eq!(sidekey.reads_failed_held, 0, "{who}: held reads failed");
                for rival in &rivals {
                    // Never throttled (by Lambda or by a quota) where a
                    // rival is not.
                    if sidekey.throttled_invocations > 0 {
                        assert!(
                            rival.throttled_invocations > 0,
                            "{who}: 429s where {} has none",
                            rival.policy
                        );
                    }
                    if sidekey.throttled > 0 {
                        assert!(
                            rival.throttled > 0,
                            "{who}: throttled where {} is not",
                            rival.policy
                        );
                    }
                    assert!(sidekey.reads_failed_held <= rival.reads_failed_held);
                }
            }
            let configured = of("sidekey (configured)");
            match sc.name.as_str() {
                // The replica serves cold reads no rival can.
                "regional" => {
                    for rival in &rivals {
                        assert!(
                            configured.reads_failed < rival.reads_failed,
                            "regional: {} fails fewer reads",
                            rival.policy
                        );
                    }
                }
                // One GetParameters per cold start fits the 40/s quota.
                "parameters" => {
                    assert_eq!(configured.reads_failed, 0);
                    assert_eq!(configured.throttled, 0);
                }
                _ => {}
            }
        }
    }
}
