//! The clients of the [`Service`], each modelled in one place:
//!
//! * [`SimFetch`]: the `Fetch` every sidekey environment's real cache
//!   reads through (its requests leave only while the environment is
//!   thawed; answers land even while it is frozen, as a response waiting
//!   in the socket is read first at the thaw), calling as the shipped `SigV4Fetcher`
//!   (`aws/src/fetcher.rs`) calls: its attempts, backoff, per-attempt bound
//!   and which failures it retries are read from `sidekey_aws::fetcher`
//!   itself ([`MAX_ATTEMPTS`], [`backoff_pause`], [`attempt_bound`],
//!   [`retried`]), so the model cannot drift from what ships. Batch calls
//!   and `DescribeSecret` are made once, as the fetcher makes them; a cold
//!   read of a secret tries the replica region when configured
//!   (`SIDEKEY_FALLBACK_REGIONS`), each region its share of the deadline.
//! * [`SdkClient`]: the AWS SDKs' *standard* retry mode, which every rival
//!   ships on (the Rust SDK under aws-secretsmanager-agent; the official
//!   extension; boto3 under Powertools and the seed): three attempts,
//!   backoff `rand * min(1 s * 2^(n-1), 20 s)`, throttling retried too, no
//!   per-attempt timeout (the Rust SDK sets none by default, botocore's read
//!   timeout is 60 s): a hung call is ended only by the function's timeout.
//!   boto3's default *legacy* mode makes up to 5 attempts; modelling 3 is
//!   kind to the Python rivals.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey_aws::fetcher::{attempt_bound, backoff_pause, retried, MAX_ATTEMPTS};
use sidekey_aws::ops::{batch_get_secret_value, get_parameters};
use sidekey_cache::{
    or_default_deadline, BatchItem, Error, ErrorKind, Fetch, Key, Kind, Parameter, Payload, Record,
    SecretValue,
};
use tokio::sync::Notify;
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::service::{Api, Service};

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

/// The API a read of `kind` calls.
pub fn api_of(kind: Kind) -> Api {
    match kind {
        Kind::Secret => Api::GetSecretValue,
        Kind::Parameter => Api::GetParameter,
    }
}

/// One environment's sidekey fetcher over the [`Service`]: requests leave
/// only while the environment is thawed.
#[derive(Clone)]
pub struct SimFetch {
    pub service: Arc<Service>,
    pub thaw: Arc<Thaw>,
    /// This environment's draws for the fetcher's retry jitter.
    pub rng: Arc<Mutex<fastrand::Rng>>,
    /// A cold read of a secret falls back to the replica region.
    pub fallback: bool,
    /// Reads the replica answered.
    pub fell_back: Arc<AtomicU64>,
}

impl SimFetch {
    /// The overall deadline of one read: the extension passes
    /// `SECRETS_MANAGER_TIMEOUT_MILLIS` (0 by default) through
    /// `or_default_deadline`, as the fetcher's `Calls` do.
    fn deadline() -> Duration {
        or_default_deadline(Duration::ZERO)
    }

    /// `SigV4Fetcher::call`: regions in order, each its even share of the
    /// time left, a later one only after a transient failure.
    async fn call(
        &self,
        regions: &[usize],
        api: Api,
        values: u64,
        retry: bool,
    ) -> Result<(), Error> {
        let deadline = Self::deadline();
        let until = Instant::now() + deadline;
        let mut outcome = Error::new(ErrorKind::Other, "no region");
        for (n, &region) in regions.iter().enumerate() {
            let left = until.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(regions.len() - n).unwrap_or(1);
            let attempts = if retry { MAX_ATTEMPTS } else { 1 };
            let answered = self
                .call_region(
                    region,
                    api,
                    values,
                    attempts,
                    Instant::now() + share,
                    attempt_bound(deadline),
                )
                .await;
            match answered {
                Ok(()) => {
                    if n > 0 {
                        self.fell_back.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(());
                }
                Err(e) if n + 1 < regions.len() && e.is_transient() => outcome = e,
                Err(e) => return Err(e),
            }
        }
        Err(outcome)
    }

    /// `SigV4Fetcher::call_region`: up to `attempts`, all by `until`,
    /// each bounded by `each`.
    async fn call_region(
        &self,
        region: usize,
        api: Api,
        values: u64,
        attempts: u32,
        until: Instant,
        each: Duration,
    ) -> Result<(), Error> {
        let mut attempt = 1;
        loop {
            // A request leaves only while the environment runs. Its answer
            // lands even if the environment froze meanwhile: the response
            // waits in the socket and, at the thaw, is read before any timer
            // that expired during the freeze is looked at (tokio's
            // `timeout` polls the inner future first). So the attempt's
            // bound only runs while thawed-sent; an answer never loses to a
            // freeze.
            self.thaw.ready().await;
            let left = until.saturating_duration_since(Instant::now());
            let bound = each.min(left);
            let answer =
                tokio::time::timeout(bound, self.service.region(region).request(api, values)).await;
            let outcome = match answer {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e,
                Err(_) => Error::new(ErrorKind::Timeout, "no answer within the attempt's bound"),
            };
            let unit = self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
            let pause = backoff_pause(attempt, unit);
            if attempt >= attempts || !retried(&outcome) || Instant::now() + pause >= until {
                return Err(outcome);
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    fn regions(&self, cold: bool, kind: Kind) -> &'static [usize] {
        if cold && self.fallback && kind == Kind::Secret && self.service.replica.is_some() {
            &[0, 1]
        } else {
            &[0]
        }
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
        self.call(self.regions(false, key.kind()), api_of(key.kind()), 1, true)
            .await?;
        let version = self.service.version(key.id());
        Ok(record(key.kind(), key.id(), version))
    }

    async fn fetch_cold(&self, key: &Key) -> Result<Record, Error> {
        self.call(self.regions(true, key.kind()), api_of(key.kind()), 1, true)
            .await?;
        let version = self.service.version(key.id());
        Ok(record(key.kind(), key.id(), version))
    }

    fn fallback_reads(&self) -> u64 {
        self.fell_back.load(Ordering::Relaxed)
    }

    fn batch_limit(&self, kind: Kind) -> usize {
        match kind {
            Kind::Secret => batch_get_secret_value::MAX_IDS,
            Kind::Parameter => get_parameters::MAX_NAMES,
        }
    }

    async fn revalidate(&self, key: &Key, version_id: &str) -> Result<bool, Error> {
        if key.kind() != Kind::Secret || key.is_pinned() {
            return Ok(false);
        }
        // Once, as the fetcher's `revalidate` calls it.
        self.call(&[0], Api::DescribeSecret, 0, false).await?;
        Ok(format!("v{}", self.service.version(key.id())) == version_id)
    }

    async fn fetch_parameters(
        &self,
        names: &[String],
        _with_decryption: bool,
    ) -> Result<Vec<BatchItem>, Error> {
        // One GetParameters call, not retried (as the fetcher calls it).
        self.call(&[0], Api::GetParameter, names.len() as u64, false)
            .await?;
        Ok(names
            .iter()
            .map(|id| {
                let v = self.service.version(id);
                (id.clone(), Ok(record(Kind::Parameter, id, v)))
            })
            .collect())
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        // The home region only, not retried (as the fetcher calls it).
        self.call(&[0], Api::BatchGetSecretValue, ids.len() as u64, false)
            .await?;
        Ok(ids
            .iter()
            .map(|id| {
                let v = self.service.version(id);
                (id.clone(), Ok(record(Kind::Secret, id, v)))
            })
            .collect())
    }
}

/// The SDK standard mode's attempts.
const SDK_ATTEMPTS: u32 = 3;

/// A rival's AWS SDK client, home region only (none of the rivals fails
/// over to a replica).
pub struct SdkClient {
    pub service: Arc<Service>,
    pub rng: Mutex<fastrand::Rng>,
}

impl SdkClient {
    /// One operation with the standard retry; the version of `id` on
    /// success.
    pub async fn call(&self, api: Api, values: u64, id: &str) -> Result<u32, Error> {
        let mut attempt = 1;
        loop {
            match self.service.home.request(api, values).await {
                Ok(()) => return Ok(self.service.version(id)),
                Err(e) if e.is_transient() && attempt < SDK_ATTEMPTS => {
                    let cap = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(20));
                    let unit = self.rng.lock().unwrap_or_else(|e| e.into_inner()).f64();
                    tokio::time::sleep(cap.mul_f64(unit)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}
