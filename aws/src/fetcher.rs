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
//! What the SDK did that this keeps: up to 3 attempts for throttling, 5xx,
//! timeouts, connection failures and refused credentials (fetched afresh
//! first), with jittered exponential backoff, each attempt (and connect)
//! bounded by half the operation's deadline, never past the deadline;
//! container credentials (SnapStart) fetched with their token and
//! refreshed before they expire. Batch calls are not retried: the cache
//! reads what they miss one by one.
//!
//! Secrets may be read from several regions in order ([`SigV4Fetcher::with_secret_regions`]):
//! the edge reads its nearest replica, then the primary. A later region is
//! tried only when the one before failed transiently (or, where asked, did
//! not have the secret), and each keeps its share of the deadline.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use sidekey_cache::{
    or_default_deadline, BatchItem, Error, ErrorKind, Fetch, Key, Kind, ParameterRequest,
    PathRequest, Record, SecretRequest, TreeLimits,
};
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::credentials::Source;
use crate::env::{CredentialsFrom, Endpoint, Environment, SetupError, Timeouts};
use crate::errors;
use crate::https::{self, HttpsClient};
use crate::ops::{
    batch_get_secret_value, get_parameter, get_parameters, get_parameters_by_path,
    get_secret_value, Operation,
};
use crate::sigv4::{self, Credentials, Scope, Signable};

/// The client every service (and the credentials endpoint) is called with.
pub type Client = HttpsClient<Full<Bytes>>;

/// The largest service answer read: a secret is at most 64 KiB, base64 makes a
/// binary one 88 KiB; 20 of them in a batch, plus the envelope.
const MAX_ANSWER: usize = 2 * 1024 * 1024;

/// Attempts of one read (the SDK's standard mode has the same).
const MAX_ATTEMPTS: u32 = 3;

/// Backoff before attempt n+1: a random pause up to `BACKOFF * 2^(n-1)`.
const BACKOFF: Duration = Duration::from_millis(100);

/// Sign an AWS JSON 1.1 `POST` of `body` for `op` to `endpoint` with
/// `credentials`, at the current time.
pub fn signed_request(
    endpoint: &Endpoint,
    op: Operation,
    credentials: &Credentials,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, Error> {
    let date = sigv4::amz_date(SystemTime::now());
    let target = op.target();
    let mut signed: Vec<(&str, &str)> = vec![
        ("content-type", "application/x-amz-json-1.1"),
        ("host", endpoint.host()),
        ("x-amz-date", &date),
        ("x-amz-target", &target),
    ];
    if let Some(token) = credentials.session_token() {
        signed.push(("x-amz-security-token", token));
    }
    let payload = sigv4::sha256_hex(&body);
    let signable = Signable {
        method: "POST",
        path: endpoint.url.path(),
        query: endpoint.url.query().unwrap_or_default(),
        headers: &signed,
        payload_sha256: &payload,
    };
    let scope = Scope {
        region: &endpoint.region,
        service: op.service.signing_name(),
    };
    let authorization = sigv4::authorization(&signable, &date, scope, credentials);
    let invalid = |what: &str| Error::new(ErrorKind::InvalidRequest, what.to_owned());
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(endpoint.url.clone())
        .header(USER_AGENT, concat!("sidekey/", env!("CARGO_PKG_VERSION")));
    for (name, value) in &signed {
        let value = HeaderValue::from_str(value).map_err(|_| invalid("a header is not valid"))?;
        builder = builder.header(*name, value);
    }
    let mut request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| invalid(&e.to_string()))?;
    let mut value =
        HeaderValue::from_str(&authorization).map_err(|_| invalid("the signature header"))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    if let Some(token) = request.headers_mut().get_mut("x-amz-security-token") {
        token.set_sensitive(true);
    }
    Ok(request)
}

/// Send `request` and read the whole answer, at most `limit` bytes of it:
/// its status and its body, in a buffer wiped on drop (it may hold a value
/// or credentials). Failures to connect or to read are
/// [`ErrorKind::Connection`].
pub async fn exchange(
    client: &Client,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> Result<(u16, Zeroizing<Vec<u8>>), Error> {
    let response = client
        .request(request)
        .await
        .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&e)))?;
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&*e)))?
        .to_bytes();
    Ok((status, Zeroizing::new(Vec::from(body))))
}

/// An error and its sources on one line (hyper's top-level message alone,
/// "client error (Connect)", says too little to act on).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How one service is called: where, and within what.
#[derive(Debug)]
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
    client: Client,
    credentials: Source,
    secrets: Calls,
    ssm: Calls,
    trees: TreeLimits,
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
    /// Set up from the environment Lambda provides ([`Environment`]): the
    /// region, the credentials or the container endpoint that serves them
    /// (SnapStart), and the endpoints. `max_idle` bounds the idle pooled
    /// connections per endpoint.
    pub fn from_env(timeouts: Timeouts, max_idle: usize) -> Result<Self, SetupError> {
        let lambda = Environment::read()?;
        let credentials = match lambda.credentials {
            CredentialsFrom::Environment(c) => Source::fixed(c),
            CredentialsFrom::Container(endpoint) => Source::container(endpoint),
        };
        let client = https::client(timeouts.connect(), max_idle)?;
        let secrets = Endpoint::new(
            crate::ops::Service::SecretsManager,
            &lambda.region,
            lambda.secrets_manager_url.as_deref(),
            lambda.fips,
        )?;
        let ssm = Endpoint::new(
            crate::ops::Service::Ssm,
            &lambda.region,
            lambda.ssm_url.as_deref(),
            lambda.fips,
        )?;
        Ok(Self::build(client, credentials, secrets, ssm, timeouts))
    }

    /// A fetcher with fixed `credentials`, reading Secrets Manager at
    /// `secrets` and Parameter Store at `ssm` (tests aim both at an
    /// emulator).
    pub fn new(
        client: Client,
        credentials: Credentials,
        secrets: Endpoint,
        ssm: Endpoint,
        timeouts: Timeouts,
    ) -> Self {
        Self::build(client, Source::fixed(credentials), secrets, ssm, timeouts)
    }

    fn build(
        client: Client,
        credentials: Source,
        secrets: Endpoint,
        ssm: Endpoint,
        timeouts: Timeouts,
    ) -> Self {
        let calls = |endpoint, deadline| {
            let deadline = or_default_deadline(deadline);
            Calls {
                endpoints: vec![endpoint],
                deadline,
                attempts: MAX_ATTEMPTS,
                attempt: deadline / 2,
                not_found_falls_through: false,
            }
        };
        Self {
            client,
            credentials,
            secrets: calls(secrets, timeouts.secrets_manager),
            ssm: calls(ssm, timeouts.ssm),
            trees: TreeLimits::default(),
        }
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
        op: Operation,
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
            match self
                .call_region(
                    endpoint,
                    op,
                    &body,
                    attempts,
                    Instant::now() + share,
                    calls.attempt,
                )
                .await
            {
                Ok(answer) => return Ok(answer),
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
        op: Operation,
        body: &[u8],
        attempts: u32,
        until: Instant,
        each: Duration,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut attempt = 1;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let bound = each.min(left);
            let once = async {
                let credentials = self.credentials.get(&self.client).await?;
                let request = signed_request(endpoint, op, &credentials, body.to_vec())?;
                exchange(&self.client, request, MAX_ANSWER).await
            };
            let outcome = match tokio::time::timeout(bound, once).await {
                Ok(Ok((status, body))) if (200..300).contains(&status) => return Ok(body),
                Ok(Ok((status, body))) => errors::error_answer(status, &body),
                Ok(Err(e)) => e,
                Err(_) => Error::new(
                    ErrorKind::Timeout,
                    format!("{}: no answer within {bound:?}", op.name),
                ),
            };
            if outcome.kind() == ErrorKind::Credentials {
                // Refused credentials (expired early, rotated): the next
                // attempt, or the next read, signs with fresh ones.
                self.credentials.forget().await;
            }
            let pause = BACKOFF.mul_f64(fastrand::f64() * f64::from(1u32 << (attempt - 1)));
            if attempt >= attempts || !outcome.is_transient() || Instant::now() + pause >= until {
                return Err(outcome);
            }
            tracing::debug!(operation = op.name, attempt, error = %outcome, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn get_secret(&self, req: &SecretRequest) -> Result<Record, Error> {
        let input = get_secret_value::Input::new(req, &req.id);
        // A full ARN names its region: in a replica region, the replica's.
        let in_region = |endpoint: &Endpoint| {
            let id = arn_in_region(&req.id, &endpoint.region)?;
            serde_json::to_vec(&get_secret_value::Input::new(req, &id)).ok()
        };
        let body = self
            .call(
                &self.secrets,
                get_secret_value::OPERATION,
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
                get_parameter::OPERATION,
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
                .call(&self.ssm, OPERATION, &input, true, no_rewrite)
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
            Key::Secret(req) => self.get_secret(req).await,
            Key::Parameter(req) => self.get_parameter(req).await,
            Key::Path(req) => self.get_tree(req).await,
        }
    }

    fn batch_limit(&self, kind: Kind) -> usize {
        match kind {
            Kind::Secret => batch_get_secret_value::MAX_IDS,
            Kind::Parameter => get_parameters::MAX_NAMES,
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
                get_parameters::OPERATION,
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
                batch_get_secret_value::OPERATION,
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
    use crate::ops::Service;

    #[test]
    fn requests_are_signed_for_the_service_and_hide_the_secrets() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE".into(),
            Zeroizing::new("secret".into()),
            Some(Zeroizing::new("token".into())),
        );
        let endpoint = Endpoint::new(
            Service::Ssm,
            "us-east-1",
            Some("http://127.0.0.1:5000"),
            false,
        )
        .unwrap();
        let r = signed_request(
            &endpoint,
            get_parameter::OPERATION,
            &credentials,
            br#"{"Name":"/p"}"#.to_vec(),
        )
        .unwrap();
        let auth = r.headers().get("authorization").unwrap();
        assert!(auth.is_sensitive());
        assert!(r.headers()["x-amz-security-token"].is_sensitive());
        let auth = auth.to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/ssm/aws4_request"), "{auth}");
        assert_eq!(r.headers()["x-amz-target"], "AmazonSSM.GetParameter");
        assert_eq!(r.headers()["host"], "127.0.0.1:5000");
        assert!(r.headers()["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("sidekey/"));
        // Sent but not signed: proxies rewrite it.
        assert!(!auth.contains("user-agent"), "{auth}");
        // And the service would accept it: it verifies with the same keys.
        let headers: Vec<(&str, &str)> = r
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        let received = sigv4::Received {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: br#"{"Name":"/p"}"#,
        };
        assert_eq!(
            sigv4::verify(
                &received,
                &credentials,
                "us-east-1",
                &["ssm"],
                SystemTime::now()
            ),
            Ok("ssm")
        );
    }

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
