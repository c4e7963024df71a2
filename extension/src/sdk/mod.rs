//! The SDK-compatible endpoint: unchanged AWS SDK code reads through the
//! cache when the function's `AWS_ENDPOINT_URL_SECRETS_MANAGER` and
//! `AWS_ENDPOINT_URL_SSM` name the extension's listener.
//!
//! The SDKs speak AWS JSON 1.1: `POST /` with `X-Amz-Target:
//! secretsmanager.<Operation>` or `AmazonSSM.<Operation>`, a JSON body, and
//! a SigV4 signature made with the function's credentials, which the
//! extension shares (same environment). So the signature is the
//! credential: a request is served only when it verifies against the
//! environment's own secret key, access key id and session token, within 5
//! minutes of its date ([`sidekey_aws::sigv4::verify`]); an SSRF that can
//! make the function send a GET cannot forge one. Anything else is refused
//! with the services' own error shapes ([`error`]), and nothing of a
//! refused request reaches AWS.
//!
//! Served from the cache ([`serve`]): `GetSecretValue`,
//! `BatchGetSecretValue` by ids, `GetParameter`, `GetParameters`,
//! `GetParametersByPath`. Every other operation, and the served ones in a
//! shape the cache does not serve (filters, another's page token), passes
//! through: re-signed with the environment's credentials to the home
//! region's endpoint, once, within the read deadline, and answered as the
//! service answered. A successful write to an id (`PutSecretValue`,
//! `PutParameter`, ...; `sidekey_aws::ops::changes`) drops what the cache
//! holds for it, so the function reads its own write.

mod error;
mod serve;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use sidekey_aws::ops::{self, batch_get_secret_value, Service};
use sidekey_aws::sigv4::{self, Received};
use sidekey_aws::AwsClient;
use sidekey_cache::{Cached, Fetch, Key};

use self::error::{aws_response, SdkError};
use self::serve::Served;
use crate::api::Api;

/// The largest request body taken: `PutSecretValue` carries at most
/// 64 KiB of value (88 KiB as base64), the rest of any request a few KB.
/// A larger one is refused (413), never buffered.
pub(crate) const MAX_REQUEST: usize = 256 * 1024;

/// What the endpoint needs besides the cache: the client that verifies
/// callers against the function's credentials and passes requests through,
/// and each service's deadline for a pass-through.
pub(crate) struct Sdk {
    aws: Arc<AwsClient>,
    secrets_deadline: Duration,
    ssm_deadline: Duration,
}

impl Sdk {
    /// The client it verifies callers against and passes requests through.
    pub(crate) fn aws(&self) -> &AwsClient {
        &self.aws
    }

    /// The endpoint over `aws`, passing through within each service's
    /// read deadline.
    pub(crate) fn new(
        aws: Arc<AwsClient>,
        secrets_deadline: Duration,
        ssm_deadline: Duration,
    ) -> Self {
        Self {
            aws,
            secrets_deadline,
            ssm_deadline,
        }
    }
}

/// Whether a request is for the SDK-compatible endpoint: a `POST` with an
/// `X-Amz-Target` (the GET API never has one).
pub(crate) fn is_sdk<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::POST && req.headers().contains_key("x-amz-target")
}

impl<F: Fetch> Api<F> {
    /// Answer an SDK request. Never fails: errors become the services' own
    /// error answers.
    pub(crate) async fn answer_sdk<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: http_body::Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let request_id = request_id();
        match self.sdk_answer(req, &request_id).await {
            Ok(response) => response,
            Err(e) => e.into_response(&request_id),
        }
    }

    async fn sdk_answer<B>(
        &self,
        req: Request<B>,
        request_id: &str,
    ) -> Result<Response<Full<Bytes>>, SdkError>
    where
        B: http_body::Body,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        if req.headers().contains_key("x-forwarded-for") {
            return Err(SdkError::Forwarded);
        }
        let sdk = &self.sdk;
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let (service, operation) = Service::of_target(&target).ok_or_else(|| {
            SdkError::UnknownOperation(format!(
                "X-Amz-Target {target:?} names no operation of Secrets Manager \
                 (secretsmanager.*) or Parameter Store (AmazonSSM.*)"
            ))
        })?;
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, MAX_REQUEST).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(SdkError::TooLarge(MAX_REQUEST))
            }
            Err(_) => return Err(SdkError::Serialization("the body could not be read".into())),
        };
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
            .collect();
        let received = Received {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or_default(),
            headers: &headers,
            body: &body,
        };
        let credentials = sdk.aws.credentials().await?;
        sigv4::verify(
            &received,
            &credentials,
            sdk.aws.region(),
            &[service.signing_name()],
            SystemTime::now(),
        )
        .map_err(SdkError::Refused)?;
        let served = match (service, operation) {
            (Service::SecretsManager, "GetSecretValue") => {
                serve::get_secret_value(&self.cache, &body).await?
            }
            (Service::SecretsManager, "BatchGetSecretValue") => {
                serve::batch_get_secret_value(&self.cache, &body).await?
            }
            (Service::Ssm, "GetParameter") => serve::get_parameter(&self.cache, &body).await?,
            (Service::Ssm, "GetParameters") => serve::get_parameters(&self.cache, &body).await?,
            (Service::Ssm, "GetParametersByPath") => {
                serve::get_parameters_by_path(&self.cache, &body).await?
            }
            _ => Served::PassThrough,
        };
        match served {
            Served::Body(answer) => Ok(aws_response(request_id, answer)),
            Served::PassThrough => {
                self.pass_through(service, operation, &target, body, request_id)
                    .await
            }
        }
    }

    /// Pass the request to the service, re-signed, and answer as it did;
    /// after a successful write, forget what it changed.
    async fn pass_through(
        &self,
        service: Service,
        operation: &str,
        target: &str,
        body: Bytes,
        request_id: &str,
    ) -> Result<Response<Full<Bytes>>, SdkError> {
        let sdk = &self.sdk;
        let deadline = match service {
            Service::Ssm => sdk.ssm_deadline,
            Service::SecretsManager | Service::Sts => sdk.secrets_deadline,
        };
        let answer = sdk
            .aws
            .forward(service, target, body.to_vec(), deadline)
            .await?;
        if (200..300).contains(&answer.status) {
            let forgotten = self.forget_changed(service, operation, &body);
            if forgotten > 0 {
                tracing::debug!(
                    operation,
                    forgotten,
                    "a write passed through: entries dropped"
                );
            }
        }
        let mut response = aws_response(
            answer.request_id.as_deref().unwrap_or(request_id),
            Bytes::from(answer.body.to_vec()),
        );
        *response.status_mut() =
            StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
        if let Some(kind) = answer
            .error_type
            .and_then(|t| HeaderValue::from_str(&t).ok())
        {
            response.headers_mut().insert("x-amzn-errortype", kind);
        }
        Ok(response)
    }

    /// Drop every entry `operation`'s request `body` names (by id, by the
    /// value's name or ARN, or, for a parameter, every tree above it), and
    /// the markers of those ids. Returns how many were dropped.
    fn forget_changed(&self, service: Service, operation: &str, body: &[u8]) -> usize {
        let fields = ops::changes(service, operation);
        if fields.is_empty() {
            return 0;
        }
        let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
            return 0;
        };
        let mut ids: Vec<String> = Vec::new();
        for field in fields {
            match &request[*field] {
                serde_json::Value::String(id) => ids.push(id.clone()),
                serde_json::Value::Array(list) => {
                    ids.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)))
                }
                _ => {}
            }
        }
        self.cache
            .invalidate(|key, value| ids.iter().any(|id| names(service, key, value, id)))
    }
}

/// Whether `key` (held with `value`, if any) is what a write of `service`
/// to `id` changes.
fn names(service: Service, key: &Key, value: Option<&Cached>, id: &str) -> bool {
    let (name, arn) = value.map(Cached::identity).unwrap_or_default();
    let designates = || {
        key.id() == id
            || batch_get_secret_value::designates(id, name.as_deref(), arn.as_deref()).is_some()
    };
    match (service, key) {
        (Service::SecretsManager, Key::Secret(_)) => designates(),
        (Service::Ssm, Key::Parameter(_)) => designates(),
        // A tree above the parameter holds it.
        (Service::Ssm, Key::Path(tree)) => id.starts_with(&tree.path),
        _ => false,
    }
}

/// A request id in the services' shape (a UUID's), for answers sidekey
/// writes itself.
fn request_id() -> String {
    let (a, b) = (fastrand::u64(..), fastrand::u64(..));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}
