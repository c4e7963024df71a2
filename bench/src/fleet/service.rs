//! The model of the services the fleet reads from: one account's request
//! quotas as token buckets, `ThrottlingException` past them, a latency
//! distribution, an optional outage window and a version per id (rotation).
//!
//! [`SimFetch`] is the `Fetch` every sidekey environment's real cache
//! reads through. It wraps each call in the retry the AWS SDKs do by
//! default (standard mode: three attempts, exponential backoff with full
//! jitter) because every policy compared ships on an AWS SDK, and a retry
//! is one more request against the quota.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey_cache::BatchItem;
use sidekey_cache::{Error, ErrorKind, Fetch, Key, Kind, Parameter, Payload, Record, SecretValue};
use tokio::sync::Notify;
use tokio::time::Instant;
use zeroize::Zeroizing;

/// The APIs the fleet calls, each with its own quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// Secrets Manager `GetSecretValue`.
    GetSecretValue,
    /// Secrets Manager `BatchGetSecretValue` (up to 20 ids a call).
    BatchGetSecretValue,
    /// Parameter Store `GetParameter` / `GetParameters` (one shared quota).
    GetParameter,
}

impl Api {
    /// Every API, in report order.
    pub const ALL: [Api; 3] = [
        Api::GetSecretValue,
        Api::BatchGetSecretValue,
        Api::GetParameter,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Api::GetSecretValue => "GetSecretValue",
            Api::BatchGetSecretValue => "BatchGetSecretValue",
            Api::GetParameter => "GetParameter(s)",
        }
    }

    /// The published default quota, requests per second per account and
    /// region (see the report's sources).
    pub fn quota(self) -> f64 {
        match self {
            Api::GetSecretValue => 10_000.0,
            Api::BatchGetSecretValue => 100.0,
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
            Api::GetParameter => 0.012,
        }
    }
}

/// When the service answers every call with a 5xx.
#[derive(Clone, Copy, Debug)]
pub struct Outage {
    /// Start, from the start of the run.
    pub from: Duration,
    /// End.
    pub until: Duration,
}

/// Calls seen by one API over a run.
#[derive(Clone, Debug, Default)]
pub struct ApiStats {
    /// Requests that reached the service (throttled and failed included).
    pub calls: u64,
    /// Of them, answered `ThrottlingException`.
    pub throttled: u64,
    /// Of them, answered a 5xx (the outage).
    pub failed: u64,
    /// Requests per whole second of the run.
    pub per_second: Vec<u32>,
}

impl ApiStats {
    /// The busiest second.
    pub fn peak(&self) -> u32 {
        self.per_second.iter().copied().max().unwrap_or(0)
    }
}

/// A token bucket holding up to one second of its rate: AWS does not
/// publish the burst its throttling allows; one second is the usual reading.
struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
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
    buckets: [Bucket; 3],
    stats: [ApiStats; 3],
    /// Current version per id (absent: 1).
    versions: HashMap<String, u32>,
}

/// One account and region, shared by the whole fleet of one run.
pub struct Service {
    start: Instant,
    outage: Option<Outage>,
    state: Mutex<State>,
}

impl Service {
    /// A service whose quotas start full at `start`.
    pub fn new(start: Instant, seed: u64, outage: Option<Outage>, horizon: Duration) -> Self {
        let secs = horizon.as_secs() as usize + 1;
        let bucket = |api: Api| Bucket {
            rate: api.quota(),
            tokens: api.quota(),
            at: start,
        };
        let stats = || ApiStats {
            per_second: vec![0; secs],
            ..ApiStats::default()
        };
        Self {
            start,
            outage,
            state: Mutex::new(State {
                rng: fastrand::Rng::with_seed(seed),
                buckets: Api::ALL.map(bucket),
                stats: [stats(), stats(), stats()],
                versions: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rotate `id`: its next answers carry a new version.
    pub fn rotate(&self, id: &str) {
        *self.lock().versions.entry(id.to_owned()).or_insert(1) += 1;
    }

    /// The version `id` answers now.
    pub fn version(&self, id: &str) -> u32 {
        self.lock().versions.get(id).copied().unwrap_or(1)
    }

    /// What each API saw.
    pub fn stats(&self) -> [ApiStats; 3] {
        self.lock().stats.clone()
    }

    /// One request, as the service sees it: counted, throttled past the
    /// quota, failed in an outage, answered after a latency drawn from a
    /// log-normal (median per API, p99 about 3x the median).
    async fn request(&self, api: Api) -> Result<(), Error> {
        let now = Instant::now();
        let since = now.saturating_duration_since(self.start);
        let (answer, latency) = {
            let mut s = self.lock();
            let i = api.index();
            let sec = since.as_secs() as usize;
            let stats = &mut s.stats[i];
            stats.calls += 1;
            if let Some(n) = stats.per_second.get_mut(sec) {
                *n += 1;
            }
            let normal = standard_normal(&mut s.rng);
            let latency = api.median() * (0.5 * normal).exp();
            let down = self
                .outage
                .is_some_and(|o| since >= o.from && since < o.until);
            if !s.buckets[i].take(now) {
                s.stats[i].throttled += 1;
                let e = Error::new(ErrorKind::Throttled, "ThrottlingException: Rate exceeded");
                (Err(e), latency / 3.0)
            } else if down {
                s.stats[i].failed += 1;
                let e = Error::new(
                    ErrorKind::Unavailable,
                    "ServiceUnavailable (simulated outage)",
                );
                (Err(e), latency)
            } else {
                (Ok(()), latency)
            }
        };
        tokio::time::sleep(Duration::from_secs_f64(latency)).await;
        answer
    }
}

fn standard_normal(rng: &mut fastrand::Rng) -> f64 {
    // Box-Muller; 1 - f64() is in (0, 1], so the log is finite.
    let (u, v) = (1.0 - rng.f64(), rng.f64());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Whether an environment runs. Lambda freezes an environment between
/// invocations: nothing it started (a refresh, a retry) makes progress
/// until the next INVOKE thaws it.
#[derive(Default)]
pub struct Thaw {
    thawed: AtomicBool,
    notify: Notify,
}

impl Thaw {
    /// Thaw or freeze.
    pub fn set(&self, thawed: bool) {
        self.thawed.store(thawed, Ordering::SeqCst);
        if thawed {
            self.notify.notify_waiters();
        }
    }

    /// Wait until the environment runs.
    pub async fn ready(&self) {
        loop {
            // Created before the check: `notify_waiters` reaches it even
            // if it is not polled yet.
            let notified = self.notify.notified();
            if self.thawed.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// The SDK's standard retry: three attempts, backoff drawn in
/// `[0, min(1 s * 2^attempt, 20 s))` after a throttle or a 5xx.
const ATTEMPTS: u32 = 3;

/// One environment's client of the [`Service`]: requests leave only while
/// the environment is thawed, and their answers are read only then.
#[derive(Clone)]
pub struct SimFetch {
    pub service: Arc<Service>,
    pub thaw: Arc<Thaw>,
    /// This environment's draws for the SDK's retry jitter.
    pub rng: Arc<Mutex<fastrand::Rng>>,
    /// Whether a batch call gets the SDK retry too. `AwsFetcher` turns it
    /// off for `BatchGetSecretValue` (a throttled batch falls back to
    /// single reads at once); the run kept as "before" had it on.
    pub retry_batch: bool,
}

impl SimFetch {
    async fn with_retry(&self, api: Api, attempts: u32) -> Result<(), Error> {
        let mut attempt = 0;
        loop {
            self.thaw.ready().await;
            let result = self.service.request(api).await;
            self.thaw.ready().await;
            attempt += 1;
            match result {
                Err(e) if e.is_transient() && attempt < attempts => {
                    let cap = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(20));
                    let unit = self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
                    tokio::time::sleep(cap.mul_f64(unit)).await;
                }
                other => return other,
            }
        }
    }

    /// A read of `key` by a policy other than sidekey (same service, same
    /// retry), answering the version read.
    pub async fn read(&self, key: &Key) -> Result<u32, Error> {
        let api = api_of(key.kind());
        self.with_retry(api, ATTEMPTS).await?;
        Ok(self.service.version(key.id()))
    }
}

fn api_of(kind: Kind) -> Api {
    match kind {
        Kind::Secret => Api::GetSecretValue,
        Kind::Parameter => Api::GetParameter,
    }
}

/// The record the service answers for `id` at `version`; the value is the
/// version, so readers can tell an old one after a rotation.
pub fn record(kind: Kind, id: &str, version: u32) -> Record {
    let value = format!("v{version}");
    match kind {
        Kind::Secret => Record::Secret(SecretValue {
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}"),
            name: id.to_owned(),
            version_id: value.clone(),
            payload: Payload::String(Zeroizing::new(value)),
            version_stages: vec!["AWSCURRENT".into()],
            created_date: None,
        }),
        Kind::Parameter => Record::Parameter(Parameter {
            arn: format!("arn:aws:ssm:us-east-1:123456789012:parameter/{id}"),
            name: id.to_owned(),
            r#type: "SecureString".into(),
            value: Zeroizing::new(value),
            version: i64::from(version),
            selector: None,
            source_result: None,
            last_modified_date: None,
            data_type: None,
        }),
    }
}

impl Fetch for SimFetch {
    async fn fetch(&self, key: &Key) -> Result<Record, Error> {
        self.with_retry(api_of(key.kind()), ATTEMPTS).await?;
        let version = self.service.version(key.id());
        Ok(record(key.kind(), key.id(), version))
    }

    async fn fetch_parameters(
        &self,
        names: &[String],
        _with_decryption: bool,
    ) -> Result<Vec<BatchItem>, Error> {
        // One GetParameters request against the shared Parameter Store
        // quota, without the SDK's retry (as `AwsFetcher` calls it).
        let attempts = if self.retry_batch { ATTEMPTS } else { 1 };
        self.with_retry(Api::GetParameter, attempts).await?;
        Ok(names
            .iter()
            .map(|id| {
                let v = self.service.version(id);
                (id.clone(), Ok(record(Kind::Parameter, id, v)))
            })
            .collect())
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        let attempts = if self.retry_batch { ATTEMPTS } else { 1 };
        self.with_retry(Api::BatchGetSecretValue, attempts).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let v = self.service.version(id);
                (id.clone(), Ok(record(Kind::Secret, id, v)))
            })
            .collect())
    }
}
