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
    /// A boolean variable that is neither `true` nor `false`.
    #[error("{0} is not true or false")]
    BadFlag(&'static str),
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

/// Which of a service's endpoints: the FIPS one, the dual-stack (IPv4
/// and IPv6) one, both or neither (`AWS_USE_FIPS_ENDPOINT`,
/// `AWS_USE_DUALSTACK_ENDPOINT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// FIPS 140-validated endpoints.
    pub fips: bool,
    /// Dual-stack endpoints.
    pub dual_stack: bool,
}

/// A partition's domain names: the usual one and the dual-stack one.
struct Partition {
    name: &'static str,
    dns: &'static str,
    dual_stack_dns: &'static str,
}

/// The partitions, by their regions' prefixes (botocore's `partitions.json`;
/// the commercial partition last, for every other region).
const PARTITIONS: &[(&str, Partition)] = &[
    (
        "cn-",
        Partition {
            name: "aws-cn",
            dns: "amazonaws.com.cn",
            dual_stack_dns: "api.amazonwebservices.com.cn",
        },
    ),
    (
        "us-gov-",
        Partition {
            name: "aws-us-gov",
            dns: "amazonaws.com",
            dual_stack_dns: "api.aws",
        },
    ),
    (
        "us-isob-",
        Partition {
            name: "aws-iso-b",
            dns: "sc2s.sgov.gov",
            dual_stack_dns: "api.aws.scloud",
        },
    ),
    (
        "us-isof-",
        Partition {
            name: "aws-iso-f",
            dns: "csp.hci.ic.gov",
            dual_stack_dns: "api.aws.hci.ic.gov",
        },
    ),
    (
        "us-iso-",
        Partition {
            name: "aws-iso",
            dns: "c2s.ic.gov",
            dual_stack_dns: "api.aws.ic.gov",
        },
    ),
    (
        "eu-isoe-",
        Partition {
            name: "aws-iso-e",
            dns: "cloud.adc-e.uk",
            dual_stack_dns: "api.cloud-aws.adc-e.uk",
        },
    ),
    (
        "eusc-",
        Partition {
            name: "aws-eusc",
            dns: "amazonaws.eu",
            dual_stack_dns: "api.amazonwebservices.eu",
        },
    ),
    (
        "",
        Partition {
            name: "aws",
            dns: "amazonaws.com",
            dual_stack_dns: "api.aws",
        },
    ),
];

/// The host name of `service` in `region`, as the SDKs' endpoint rules
/// resolve it (checked against the rule sets of Secrets Manager, SSM and
/// STS; `endpoints_match_the_sdks_rule_sets` below), with their
/// exceptions:
///
/// * Secrets Manager's dual-stack endpoint is its usual host in the aws,
///   aws-cn and aws-us-gov partitions (its FIPS and dual-stack one too,
///   but in aws-cn, `api.amazonwebservices.com.cn`);
/// * SSM's and STS's FIPS endpoint in aws-us-gov is their usual host
///   (GovCloud's endpoints are FIPS already).
pub fn host(service: Service, region: &str, variant: Variant) -> String {
    let partition = PARTITIONS
        .iter()
        .find(|(prefix, _)| region.starts_with(prefix))
        .map_or(&PARTITIONS[PARTITIONS.len() - 1].1, |(_, p)| p);
    let name = service.endpoint_prefix();
    let main = matches!(partition.name, "aws" | "aws-cn" | "aws-us-gov");
    let (fips, dns) = match (service, variant.fips, variant.dual_stack) {
        (_, false, false) => (false, partition.dns),
        (Service::SecretsManager, true, false) => (true, partition.dns),
        (Service::SecretsManager, false, true) if main => (false, partition.dns),
        (Service::SecretsManager, true, true) if main && partition.name != "aws-cn" => {
            (true, partition.dns)
        }
        (Service::Ssm | Service::Sts, true, false) if partition.name == "aws-us-gov" => {
            (false, partition.dns)
        }
        (_, fips, false) => (fips, partition.dns),
        (_, fips, true) => (fips, partition.dual_stack_dns),
    };
    let fips = if fips { "-fips" } else { "" };
    format!("{name}{fips}.{region}.{dns}")
}

impl Endpoint {
    /// `url` if given (an override: an emulator, a VPC endpoint), else
    /// `service`'s endpoint in `region` ([`host`]) for `variant`.
    pub fn new(
        service: Service,
        region: &str,
        url: Option<&str>,
        variant: Variant,
    ) -> Result<Self, SetupError> {
        let url = match url {
            Some(u) => endpoint_uri(u).ok_or(SetupError::BadEndpoint("the endpoint"))?,
            None => {
                let valid = !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !valid {
                    return Err(SetupError::BadEndpoint("AWS_REGION"));
                }
                format!("https://{}/", host(service, region, variant))
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
    /// `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`.
    pub sts_url: Option<String>,
    /// `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT`.
    pub variant: Variant,
    /// `AWS_LAMBDA_FUNCTION_NAME`: what sidekey names its role sessions.
    pub function: Option<String>,
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
        let flag = |name: &'static str| -> Result<bool, SetupError> {
            match var(name).map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("false") => Ok(false),
                Some("true") => Ok(true),
                Some(_) => Err(SetupError::BadFlag(name)),
            }
        };
        Ok(Self {
            region,
            credentials,
            secrets_manager_url: endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER")?
                .or_else(|| general.clone()),
            ssm_url: endpoint("AWS_ENDPOINT_URL_SSM")?.or_else(|| general.clone()),
            sts_url: endpoint("AWS_ENDPOINT_URL_STS")?.or(general),
            variant: Variant {
                fips: flag("AWS_USE_FIPS_ENDPOINT")?,
                dual_stack: flag("AWS_USE_DUALSTACK_ENDPOINT")?,
            },
            function: var("AWS_LAMBDA_FUNCTION_NAME"),
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
        let plain = Variant::default();
        let e = Endpoint::new(Service::SecretsManager, "eu-west-1", None, plain).unwrap();
        assert_eq!(e.url, "https://secretsmanager.eu-west-1.amazonaws.com/");
        let e = Endpoint::new(Service::Ssm, "cn-north-1", None, plain).unwrap();
        assert_eq!(e.url, "https://ssm.cn-north-1.amazonaws.com.cn/");
        let fips = Variant {
            fips: true,
            dual_stack: false,
        };
        let e = Endpoint::new(Service::Ssm, "us-east-1", None, fips).unwrap();
        assert_eq!(e.url, "https://ssm-fips.us-east-1.amazonaws.com/");
        let url = Some("http://127.0.0.1:5000");
        let e = Endpoint::new(Service::Ssm, "eu-west-1", url, plain).unwrap();
        assert_eq!(
            (e.url.to_string().as_str(), e.region.as_str(), e.host()),
            ("http://127.0.0.1:5000/", "eu-west-1", "127.0.0.1:5000")
        );
        assert!(Endpoint::new(Service::Ssm, "eu west", None, plain).is_err());
        assert!(Endpoint::new(Service::Ssm, "eu-west-1", Some("localhost:4566"), plain).is_err());
    }

    #[test]
    fn endpoints_match_the_sdks_rule_sets() {
        // (service, region, fips, dual-stack, host): the SDKs' endpoint rule
        // sets for secretsmanager 2017-10-17, ssm 2014-11-06 and sts
        // 2011-06-15 (botocore; aws-sdk-rust's generated endpoint tests).
        use Service::{SecretsManager as Sm, Ssm, Sts};
        let table = [
            (
                Sm,
                "us-east-1",
                false,
                false,
                "secretsmanager.us-east-1.amazonaws.com",
            ),
            (
                Sm,
                "us-east-1",
                true,
                false,
                "secretsmanager-fips.us-east-1.amazonaws.com",
            ),
            (
                Sm,
                "us-east-1",
                false,
                true,
                "secretsmanager.us-east-1.amazonaws.com",
            ),
            (
                Sm,
                "us-east-1",
                true,
                true,
                "secretsmanager-fips.us-east-1.amazonaws.com",
            ),
            (
                Sm,
                "cn-north-1",
                false,
                false,
                "secretsmanager.cn-north-1.amazonaws.com.cn",
            ),
            (
                Sm,
                "cn-north-1",
                false,
                true,
                "secretsmanager.cn-north-1.amazonaws.com.cn",
            ),
            (
                Sm,
                "cn-north-1",
                true,
                true,
                "secretsmanager-fips.cn-north-1.api.amazonwebservices.com.cn",
            ),
            (
                Sm,
                "us-gov-east-1",
                true,
                false,
                "secretsmanager-fips.us-gov-east-1.amazonaws.com",
            ),
            (
                Sm,
                "us-gov-east-1",
                true,
                true,
                "secretsmanager-fips.us-gov-east-1.amazonaws.com",
            ),
            (
                Sm,
                "us-iso-east-1",
                false,
                false,
                "secretsmanager.us-iso-east-1.c2s.ic.gov",
            ),
            (
                Sm,
                "us-isob-east-1",
                true,
                false,
                "secretsmanager-fips.us-isob-east-1.sc2s.sgov.gov",
            ),
            (Ssm, "us-east-1", false, true, "ssm.us-east-1.api.aws"),
            (Ssm, "us-east-1", true, true, "ssm-fips.us-east-1.api.aws"),
            (
                Ssm,
                "cn-north-1",
                false,
                true,
                "ssm.cn-north-1.api.amazonwebservices.com.cn",
            ),
            (
                Ssm,
                "us-gov-west-1",
                true,
                false,
                "ssm.us-gov-west-1.amazonaws.com",
            ),
            (
                Ssm,
                "us-gov-west-1",
                true,
                true,
                "ssm-fips.us-gov-west-1.api.aws",
            ),
            (
                Ssm,
                "eu-west-1",
                true,
                false,
                "ssm-fips.eu-west-1.amazonaws.com",
            ),
            (
                Sts,
                "eu-west-1",
                false,
                false,
                "sts.eu-west-1.amazonaws.com",
            ),
            (Sts, "us-east-1", false, true, "sts.us-east-1.api.aws"),
            (
                Sts,
                "cn-north-1",
                false,
                false,
                "sts.cn-north-1.amazonaws.com.cn",
            ),
            (
                Sts,
                "us-gov-west-1",
                true,
                false,
                "sts.us-gov-west-1.amazonaws.com",
            ),
            (Sts, "us-east-1", true, true, "sts-fips.us-east-1.api.aws"),
        ];
        for (service, region, fips, dual_stack, expected) in table {
            let got = host(service, region, Variant { fips, dual_stack });
            assert_eq!(
                got, expected,
                "{service:?} {region} fips={fips} dual-stack={dual_stack}"
            );
        }
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
