//! [`SigV4Fetcher`]: a lean [`Fetch`] for Secrets Manager's
//! `GetSecretValue`, for the edge, where the AWS SDK does not fit in 1 MB.
//!
//! One JSON 1.1 `POST` signed with `aws-sigv4`, sent with the edge's one
//! hyper client. Answers are read, and failures classified, by the cache's
//! one protocol module ([`protocol`]), as the SDK fetcher's are, so the
//! cache's retry and serve-stale policy works the same on both.
//!
//! Multi-region: the fetcher is given its regions in read order (see
//! [`super::EdgeConfig::read_regions`]): the local replica first, then the
//! primary. A transient or not-found error in a replica falls through to the
//! primary; the primary's answer is final.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use serde::Serialize;
use sidekey_cache::{protocol, Error, ErrorKind, Fetch, Key, Record, SecretRequest};
use zeroize::Zeroizing;

use super::client::{error_chain, HttpClient};

/// The largest answer read: a secret is at most 64 KiB, base64 makes a
/// binary one 88 KiB, plus the envelope.
const MAX_ANSWER: usize = 256 * 1024;

/// The function's credentials, as Lambda puts them in its environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`). The
/// caller reads them once; they hold for the life of the environment.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl Credentials {
    /// Credentials from their three parts.
    pub fn new(
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        session_token: Option<Zeroizing<String>>,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token,
        }
    }
}

/// Prints the access key id only.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// One region's Secrets Manager endpoint.
#[derive(Clone, Debug)]
struct Endpoint {
    region: String,
    url: Uri,
}

/// Why a fetcher could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetcherError {
    /// No region to read from.
    #[error("no region to read the secret from")]
    NoRegion,
    /// A region name made an invalid endpoint URL.
    #[error("region {0:?} gives no valid endpoint URL")]
    BadRegion(String),
}

/// Reads secrets with a SigV4-signed `GetSecretValue`.
pub struct SigV4Fetcher {
    client: HttpClient,
    identity: Identity,
    endpoints: Vec<Endpoint>,
    timeout: Duration,
}

impl fmt::Debug for SigV4Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV4Fetcher")
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SigV4Fetcher {
    /// Read from `regions`, in order (at least one), each at its regional
    /// endpoint `https://secretsmanager.REGION.amazonaws.com`, or all at
    /// `endpoint` if given. Each call gets `timeout`.
    pub fn new(
        client: HttpClient,
        credentials: Credentials,
        regions: &[String],
        endpoint: Option<&Uri>,
        timeout: Duration,
    ) -> Result<Self, FetcherError> {
        if regions.is_empty() {
            return Err(FetcherError::NoRegion);
        }
        let endpoints = regions
            .iter()
            .map(|region| {
                let url = match endpoint {
                    Some(u) => u.clone(),
                    None => format!("https://secretsmanager.{region}.amazonaws.com/")
                        .parse()
                        .map_err(|_| FetcherError::BadRegion(region.clone()))?,
                };
                Ok(Endpoint {
                    region: region.clone(),
                    url,
                })
            })
            .collect::<Result<Vec<_>, FetcherError>>()?;
        let identity = AwsCredentials::new(
            credentials.access_key_id,
            credentials.secret_access_key.to_string(),
            credentials.session_token.map(|t| t.to_string()),
            None,
            "lambda-environment",
        )
        .into();
        Ok(Self {
            client,
            identity,
            endpoints,
            timeout,
        })
    }

    async fn get_secret(&self, req: &SecretRequest) -> Result<Record, Error> {
        let last = self.endpoints.len() - 1;
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            match self.get_in(endpoint, req).await {
                Err(e) if i < last && (e.is_transient() || e.kind() == ErrorKind::NotFound) => {
                    tracing::warn!(region = %endpoint.region, error = %e, "replica read failed, trying the primary");
                }
                other => return other,
            }
        }
        Err(Error::new(ErrorKind::Other, "no region to read from"))
    }

    async fn get_in(&self, endpoint: &Endpoint, req: &SecretRequest) -> Result<Record, Error> {
        let body = serde_json::to_vec(&GetSecretValueInput {
            secret_id: &id_in_region(&req.id, &endpoint.region),
            version_id: req.version_id.as_deref(),
            version_stage: req.version_stage.as_deref(),
        })
        .map_err(|e| Error::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let request = self.signed(endpoint, body)?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Error::new(ErrorKind::Connection, error_chain(&*e)))?
                .to_bytes();
            // The answer holds the value: keep it in a buffer wiped on drop.
            Ok::<_, Error>((status, Zeroizing::new(Vec::from(body))))
        };
        let (status, body) = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("no answer within {:?}", self.timeout),
                )
            })??;
        if (200..300).contains(&status) {
            protocol::secret_value_answer(&body)
        } else {
            Err(protocol::error_answer(status, &body))
        }
    }

    fn signed(&self, endpoint: &Endpoint, body: Vec<u8>) -> Result<Request<Full<Bytes>>, Error> {
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
            .header("x-amz-target", "secretsmanager.GetSecretValue")
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let uri = endpoint.url.to_string();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new("POST", &uri, headers, SignableBody::Bytes(&body))
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, error_chain(&e)))?;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(&endpoint.region)
            .name("secretsmanager")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, error_chain(&e)))?
            .into();
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, error_chain(&e)))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        *request.body_mut() = Full::new(Bytes::from(body));
        Ok(request)
    }
}

impl Fetch for SigV4Fetcher {
    async fn fetch(&self, key: &Key) -> Result<Record, Error> {
        match key {
            Key::Secret(req) => self.get_secret(req).await,
            Key::Parameter(_) | Key::Path(_) => Err(Error::new(
                ErrorKind::Unsupported,
                "the edge fetcher reads Secrets Manager only",
            )),
        }
    }
}

/// A full ARN names its region; in a replica region the replica's ARN is the
/// same with that region. Names and partial ARNs are region-free.
fn id_in_region<'a>(id: &'a str, region: &str) -> std::borrow::Cow<'a, str> {
    let parts: Vec<&str> = id.splitn(5, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "secretsmanager", r, rest] if *r != region => {
            format!("arn:{partition}:secretsmanager:{region}:{rest}").into()
        }
        _ => id.into(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueInput<'a> {
    secret_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_stage: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_follow_the_region() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:edge/api-AbCdEf";
        assert_eq!(
            id_in_region(arn, "eu-west-1"),
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:edge/api-AbCdEf"
        );
        assert_eq!(id_in_region(arn, "us-east-1"), arn);
        assert_eq!(id_in_region("edge/api", "eu-west-1"), "edge/api");
        assert_eq!(
            id_in_region("arn:aws:ssm:us-east-1:1:parameter/x", "eu-west-1"),
            "arn:aws:ssm:us-east-1:1:parameter/x"
        );
    }

    #[test]
    fn credentials_debug_hides_the_secret_parts() {
        let c = Credentials::new(
            "AKIDEXAMPLE".into(),
            Zeroizing::new("wJalrXUtnFEMI".into()),
            Some(Zeroizing::new("session-tok".into())),
        );
        let d = format!("{c:?}");
        assert!(d.contains("AKIDEXAMPLE"));
        assert!(!d.contains("wJalr") && !d.contains("session-tok"));
    }
}
