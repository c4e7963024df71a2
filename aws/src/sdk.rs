//! [`AwsFetcher`]: the same [`Fetch`] as [`crate::SigV4Fetcher`], over the
//! official AWS SDK (feature `aws-sdk`), kept as an alternative.
//!
//! One HTTPS stack ([`crate::https`], HTTP/1.1 over rustls with ring,
//! shared by both clients) and the SDK's standard retry for a single read.
//! The configuration is what Lambda provides, read from the environment
//! directly: the region, credentials from environment variables or the
//! container endpoint (SnapStart), optional endpoint overrides. The SDK's
//! general loader (profile files, IMDS, SSO, web identity through STS) is
//! not linked: the extension never runs where those apply, and leaving
//! them out keeps their code out of every sandbox's memory. SDK errors are classified by
//! the one table ([`crate::errors`]), as the edge's SigV4
//! fetcher's are.

use std::time::Duration;

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::credentials::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::DateTime;
use aws_smithy_async::rt::sleep::TokioSleep;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use zeroize::Zeroizing;

use sidekey_cache::{
    or_default_deadline, BatchItem, Error, ErrorKind, Fetch, Key, Kind, Parameter,
    ParameterRequest, PathRequest, Record, SecretRequest, TreeLimits,
};

use crate::env::{Environment, SetupError, Timeouts};
use crate::errors::{bare, kind_of_answer, kind_of_status, unreadable_answer};
use crate::https::HttpsError;
use crate::ops::batch_get_secret_value::{self, designates};
use crate::ops::get_parameters;
use crate::ops::get_parameters_by_path::{Pages, Tree, PAGE};
use crate::ops::get_secret_value::{record, SecretParts};

mod connector;

/// Reads secrets with `GetSecretValue` / `BatchGetSecretValue` and
/// parameters with `GetParameter` / `GetParameters` / `GetParametersByPath`.
#[derive(Clone, Debug)]
pub struct AwsFetcher {
    secrets: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    trees: TreeLimits,
}

impl AwsFetcher {
    /// Set up both clients from the environment Lambda provides: the region
    /// from `AWS_REGION` (or `AWS_DEFAULT_REGION`), credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` or
    /// else the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`,
    /// as under SnapStart), and the endpoint from
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER` / `AWS_ENDPOINT_URL_SSM` or
    /// `AWS_ENDPOINT_URL` when set. `max_idle` bounds the idle pooled
    /// connections per endpoint.
    pub fn from_env(timeouts: Timeouts, max_idle: usize) -> Result<Self, SetupError> {
        Self::from_env_excluding(timeouts, max_idle, None)
    }

    /// [`AwsFetcher::from_env`], passing over an endpoint variable that
    /// names `own` (the extension's listener) as if unset.
    pub fn from_env_excluding(
        timeouts: Timeouts,
        max_idle: usize,
        own: Option<std::net::SocketAddr>,
    ) -> Result<Self, SetupError> {
        let lambda = Environment::read_excluding(own)?;
        let http = Self::http_client(timeouts.connect(), max_idle)?;
        let shared = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(lambda.region))
            .credentials_provider(lambda_credentials(&http))
            .http_client(http)
            .sleep_impl(TokioSleep::new())
            .build();
        Ok(Self::clients(
            &shared,
            timeouts,
            lambda.secrets_manager_url,
            lambda.ssm_url,
        ))
    }

    /// The SDK's HTTP client as the extension uses it (HTTP/1.1 over
    /// rustls), for callers that build their own [`SdkConfig`].
    pub fn http_client(
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Result<SharedHttpClient, HttpsError> {
        connector::Http1::shared(connect_timeout, max_idle)
    }

    /// Build both clients from an already loaded SDK configuration (tests
    /// aim it at an emulator with static credentials).
    pub fn from_sdk_config(shared: &SdkConfig, timeouts: Timeouts) -> Self {
        Self::clients(shared, timeouts, None, None)
    }

    fn clients(
        shared: &SdkConfig,
        timeouts: Timeouts,
        secrets_manager_endpoint: Option<String>,
        ssm_endpoint: Option<String>,
    ) -> Self {
        let mut sm = aws_sdk_secretsmanager::config::Builder::from(shared)
            .timeout_config(timeout_config(timeouts.secrets_manager));
        if secrets_manager_endpoint.is_some() {
            sm.set_endpoint_url(secrets_manager_endpoint);
        }
        let mut ssm =
            aws_sdk_ssm::config::Builder::from(shared).timeout_config(timeout_config(timeouts.ssm));
        if ssm_endpoint.is_some() {
            ssm.set_endpoint_url(ssm_endpoint);
        }
        Self {
            secrets: aws_sdk_secretsmanager::Client::from_conf(sm.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            trees: TreeLimits::default(),
        }
    }

    /// Bound parameter trees by `limits` instead of the defaults.
    pub fn with_tree_limits(mut self, limits: TreeLimits) -> Self {
        self.trees = limits;
        self
    }

    async fn get_secret(&self, req: &SecretRequest) -> Result<Record, Error> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(&req.id)
            .set_version_id(req.version_id.clone())
            .set_version_stage(req.version_stage.clone())
            .send()
            .await
            .map_err(classify)?;
        // Move the SDK's buffers into wiped ones: no copy is left behind.
        record(SecretParts {
            arn: out.arn,
            name: out.name,
            version_id: out.version_id,
            string: out.secret_string.map(Zeroizing::new),
            binary: out.secret_binary.map(|b| Zeroizing::new(b.into_inner())),
            stages: out.version_stages,
            created: out.created_date.map(|d| epoch(&d)),
        })
    }

    async fn get_parameter(&self, req: &ParameterRequest) -> Result<Record, Error> {
        let out = self
            .ssm
            .get_parameter()
            .name(req.selector_name())
            .with_decryption(req.with_decryption)
            .send()
            .await
            .map_err(classify)?;
        let p = out
            .parameter
            .ok_or_else(|| unreadable_answer("GetParameter answered no parameter"))?;
        Ok(Record::Parameter(parameter(p)))
    }

    /// Every page of `GetParametersByPath`, merged; past a bound of
    /// [`TreeLimits`] it stops paging and answers the bound's error.
    async fn get_tree(&self, req: &PathRequest) -> Result<Record, Error> {
        let mut tree = Tree::new(&req.path, self.trees);
        let mut pages = Pages::new(&req.path, self.trees);
        let mut next: Option<String> = None;
        loop {
            let out = self
                .ssm
                .get_parameters_by_path()
                .path(&req.path)
                .recursive(req.recursive)
                .with_decryption(req.with_decryption)
                .max_results(PAGE as i32)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(classify)?;
            for p in out.parameters.unwrap_or_default() {
                tree.push(parameter(p))?;
            }
            match pages.next(out.next_token.filter(|t| !t.is_empty()))? {
                Some(token) => next = Some(token),
                None => return Ok(tree.into_record()),
            }
        }
    }
}

/// The SDK's parameter, moved into ours: the value goes into a wiped buffer
/// without a copy.
fn parameter(p: aws_sdk_ssm::types::Parameter) -> Parameter {
    Parameter {
        arn: p.arn.unwrap_or_default(),
        name: p.name.unwrap_or_default(),
        r#type: p.r#type.map(|t| t.as_str().to_owned()).unwrap_or_default(),
        value: Zeroizing::new(p.value.unwrap_or_default()),
        version: p.version,
        selector: p.selector,
        source_result: p.source_result,
        last_modified_date: p.last_modified_date.map(|d| epoch(&d)),
        data_type: p.data_type,
    }
}

impl Fetch for AwsFetcher {
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
        // No SDK retry, as for `BatchGetSecretValue`: what is not answered
        // is read one by one.
        let no_retry = aws_sdk_ssm::config::Builder::default()
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled());
        let out = self
            .ssm
            .get_parameters()
            .set_names(Some(names.to_vec()))
            .with_decryption(with_decryption)
            .customize()
            .config_override(no_retry)
            .send()
            .await
            .map_err(classify)?;
        let mut items = Vec::with_capacity(names.len());
        for p in out.parameters.unwrap_or_default() {
            // Named as stored (or by ARN when asked by ARN), with the
            // selector asked.
            let selector = p.selector.as_deref().unwrap_or_default();
            let id = names.iter().find(|n| {
                [p.name.as_deref(), p.arn.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|id| n.strip_prefix(id) == Some(selector))
            });
            if let Some(id) = id.cloned() {
                items.push((id, Ok(Record::Parameter(parameter(p)))));
            }
        }
        for name in out.invalid_parameters.unwrap_or_default() {
            let error = Error::new(ErrorKind::NotFound, format!("parameter {name} not found"))
                .with_code("ParameterNotFound");
            items.push((name, Err(error)));
        }
        Ok(items)
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        // No SDK retry here: a batch only saves calls, and the caller reads
        // one by one whatever it does not answer. Retrying a throttled batch
        // (up to 3 attempts, seconds of backoff) held every reader waiting
        // on it and added requests against a quota of 100/s that a fleet's
        // cold starts had already used up (the fleet simulation, `bench/`).
        let no_retry = aws_sdk_secretsmanager::config::Builder::default()
            .retry_config(aws_sdk_secretsmanager::config::retry::RetryConfig::disabled());
        let out = self
            .secrets
            .batch_get_secret_value()
            .set_secret_id_list(Some(ids.to_vec()))
            .customize()
            .config_override(no_retry)
            .send()
            .await
            .map_err(classify)?;
        let mut items: Vec<BatchItem> = Vec::with_capacity(ids.len());
        let values = out.secret_values.unwrap_or_default();
        // The answer names secrets by ARN and name, not by the id asked:
        // attribute each value to the id that designates it, exactly first
        // (as `batch_get_secret_value::answer` does).
        let mut taken: Vec<Option<usize>> = vec![None; ids.len()];
        for exact in [true, false] {
            for (n, v) in values.iter().enumerate() {
                if taken.contains(&Some(n)) {
                    continue;
                }
                let free = (0..ids.len()).find(|i| {
                    taken[*i].is_none()
                        && designates(&ids[*i], v.name.as_deref(), v.arn.as_deref()) == Some(exact)
                });
                if let Some(i) = free {
                    taken[i] = Some(n);
                }
            }
        }
        let mut values: Vec<Option<_>> = values.into_iter().map(Some).collect();
        for (id, n) in ids.iter().zip(taken) {
            let Some(v) = n.and_then(|n| values[n].take()) else {
                continue;
            };
            let record = record(SecretParts {
                arn: v.arn,
                name: v.name,
                version_id: v.version_id,
                string: v.secret_string.map(Zeroizing::new),
                binary: v.secret_binary.map(|b| Zeroizing::new(b.into_inner())),
                stages: v.version_stages,
                created: v.created_date.map(|d| epoch(&d)),
            });
            items.push((id.clone(), record));
        }
        for e in out.errors.unwrap_or_default() {
            if let Some(id) = e.secret_id {
                let code = e.error_code.unwrap_or_default();
                let message = e.message.unwrap_or_else(|| code.clone());
                let error = Error::new(kind_of_answer(&code, 400), message).with_code(bare(&code));
                items.push((id, Err(error)));
            }
        }
        Ok(items)
    }
}

fn epoch(d: &DateTime) -> f64 {
    // Millisecond precision, as the services put it on the wire.
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Credentials the way Lambda provides them: the function's role in
/// environment variables, or else the container endpoint that Lambda
/// SnapStart functions use after a restore. Cached and refreshed ahead of
/// expiry by the SDK's identity cache.
fn lambda_credentials(http: &SharedHttpClient) -> SharedCredentialsProvider {
    let container = ProviderConfig::empty()
        .with_http_client(http.clone())
        .with_sleep_impl(TokioSleep::new());
    SharedCredentialsProvider::new(
        CredentialsProviderChain::first_try(
            "Environment",
            EnvironmentVariableCredentialsProvider::new(),
        )
        .or_else(
            "Container",
            EcsCredentialsProvider::builder()
                .configure(&container)
                .build(),
        ),
    )
}

fn timeout_config(deadline: Duration) -> aws_config::timeout::TimeoutConfig {
    let deadline = or_default_deadline(deadline);
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(deadline)
        .operation_attempt_timeout(deadline / 2)
        .connect_timeout(deadline / 2)
        .build()
}

/// The one place SDK failures become [`ErrorKind`]s.
fn classify<E: ProvideErrorMetadata + std::error::Error>(err: SdkError<E, HttpResponse>) -> Error {
    match &err {
        SdkError::TimeoutError(_) => Error::new(ErrorKind::Timeout, "the request to AWS timed out"),
        SdkError::DispatchFailure(f) if f.is_timeout() => {
            Error::new(ErrorKind::Timeout, "the request to AWS timed out")
        }
        SdkError::DispatchFailure(_) => {
            Error::new(ErrorKind::Connection, "could not reach the AWS endpoint")
        }
        // An answer that could not be read: a 2xx cut short or garbled is
        // transient (the last good value stays), an error status keeps its kind.
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            if (200..300).contains(&status) {
                unreadable_answer(&format!("HTTP {status}"))
            } else {
                Error::new(
                    kind_of_status(status),
                    format!("unreadable answer from AWS (HTTP {status})"),
                )
            }
        }
        // A 2xx whose body the SDK could not read comes back as an
        // unhandled service error: cut short or garbled on the way, not an
        // answer about the value. Transient, like any unreadable answer.
        SdkError::ServiceError(s) if s.raw().status().is_success() => {
            unreadable_answer(&format!("HTTP {}", s.raw().status().as_u16()))
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("Unknown");
            let status = s.raw().status().as_u16();
            let message = s.err().message().unwrap_or(code);
            Error::new(kind_of_answer(code, status), format!("{code}: {message}"))
                .with_code(bare(code))
        }
        _ => Error::new(ErrorKind::Other, "the AWS request could not be built"),
    }
}
