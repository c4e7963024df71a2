//! How a fleet reads its secrets: sidekey (the real cache) and each rival,
//! modelled from its own documentation or source, cited on its variant.

use std::time::Duration;

/// A way of reading secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The real `SecretCache` as the extension runs it with no variable
    /// set: `CacheConfig::default()` (TTL 300 s, refresh-ahead, serve stale
    /// while failures are transient, single flight, 2 s deadline), no
    /// prefetch, no fallback region, no version check; `refresh_due` on
    /// every INVOKE, or `start_due` on its own timer (`next_due`) where the
    /// environment is never frozen.
    Sidekey,
    /// The same, as the scenario configures it: `SIDEKEY_PREFETCH` (or the
    /// parameters prefetched with `prefetch_parameters`),
    /// `SIDEKEY_FALLBACK_REGIONS` where a replica exists,
    /// `SIDEKEY_VERSION_CHECK=describe` in the version-check scenario.
    SidekeyConfigured,
    /// The AWS Parameters and Secrets Lambda Extension, closed source,
    /// as documented ("Use AWS Secrets Manager secrets in AWS Lambda
    /// functions", its environment variables): `SECRETS_MANAGER_TTL` at
    /// most 300 s, refetched on the first read after it; no serve-stale
    /// (the docs promise none); `SECRETS_MANAGER_TIMEOUT_MILLIS` 0, "no
    /// timeout"; no prefetch, no single flight.
    OfficialLike,
    /// aws-secretsmanager-agent, now aws-workload-credentials-provider 3.0
    /// (`aws_secretsmanager_caching/src/lib.rs` at d47a49d): TTL 300 s
    /// (`config/types.rs:137`); after it, `DescribeSecret` first
    /// (`is_current`, lib.rs:452) and the cached value re-written with a
    /// fresh TTL when the version still holds (lib.rs:393); on a transient
    /// error of either call the cached value is served and its TTL reset
    /// (lib.rs:458 and :418; `ignore_transient_errors` defaults to true,
    /// types.rs:106); a miss reads `GetSecretValue`; no prefetch by
    /// default, no single flight, no refresh-ahead; Secrets Manager only.
    AgentV3,
    /// The agent with its options: `ttl_seconds = 3600` (the most it
    /// takes) and the ids in `prefetch` (one `BatchGetSecretValue` of up
    /// to 20 at start, a transient failure ignored:
    /// `batch_get_secret_value`, lib.rs:303-325).
    AgentV3Tuned,
    /// The seed's approach: each secret read once with the SDK during INIT
    /// into a global, never refreshed; a failed read at INIT fails the
    /// init (the module raises), so the invocation fails and Lambda
    /// initialises again on the next. One copy per process.
    GlobalVar,
    /// Powertools for AWS Lambda (Python), Parameters utility
    /// (`utilities/parameters/base.py:103-118` at fa1c29f2d): a value
    /// younger than `max_age` is served from the in-process cache, else
    /// fetched; a failed fetch raises `GetParameterError` (no stale
    /// value). `max_age` 5 s, the default before v2.38 (#4279, May 2024).
    /// One cache per process.
    Powertools5,
    /// Powertools with `max_age` 300 s, today's default
    /// (`parameters/constants.py:10`, `DEFAULT_MAX_AGE_SECS = "300"`).
    Powertools300,
    /// Every read goes to the service.
    NoCache,
}

impl Policy {
    /// In report order.
    pub const ALL: [Policy; 9] = [
        Policy::Sidekey,
        Policy::SidekeyConfigured,
        Policy::OfficialLike,
        Policy::AgentV3,
        Policy::AgentV3Tuned,
        Policy::GlobalVar,
        Policy::Powertools5,
        Policy::Powertools300,
        Policy::NoCache,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Sidekey => "sidekey (defaults)",
            Policy::SidekeyConfigured => "sidekey (configured)",
            Policy::OfficialLike => "official-like",
            Policy::AgentV3 => "agent-like v3",
            Policy::AgentV3Tuned => "agent v3 (prefetch, TTL 3600)",
            Policy::GlobalVar => "global variable",
            Policy::Powertools5 => "Powertools-like (5 s)",
            Policy::Powertools300 => "Powertools-like (300 s)",
            Policy::NoCache => "no cache",
        }
    }

    /// Whether it reads Parameter Store at all (the agent reads Secrets
    /// Manager only).
    pub fn reads_parameters(self) -> bool {
        !matches!(self, Policy::AgentV3 | Policy::AgentV3Tuned)
    }

    /// Whether its cache lives in the function's process (one per process
    /// where Lambda Managed Instances run several), not beside it.
    pub fn in_process(self) -> bool {
        matches!(
            self,
            Policy::GlobalVar | Policy::Powertools5 | Policy::Powertools300 | Policy::NoCache
        )
    }

    /// The rival's model, `None` for sidekey.
    pub fn model(self, ttl: Duration) -> Option<Model> {
        let base = Model {
            ttl: Some(ttl),
            describe_first: false,
            serve_cached_on_error: false,
            prefetch: false,
            at_init: false,
        };
        Some(match self {
            Policy::Sidekey | Policy::SidekeyConfigured => return None,
            Policy::OfficialLike => Model {
                ttl: Some(ttl.min(Duration::from_secs(300))),
                ..base
            },
            Policy::AgentV3 => Model {
                describe_first: true,
                serve_cached_on_error: true,
                ..base
            },
            Policy::AgentV3Tuned => Model {
                ttl: Some(Duration::from_secs(3600)),
                describe_first: true,
                serve_cached_on_error: true,
                prefetch: true,
                ..base
            },
            Policy::GlobalVar => Model {
                ttl: None,
                at_init: true,
                ..base
            },
            Policy::Powertools5 => Model {
                ttl: Some(Duration::from_secs(5)),
                ..base
            },
            Policy::Powertools300 => Model {
                ttl: Some(Duration::from_secs(300)),
                ..base
            },
            Policy::NoCache => Model {
                ttl: Some(Duration::ZERO),
                ..base
            },
        })
    }
}

/// A rival's behaviour, the few knobs the rivals differ in.
#[derive(Clone, Copy, Debug)]
pub struct Model {
    /// How long a value is served without asking; `None`: for ever.
    pub ttl: Option<Duration>,
    /// After the TTL, `DescribeSecret` first; `GetSecretValue` only if the
    /// version changed.
    pub describe_first: bool,
    /// On a transient failure after the TTL, serve the cached value and
    /// give it a fresh TTL.
    pub serve_cached_on_error: bool,
    /// `BatchGetSecretValue` of every id at start, failures ignored.
    pub prefetch: bool,
    /// Every id read during INIT; a failure fails the init.
    pub at_init: bool,
}
