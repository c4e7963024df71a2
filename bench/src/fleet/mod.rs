//! The fleet simulation (issue 13): thousands of Lambda environments, each
//! running the real `sidekey-cache`, against a model of one account's
//! Secrets Manager and Parameter Store quotas, in virtual time.
//!
//! Every (scenario, policy) pair is one job: a current-thread tokio runtime
//! with paused time, one task per environment slot, the cache's TTL clock
//! read from tokio's virtual clock ([`env::VirtualClock`]). Paused time
//! advances to the next timer whenever every task waits, so a simulated
//! hour costs what its events cost, not an hour. Jobs run on two threads.
//!
//! Determinism: arrivals, latencies and SDK retry jitter come from seeded
//! `fastrand::Rng`s; the cache's own jitter draws from fastrand's
//! thread-local generator, which each job seeds with `fastrand::seed`
//! before it starts (one job per thread at a time, so nothing else draws
//! from it). A current-thread runtime polls tasks in a fixed order.
//!
//! * [`service`]: quotas, throttling, latency, outage, versions; the `Fetch`.
//! * [`env`]: an environment's lifecycle under each policy.
//! * [`stats`]: what is counted and the figures derived from it.
//! * [`report`]: the report section, the chart, merging into the files.

mod chart;
pub mod env;
pub mod report;
pub mod service;
pub mod stats;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sidekey_cache::Kind;

use self::env::{Policy, Workload};
use self::service::{Outage, Service};
use self::stats::{Outcome, Tally};

/// One scenario of the issue.
pub struct Scenario {
    pub name: &'static str,
    pub title: String,
    pub slots: usize,
    /// Each slot's first invocation (a cold start) is drawn uniformly in
    /// `[0, ramp)`.
    pub ramp: Duration,
    pub workload: Workload,
    pub outage: Option<Outage>,
    /// Rotate the first id at this time.
    pub rotate: Option<Duration>,
}

const MIN: u64 = 60;

/// 1M invocations an hour over 2,000 environments.
const STEADY_RATE: f64 = 1_000_000.0 / 3600.0 / 2000.0;

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
        reap_idle: Duration::from_secs(10 * MIN),
        lifetime: (
            Duration::from_secs(30 * MIN),
            Duration::from_secs(120 * MIN),
        ),
        window,
        ttl: Duration::from_secs(300),
    }
}

/// The five scenarios of issue 13.
pub fn scenarios() -> Vec<Scenario> {
    let steady = |window_min: u64| {
        workload(
            Kind::Secret,
            5,
            STEADY_RATE,
            Duration::from_secs(window_min * MIN),
        )
    };
    vec![
        Scenario {
            name: "surge",
            title: "1. Cold-start surge: 10,000 environments in 10 s, 10 secrets each, 0.1 invocations/s each, 60 s".into(),
            slots: 10_000,
            ramp: Duration::from_secs(10),
            workload: workload(Kind::Secret, 10, 0.1, Duration::from_secs(60)),
            outage: None,
            rotate: None,
        },
        Scenario {
            name: "steady",
            title: "2. Steady state: 1M invocations/hour over 2,000 environments, 5 secrets, TTL 300 s, 30 min".into(),
            slots: 2_000,
            ramp: Duration::from_secs(5 * MIN),
            workload: steady(30),
            outage: None,
            rotate: None,
        },
        Scenario {
            name: "rotation",
            title: "3. Rotation: as 2, one secret rotated at 12 min, 20 min".into(),
            slots: 2_000,
            ramp: Duration::from_secs(5 * MIN),
            workload: steady(20),
            outage: None,
            rotate: Some(Duration::from_secs(12 * MIN)),
        },
        Scenario {
            name: "outage",
            title: "4. Outage: as 2, every call answers 503 from 12 to 17 min, 25 min".into(),
            slots: 2_000,
            ramp: Duration::from_secs(5 * MIN),
            workload: steady(25),
            outage: Some(Outage {
                from: Duration::from_secs(12 * MIN),
                until: Duration::from_secs(17 * MIN),
            }),
            rotate: None,
        },
        Scenario {
            name: "parameters",
            title: "5. Parameter Store: 2,000 environments, 5 parameters, 1M invocations/hour, 40 requests/s quota, 30 min".into(),
            slots: 2_000,
            ramp: Duration::from_secs(5 * MIN),
            workload: workload(Kind::Parameter, 5, STEADY_RATE, Duration::from_secs(30 * MIN)),
            outage: None,
            rotate: None,
        },
    ]
}

/// Every figure of one simulation run (`"fleet"` in `bench/results.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FleetResults {
    pub seed: u64,
    /// Wall-clock seconds the whole simulation took on this machine.
    pub wall_secs: f64,
    pub scenarios: Vec<ScenarioResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub title: String,
    pub outcomes: Vec<Outcome>,
}

/// Run every scenario under every policy, on `threads` threads.
pub fn run(seed: u64, threads: usize) -> FleetResults {
    let began = std::time::Instant::now();
    let scenarios = scenarios();
    let jobs: Vec<(usize, usize)> = (0..scenarios.len())
        .flat_map(|s| (0..Policy::ALL.len()).map(move |p| (s, p)))
        .collect();
    let queue = Mutex::new(jobs.clone());
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let Some((s, p)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let t = std::time::Instant::now();
                let outcome = run_job(&scenarios[s], s, Policy::ALL[p], seed);
                eprintln!(
                    "  {:<10} {:<13} {:>6.1} s: {} invocations, {} reads failed, {} upstream calls",
                    scenarios[s].name,
                    outcome.policy,
                    t.elapsed().as_secs_f64(),
                    outcome.invocations,
                    outcome.reads_failed,
                    outcome.upstream_calls
                );
                done.lock().unwrap().push(((s, p), outcome));
            });
        }
    });
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(k, _)| *k);
    let scenarios = scenarios
        .iter()
        .enumerate()
        .map(|(i, sc)| ScenarioResult {
            name: sc.name.to_owned(),
            title: sc.title.clone(),
            outcomes: done
                .iter()
                .filter(|((s, _), _)| *s == i)
                .map(|(_, o)| o.clone())
                .collect(),
        })
        .collect();
    FleetResults {
        seed,
        wall_secs: began.elapsed().as_secs_f64(),
        scenarios,
    }
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
        let service = Arc::new(Service::new(start, job_seed, sc.outage, horizon));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let workload = Arc::new(sc.workload.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for slot in 0..sc.slots {
            // The same traffic for every policy: slot draws depend on the
            // scenario and the slot only.
            let slot_seed =
                seed ^ ((index as u64) << 40) ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let first = sc.ramp.mul_f64(fastrand::Rng::with_seed(slot_seed).f64());
            tasks.spawn(env::slot(
                policy,
                Arc::clone(&workload),
                Arc::clone(&service),
                start,
                first,
                slot_seed.rotate_left(17),
                Arc::clone(&tally),
            ));
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
        let tally = tally.lock().unwrap();
        Outcome::new(policy.name(), &tally, &service.stats(), sc.rotate)
    })
}

/// Draw `fleet.png`.
pub fn chart_draw(
    r: &FleetResults,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    chart::draw(r, path)
}
