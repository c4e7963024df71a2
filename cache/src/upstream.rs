//! What both fetchers take from Lambda: the environment it sets (region,
//! endpoint overrides, where credentials are) and the per-service
//! deadlines, and why setting a fetcher up can fail.

use std::time::Duration;

use crate::config::or_default_deadline;
use crate::https::HttpsError;

/// Per-service deadlines of one operation, retries included. Each attempt,
/// and each connect, gets half of it: a connection that accepts and never
/// answers (a NAT gateway's forgotten flow, a pooled connection frozen with
/// the environment) is given up in time for one retry on a fresh connection
/// before the deadline. The cache enforces the same deadline around the
/// call, so nothing outlives it whatever the fetcher does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Deadline of one Secrets Manager operation.
    pub secrets_manager: Duration,
    /// Deadline of one SSM operation.
    pub ssm: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            secrets_manager: crate::DEFAULT_DEADLINE,
            ssm: crate::DEFAULT_DEADLINE,
        }
    }
}

impl Timeouts {
    /// The connect timeout of the one client both services share.
    pub fn connect(&self) -> Duration {
        or_default_deadline(self.secrets_manager).min(or_default_deadline(self.ssm)) / 2
    }
}

/// Why a fetcher could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Neither `AWS_REGION` nor `AWS_DEFAULT_REGION` is set.
    #[error("no AWS region: set AWS_REGION (Lambda sets it in every function)")]
    NoRegion,
    /// An endpoint is not a valid URL: the variable that held it.
    #[error("{0} is not a valid endpoint URL (one with http:// or https:// and a host)")]
    BadEndpoint(&'static str),
    /// Neither credentials nor a credentials endpoint are in the environment.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
         or AWS_CONTAINER_CREDENTIALS_FULL_URI (Lambda sets one or the other)"
    )]
    NoCredentials,
    /// The HTTPS stack could not be built.
    #[error(transparent)]
    Https(#[from] HttpsError),
}

/// The parts of Lambda's environment a fetcher reads.
pub(crate) struct Environment {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: String,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, else `AWS_ENDPOINT_URL`.
    pub secrets_manager_url: Option<String>,
    /// `AWS_ENDPOINT_URL_SSM`, else `AWS_ENDPOINT_URL`.
    pub ssm_url: Option<String>,
    /// `AWS_USE_FIPS_ENDPOINT=true`: the services' FIPS endpoints.
    pub fips: bool,
}

impl Environment {
    /// Read it; a region is required, and an endpoint override must be a
    /// URL (checked here, where the variable's name is known).
    pub fn read() -> Result<Self, SetupError> {
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or(SetupError::NoRegion)?;
        let endpoint = |name| var(name).map(|url| endpoint_url(name, url)).transpose();
        let general = endpoint("AWS_ENDPOINT_URL")?;
        Ok(Self {
            region,
            secrets_manager_url: endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")?
                .or_else(|| general.clone()),
            ssm_url: endpoint("AWS_ENDPOINT_URL_SSM")?.or(general),
            fips: var("AWS_USE_FIPS_ENDPOINT").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

/// `url`, the value of the variable `name`, if it is an endpoint URL
/// ([`endpoint_uri`]): checked here, where the variable's name is known.
fn endpoint_url(name: &'static str, url: String) -> Result<String, SetupError> {
    match endpoint_uri(&url) {
        Some(_) => Ok(url),
        None => Err(SetupError::BadEndpoint(name)),
    }
}

/// `url` parsed, if it can be an endpoint: absolute, http or https, with a
/// host. `localhost:4566`, a common slip, parses as a URI but would fail
/// every read later, far from its cause.
pub(crate) fn endpoint_uri(url: &str) -> Option<http::Uri> {
    let uri: http::Uri = url.parse().ok()?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Some(uri),
        _ => None,
    }
}

/// A variable, if set and not empty.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_override_must_be_an_http_url() {
        let ok = |u: &str| endpoint_url("V", u.to_owned()).is_ok();
        assert!(ok("http://127.0.0.1:4566"));
        assert!(ok(
            "https://vpce-1.secretsmanager.eu-west-1.vpce.amazonaws.com/"
        ));
        for bad in [
            "localhost:4566",
            "127.0.0.1",
            "ftp://host/",
            "http://",
            "not a url",
        ] {
            let e = endpoint_url("AWS_ENDPOINT_URL_SSM", bad.to_owned()).unwrap_err();
            assert!(
                e.to_string().starts_with("AWS_ENDPOINT_URL_SSM"),
                "{bad}: {e}"
            );
        }
    }
}
