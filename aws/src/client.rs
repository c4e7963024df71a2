//! [`AwsClient`]: how sidekey reaches AWS, shared by everything that does:
//! one pooled HTTPS client ([`crate::https`]), the function's credentials
//! ([`crate::credentials`]), its home region and each service's endpoint.
//!
//! The fetcher ([`crate::SigV4Fetcher`]) reads through it; the extension's
//! SDK-compatible endpoint verifies its callers' signatures against the
//! same credentials and passes the operations it does not serve through it
//! ([`AwsClient::forward`]), re-signed. Requests are signed here
//! ([`signed_request`]) and answers read here ([`exchange`]), bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use sidekey_cache::{Error, ErrorKind};
use zeroize::Zeroizing;

use crate::credentials::Source;
use crate::env::{CredentialsFrom, Endpoint, Environment, SetupError, Variant};
use crate::https::{self, HttpsClient};
use crate::ops::{assume_role, Service};
use crate::roles::{Roles, REFRESH_MARGIN};
use crate::sigv4::{self, Credentials, Scope, Signable};

/// The client every service (and the credentials endpoint) is called with.
pub type Client = HttpsClient<Full<Bytes>>;

/// The largest answer read from AWS: a secret is at most 64 KiB, base64
/// makes a binary one 88 KiB; 20 of them in a batch, plus the envelope; a
/// page of `ListSecrets` or `DescribeParameters` is far less.
pub const MAX_ANSWER: usize = 2 * 1024 * 1024;

/// The content type of the AWS JSON 1.1 protocol.
pub const AWS_JSON: &str = "application/x-amz-json-1.1";

/// Sign a `POST` of `body` to `endpoint`, for `service`, with
/// `credentials`, at the current time: an AWS JSON 1.1 call with
/// `X-Amz-Target: target`, or (STS, `target` empty) a query-protocol form.
pub fn signed_request(
    endpoint: &Endpoint,
    service: Service,
    target: &str,
    credentials: &Credentials,
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, Error> {
    let date = sigv4::amz_date(SystemTime::now());
    let content_type = match target {
        "" => assume_role::CONTENT_TYPE,
        _ => AWS_JSON,
    };
    let mut signed: Vec<(&str, &str)> = vec![
        ("content-type", content_type),
        ("host", endpoint.host()),
        ("x-amz-date", &date),
    ];
    if !target.is_empty() {
        signed.push(("x-amz-target", target));
    }
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
        service: service.signing_name(),
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

/// An answer as it came: status, the headers an SDK reads, and the body
/// (in a buffer wiped on drop: it may hold a value or credentials).
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `x-amzn-RequestId`, if the service sent one.
    pub request_id: Option<String>,
    /// `X-Amzn-ErrorType`, if the service sent one.
    pub error_type: Option<String>,
    /// The body.
    pub body: Zeroizing<Vec<u8>>,
}

/// Send `request` and read the whole answer, at most `limit` bytes of it.
/// Failures to connect or to read are [`ErrorKind::Connection`].
pub async fn exchange(
    client: &Client,
    request: Request<Full<Bytes>>,
    limit: usize,
) -> Result<Answer, Error> {
    let response = client
        .request(request)
        .await
        .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&e)))?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (request_id, error_type) = (header("x-amzn-requestid"), header("x-amzn-errortype"));
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&*e)))?
        .to_bytes();
    Ok(Answer {
        status,
        request_id,
        error_type,
        body: Zeroizing::new(Vec::from(body)),
    })
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

fn timed_out(target: &str, within: Duration) -> Error {
    let what = if target.is_empty() {
        "AssumeRole"
    } else {
        target
    };
    Error::new(
        ErrorKind::Timeout,
        format!("{what}: no answer within {within:?}"),
    )
}

/// How sidekey reaches AWS: the pooled client, the credentials, the home
/// region and its services' endpoints.
pub struct AwsClient {
    http: Client,
    credentials: Source,
    region: String,
    secrets: Endpoint,
    ssm: Endpoint,
    sts: Endpoint,
    roles: Roles,
    /// What `AssumeRole` names its sessions (CloudTrail shows it).
    session: String,
    /// The endpoints' variant (FIPS, dual-stack), for other regions'.
    variant: Variant,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient")
            .field("region", &self.region)
            .field("secrets", &self.secrets)
            .field("ssm", &self.ssm)
            .finish_non_exhaustive()
    }
}

impl AwsClient {
    /// Set up from the environment Lambda provides ([`Environment`]). An
    /// endpoint variable that names `own` (the extension's listener) is
    /// passed over, as if unset: the function's SDK is pointed at sidekey,
    /// and sidekey must not call itself. `connect` bounds each connect,
    /// `max_idle` the idle pooled connections per endpoint.
    pub fn from_env(
        connect: Duration,
        max_idle: usize,
        own: Option<SocketAddr>,
    ) -> Result<Self, SetupError> {
        let lambda = Environment::read_excluding(own)?;
        let credentials = match lambda.credentials {
            CredentialsFrom::Environment(c) => Source::fixed(c),
            CredentialsFrom::Container(endpoint) => Source::container(endpoint),
        };
        let http = https::client(connect, max_idle)?;
        let secrets = Endpoint::new(
            Service::SecretsManager,
            &lambda.region,
            lambda.secrets_manager_url.as_deref(),
            lambda.variant,
        )?;
        let ssm = Endpoint::new(
            Service::Ssm,
            &lambda.region,
            lambda.ssm_url.as_deref(),
            lambda.variant,
        )?;
        let sts = Endpoint::new(
            Service::Sts,
            &lambda.region,
            lambda.sts_url.as_deref(),
            lambda.variant,
        )?;
        let mut client = Self::new(http, credentials, secrets, ssm, sts);
        client.session = assume_role::session_name(lambda.function.as_deref());
        client.variant = lambda.variant;
        Ok(client)
    }

    /// A client over `http`, signing with `credentials`, calling Secrets
    /// Manager at `secrets`, Parameter Store at `ssm` and STS at `sts`
    /// (the region of `secrets` is the home region).
    pub fn new(
        http: Client,
        credentials: Source,
        secrets: Endpoint,
        ssm: Endpoint,
        sts: Endpoint,
    ) -> Self {
        Self {
            http,
            credentials,
            region: secrets.region.clone(),
            secrets,
            ssm,
            sts,
            roles: Roles::new(20, Vec::new()),
            session: assume_role::session_name(None),
            variant: Variant::default(),
        }
    }

    /// `service`'s endpoint in `region`: where an override (an emulator, a
    /// VPC endpoint) sends the home region's calls it sends these too,
    /// signed for `region`; else the region's own endpoint.
    pub fn endpoint_in(&self, service: Service, region: &str) -> Result<Endpoint, SetupError> {
        let home = self.endpoint(service);
        let regional = Endpoint::new(service, &self.region, None, self.variant)?;
        let url = (home.url != regional.url).then(|| home.url.to_string());
        Endpoint::new(service, region, url.as_deref(), self.variant)
    }

    /// At most `max` roles read as at once, those matching one of `allowed`
    /// only (any, when empty) ([`Roles`]).
    pub fn with_roles(mut self, max: usize, allowed: Vec<String>) -> Self {
        self.roles = Roles::new(max, allowed);
        self
    }

    /// The roles read as (`roleArn`).
    pub fn roles(&self) -> &Roles {
        &self.roles
    }

    /// Fixed `credentials`, both services at `endpoint` in `region` (tests
    /// aim it at an emulator).
    pub fn fixed(
        http: Client,
        credentials: Credentials,
        region: &str,
        endpoint: &str,
    ) -> Result<Self, SetupError> {
        let at = |service| Endpoint::new(service, region, Some(endpoint), Variant::default());
        Ok(Self::new(
            http,
            Source::fixed(credentials),
            at(Service::SecretsManager)?,
            at(Service::Ssm)?,
            at(Service::Sts)?,
        ))
    }

    /// The home region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// `service`'s endpoint in the home region.
    pub fn endpoint(&self, service: Service) -> &Endpoint {
        match service {
            Service::SecretsManager => &self.secrets,
            Service::Ssm => &self.ssm,
            Service::Sts => &self.sts,
        }
    }

    /// The pooled client.
    pub fn http(&self) -> &Client {
        &self.http
    }

    /// The credentials to sign with now (the container's fetched again
    /// when about to expire).
    pub async fn credentials(&self) -> Result<Arc<Credentials>, Error> {
        self.credentials.get(&self.http).await
    }

    /// Forget credentials the service refused: the next call fetches fresh
    /// ones (the container's, or a role's).
    pub async fn forget_credentials(&self, role: Option<&str>) {
        match role {
            None => self.credentials.forget().await,
            Some(arn) => {
                self.roles.slot(arn).current.lock().await.take();
            }
        }
    }

    /// The credentials to sign with as `role` (the function's own for
    /// none): a role's are assumed with the function's, kept until
    /// [`REFRESH_MARGIN`] before they expire, one `AssumeRole` for the
    /// callers of a role at one moment.
    pub async fn credentials_as(&self, role: Option<&str>) -> Result<Arc<Credentials>, Error> {
        let Some(arn) = role else {
            return self.credentials().await;
        };
        let slot = self.roles.slot(arn);
        let mut current = slot.current.lock().await;
        let fresh = |expiry: &SystemTime| SystemTime::now() + REFRESH_MARGIN < *expiry;
        if let Some((credentials, _)) = current.as_ref().filter(|(_, e)| fresh(e)) {
            return Ok(Arc::clone(credentials));
        }
        let (credentials, expiry) = self.assume(arn).await?;
        let credentials = Arc::new(credentials);
        *current = Some((Arc::clone(&credentials), expiry));
        Ok(credentials)
    }

    /// STS `AssumeRole` of `arn`, signed with the function's credentials,
    /// at the home region's STS endpoint, within a read deadline.
    async fn assume(&self, arn: &str) -> Result<(Credentials, SystemTime), Error> {
        let body = assume_role::request_body(arn, &self.session);
        let within = sidekey_cache::DEFAULT_DEADLINE;
        let credentials = self.credentials().await?;
        let sts = (&self.sts, Service::Sts, "");
        let answer = self.call_signed(&credentials, sts, body, within).await?;
        match answer.status {
            200..=299 => assume_role::answer(&answer.body),
            status => Err(assume_role::error_answer(status, &answer.body)),
        }
    }

    /// One signed `POST` of `body` with `target` to `endpoint` for
    /// `service`, as `role` (the function itself for none), answered as it
    /// came (any status), within `within`.
    pub async fn call(
        &self,
        endpoint: &Endpoint,
        service: Service,
        target: &str,
        body: Vec<u8>,
        within: Duration,
        role: Option<&str>,
    ) -> Result<Answer, Error> {
        let started = tokio::time::Instant::now();
        let credentials = tokio::time::timeout(within, self.credentials_as(role))
            .await
            .map_err(|_| timed_out(target, within))??;
        let left = within.saturating_sub(started.elapsed());
        self.call_signed(&credentials, (endpoint, service, target), body, left)
            .await
    }

    /// [`AwsClient::call`] with `credentials` in hand.
    async fn call_signed(
        &self,
        credentials: &Credentials,
        (endpoint, service, target): (&Endpoint, Service, &str),
        body: Vec<u8>,
        within: Duration,
    ) -> Result<Answer, Error> {
        let once = async {
            let request = signed_request(endpoint, service, target, credentials, body)?;
            exchange(&self.http, request, MAX_ANSWER).await
        };
        tokio::time::timeout(within, once)
            .await
            .map_err(|_| timed_out(target, within))?
    }

    /// Pass `body` for `target` to `service` in the home region, re-signed
    /// with the function's credentials, once, within `within`: the SDK
    /// endpoint's operations that sidekey does not serve. The answer comes
    /// back as the service gave it, errors included; only a failure to get
    /// one is an [`Error`].
    pub async fn forward(
        &self,
        service: Service,
        target: &str,
        body: Vec<u8>,
        within: Duration,
    ) -> Result<Answer, Error> {
        self.call(self.endpoint(service), service, target, body, within, None)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::get_parameter;

    #[test]
    fn requests_are_signed_for_the_service_and_hide_the_secrets() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE".into(),
            Zeroizing::new("secret".into()),
            Some(Zeroizing::new("token".into())),
        );
        let url = Some("http://127.0.0.1:5000");
        let endpoint = Endpoint::new(Service::Ssm, "us-east-1", url, Variant::default()).unwrap();
        let r = signed_request(
            &endpoint,
            Service::Ssm,
            &get_parameter::OPERATION.target(),
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
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], AWS_JSON);
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
}
