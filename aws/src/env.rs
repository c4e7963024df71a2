//! What a client of AWS takes from Lambda: the environment it sets
//! (region, endpoint overrides, where credentials are), each service's
//! [`Endpoint`], the per-service deadlines, and why setting a fetcher up
//! can fail. The one place sidekey reads Lambda's environment for AWS.

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use sidekey_cache::or_default_deadline;

use zeroize::Zeroizing;

use crate::credentials::ContainerEndpoint;
use crate::https::HttpsError;
use crate::ops::Service;
use crate::sigv4::Credentials;

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
            secrets_manager: sidekey_cache::DEFAULT_DEADLINE,
            ssm: sidekey_cache::DEFAULT_DEADLINE,
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
    /// `service`'s regional endpoint `https://HOST.REGION.amazonaws.com/`
    /// (`amazonaws.com.cn` in the China regions), its FIPS one with `fips`.
    pub fn new(
        service: Service,
        region: &str,
        url: Option<&str>,
        fips: bool,
    ) -> Result<Self, SetupError> {
        let url = match url {
            Some(u) => endpoint_uri(u).ok_or(SetupError::BadEndpoint("the endpoint"))?,
            None => {
                let domain = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                let prefix = service.endpoint_prefix();
                let fips = if fips { "-fips" } else { "" };
                format!("https://{prefix}{fips}.{region}.{domain}/")
                    .parse()
                    .map_err(|_| SetupError::BadEndpoint("AWS_REGION"))?
            }
        };
        Ok(Self {
            region: region.to_owned(),
            url,
        })
    }

    /// The `Host` header requests to it carry.
    pub fn host(&self) -> &str {
        self.url.authority().map_or("", |a| a.as_str())
    }
}

/// Where the function's credentials are.
pub enum CredentialsFrom {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
    Environment(Credentials),
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (SnapStart), with its token
    /// from `AWS_CONTAINER_AUTHORIZATION_TOKEN` or the file
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` names.
    Container(ContainerEndpoint),
}

/// The parts of Lambda's environment a fetcher reads.
pub struct Environment {
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: String,
    /// Where the credentials are.
    pub credentials: CredentialsFrom,
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
        Self::from_lookup(var)
    }

    /// [`Environment::read`], passing over an endpoint variable that names
    /// `own` (the extension's own listener: the function's SDK is aimed at
    /// sidekey, which must not call itself) as if it were unset.
    pub fn read_excluding(own: Option<SocketAddr>) -> Result<Self, SetupError> {
        Self::from_lookup_excluding(var, own)
    }

    /// Read it through `lookup` (the process environment, or a map in
    /// tests); a blank variable counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SetupError> {
        Self::from_lookup_excluding(lookup, None)
    }

    /// [`Environment::from_lookup`], passing over endpoints that name `own`.
    pub fn from_lookup_excluding(
        lookup: impl Fn(&str) -> Option<String>,
        own: Option<SocketAddr>,
    ) -> Result<Self, SetupError> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or(SetupError::NoRegion)?;
        let endpoint = |name: &'static str| -> Result<Option<String>, SetupError> {
            let Some(url) = var(name) else {
                return Ok(None);
            };
            let url = endpoint_url(name, url)?;
            if own.is_some_and(|own| names_listener(&url, own)) {
                tracing::info!(
                    variable = name,
                    "names sidekey's own listener (the function's SDK reads through \
                     sidekey): sidekey reads AWS as if it were unset"
                );
                return Ok(None);
            }
            Ok(Some(url))
        };
        let general = endpoint("AWS_ENDPOINT_URL")?;
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) => CredentialsFrom::Environment(Credentials::new(
                id,
                Zeroizing::new(secret),
                var("AWS_SESSION_TOKEN").map(Zeroizing::new),
            )),
            _ => {
                let uri = var("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .ok_or(SetupError::NoCredentials)?
                    .parse()
                    .map_err(|_| SetupError::BadEndpoint("AWS_CONTAINER_CREDENTIALS_FULL_URI"))?;
                CredentialsFrom::Container(ContainerEndpoint::new(
                    uri,
                    var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Zeroizing::new),
                    var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(Into::into),
                ))
            }
        };
        Ok(Self {
            region,
            credentials,
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

/// Whether `url` names the listener at `own`: a loopback host (or the
/// unspecified address) and its port.
fn names_listener(url: &str, own: SocketAddr) -> bool {
    let Some(uri) = endpoint_uri(url) else {
        return false;
    };
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    loopback && port == own.port()
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

/// A variable of the process environment, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_regional_unless_overridden() {
        let e = Endpoint::new(Service::SecretsManager, "eu-west-1", None, false).unwrap();
        assert_eq!(e.url, "https://secretsmanager.eu-west-1.amazonaws.com/");
        let e = Endpoint::new(Service::Ssm, "cn-north-1", None, false).unwrap();
        assert_eq!(e.url, "https://ssm.cn-north-1.amazonaws.com.cn/");
        let e = Endpoint::new(Service::Ssm, "us-east-1", None, true).unwrap();
        assert_eq!(e.url, "https://ssm-fips.us-east-1.amazonaws.com/");
        let e = Endpoint::new(
            Service::Ssm,
            "eu-west-1",
            Some("http://127.0.0.1:5000"),
            false,
        )
        .unwrap();
        assert_eq!(
            (e.url.to_string().as_str(), e.region.as_str(), e.host()),
            ("http://127.0.0.1:5000/", "eu-west-1", "127.0.0.1:5000")
        );
        assert!(Endpoint::new(Service::Ssm, "eu west", None, false).is_err());
        assert!(Endpoint::new(Service::Ssm, "eu-west-1", Some("localhost:4566"), false).is_err());
    }

    #[test]
    fn an_endpoint_naming_sidekey_itself_is_passed_over() {
        let own: SocketAddr = "127.0.0.1:2773".parse().unwrap();
        let env = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |name: &str| {
                let found = pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone());
                found.or_else(|| match name {
                    "AWS_REGION" => Some("eu-west-1".into()),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("x".into()),
                    _ => None,
                })
            }
        };
        let e = Environment::from_lookup_excluding(
            env(&[
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2773"),
                ("AWS_ENDPOINT_URL_SSM", "http://localhost:2773/"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ]),
            Some(own),
        )
        .unwrap();
        // Both service variables name sidekey: the general one applies.
        assert_eq!(
            e.secrets_manager_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        assert_eq!(e.ssm_url.as_deref(), Some("http://127.0.0.1:4566"));
        let e = Environment::from_lookup_excluding(
            env(&[
                ("AWS_ENDPOINT_URL", "http://[::1]:2773"),
                ("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:2774"),
            ]),
            Some(own),
        )
        .unwrap();
        assert_eq!(e.secrets_manager_url, None, "the regional endpoint then");
        assert_eq!(
            e.ssm_url.as_deref(),
            Some("http://127.0.0.1:2774"),
            "another port"
        );
    }

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
