//! Configuration, read once from the environment into a typed [`Config`].
//!
//! The official extension's variable names and defaults come first, then
//! ours (`SIDEKEY_*`). A value that does not parse is an error naming the
//! variable — never a silent fallback to the default. [`Env`] reads the
//! variables; [`Config::from_lookup`] says what each one means.

use std::ops::RangeInclusive;
use std::time::Duration;

use sidekey_aws::Timeouts;
use sidekey_cache::{CacheConfig, Kind, TreeLimits};

use crate::auth::Token;
use crate::ids;

/// Everything the extension needs to know, parsed and validated.
#[derive(Clone, Debug)]
pub struct Config {
    /// Loopback port of the HTTP API.
    pub port: u16,
    /// Cache policy (TTLs, bounds, stale, backoff, deadlines, upstream slots).
    pub cache: CacheConfig,
    /// Idle pooled connections kept per AWS endpoint, and upstream calls in
    /// flight at once (the official `PARAMETERS_SECRETS_EXTENSION_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Concurrent client connections the HTTP API accepts; more get 429.
    pub max_client_connections: usize,
    /// Log level; `None` silences logging.
    pub log_level: Option<tracing::Level>,
    /// Secret ids loaded during INIT.
    pub prefetch: Vec<String>,
    /// Parameter names loaded (decrypted) during INIT, 10 per `GetParameters`.
    pub prefetch_parameters: Vec<String>,
    /// Tags (a key, and a value if given) whose secrets are loaded during
    /// INIT (`BatchGetSecretValue` with filters).
    pub prefetch_tags: Vec<(String, Option<String>)>,
    /// Bounds of one parameter tree (`get-by-path`).
    pub trees: TreeLimits,
    /// Replica regions a cold read of a secret falls back to, in order.
    pub fallback_regions: Vec<String>,
    /// Most roles read as (`roleArn`) at once; the least recently used
    /// goes past it.
    pub max_roles: usize,
    /// The role ARN patterns `roleArn` may name (`*` in the role name);
    /// empty: any role the function may assume.
    pub allowed_roles: Vec<String>,
    /// How Lambda runs this environment (on-demand or Managed Instances).
    pub lambda: Lambda,
    /// Metrics as CloudWatch embedded-metric-format lines on stdout
    /// (`SIDEKEY_METRICS=emf`), or none.
    pub emf: Option<EmfConfig>,
    /// The token callers must present.
    pub token: Token,
}

/// How Lambda runs the environment, from the variables it sets.
///
/// Lambda Managed Instances (LMI) set `AWS_LAMBDA_INITIALIZATION_TYPE` to
/// `lambda-managed-instances` and `AWS_LAMBDA_MAX_CONCURRENCY` to the
/// invocations one environment runs at once ("Understanding the Lambda
/// Managed Instances execution environment", Lambda developer guide). Such
/// an environment is never frozen, and extensions there may register for
/// SHUTDOWN only. Either variable is taken as the sign: both are Lambda's,
/// set only there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lambda {
    /// Never frozen between invocations: refreshes and metrics run on
    /// sidekey's own timers, and no INVOKE event is asked for.
    pub never_frozen: bool,
    /// Invocations running at once in this environment (1 on-demand).
    pub max_concurrency: u32,
}

/// Where EMF lines go and what they carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmfConfig {
    /// CloudWatch namespace (`SIDEKEY_METRICS_NAMESPACE`, default `sidekey`).
    pub namespace: String,
    /// The `FunctionName` dimension (`AWS_LAMBDA_FUNCTION_NAME`), if set.
    pub function_name: Option<String>,
}

impl Config {
    /// The AWS SDK's per-service deadlines: the cache's, so the SDK gives up
    /// on an attempt in time to retry within the read's deadline.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            secrets_manager: self.cache.deadline(Kind::Secret),
            ssm: self.cache.deadline(Kind::Parameter),
        }
    }
}

/// A variable that could not be used, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable's name.
    pub variable: &'static str,
    /// What is wrong with it. Quotes the value: no variable read here holds
    /// a secret but the token, which is never quoted.
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
    pub const PREFETCH_PARAMETERS: &str = "SIDEKEY_PREFETCH_PARAMETERS";
    pub const MAX_STALE: &str = "SIDEKEY_MAX_STALE";
    pub const MAX_CLIENT_CONNECTIONS: &str = "SIDEKEY_MAX_CLIENT_CONNECTIONS";
    pub const TREE_MAX_PARAMETERS: &str = "SIDEKEY_TREE_MAX_PARAMETERS";
    pub const TREE_MAX_BYTES: &str = "SIDEKEY_TREE_MAX_BYTES";
    pub const MAX_ROLES: &str = "SIDEKEY_MAX_ROLES";
    pub const VERSION_CHECK: &str = "SIDEKEY_VERSION_CHECK";
    pub const PREFETCH_TAGS: &str = "SIDEKEY_PREFETCH_TAGS";
    pub const FALLBACK_REGIONS: &str = "SIDEKEY_FALLBACK_REGIONS";
    pub const ALLOWED_ROLE_ARNS: &str = "SIDEKEY_ALLOWED_ROLE_ARNS";
    pub const METRICS: &str = "SIDEKEY_METRICS";
    pub const METRICS_NAMESPACE: &str = "SIDEKEY_METRICS_NAMESPACE";
    pub const INITIALIZATION_TYPE: &str = "AWS_LAMBDA_INITIALIZATION_TYPE";
    pub const MAX_CONCURRENCY: &str = "AWS_LAMBDA_MAX_CONCURRENCY";
    pub const FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    pub const CONTAINER_TOKEN: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN";
}

/// Longest TTL we accept: a day. (The official extension caps at 300 s.)
const MAX_TTL_SECS: u64 = 86_400;
/// Most entries we accept for the cache size.
const MAX_CACHE_SIZE: u64 = 100_000;
/// Most parameters per tree we accept: 1,000 pages of `GetParametersByPath`
/// would not fit in any read deadline.
const MAX_TREE_PARAMETERS: u64 = 10_000;
/// Most bytes per tree we accept: a quarter of the cache's byte bound.
const MAX_TREE_BYTES: u64 = 8 * 1024 * 1024;
/// Most invocations at once Lambda runs in one Managed Instances
/// environment (`PerExecutionEnvironmentMaxConcurrency`: 1 to 1,600).
const MAX_LAMBDA_CONCURRENCY: u32 = 1600;
/// Most upstream calls in flight at once derived from the concurrency.
const MAX_DERIVED_UPSTREAM: u64 = 64;
/// Longest read deadline we accept: a Lambda function runs 15 minutes at most.
const MAX_TIMEOUT_MILLIS: u64 = 900_000;

/// The environment, read one variable at a time through a lookup (the
/// process environment, or a map in tests). Blank counts as unset; every
/// error names its variable.
struct Env<G> {
    get: G,
}

impl<G: Fn(&str) -> Option<String>> Env<G> {
    fn raw(&self, variable: &'static str) -> Option<String> {
        (self.get)(variable)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn number(
        &self,
        variable: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let Some(v) = self.raw(variable) else {
            return Ok(default);
        };
        match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError {
                variable,
                reason: format!(
                    "{v:?} is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            }),
        }
    }

    fn flag(&self, variable: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.raw(variable) else {
            return Ok(default);
        };
        match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError {
                variable,
                reason: format!("{v:?} is not a boolean (true or false)"),
            }),
        }
    }

    fn level(&self, variable: &'static str) -> Result<Option<tracing::Level>, ConfigError> {
        let Some(v) = self.raw(variable) else {
            return Ok(Some(tracing::Level::INFO));
        };
        Ok(Some(match v.to_ascii_lowercase().as_str() {
            "debug" => tracing::Level::DEBUG,
            "info" => tracing::Level::INFO,
            "warn" | "warning" => tracing::Level::WARN,
            "error" => tracing::Level::ERROR,
            "none" => return Ok(None),
            _ => {
                return Err(ConfigError {
                    variable,
                    reason: format!("{v:?} is not one of debug, info, warn, error, none"),
                })
            }
        }))
    }

    /// How Lambda runs the environment. Lambda's own variables: one that
    /// does not parse is ignored rather than failing the INIT, which under
    /// Managed Instances would take every worker's environment down.
    fn lambda(&self) -> Lambda {
        let managed = self
            .raw(vars::INITIALIZATION_TYPE)
            .is_some_and(|t| t == "lambda-managed-instances");
        let concurrency = self
            .raw(vars::MAX_CONCURRENCY)
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n >= 1);
        Lambda {
            never_frozen: managed || concurrency.is_some(),
            max_concurrency: concurrency.unwrap_or(1).min(MAX_LAMBDA_CONCURRENCY),
        }
    }

    /// `SIDEKEY_METRICS` (`off` or `emf`) and the namespace.
    fn emf(&self) -> Result<Option<EmfConfig>, ConfigError> {
        match self.raw(vars::METRICS).map(|v| v.to_ascii_lowercase()) {
            None => return Ok(None),
            Some(v) if v == "off" => return Ok(None),
            Some(v) if v == "emf" => {}
            Some(v) => {
                return Err(ConfigError {
                    variable: vars::METRICS,
                    reason: format!("{v:?} is not emf or off"),
                })
            }
        }
        let namespace = self
            .raw(vars::METRICS_NAMESPACE)
            .unwrap_or_else(|| "sidekey".to_owned());
        // CloudWatch's rules for a namespace, as the EMF libraries check
        // them: up to 255 of these characters, and not AWS's own prefix.
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._#:/- ".contains(c);
        if namespace.len() > 255 || !namespace.chars().all(allowed) || namespace.starts_with("AWS/")
        {
            return Err(ConfigError {
                variable: vars::METRICS_NAMESPACE,
                reason: format!(
                    "{namespace:?} is not a CloudWatch namespace (up to 255 of \
                     A-Z a-z 0-9 . _ # : / - and space, not starting with AWS/)"
                ),
            });
        }
        let function_name = self.raw(vars::FUNCTION_NAME);
        Ok(Some(EmfConfig {
            namespace,
            function_name,
        }))
    }

    /// A comma-separated list of ids, each checked, duplicates dropped.
    fn ids(&self, variable: &'static str) -> Result<Vec<String>, ConfigError> {
        let mut ids: Vec<String> = Vec::new();
        let raw = self.raw(variable).unwrap_or_default();
        for id in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Err(reason) = ids::check(id) {
                return Err(ConfigError {
                    variable,
                    reason: format!("{id:?}: {reason}"),
                });
            }
            if !ids.iter().any(|known| known == id) {
                ids.push(id.to_owned());
            }
        }
        Ok(ids)
    }
}

impl Config {
    /// Read the process environment. Called once, from `main`.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env { get };
        let defaults = CacheConfig::default();
        let enabled = env.flag(vars::CACHE_ENABLED, true)?;
        let size = env.number(vars::CACHE_SIZE, 1000, 0..=MAX_CACHE_SIZE)? as usize;
        let port = env.number(vars::HTTP_PORT, 2773, 1..=65535)? as u16;
        let lambda = env.lambda();
        // Under Managed Instances every one of `max_concurrency` workers may
        // hold a keep-alive connection to the API (and one more to the SDK
        // endpoint), and may miss on a different value at once: the
        // defaults grow with it. On-demand (one invocation at a time) they
        // are the official extension's.
        let workers = u64::from(lambda.max_concurrency);
        let max_connections = env.number(
            vars::MAX_CONNECTIONS,
            (workers / 2).clamp(3, MAX_DERIVED_UPSTREAM),
            1..=1000,
        )? as usize;
        let max_client_connections = env.number(
            vars::MAX_CLIENT_CONNECTIONS,
            (2 * workers).max(128),
            1..=10_000,
        )? as usize;
        let emf = env.emf()?;
        let log_level = env.level(vars::LOG_LEVEL)?;
        let sm_ttl = env.number(vars::SM_TTL, 300, 0..=MAX_TTL_SECS)?;
        let ssm_ttl = env.number(vars::SSM_TTL, 300, 0..=MAX_TTL_SECS)?;
        let sm_timeout = env.number(vars::SM_TIMEOUT, 0, 0..=MAX_TIMEOUT_MILLIS)?;
        let ssm_timeout = env.number(vars::SSM_TIMEOUT, 0, 0..=MAX_TIMEOUT_MILLIS)?;
        // Unset: no cap, the last good value is served for as long as
        // upstream fails transiently.
        let max_stale = match env.raw(vars::MAX_STALE) {
            None => None,
            Some(_) => Some(env.number(vars::MAX_STALE, 0, 0..=7 * MAX_TTL_SECS)?),
        };
        let prefetch = env.ids(vars::PREFETCH)?;
        let prefetch_parameters = env.ids(vars::PREFETCH_PARAMETERS)?;
        let tree_defaults = TreeLimits::default();
        let trees = TreeLimits {
            max_parameters: env.number(
                vars::TREE_MAX_PARAMETERS,
                tree_defaults.max_parameters as u64,
                1..=MAX_TREE_PARAMETERS,
            )? as usize,
            max_bytes: env.number(
                vars::TREE_MAX_BYTES,
                tree_defaults.max_bytes as u64,
                1024..=MAX_TREE_BYTES,
            )? as usize,
        };
        let mut prefetch_tags: Vec<(String, Option<String>)> = Vec::new();
        let raw = env.raw(vars::PREFETCH_TAGS).unwrap_or_default();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_owned())),
                None => (item, None),
            };
            // Tag keys: 1 to 128 characters, values up to 256 (AWS's limits).
            if key.is_empty() || key.len() > 128 || value.as_ref().is_some_and(|v| v.len() > 256) {
                return Err(ConfigError {
                    variable: vars::PREFETCH_TAGS,
                    reason: format!(
                        "{item:?} is not key or key=value (a key of 1 to 128 characters)"
                    ),
                });
            }
            let tag = (key.to_owned(), value);
            if !prefetch_tags.contains(&tag) {
                prefetch_tags.push(tag);
            }
        }
        let mut fallback_regions: Vec<String> = Vec::new();
        let raw = env.raw(vars::FALLBACK_REGIONS).unwrap_or_default();
        for region in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let name = region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name || !region.contains('-') {
                return Err(ConfigError {
                    variable: vars::FALLBACK_REGIONS,
                    reason: format!("{region:?} is not a region name"),
                });
            }
            if !fallback_regions.iter().any(|r| r == region) {
                fallback_regions.push(region.to_owned());
            }
        }
        let max_roles = env.number(vars::MAX_ROLES, 20, 1..=1000)? as usize;
        let version_check = match env.raw(vars::VERSION_CHECK).map(|v| v.to_ascii_lowercase()) {
            None => defaults.version_check,
            Some(v) if v == "describe" => true,
            Some(v) if v == "off" => false,
            Some(v) => {
                return Err(ConfigError {
                    variable: vars::VERSION_CHECK,
                    reason: format!("{v:?} is not describe or off"),
                })
            }
        };
        let mut allowed_roles: Vec<String> = Vec::new();
        let raw = env.raw(vars::ALLOWED_ROLE_ARNS).unwrap_or_default();
        for pattern in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            sidekey_aws::roles::check_pattern(pattern).map_err(|reason| ConfigError {
                variable: vars::ALLOWED_ROLE_ARNS,
                reason: format!("{pattern:?}: {reason}"),
            })?;
            allowed_roles.push(pattern.to_owned());
        }
        let token = env
            .raw(vars::SESSION_TOKEN)
            .or_else(|| env.raw(vars::CONTAINER_TOKEN))
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
        let ttl = |secs| match caching {
            true => Duration::from_secs(secs),
            false => Duration::ZERO,
        };
        // A timeout of 0 is the official extension's "no timeout"; ours is
        // the cache's default deadline: nothing waits forever on upstream.
        let deadline = |ms| match ms {
            0 => defaults.secret_deadline,
            ms => Duration::from_millis(ms),
        };
        Ok(Config {
            port,
            cache: CacheConfig {
                secret_ttl: ttl(sm_ttl),
                parameter_ttl: ttl(ssm_ttl),
                max_stale: max_stale.map(Duration::from_secs),
                max_entries: size.max(1),
                secret_deadline: deadline(sm_timeout),
                parameter_deadline: deadline(ssm_timeout),
                max_upstream: max_connections,
                version_check,
                ..defaults
            },
            max_connections,
            max_client_connections,
            log_level,
            prefetch,
            prefetch_parameters,
            prefetch_tags,
            fallback_regions,
            trees,
            max_roles,
            allowed_roles,
            lambda,
            emf,
            token,
        })
    }
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
        assert_eq!(c.timeouts(), Timeouts::default());
        assert_eq!(c.cache.max_upstream, 3);
        assert!(c.prefetch.is_empty());
        assert_eq!(c.trees, TreeLimits::default());
        assert_eq!(c.trees.max_parameters, 500);
        assert_eq!(c.trees.max_bytes, 1024 * 1024);
        assert_eq!(c.cache.max_stale, None, "no cap on serving stale");
        assert_eq!((c.max_roles, c.allowed_roles.len()), (20, 0));
        assert_eq!(c.max_client_connections, 128);
        let on_demand = Lambda {
            never_frozen: false,
            max_concurrency: 1,
        };
        assert_eq!(c.lambda, on_demand);
        assert_eq!(c.emf, None, "metrics lines cost log ingestion: off");
    }

    #[test]
    fn managed_instances_are_recognised_and_size_the_limits() {
        let c = config(&[
            (vars::INITIALIZATION_TYPE, "lambda-managed-instances"),
            (vars::MAX_CONCURRENCY, "16"),
        ])
        .unwrap();
        assert!(c.lambda.never_frozen);
        assert_eq!(c.lambda.max_concurrency, 16);
        assert_eq!((c.max_connections, c.cache.max_upstream), (8, 8));
        assert_eq!(c.max_client_connections, 128);
        let c = config(&[(vars::MAX_CONCURRENCY, "400")]).unwrap();
        assert!(c.lambda.never_frozen, "the concurrency alone says it");
        assert_eq!((c.max_connections, c.max_client_connections), (64, 800));
        // Set explicitly, ours win.
        let c = config(&[
            (vars::MAX_CONCURRENCY, "400"),
            (vars::MAX_CONNECTIONS, "5"),
            (vars::MAX_CLIENT_CONNECTIONS, "100"),
        ])
        .unwrap();
        assert_eq!((c.max_connections, c.max_client_connections), (5, 100));
        // Lambda's variables never fail the INIT.
        for (var, value) in [
            (vars::MAX_CONCURRENCY, "many"),
            (vars::MAX_CONCURRENCY, "0"),
            (vars::INITIALIZATION_TYPE, "snap-start"),
            (vars::INITIALIZATION_TYPE, "on-demand"),
        ] {
            let c = config(&[(var, value)]).unwrap();
            assert!(!c.lambda.never_frozen, "{var}={value}");
        }
        let c = config(&[(vars::MAX_CONCURRENCY, "99999")]).unwrap();
        assert_eq!(c.lambda.max_concurrency, 1600);
    }

    #[test]
    fn emf_metrics_are_opt_in_with_a_checked_namespace() {
        let c = config(&[(vars::METRICS, "EMF"), (vars::FUNCTION_NAME, "orders")]).unwrap();
        let emf = c.emf.unwrap();
        assert_eq!(emf.namespace, "sidekey");
        assert_eq!(emf.function_name.as_deref(), Some("orders"));
        let c = config(&[
            (vars::METRICS, "emf"),
            (vars::METRICS_NAMESPACE, "team/app_1"),
        ])
        .unwrap();
        assert_eq!(c.emf.unwrap().namespace, "team/app_1");
        assert_eq!(config(&[(vars::METRICS, "off")]).unwrap().emf, None);
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
            (vars::PREFETCH_PARAMETERS, "/app/db/host,/app/db/port"),
            (vars::MAX_STALE, "60"),
            (vars::TREE_MAX_PARAMETERS, "20"),
            (vars::TREE_MAX_BYTES, "4096"),
            (vars::PREFETCH_TAGS, "team=edge, prefetch ,team=edge"),
        ])
        .unwrap();
        assert_eq!(
            c.prefetch_tags,
            [
                ("team".to_owned(), Some("edge".to_owned())),
                ("prefetch".to_owned(), None)
            ]
        );
        assert_eq!(c.trees.max_parameters, 20);
        assert_eq!(c.trees.max_bytes, 4096);
        assert_eq!(c.port, 8080);
        assert_eq!(c.cache.secret_ttl, Duration::from_secs(3600));
        assert_eq!(c.cache.parameter_ttl, Duration::ZERO);
        assert_eq!(c.timeouts().secrets_manager, Duration::from_millis(250));
        assert_eq!(c.cache.secret_deadline, Duration::from_millis(250));
        assert_eq!(c.log_level, None);
        assert_eq!(c.prefetch, ["a", "b/c"]);
        assert_eq!(c.prefetch_parameters, ["/app/db/host", "/app/db/port"]);
        assert_eq!(c.cache.max_stale, Some(Duration::from_secs(60)));
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
            (vars::TREE_MAX_PARAMETERS, "0"),
            (vars::TREE_MAX_BYTES, "100"),
            (vars::MAX_ROLES, "0"),
            (vars::VERSION_CHECK, "sometimes"),
            (vars::PREFETCH_TAGS, "=edge"),
            (vars::FALLBACK_REGIONS, "us west 2"),
            (vars::ALLOWED_ROLE_ARNS, "arn:aws:iam::1:role/x"),
            (vars::ALLOWED_ROLE_ARNS, "reader-*"),
            (vars::METRICS, "prometheus"),
        ] {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn bad_namespaces_are_refused() {
        for ns in ["AWS/Lambda", "a\u{e9}", "with\nnewline", &"n".repeat(256)] {
            let err = config(&[(vars::METRICS, "emf"), (vars::METRICS_NAMESPACE, ns)]).unwrap_err();
            assert_eq!(err.variable, vars::METRICS_NAMESPACE);
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
