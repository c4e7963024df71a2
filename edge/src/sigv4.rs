//! [`SigV4Fetcher`]: a lean [`Fetch`] for Secrets Manager's
//! `GetSecretValue`, for the edge, where the AWS SDK does not fit in 1 MB.
//!
//! One JSON 1.1 `POST` signed and sent by the cache's SigV4 primitives
//! ([`sidekey_cache::sigv4`], the extension's fetcher), with the edge's one
//! hyper client. Answers are read, and failures classified, by the cache's
//! one protocol module ([`protocol`]), so the cache's retry and serve-stale
//! policy works the same here as in the extension. Only the replica
//! fall-through is the edge's own (no retries: the viewer is waiting).
//!
//! Multi-region: the fetcher is given its regions in read order (see
//! [`super::EdgeConfig::read_regions`]): the local replica first, then the
//! primary. A transient or not-found error in a replica falls through to the
//! primary; the primary's answer is final.

use std::time::Duration;

use http::Uri;
use serde::Serialize;
use sidekey_cache::sigv4::{exchange, signed_request, Endpoint, Identity};
use sidekey_cache::{protocol, Error, ErrorKind, Fetch, Key, Record, SecretRequest};

pub use sidekey_cache::sigv4::Credentials;

use super::client::HttpClient;

/// The largest answer read: a secret is at most 64 KiB, base64 makes a
/// binary one 88 KiB, plus the envelope.
const MAX_ANSWER: usize = 256 * 1024;

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

/// Reads secrets with a SigV4-signed `GetSecretValue`, replica first.
pub struct SigV4Fetcher {
    client: HttpClient,
    identity: Identity,
    endpoints: Vec<Endpoint>,
    timeout: Duration,
}

impl std::fmt::Debug for SigV4Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
        let endpoint = endpoint.map(Uri::to_string);
        let endpoints = regions
            .iter()
            .map(|region| {
                Endpoint::new("secretsmanager", region, endpoint.as_deref())
                    .map_err(|_| FetcherError::BadRegion(region.clone()))
            })
            .collect::<Result<Vec<_>, FetcherError>>()?;
        Ok(Self {
            client,
            identity: credentials.identity(),
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
        let request = signed_request(
            endpoint,
            "secretsmanager",
            "secretsmanager.GetSecretValue",
            &self.identity,
            body,
        )?;
        let (status, body) =
            tokio::time::timeout(self.timeout, exchange(&self.client, request, MAX_ANSWER))
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
}
