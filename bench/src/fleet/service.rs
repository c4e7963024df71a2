//! The model of the services the fleet reads from, per region: one
//! account's request quotas as token buckets, `ThrottlingException` past
//! them, a latency distribution, outages (fast 503s, or hangs: a
//! connection accepted and never answered), a version per id (rotation),
//! and the KMS `Decrypt` calls a customer-managed key costs.
//!
//! The clients of it are in [`super::retry`]: sidekey's `SigV4Fetcher` and
//! the AWS SDKs' standard retry, each modelled once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sidekey_cache::{Error, ErrorKind};
use tokio::time::Instant;

/// The APIs the fleet calls, each with its own quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Secrets Manager `GetSecretValue`.
    GetSecretValue,
    /// Secrets Manager `BatchGetSecretValue` (up to 20 ids a call).
    BatchGetSecretValue,
    /// Secrets Manager `DescribeSecret` (the version check).
    DescribeSecret,
    /// Parameter Store `GetParameter` / `GetParameters` (one shared quota).
    GetParameter,
}

/// How many APIs [`Api::ALL`] has.
pub const APIS: usize = 4;

impl Api {
    /// Every API, in report order.
    pub const ALL: [Api; APIS] = [
        Api::GetSecretValue,
        Api::BatchGetSecretValue,
        Api::DescribeSecret,
        Api::GetParameter,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Api::GetSecretValue => "GetSecretValue",
            Api::BatchGetSecretValue => "BatchGetSecretValue",
            Api::DescribeSecret => "DescribeSecret",
            Api::GetParameter => "GetParameter(s)",
        }
    }

    /// The published default quota, requests per second per account and
    /// region: GetSecretValue 10,000 and DescribeSecret 40,000 since March
    /// 2025 (What's New, "AWS Secrets Manager increases API requests per
    /// second limits"), BatchGetSecretValue 100 (Secrets Manager quotas),
    /// GetParameter and GetParameters 40 shared at standard throughput
    /// (Systems Manager endpoints and quotas).
    pub fn quota(self) -> f64 {
        match self {
            Api::GetSecretValue => 10_000.0,
            Api::BatchGetSecretValue => 100.0,
            Api::DescribeSecret => 40_000.0,
            Api::GetParameter => 40.0,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Median latency of an answer. Batch calls decrypt up to 20 values.
    fn median(self) -> f64 {
        match self {
            Api::GetSecretValue => 0.015,
            Api::BatchGetSecretValue => 0.030,
            Api::DescribeSecret => 0.010,
            Api::GetParameter => 0.012,
        }
    }
}

/// How a region fails in an outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Half the calls answer 503; the other half are accepted and never
    /// answered (a load balancer holding the connection, a dropped flow):
    /// only the client's own timeout ends them. (The first model's outage,
    /// fast 503s only, flattered every client with a cached value.)
    HangOr503,
}

/// A window in which a region fails.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    /// Start, from the start of the run.
    pub from: Duration,
    /// End.
    pub until: Duration,
    pub failure: Failure,
}

/// How long a hung call holds its connection before the far end drops it
/// (longer than any client here waits).
const HANG: Duration = Duration::from_secs(120);

/// Calls seen by one API over a run.
#[derive(Clone, Debug, Default)]
pub struct ApiStats {
    /// Requests that reached the service (throttled and failed included).
    pub calls: u64,
    /// Of them, answered `ThrottlingException`.
    pub throttled: u64,
    /// Of them, answered a 5xx or never answered (the outage).
    pub failed: u64,
    /// Secrets a successful call returned (a batch returns up to 20).
    pub returned: u64,
    /// Requests per whole second of the run.
    pub per_second: Vec<u32>,
}

impl ApiStats {
    /// The busiest second.
    pub fn peak(&self) -> u32 {
        self.per_second.iter().copied().max().unwrap_or(0)
    }

    /// The busiest second of each minute (the chart's series).
    pub fn per_minute_peaks(&self) -> Vec<u32> {
        self.per_second
            .chunks(60)
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect()
    }
}

/// A token bucket holding up to one second of its rate: AWS does not
/// publish the burst its throttling allows; one second is the usual reading.
pub struct Bucket {
    rate: f64,
    cap: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Full at `at`, holding `cap` tokens, refilled at `rate` a second.
    pub fn new(rate: f64, cap: f64, at: Instant) -> Self {
        Self {
            rate,
            cap,
            tokens: cap,
            at,
        }
    }

    /// Take one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.cap);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct State {
    rng: fastrand::Rng,
    buckets: [Bucket; APIS],
    stats: [ApiStats; APIS],
    /// KMS `Decrypt` calls made for this region's answers (one per secret
    /// value returned; `DescribeSecret` decrypts nothing).
    kms_decrypts: u64,
}

/// One account in one region, shared by the whole fleet of one run.
pub struct Region {
    start: Instant,
    outage: Option<Outage>,
    state: Mutex<State>,
}

impl Region {
    /// A region whose quotas start full at `start`.
    pub fn new(start: Instant, seed: u64, outage: Option<Outage>, horizon: Duration) -> Self {
        let secs = horizon.as_secs() as usize + 1;
        let stats = || ApiStats {
            per_second: vec![0; secs],
            ..ApiStats::default()
        };
        Self {
            start,
            outage,
            state: Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                buckets: Api::ALL.map(|api| Bucket::new(api.quota(), api.quota(), start)),
                stats: [stats(), stats(), stats(), stats()],
                kms_decrypts: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What each API saw, and the KMS decrypts.
    pub fn stats(&self) -> ([ApiStats; APIS], u64) {
        let s = self.lock();
        (s.stats.clone(), s.kms_decrypts)
    }

    /// One request returning `values` secret values when it succeeds, as
    /// the service sees it: counted, throttled past the quota, failed or
    /// hung in an outage, answered after a latency drawn from a log-normal
    /// (median per API, p99 about 3x the median). The caller bounds it by
    /// its own timeout.
    pub async fn request(&self, api: Api, values: u64) -> Result<(), Error> {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.start);
        let (answer, latency) = {
            let mut s = self.lock();
            let i = api.index();
            let sec = since.as_secs() as usize;
            s.stats[i].calls += 1;
            if let Some(n) = s.stats[i].per_second.get_mut(sec) {
                *n += 1;
            }
            let normal = standard_normal(&mut s.rng);
            let latency = Duration::from_secs_f64(api.median() * (0.5 * normal).exp());
            let down = self
                .outage
                .filter(|o| since >= o.from && since < o.until)
                .map(|o| o.failure);
            let hang = down == Some(Failure::HangOr503) && s.rng.bool();
            if !s.buckets[i].take(now) {
                s.stats[i].throttled += 1;
                let e = Error::new(ErrorKind::Throttled, "ThrottlingException: Rate exceeded");
                (Err(e), latency / 3)
            } else if hang {
                s.stats[i].failed += 1;
                let e = Error::new(ErrorKind::Connection, "connection reset (simulated hang)");
                (Err(e), HANG)
            } else if down.is_some() {
                s.stats[i].failed += 1;
                let e = Error::new(
                    ErrorKind::Unavailable,
                    "ServiceUnavailable (simulated outage)",
                );
                (Err(e), latency)
            } else {
                s.stats[i].returned += values;
                if api != Api::DescribeSecret && api != Api::GetParameter {
                    s.kms_decrypts += values;
                }
                (Ok(()), latency)
            }
        };
        tokio::time::sleep(latency).await;
        answer
    }
}

fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // Box-Muller; 1 - f64() is in (0, 1], so the log is finite.
    let (u, v) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// The services of one run: the home region, an optional replica region
/// (the secrets replicated to it), and the version of every id (a replica
/// follows its primary's rotation).
pub struct Service {
    pub home: Region,
    pub replica: Option<Region>,
    versions: Mutex<HashMap<String, u32>>,
}

impl Service {
    pub fn new(home: Region, replica: Option<Region>) -> Self {
        Self {
            home,
            replica,
            versions: Mutex::new(HashMap::new()),
        }
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rotate `id`: its next answers carry a new version.
    pub fn rotate(&self, id: &str) {
        *self.versions().entry(id.to_owned()).or_insert(1) += 1;
    }

    /// The version `id` answers now.
    pub fn version(&self, id: &str) -> u32 {
        self.versions().get(id).copied().unwrap_or(1)
    }

    /// The region `i` (0 home, 1 replica).
    pub fn region(&self, i: usize) -> &Region {
        match (i, &self.replica) {
            (1, Some(r)) => r,
            _ => &self.home,
        }
    }
}
