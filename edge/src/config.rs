//! The edge function's configuration: a JSON file bundled in the zip.
//!
//! Lambda@Edge functions have no environment variables, so what the regional
//! function reads from its environment is shipped with the code instead and
//! read once, at import. The file is parsed into [`RawConfig`] (the JSON as
//! written) and checked into [`EdgeConfig`] (typed, validated): nothing below
//! the module's entry point ever sees a string it has to parse again.

use std::time::Duration;

use http::Uri;
use serde::Deserialize;

/// Why the bundled configuration was refused. Names the field, never a value
/// that could be a secret (the file holds none, but be strict anyway).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Not JSON, or fields of the wrong type or unknown.
    #[error("config is not valid: {0}")]
    Syntax(String),
    /// A field has a value we cannot use.
    #[error("config field {field}: {reason}")]
    Invalid {
        /// The JSON field name.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// `config.json` as written. Unknown fields are refused, so a typo is an
/// init error rather than a silently ignored setting.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Secret name or ARN (the primary region's ARN if an ARN).
    pub secret_id: String,
    /// JSON field holding the key; `null` uses the whole secret string.
    #[serde(default = "default_field")]
    pub field: Option<String>,
    /// The external API the key authorizes (`http` or `https`).
    pub api_url: String,
    /// The secret's primary region.
    pub primary_region: String,
    /// Regions the secret is replicated to.
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// How long the key is cached, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Budget of one upstream call (Secrets Manager or the API), in ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// One Secrets Manager endpoint for every region instead of the
    /// regional AWS endpoints (a VPC endpoint, or an emulator in tests).
    #[serde(default)]
    pub secrets_manager_endpoint: Option<String>,
}

fn default_field() -> Option<String> {
    Some("apikey".to_owned())
}

fn default_ttl() -> u64 {
    300
}

/// Two tries (replica, then primary) and the API call must fit in the
/// viewer-request trigger's 5 s budget.
fn default_timeout() -> u64 {
    1500
}

/// The viewer-request trigger's time limit, in milliseconds.
const TRIGGER_LIMIT_MS: u64 = 5000;

/// The checked configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Secret name or ARN.
    pub secret_id: String,
    /// JSON field holding the key, or `None` for the whole string.
    pub field: Option<String>,
    /// The API endpoint.
    pub api_url: Uri,
    /// The secret's primary region.
    pub primary_region: String,
    /// Regions holding a replica.
    pub replica_regions: Vec<String>,
    /// Cache TTL of the key.
    pub ttl: Duration,
    /// Budget of one upstream call.
    pub timeout: Duration,
    /// Endpoint override for Secrets Manager.
    pub secrets_manager_endpoint: Option<Uri>,
}

impl EdgeConfig {
    /// Parse and check `config.json`.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| {
            // serde's message names fields and types; the file holds no
            // secret, but give only the position and category anyway.
            ConfigError::Syntax(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        Self::try_from(raw)
    }

    /// The regions to read the secret from, in order, for a function running
    /// in `own_region` (`AWS_REGION`): the local replica if there is one,
    /// then the primary; otherwise the primary alone.
    pub fn read_regions(&self, own_region: Option<&str>) -> Vec<String> {
        match own_region {
            Some(own)
                if own != self.primary_region && self.replica_regions.iter().any(|r| r == own) =>
            {
                vec![own.to_owned(), self.primary_region.clone()]
            }
            _ => vec![self.primary_region.clone()],
        }
    }
}

impl TryFrom<RawConfig> for EdgeConfig {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, ConfigError> {
        let invalid = |field, reason| ConfigError::Invalid { field, reason };
        if raw.secret_id.trim().is_empty() {
            return Err(invalid("secret_id", "must not be empty"));
        }
        if raw.field.as_deref().is_some_and(str::is_empty) {
            return Err(invalid(
                "field",
                "must not be empty (use null for the whole secret)",
            ));
        }
        let api_url = http_url(&raw.api_url).ok_or(invalid(
            "api_url",
            "must be an absolute https:// URL (http:// only to a loopback host)",
        ))?;
        if !is_region(&raw.primary_region) {
            return Err(invalid("primary_region", "is not a region name"));
        }
        if !raw.replica_regions.iter().all(|r| is_region(r)) {
            return Err(invalid(
                "replica_regions",
                "holds a value that is not a region name",
            ));
        }
        // Each call gets `timeout_ms`: the secret's reads (a replica, then
        // the primary, when replicas are configured) and the API call, one
        // after the other, all inside the trigger's 5 s. Issue 26: with one
        // 2 s deadline around both reads, a hung replica left the primary
        // 0.5 s, and from 2000 ms on the primary was never tried.
        let calls = if raw.replica_regions.is_empty() { 2 } else { 3 };
        if raw.timeout_ms == 0 || raw.timeout_ms * calls >= TRIGGER_LIMIT_MS {
            return Err(invalid(
                "timeout_ms",
                if calls == 3 {
                    "must be between 1 and 1666: a replica read, the primary's and the API call must fit the trigger's 5 s"
                } else {
                    "must be between 1 and 2499: the secret's read and the API call must fit the trigger's 5 s"
                },
            ));
        }
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&raw.ttl_seconds) {
            return Err(invalid(
                "ttl_seconds",
                "must be between 1 and 86400 (a day): 0 would read the key on every request",
            ));
        }
        let secrets_manager_endpoint = match raw.secrets_manager_endpoint.as_deref() {
            None => None,
            Some(s) => Some(http_url(s).ok_or(invalid(
                "secrets_manager_endpoint",
                "must be an absolute https:// URL (http:// only to a loopback host)",
            ))?),
        };
        Ok(Self {
            secret_id: raw.secret_id,
            field: raw.field,
            api_url,
            primary_region: raw.primary_region,
            replica_regions: raw.replica_regions,
            ttl: Duration::from_secs(raw.ttl_seconds),
            timeout: Duration::from_millis(raw.timeout_ms),
            secrets_manager_endpoint,
        })
    }
}

/// Shortest and longest cache TTL of the key. Zero would make every viewer
/// request a Secrets Manager call; past a day a rotated key is missed for
/// too long (and a huge value must not overflow the cache's instants: the
/// module is built with `panic=abort`, which would kill the Python process).
const MIN_TTL_SECS: u64 = 1;
const MAX_TTL_SECS: u64 = 86_400;

/// An absolute `https://` URL, or `http://` to a loopback host (a stand-in
/// in tests): the API key travels in a header, and the Secrets Manager
/// request is signed with the function's credentials, so neither may cross
/// a network in clear.
fn http_url(s: &str) -> Option<Uri> {
    let uri: Uri = s.parse().ok()?;
    let host = uri.host().filter(|h| !h.is_empty())?;
    match uri.scheme_str()? {
        "https" => Some(uri),
        "http" if is_loopback(host) => Some(uri),
        _ => None,
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `us-east-1`, `ap-southeast-4`, `us-gov-west-1`: lowercase words and
/// digits joined by dashes. Region names go into a host name, so nothing
/// else is accepted.
fn is_region(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').count() >= 3
        && s.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"secret_id":"edge/api","api_url":"https://api.example.com/v1/check","primary_region":"us-east-1"}"#;

    #[test]
    fn defaults() {
        let c = EdgeConfig::from_json(MINIMAL).unwrap();
        assert_eq!(c.field.as_deref(), Some("apikey"));
        assert_eq!(c.ttl, Duration::from_secs(300));
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.api_url.host(), Some("api.example.com"));
        assert!(c.secrets_manager_endpoint.is_none());
        assert_eq!(c.read_regions(Some("eu-west-1")), ["us-east-1"]);
    }

    #[test]
    fn replica_first_when_local() {
        let c = EdgeConfig::from_json(
            r#"{"secret_id":"s","api_url":"http://127.0.0.1:9/","primary_region":"us-east-1",
                "replica_regions":["eu-west-1","ap-south-1"],"field":null}"#,
        )
        .unwrap();
        assert_eq!(c.field, None);
        assert_eq!(
            c.read_regions(Some("eu-west-1")),
            ["eu-west-1", "us-east-1"]
        );
        assert_eq!(c.read_regions(Some("us-east-1")), ["us-east-1"]);
        assert_eq!(c.read_regions(Some("sa-east-1")), ["us-east-1"]);
        assert_eq!(c.read_regions(None), ["us-east-1"]);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (
                r#"{"secret_id":"s","api_url":"ftp://x/","primary_region":"us-east-1"}"#,
                "api_url",
            ),
            (
                r#"{"secret_id":"s","api_url":"/rel","primary_region":"us-east-1"}"#,
                "api_url",
            ),
            (
                r#"{"secret_id":" ","api_url":"http://x/","primary_region":"us-east-1"}"#,
                "secret_id",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"evil.com/"}"#,
                "primary_region",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","replica_regions":["EU"]}"#,
                "replica_regions",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","timeout_ms":2500}"#,
                "timeout_ms",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","replica_regions":["eu-west-1"],"timeout_ms":1700}"#,
                "timeout_ms",
            ),
            // The key and the signed request never travel in clear.
            (
                r#"{"secret_id":"s","api_url":"http://api.example.com/","primary_region":"us-east-1"}"#,
                "api_url",
            ),
            (
                r#"{"secret_id":"s","api_url":"http://10.0.0.1/","primary_region":"us-east-1"}"#,
                "api_url",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","secrets_manager_endpoint":"http://vpce.example.com/"}"#,
                "secrets_manager_endpoint",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","ttl_seconds":0}"#,
                "ttl_seconds",
            ),
            (
                r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","ttl_seconds":18446744073709551615}"#,
                "ttl_seconds",
            ),
        ];
        for (text, field) in cases {
            let e = EdgeConfig::from_json(text).unwrap_err();
            assert!(e.to_string().contains(field), "{text}: {e}");
        }
        let e = EdgeConfig::from_json(
            r#"{"secret_id":"s","api_url":"https://x/","primary_region":"us-east-1","ttl":1}"#,
        )
        .unwrap_err();
        assert!(matches!(e, ConfigError::Syntax(_)));
        for loopback in [
            "http://127.0.0.1:9/",
            "http://localhost/",
            "http://[::1]:8080/x",
        ] {
            let text = format!(
                r#"{{"secret_id":"s","api_url":"{loopback}","primary_region":"us-east-1"}}"#
            );
            assert!(EdgeConfig::from_json(&text).is_ok(), "{loopback}");
        }
    }
}
