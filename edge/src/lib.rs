//! The Lambda@Edge viewer-request function: read the API key from Secrets
//! Manager, POST to the external API with it as `Authorization`, then let
//! the request through or answer the viewer.
//!
//! Lambda@Edge runs no extensions and no custom runtimes, so this code ships
//! as a Python extension module (`python/`, crate `sidekey-edge-python`)
//! that embeds the cache: one Secrets Manager read serves many invocations
//! of an environment.
//!
//! # Layout
//!
//! * [`event`]: the CloudFront event and reply types.
//! * [`handler`]: [`Handler`], generic over [`SecretSource`] and
//!   [`ApiCall`]; [`EdgeError`] and the one mapping to responses.
//! * [`config`]: the bundled `config.json`, checked once ([`EdgeConfig`]).
//! * The secret is read with sidekey's one AWS client
//!   ([`sidekey_aws::SigV4Fetcher`]), replica first, then the primary.
//! * [`client`]: the API call ([`HttpApi`]) over sidekey's one HTTPS stack.
//!
//! [`build`] wires them the way the deployed function runs.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod event;
pub mod handler;

pub use client::{http_client, ClientError, HttpApi, HttpClient};
pub use config::{ConfigError, EdgeConfig, RawConfig};
pub use event::{Reply, Request, Response, ViewerRequestEvent};
pub use handler::{ApiCall, ApiError, EdgeError, Handler, API_BODY};
pub use sidekey_aws::{Credentials, SigV4Fetcher};

use std::sync::Arc;

use sidekey_aws::credentials::Source;
use sidekey_aws::ops::Service;
use sidekey_aws::{AwsClient, Endpoint, SetupError, Timeouts};
#[cfg(doc)]
use sidekey_cache::SecretSource;
use sidekey_cache::{CacheConfig, Embedded, SecretCache};

/// The handler as deployed: the embedded cache over SigV4, the API over HTTP.
pub type EdgeHandler = Handler<Embedded<SigV4Fetcher>, HttpApi>;

/// Why the deployed handler could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The HTTP client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A region or endpoint that makes no endpoint URL.
    #[error(transparent)]
    Fetcher(#[from] SetupError),
}

/// Build the handler from the checked config, the environment's credentials
/// and the function's own region (`AWS_REGION`, which picks the replica).
/// One client serves Secrets Manager and the API.
pub fn build(
    config: &EdgeConfig,
    credentials: Credentials,
    own_region: Option<&str>,
) -> Result<EdgeHandler, BuildError> {
    let client = http_client(config.timeout)?;
    let regions = config.read_regions(own_region);
    let endpoint = config
        .secrets_manager_endpoint
        .as_ref()
        .map(|u| u.to_string());
    let endpoints = regions
        .iter()
        .map(|region| {
            Endpoint::new(
                Service::SecretsManager,
                region,
                endpoint.as_deref(),
                Default::default(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Each region's read gets the configured timeout, once (the viewer is
    // waiting): the read as a whole, and the cache's deadline around it,
    // get one timeout per region.
    let deadline = config.timeout * u32::try_from(endpoints.len()).unwrap_or(1);
    let timeouts = Timeouts {
        secrets_manager: deadline,
        ssm: config.timeout,
    };
    let home = endpoints.first().cloned().ok_or(SetupError::NoRegion)?;
    // The edge reads Secrets Manager only: its other endpoints are unused.
    let aws = AwsClient::new(
        client.clone(),
        Source::fixed(credentials),
        home.clone(),
        home.clone(),
        home,
    );
    let fetcher = SigV4Fetcher::new(Arc::new(aws), timeouts)
        .with_secret_regions(endpoints, true)
        .with_attempts(1, config.timeout);
    let cache = SecretCache::new(
        fetcher,
        CacheConfig {
            secret_ttl: config.ttl,
            secret_deadline: deadline,
            ..CacheConfig::default()
        },
    );
    let api = HttpApi::new(client, config.api_url.clone(), config.timeout);
    Ok(Handler::new(
        Embedded::new(cache),
        api,
        config.secret_id.clone(),
        config.field.clone(),
    ))
}
