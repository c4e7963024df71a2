//! [`SigV4Fetcher`]: the lean [`Fetch`] (feature `sigv4`). Every read is
//! one AWS JSON 1.1 `POST`, signed with `aws-sigv4`, sent with sidekey's
//! one HTTPS client ([`crate::https`]), and read by the one protocol module
//! ([`crate::protocol`]).
//!
//! Why not the AWS SDK (still available, feature `aws-sdk`): the extension
//! needs five operations of two services and what Lambda provides for
//! credentials. With the SDK, trimmed as far as it goes, the extension's
//! binary was 5.96 MB and its idle RSS 6.9 MB; this fetcher made them
//! 3.6 MB and 5.4 MB in the same run (issue 14; bench/REPORT.md has
//! today's figures), in every sandbox, and the edge function ships the
//! same code in its 1 MB zip.
//!
//! What the SDK did that this keeps: up to 3 attempts for throttling,
//! 5xx, timeouts and connection failures, with jittered exponential
//! backoff, each attempt (and connect) bounded by half the operation's
//! deadline, never past the deadline; container credentials (SnapStart)
//! fetched with their token and refreshed before they expire. Batch calls
//! are not retried: the cache reads what they miss one by one.

use std::time::Duration;

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
pub use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use tokio::time::Instant;
use zeroize::Zeroizing;

use crate::config::or_default_deadline;
use crate::fetch::BatchItem;
use crate::https::{self, HttpsClient};
use crate::protocol::{self, Tree};
use crate::upstream::{endpoint_uri, var, Environment, SetupError, Timeouts};
use crate::{
    Error, ErrorKind, Fetch, Key, ParameterRequest, PathRequest, Record, SecretRequest, TreeLimits,
};

mod credentials;

use credentials::Source;
pub use credentials::{ContainerEndpoint, Credentials};

/// The client both services (and the credentials endpoint) are called with.
pub type Client = HttpsClient<Full<Bytes>>;

/// The largest service answer read: a secret is at most 64 KiB, base64 makes a
/// binary one 88 KiB; 20 of them in a batch, plus the envelope.
const MAX_ANSWER: usize = 2 * 1024 * 1024;

/// Attempts of one read (the SDK's standard mode has the same).
const MAX_ATTEMPTS: u32 = 3;

/// Backoff before attempt n+1: a random pause up to `BACKOFF * 2^(n-1)`.
const BACKOFF: Duration = Duration::from_millis(100);

/// Parameters per `GetParametersByPath` page (the service's maximum).
const PAGE: u32 = 10;

/// One service's endpoint in one region.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The region signed for.
    pub region: String,
    /// Where requests go.
    pub url: Uri,
}

impl Endpoint {
    /// `url` if given (an override: an emulator, a VPC endpoint), else
    /// the service's regional endpoint `https://HOST.REGION.amazonaws.com/`
    /// (`amazonaws.com.cn` in the China regions).
    pub fn new(host: &str, region: &str, url: Option<&str>) -> Result<Self, SetupError> {
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let url = match url {
            Some(u) => endpoint_uri(u).ok_or(SetupError::BadEndpoint("the endpoint"))?,
            None => format!("https://{host}.{region}.{domain}/")
                .parse()
                .map_err(|_| SetupError::BadEndpoint("AWS_REGION"))?,
        };
        Ok(Self {
            region: region.to_owned(),
            url,
        })
    }
}

/// Sign an AWS JSON 1.1 `POST` of `body` to `endpoint`: `service` is the
/// signing name, `target` the `X-Amz-Target` (`secretsmanager.GetSecretValue`).
pub fn signed_request(
    endpoint: &Endpoint,
    service: &str,
    target: &str,
    identity: &Identity,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, Error> {
    let invalid = |e: &dyn std::error::Error| Error::new(ErrorKind::InvalidRequest, error_chain(e));
    let host = endpoint
        .url
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(endpoint.url.clone())
        .header(HOST, &host)
        .header(CONTENT_TYPE, "application/x-amz-json-1.1")
        .header(USER_AGENT, concat!("sidekey/", env!("CARGO_PKG_VERSION")))
        .header("x-amz-target", target)
        .body(Full::new(Bytes::new()))
        .map_err(|e| invalid(&e))?;
    let uri = endpoint.url.to_string();
    let headers = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new("POST", &uri, headers, SignableBody::Bytes(&body))
        .map_err(|e| invalid(&e))?;
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(&endpoint.region)
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| invalid(&e))?
        .into();
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| invalid(&e))?
        .into_parts();
    instructions.apply_to_request_http1x(&mut request);
    if let Some(v) = request.headers_mut().get_mut(http::header::AUTHORIZATION) {
        v.set_sensitive(true);
    }
    *request.body_mut() = Full::new(Bytes::from(body));
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

/// One service as this fetcher calls it.
#[derive(Debug)]
struct Service {
    endpoint: Endpoint,
    /// Signing name.
    name: &'static str,
    /// `X-Amz-Target` prefix.
    target: &'static str,
    deadline: Duration,
}

/// Reads secrets with `GetSecretValue` / `BatchGetSecretValue` and
/// parameters with `GetParameter` / `GetParameters` / `GetParametersByPath`.
pub struct SigV4Fetcher {
    client: Client,
    credentials: Source,
    secrets: Service,
    ssm: Service,
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
    /// Set up from the environment Lambda provides: the region from
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`), credentials from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` or
    /// else the container endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
    /// with `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`, as under SnapStart),
    /// and the endpoints from `AWS_ENDPOINT_URL_SECRETS_MANAGER` /
    /// `AWS_ENDPOINT_URL_SSM` or `AWS_ENDPOINT_URL` when set. `max_idle`
    /// bounds the idle pooled connections per endpoint.
    pub fn from_env(timeouts: Timeouts, max_idle: usize) -> Result<Self, SetupError> {
        let lambda = Environment::read()?;
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => Source::fixed(&Credentials::new(
                id,
                Zeroizing::new(secret),
                var("AWS_SESSION_TOKEN").map(Zeroizing::new),
            )),
            _ => {
                let uri = var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .ok_or(SetupError::NoCredentials)?
                    .parse()
                    .map_err(|_| SetupError::BadEndpoint("AWS_CONTAINER_CREDENTIALS_FULL_URI"))?;
                Source::container(ContainerEndpoint::new(
                    uri,
                    var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Zeroizing::new),
                    var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(Into::into),
                ))
            }
        };
        let client = https::client(timeouts.connect(), max_idle)?;
        let host = |service: &str| match lambda.fips {
            true => format!("{service}-fips"),
            false => service.to_owned(),
        };
        let secrets = Endpoint::new(
            &host("secretsmanager"),
            &lambda.region,
            lambda.secrets_manager_url.as_deref(),
        )?;
        let ssm = Endpoint::new(&host("ssm"), &lambda.region, lambda.ssm_url.as_deref())?;
        Ok(Self::build(client, credentials, secrets, ssm, timeouts))
    }

    /// A fetcher with fixed `credentials`, reading Secrets Manager at
    /// `secrets` and Parameter Store at `ssm` (tests aim both at an
    /// emulator).
    pub fn new(
        client: Client,
        credentials: &Credentials,
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
        Self {
            client,
            credentials,
            secrets: Service {
                endpoint: secrets,
                name: "secretsmanager",
                target: "secretsmanager",
                deadline: or_default_deadline(timeouts.secrets_manager),
            },
            ssm: Service {
                endpoint: ssm,
                name: "ssm",
                target: "AmazonSSM",
                deadline: or_default_deadline(timeouts.ssm),
            },
            trees: TreeLimits::default(),
        }
    }

    /// Bound the parameter trees read ([`TreeLimits`]).
    pub fn with_tree_limits(mut self, limits: TreeLimits) -> Self {
        self.trees = limits;
        self
    }

    /// Call `operation` of `service` with `input`; a 2xx answer's body, or
    /// the error answer classified. With `retry`, transient failures are
    /// tried again (up to [`MAX_ATTEMPTS`]) within the service's deadline.
    async fn call(
        &self,
        service: &Service,
        operation: &str,
        input: &impl Serialize,
        retry: bool,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let body = serde_json::to_vec(input)
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let target = format!("{}.{operation}", service.target);
        let until = Instant::now() + service.deadline;
        let attempts = if retry { MAX_ATTEMPTS } else { 1 };
        let mut attempt = 1;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let bound = (service.deadline / 2).min(left);
            let once = async {
                let identity = self.credentials.identity(&self.client).await?;
                let request = signed_request(
                    &service.endpoint,
                    service.name,
                    &target,
                    &identity,
                    body.clone(),
                )?;
                exchange(&self.client, request, MAX_ANSWER).await
            };
            let outcome = match tokio::time::timeout(bound, once).await {
                Ok(Ok((status, body))) if (200..300).contains(&status) => return Ok(body),
                Ok(Ok((status, body))) => protocol::error_answer(status, &body),
                Ok(Err(e)) => e,
                Err(_) => Error::new(
                    ErrorKind::Timeout,
                    format!("{operation}: no answer within {bound:?}"),
                ),
            };
            let pause = BACKOFF.mul_f64(fastrand::f64() * f64::from(1u32 << (attempt - 1)));
            if attempt >= attempts || !outcome.is_transient() || Instant::now() + pause >= until {
                return Err(outcome);
            }
            tracing::debug!(operation, attempt, error = %outcome, "retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn get_secret(&self, req: &SecretRequest) -> Result<Record, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            secret_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            version_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            version_stage: Option<&'a str>,
        }
        let input = Input {
            secret_id: &req.id,
            version_id: req.version_id.as_deref(),
            version_stage: req.version_stage.as_deref(),
        };
        let body = self
            .call(&self.secrets, "GetSecretValue", &input, true)
            .await?;
        protocol::secret_value_answer(&body)
    }

    async fn get_parameter(&self, req: &ParameterRequest) -> Result<Record, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            name: &'a str,
            with_decryption: bool,
        }
        let name = req.selector_name();
        let input = Input {
            name: &name,
            with_decryption: req.with_decryption,
        };
        let body = self.call(&self.ssm, "GetParameter", &input, true).await?;
        protocol::parameter_answer(&body)
    }

    /// Every page of `GetParametersByPath`, merged; past a bound of
    /// [`TreeLimits`] it stops paging and answers the bound's error.
    async fn get_tree(&self, req: &PathRequest) -> Result<Record, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            path: &'a str,
            recursive: bool,
            with_decryption: bool,
            max_results: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            next_token: Option<&'a str>,
        }
        let mut tree = Tree::new(&req.path, self.trees);
        let mut next: Option<String> = None;
        loop {
            let input = Input {
                path: &req.path,
                recursive: req.recursive,
                with_decryption: req.with_decryption,
                max_results: PAGE,
                next_token: next.as_deref(),
            };
            let body = self
                .call(&self.ssm, "GetParametersByPath", &input, true)
                .await?;
            let (page, token) = protocol::parameters_page(&body)?;
            for p in page {
                tree.push(p)?;
            }
            match token {
                Some(token) => next = Some(token),
                None => return Ok(tree.into_record()),
            }
        }
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

    async fn fetch_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> Result<Vec<BatchItem>, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            names: &'a [String],
            with_decryption: bool,
        }
        let input = Input {
            names,
            with_decryption,
        };
        // Not retried, as `BatchGetSecretValue`: what is not answered is
        // read one by one.
        let body = self.call(&self.ssm, "GetParameters", &input, false).await?;
        protocol::parameters_answer(&body, names)
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct Input<'a> {
            secret_id_list: &'a [String],
        }
        // No retry: a batch only saves calls, and the caller reads one by
        // one whatever it does not answer. Retrying a throttled batch held
        // every reader waiting on it and added requests against a quota a
        // fleet's cold starts had already used up (the fleet simulation).
        let body = self
            .call(
                &self.secrets,
                "BatchGetSecretValue",
                &Input {
                    secret_id_list: ids,
                },
                false,
            )
            .await?;
        protocol::batch_secret_values_answer(&body, ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_regional_unless_overridden() {
        let e = Endpoint::new("secretsmanager", "eu-west-1", None).unwrap();
        assert_eq!(e.url, "https://secretsmanager.eu-west-1.amazonaws.com/");
        let e = Endpoint::new("ssm", "cn-north-1", None).unwrap();
        assert_eq!(e.url, "https://ssm.cn-north-1.amazonaws.com.cn/");
        let e = Endpoint::new("ssm", "eu-west-1", Some("http://127.0.0.1:5000")).unwrap();
        assert_eq!(
            (e.url.to_string().as_str(), e.region.as_str()),
            ("http://127.0.0.1:5000/", "eu-west-1")
        );
        assert!(Endpoint::new("ssm", "eu west", None).is_err());
        assert!(Endpoint::new("ssm", "eu-west-1", Some("localhost:4566")).is_err());
    }

    #[test]
    fn requests_are_signed_for_the_service_and_hide_the_signature() {
        let credentials =
            Credentials::new("AKIDEXAMPLE".into(), Zeroizing::new("secret".into()), None);
        let endpoint = Endpoint::new("ssm", "us-east-1", Some("http://127.0.0.1:5000")).unwrap();
        let r = signed_request(
            &endpoint,
            "ssm",
            "AmazonSSM.GetParameter",
            &credentials.identity(),
            br#"{"Name":"/p"}"#.to_vec(),
        )
        .unwrap();
        let auth = r.headers().get("authorization").unwrap();
        assert!(auth.is_sensitive());
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
        // Sent but not signed: aws-sigv4 leaves it out, as proxies rewrite it.
        assert!(!auth.contains("user-agent"), "{auth}");
    }
}
