//! [`SigV4Fetcher`]: sidekey's [`Fetch`], for the extension and the edge.
//! Every read is one AWS JSON 1.1 `POST` of an operation ([`crate::ops`]),
//! signed ([`crate::sigv4`]), sent with sidekey's one HTTPS client
//! ([`crate::https`]), and read by the operation's own module; failures
//! are classified by the one table ([`crate::errors`]).
//!
//! Why not the AWS SDK (still available, feature `aws-sdk`): the extension
//! needs a handful of operations of two services and what Lambda provides
//! for credentials. With the SDK, trimmed as far as it goes, the
//! extension's binary was 5.96 MB and its idle RSS 6.9 MB; this fetcher
//! made them 3.6 MB and 5.4 MB in the same run (issue 14; bench/REPORT.md
//! has today's figures), in every sandbox, and the edge function ships the
//! same code in its 1 MB zip.
//!
//! What the SDK did that this keeps: up to 3 attempts for 5xx, timeouts,
//! connection failures and refused credentials (fetched afresh first; not
//! throttling, see `retried`), with jittered exponential backoff, each attempt (and connect)
//! bounded by half the operation's deadline, never past the deadline;
//! container credentials (SnapStart) fetched with their token and
//! refreshed before they expire. Batch calls are not retried: the cache
//! reads what they miss one by one.
//!
//! Secrets may be read from several regions in order ([`SigV4Fetcher::with_secret_regions`]):
//! the edge reads its nearest replica, then the primary. A later region is
//! tried only when the one before failed transiently (or, where asked, did
//! not have the secret), and each keeps its share of the deadline.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sidekey_cache::{
    or_default_deadline, BatchItem, Error, ErrorKind, Fetch, Key, Kind, ParameterRequest,
    PathRequest, Record, SecretRequest, TreeLimits,
};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::client::AwsClient;
use crate::env::{Endpoint, SetupError, Timeouts};
use crate::errors;
use crate::ops::{
    batch_get_secret_value, describe_secret, get_parameter, get_parameters, get_parameters_by_path,
    get_secret_value, Operation, Service,
};

/// Attempts of one read (the SDK's standard mode has the same).
pub const MAX_ATTEMPTS: u32 = 3;

/// Backoff before attempt n+1: a random pause up to `BACKOFF * 2^(n-1)`.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// The pause after failed attempt `attempt` (1-based), drawn by `unit` in
/// [0, 1): full jitter over `[0, BACKOFF * 2^(attempt-1))`. Public so the
/// fleet simulation (`bench/`) models the retries this fetcher makes from
/// the same constants and cannot drift from them.
pub fn backoff_pause(attempt: u32, unit: f64) -> Duration {
    BACKOFF.mul_f64(unit * f64::from(1u32 << (attempt.clamp(1, 31) - 1)))
}

/// The bound of one attempt under an operation's overall `deadline`:
/// half of it, so a hung connection is given up in time for one retry on
/// a fresh one.
pub fn attempt_bound(deadline: Duration) -> Duration {
    deadline / 2
}

/// How one service is called: where, and within what.
#[derive(Clone, Debug)]
struct Calls {
    /// Where, in read order (one for all but the edge's secrets).
    endpoints: Vec<Endpoint>,
    /// Overall deadline of one read, retries and regions included.
    deadline: Duration,
    /// Attempts per region.
    attempts: u32,
    /// Bound of one attempt: half the deadline, so a hung connection is
    /// given up in time for one retry on a fresh one.
    attempt: Duration,
    /// Whether a region's not-found moves on to the next region (a replica
    /// not yet made; the last region's answer is final).
    not_found_falls_through: bool,
}

/// Reads secrets with `GetSecretValue` / `BatchGetSecretValue` and
/// parameters with `GetParameter` / `GetParameters` / `GetParametersByPath`.
pub struct SigV4Fetcher {
    aws: Arc<AwsClient>,
    secrets: Calls,
    ssm: Calls,
    trees: TreeLimits,
    /// Replica regions a cold read of a secret falls back to, in order,
    /// when the home region fails transiently
    /// ([`SigV4Fetcher::with_fallback_regions`]).
    fallbacks: Vec<Endpoint>,
    /// Reads a region other than the first answered.
    fell_back: std::sync::atomic::AtomicU64,
    /// The roles (`None`: the function's own) `DescribeSecret` was denied
    /// to: their version checks read the value instead, without asking
    /// again (the SAM policy `AWSSecretsManagerGetSecretValuePolicy` grants
    /// `GetSecretValue` only).
    describe_denied: std::sync::Mutex<Vec<Option<String>>>,
}

impl std::fmt::Debug for SigV4Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Fetcher")
            .field("secrets", &self.secrets)
            .field("ssm", &self.ssm)
            .finish_non_exhaustive()
    }
}

impl SigV4Fetcher {
    /// Set up from the environment Lambda provides (see
    /// [`AwsClient::from_env`]); `max_idle` bounds the idle pooled
    /// connections per endpoint.
    pub fn from_env(timeouts: Timeouts, max_idle: usize) -> Result<Self, SetupError> {
        let aws = AwsClient::from_env(timeouts.connect(), max_idle, None)?;
        Ok(Self::new(Arc::new(aws), timeouts))
    }

    /// A fetcher reading through `aws`, its home region's endpoints, with
    /// `timeouts`.
    pub fn new(aws: Arc<AwsClient>, timeouts: Timeouts) -> Self {
        let calls = |service, deadline| {
            let deadline = or_default_deadline(deadline);
            Calls {
                endpoints: vec![aws.endpoint(service).clone()],
                deadline,
                attempts: MAX_ATTEMPTS,
                attempt: attempt_bound(deadline),
                not_found_falls_through: false,
            }
        };
        Self {
            secrets: calls(Service::SecretsManager, timeouts.secrets_manager),
            ssm: calls(Service::Ssm, timeouts.ssm),
            aws,
            trees: TreeLimits::default(),
            fallbacks: Vec::new(),
            fell_back: Default::default(),
            describe_denied: Default::default(),
        }
    }

    fn denied(&self) -> std::sync::MutexGuard<'_, Vec<Option<String>>> {
        self.describe_denied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The client it reads through.
    pub fn aws(&self) -> &Arc<AwsClient> {
        &self.aws
    }

    /// Read secrets from `endpoints` in order instead (at least one): a
    /// later one only when the one before failed transiently or, with
    /// `not_found_falls_through`, did not have the secret.
    pub fn with_secret_regions(
        mut self,
        endpoints: Vec<Endpoint>,
        not_found_falls_through: bool,
    ) -> Self {
        if !endpoints.is_empty() {
            self.secrets.endpoints = endpoints;
            self.secrets.not_found_falls_through = not_found_falls_through;
        }
        self
    }

    /// When the home region fails transiently (throttling, 5xx, timeouts,
    /// connection failures) and the cache holds nothing it may serve, read
    /// a secret's replica in `endpoints` (other regions), in order. A
    /// permanent answer at home (not found, denied) never falls back, and
    /// a refresh never does: its readers get the last good value meanwhile.
    /// Each region keeps its share of the read's deadline.
    pub fn with_fallback_regions(mut self, endpoints: Vec<Endpoint>) -> Self {
        self.fallbacks = endpoints;
        self
    }

    /// At most `attempts` per region and call (at least one), each bounded
    /// by `each`: the edge makes one of its full timeout, its viewer
    /// waiting.
    pub fn with_attempts(mut self, attempts: u32, each: Duration) -> Self {
        for calls in [&mut self.secrets, &mut self.ssm] {
            calls.attempts = attempts.max(1);
            calls.attempt = each;
        }
        self
    }

    /// Bound the parameter trees read ([`TreeLimits`]).
    pub fn with_tree_limits(mut self, limits: TreeLimits) -> Self {
        self.trees = limits;
        self
    }

    /// Call `op` with `input` under `calls`; a 2xx answer's body, or the
    /// error answer classified. With `retry`, transient failures are tried
    /// again (up to the attempts) within the deadline; regions after the
    /// first are tried as [`Calls`] says, each with an even share of the
    /// time left.
    async fn call(
        &self,
        calls: &Calls,
        (op, role): (Operation, Option<&str>),
        input: &impl Serialize,
        retry: bool,
        rewrite: impl Fn(&Endpoint) -> Option<Vec<u8>>,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let body = serde_json::to_vec(input)
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let until = Instant::now() + calls.deadline;
        let last = calls.endpoints.len().saturating_sub(1);
        let mut outcome = Error::new(ErrorKind::Other, "no endpoint to call");
        for (i, endpoint) in calls.endpoints.iter().enumerate() {
            let left = until.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(calls.endpoints.len() - i).unwrap_or(1);
            let body = rewrite(endpoint).unwrap_or_else(|| body.clone());
            let attempts = if retry { calls.attempts } else { 1 };
            let answered = self
                .call_region(
                    endpoint,
                    (op, role),
                    body,
                    attempts,
                    Instant::now() + share,
                    calls.attempt,
                )
                .await;
            match answered {
                Ok(answer) => {
                    if i > 0 {
                        self.fell_back
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(e) => {
                    let next = i < last
                        && (e.is_transient()
                            || (calls.not_found_falls_through && e.kind() == ErrorKind::NotFound));
                    if !next {
                        return Err(e);
                    }
                    tracing::warn!(region = %endpoint.region, error = %e, "read failed, trying the next region");
                    outcome = e;
                }
            }
        }
        Err(outcome)
    }

    /// Up to `attempts` of `op` at `endpoint`, all by `until`, each
    /// bounded by `each`.
    async fn call_region(
        &self,
        endpoint: &Endpoint,
        (op, role): (Operation, Option<&str>),
        body: Vec<u8>,
        attempts: u32,
        until: Instant,
        each: Duration,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let target = op.target();
        let mut attempt = 1;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let bound = each.min(left);
            let answer = self
                .aws
                .call(endpoint, op.service, &target, body.clone(), bound, role)
                .await;
            let outcome = match answer {
                Ok(a) if (200..300).contains(&a.status) => return Ok(a.body),
                Ok(a) => errors::error_answer(a.status, &a.body),
                Err(e) => e,
            };
            if outcome.kind() == ErrorKind::Credentials {
                // Refused credentials (expired early, rotated): the next
                // attempt, or the next read, signs with fresh ones.
                self.aws.forget_credentials(role).await;
            }
            let pause = backoff_pause(attempt, fastrand::f64());
            if attempt >= attempts || !retried(&outcome) || Instant::now() + pause >= until {
                return Err(outcome);
            }
            tracing::debug!(operation = op.name, attempt, error = %outcome, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn get_secret(&self, req: &SecretRequest, calls: &Calls) -> Result<Record, Error> {
        let input = get_secret_value::Input::new(req, &req.id);
        // A full ARN names its region: in a replica region, the replica's.
        let in_region = |endpoint: &Endpoint| {
            let id = arn_in_region(&req.id, &endpoint.region)?;
            serde_json::to_vec(&get_secret_value::Input::new(req, &id)).ok()
        };
        let body = self
            .call(
                calls,
                (get_secret_value::OPERATION, req.role.as_deref()),
                &input,
                true,
                in_region,
            )
            .await?;
        get_secret_value::answer(&body)
    }

    async fn get_parameter(&self, req: &ParameterRequest) -> Result<Record, Error> {
        let input = get_parameter::Input::new(req);
        let body = self
            .call(
                &self.ssm,
                (get_parameter::OPERATION, req.role.as_deref()),
                &input,
                true,
                no_rewrite,
            )
            .await?;
        get_parameter::answer(&body)
    }

    /// Every page of `GetParametersByPath`, merged, each page a call of its
    /// own with its deadline; past a bound of [`TreeLimits`] (parameters,
    /// bytes, pages) or on a repeated token it stops with the error.
    async fn get_tree(&self, req: &PathRequest) -> Result<Record, Error> {
        use get_parameters_by_path::{Input, Pages, Tree, OPERATION};
        let mut tree = Tree::new(&req.path, self.trees);
        let mut pages = Pages::new(&req.path, self.trees);
        let mut next: Option<String> = None;
        loop {
            let input = Input::page(req, next.as_deref());
            let body = self
                .call(
                    &self.ssm,
                    (OPERATION, req.role.as_deref()),
                    &input,
                    true,
                    no_rewrite,
                )
                .await?;
            let (page, token) = get_parameters_by_path::page(&body)?;
            for p in page {
                tree.push(p)?;
            }
            match pages.next(token)? {
                Some(token) => next = Some(token),
                None => return Ok(tree.into_record()),
            }
        }
    }
}

/// Whether a failed attempt is tried again at once: 5xx, timeouts,
/// connection failures and refused credentials (fetched afresh first) are;
/// throttling is not. Retrying into an exhausted quota deepens it for the
/// whole account, the cache retries it after its own backoff (serving the
/// last good value meanwhile), and an SDK reading through the
/// SDK-compatible endpoint retries on its own: each of its attempts made
/// three upstream calls (issue 27).
pub fn retried(e: &Error) -> bool {
    e.is_transient() && e.kind() != ErrorKind::Throttled
}

fn no_rewrite(_: &Endpoint) -> Option<Vec<u8>> {
    None
}

/// A full secret ARN names its region; in another region the replica's
/// ARN is the same with that region. `None` when `id` is not an ARN of
/// another region (names and partial ARNs are region-free).
fn arn_in_region(id: &str, region: &str) -> Option<String> {
    let parts: Vec<&str> = id.splitn(5, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "secretsmanager", r, rest] if *r != region => {
            Some(format!("arn:{partition}:secretsmanager:{region}:{rest}"))
        }
        _ => None,
    }
}

impl Fetch for SigV4Fetcher {
    async fn fetch(&self, key: &Key) -> Result<Record, Error> {
        match key {
            Key::Secret(req) => self.get_secret(req, &self.secrets).await,
            Key::Parameter(req) => self.get_parameter(req).await,
            Key::Path(req) => self.get_tree(req).await,
        }
    }

    async fn fetch_cold(&self, key: &Key) -> Result<Record, Error> {
        match key {
            Key::Secret(req) if !self.fallbacks.is_empty() => {
                let mut calls = self.secrets.clone();
                calls.endpoints.extend(self.fallbacks.iter().cloned());
                self.get_secret(req, &calls).await
            }
            _ => self.fetch(key).await,
        }
    }

    fn fallback_reads(&self) -> u64 {
        self.fell_back.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn batch_limit(&self, kind: Kind) -> usize {
        match kind {
            Kind::Secret => batch_get_secret_value::MAX_IDS,
            Kind::Parameter => get_parameters::MAX_NAMES,
        }
    }

    async fn fetch_tagged(
        &self,
        key: &str,
        value: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<(Vec<BatchItem>, Option<String>), Error> {
        let tag = batch_get_secret_value::Tag {
            key: key.to_owned(),
            value: value.map(str::to_owned),
        };
        let input = batch_get_secret_value::FilteredInput::tagged(&tag, next_token);
        let op = (batch_get_secret_value::OPERATION, None);
        let body = self
            .call(&self.secrets, op, &input, true, no_rewrite)
            .await?;
        batch_get_secret_value::tagged_answer(&body)
    }

    /// `DescribeSecret`, once (its version check is worth one call, not
    /// retries), and the version holding the key's stage compared. A role
    /// that may not describe reads the value from then on.
    async fn revalidate(&self, key: &Key, version_id: &str) -> Result<bool, Error> {
        let Key::Secret(req) = key else {
            return Ok(false);
        };
        let role = req.role.as_deref().map(str::to_owned);
        if req.version_id.is_some() || self.denied().contains(&role) {
            return Ok(false);
        }
        let input = describe_secret::Input::new(&req.id);
        let op = (describe_secret::OPERATION, req.role.as_deref());
        match self
            .call(&self.secrets, op, &input, false, no_rewrite)
            .await
        {
            Ok(body) => {
                let stage = req.version_stage.as_deref().unwrap_or("AWSCURRENT");
                let current = describe_secret::version_at(&body, stage)?;
                Ok(current.as_deref() == Some(version_id))
            }
            Err(e) if e.kind() == ErrorKind::AccessDenied => {
                tracing::info!(
                    error = %e,
                    "DescribeSecret is not allowed: version checks read the value instead"
                );
                self.denied().push(role);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn fetch_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> Result<Vec<BatchItem>, Error> {
        let input = get_parameters::Input::new(names, with_decryption);
        // Not retried, as `BatchGetSecretValue`: what is not answered is
        // read one by one.
        let body = self
            .call(
                &self.ssm,
                (get_parameters::OPERATION, None),
                &input,
                false,
                no_rewrite,
            )
            .await?;
        get_parameters::answer(&body, names)
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        // No retry: a batch only saves calls, and the caller reads one by
        // one whatever it does not answer. Retrying a throttled batch held
        // every reader waiting on it and added requests against a quota a
        // fleet's cold starts had already used up (the fleet simulation).
        // The first region only: a batch is an optimisation, the single
        // reads it falls back to try the others.
        let home = Calls {
            endpoints: self.secrets.endpoints.iter().take(1).cloned().collect(),
            deadline: self.secrets.deadline,
            attempts: 1,
            attempt: self.secrets.attempt,
            not_found_falls_through: false,
        };
        let input = batch_get_secret_value::Input::ids(ids);
        let body = self
            .call(
                &home,
                (batch_get_secret_value::OPERATION, None),
                &input,
                false,
                no_rewrite,
            )
            .await?;
        batch_get_secret_value::answer(&body, ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_follow_the_region() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:edge/api-AbCdEf";
        assert_eq!(
            arn_in_region(arn, "eu-west-1").as_deref(),
            Some("arn:aws:secretsmanager:eu-west-1:123456789012:secret:edge/api-AbCdEf")
        );
        assert_eq!(arn_in_region(arn, "us-east-1"), None);
        assert_eq!(arn_in_region("edge/api", "eu-west-1"), None);
        assert_eq!(
            arn_in_region("arn:aws:ssm:us-east-1:1:parameter/x", "eu-west-1"),
            None
        );
    }
}
