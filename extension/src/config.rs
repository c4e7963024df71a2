//! Configuration, read once from the environment into a typed [`Config`].
//!
//! The official extension's variable names and defaults come first, then
//! ours (`SIDEKEY_*`). A value that does not parse is an error naming the
//! variable — never a silent fallback to the default.

use std::fmt;
use std::time::Duration;

use sidekey_cache::{CacheConfig, Timeouts};
use zeroize::Zeroizing;

/// Everything the extension needs to know, parsed and validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// Loopback port of the HTTP API.
    pub port: u16,
    /// Cache policy (TTLs, bounds, stale, backoff).
    pub cache: CacheConfig,
    /// Per-service AWS operation timeouts.
    pub timeouts: Timeouts,
    /// Idle pooled connections kept per AWS endpoint (the official
    /// `PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Concurrent client connections the HTTP API accepts; more get 429.
    pub max_client_connections: usize,
    /// Log level; `None` silences logging.
    pub log_level: Option<tracing::Level>,
    /// Secret ids loaded during INIT.
    pub prefetch: Vec<String>,
    /// The token callers must present.
    pub token: Token,
}

/// The caller token (`AWS_SESSION_TOKEN`). Wiped on drop, never printed.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wrap a token value.
    pub fn new(value: String) -> Self {
        Token(Zeroizing::new(value))
    }

    /// The token bytes, for the constant-time comparison.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// A variable that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub variable: &'static str,
    /// What is wrong with it (quotes the value; no variable read here holds a secret except the token, which is never quoted).
    pub reason: String,
}

/// Variable names, official first.
pub mod vars {
    #![allow(missing_docs)]
    pub const CACHE_ENABLED: &str = "PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED";
    pub const CACHE_SIZE: &str = "PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE";
    pub const HTTP_PORT: &str = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT";
    pub const MAX_CONNECTIONS: &str = "PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS";
    pub const LOG_LEVEL: &str = "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL";
    pub const SM_TTL: &str = "SECRETS_MANAGER_TTL";
    pub const SM_TIMEOUT: &str = "SECRETS_MANAGER_TIMEOUT_MILLIS";
    pub const SSM_TTL: &str = "SSM_PARAMETER_STORE_TTL";
    pub const SSM_TIMEOUT: &str = "SSM_PARAMETER_STORE_TIMEOUT_MILLIS";
    pub const PREFETCH: &str = "SIDEKEY_PREFETCH";
    pub const MAX_STALE: &str = "SIDEKEY_MAX_STALE";
    pub const MAX_CLIENT_CONNECTIONS: &str = "SIDEKEY_MAX_CLIENT_CONNECTIONS";
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const CONTAINER_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
}

/// Longest TTL we accept: a day. (The official extension caps at 300 s.)
const MAX_TTL_SECS: u64 = 86_400;
/// Most entries we accept for the cache size.
const MAX_CACHE_SIZE: usize = 100_000;

impl Config {
    /// Read the process environment. Called once, from `main`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let enabled = match get(vars::CACHE_ENABLED) {
            None => true,
            Some(v) => parse_bool(vars::CACHE_ENABLED, &v)?,
        };
        let size = parse_num(
            vars::CACHE_SIZE,
            get(vars::CACHE_SIZE),
            1000,
            0,
            MAX_CACHE_SIZE as u64,
        )? as usize;
        let port = parse_num(vars::HTTP_PORT, get(vars::HTTP_PORT), 2773, 1, 65535)? as u16;
        let max_connections = parse_num(
            vars::MAX_CONNECTIONS,
            get(vars::MAX_CONNECTIONS),
            3,
            1,
            1000,
        )? as usize;
        let max_client_connections = parse_num(
            vars::MAX_CLIENT_CONNECTIONS,
            get(vars::MAX_CLIENT_CONNECTIONS),
            128,
            1,
            10_000,
        )? as usize;
        let log_level = match get(vars::LOG_LEVEL) {
            None => Some(tracing::Level::INFO),
            Some(v) => parse_level(&v)?,
        };
        let sm_ttl = parse_num(vars::SM_TTL, get(vars::SM_TTL), 300, 0, MAX_TTL_SECS)?;
        let ssm_ttl = parse_num(vars::SSM_TTL, get(vars::SSM_TTL), 300, 0, MAX_TTL_SECS)?;
        let sm_timeout = parse_num(vars::SM_TIMEOUT, get(vars::SM_TIMEOUT), 0, 0, 600_000)?;
        let ssm_timeout = parse_num(vars::SSM_TIMEOUT, get(vars::SSM_TIMEOUT), 0, 0, 600_000)?;
        let defaults = CacheConfig::default();
        let max_stale = parse_num(
            vars::MAX_STALE,
            get(vars::MAX_STALE),
            defaults.max_stale.as_secs(),
            0,
            7 * MAX_TTL_SECS,
        )?;
        let prefetch = match get(vars::PREFETCH) {
            None => Vec::new(),
            Some(v) => parse_prefetch(&v)?,
        };
        let token = get(vars::SESSION_TOKEN)
            .or_else(|| get(vars::CONTAINER_TOKEN))
            .map(Token::new)
            .ok_or_else(|| ConfigError {
                variable: vars::SESSION_TOKEN,
                reason: format!(
                    "neither it nor {} is set: callers could not be authenticated",
                    vars::CONTAINER_TOKEN
                ),
            })?;

        // Caching off (the official switch, or a size of 0) means TTL 0.
        let caching = enabled && size > 0;
        let ttl = |secs| {
            if caching {
                Duration::from_secs(secs)
            } else {
                Duration::ZERO
            }
        };
        let millis = |ms| (ms > 0).then(|| Duration::from_millis(ms));
        Ok(Config {
            port,
            cache: CacheConfig {
                secret_ttl: ttl(sm_ttl),
                parameter_ttl: ttl(ssm_ttl),
                max_stale: Duration::from_secs(max_stale),
                max_entries: size.max(1),
                ..defaults
            },
            timeouts: Timeouts {
                secrets_manager: millis(sm_timeout),
                ssm: millis(ssm_timeout),
            },
            max_connections,
            max_client_connections,
            log_level,
            prefetch,
            token,
        })
    }
}

fn parse_bool(variable: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError {
            variable,
            reason: format!("{v:?} is not a boolean (true or false)"),
        }),
    }
}

fn parse_num(
    variable: &'static str,
    value: Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(v) = value else { return Ok(default) };
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            variable,
            reason: format!("{v:?} is not a whole number from {min} to {max}"),
        }),
    }
}

fn parse_level(v: &str) -> Result<Option<tracing::Level>, ConfigError> {
    Ok(Some(match v.to_ascii_lowercase().as_str() {
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "warn" | "warning" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        "none" => return Ok(None),
        _ => {
            return Err(ConfigError {
                variable: vars::LOG_LEVEL,
                reason: format!("{v:?} is not one of debug, info, warn, error, none"),
            })
        }
    }))
}

fn parse_prefetch(v: &str) -> Result<Vec<String>, ConfigError> {
    let mut ids = Vec::new();
    for id in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if let Err(reason) = crate::request::check_id(id) {
            return Err(ConfigError {
                variable: vars::PREFETCH,
                reason: format!("{id:?}: {reason}"),
            });
        }
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.entry(vars::SESSION_TOKEN.into())
            .or_insert_with(|| "tok".into());
        Config::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_official_extension() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 2773);
        assert_eq!(c.cache.secret_ttl, Duration::from_secs(300));
        assert_eq!(c.cache.parameter_ttl, Duration::from_secs(300));
        assert_eq!(c.cache.max_entries, 1000);
        assert_eq!(c.max_connections, 3);
        assert_eq!(c.log_level, Some(tracing::Level::INFO));
        assert_eq!(c.timeouts, Timeouts::default());
        assert!(c.prefetch.is_empty());
    }

    #[test]
    fn values_parse() {
        let c = config(&[
            (vars::HTTP_PORT, "8080"),
            (vars::SM_TTL, "3600"),
            (vars::SSM_TTL, "0"),
            (vars::SM_TIMEOUT, "250"),
            (vars::LOG_LEVEL, "NONE"),
            (vars::PREFETCH, " a, b/c ,,a"),
            (vars::MAX_STALE, "60"),
        ])
        .unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.cache.secret_ttl, Duration::from_secs(3600));
        assert_eq!(c.cache.parameter_ttl, Duration::ZERO);
        assert_eq!(c.timeouts.secrets_manager, Some(Duration::from_millis(250)));
        assert_eq!(c.log_level, None);
        assert_eq!(c.prefetch, ["a", "b/c"]);
        assert_eq!(c.cache.max_stale, Duration::from_secs(60));
    }

    #[test]
    fn cache_disabled_means_ttl_zero() {
        let c = config(&[(vars::CACHE_ENABLED, "FALSE")]).unwrap();
        assert!(c.cache.secret_ttl.is_zero() && c.cache.parameter_ttl.is_zero());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (vars::HTTP_PORT, "0"),
            (vars::HTTP_PORT, "70000"),
            (vars::HTTP_PORT, "abc"),
            (vars::CACHE_ENABLED, "maybe"),
            (vars::CACHE_SIZE, "-1"),
            (vars::SM_TTL, "1.5"),
            (vars::SSM_TIMEOUT, "soon"),
            (vars::LOG_LEVEL, "loud"),
            (vars::MAX_CONNECTIONS, "0"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn token_falls_back_to_container_token_and_is_required() {
        let env: HashMap<&str, &str> = [(vars::CONTAINER_TOKEN, "snap")].into();
        let c = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.token.as_bytes(), b"snap");
        assert!(!format!("{c:?}").contains("snap"));
        let err = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(err.variable, vars::SESSION_TOKEN);
    }
}
