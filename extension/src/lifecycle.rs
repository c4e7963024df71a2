//! The Lambda lifecycle around the cache and the HTTP server, as explicit
//! phases with one way out.
//!
//! 1. [`Serving::start`]: bind the listener, build the cache, start the
//!    prefetch and the server, all **before** registering: Lambda starts the
//!    function's own init as soon as every extension has registered, and
//!    that init code may already read secrets.
//! 2. [`events`]: register for INVOKE and SHUTDOWN and run the event loop
//!    until SHUTDOWN (or until the Extensions API fails).
//! 3. [`Serving::shutdown`]: stop accepting, let in-flight requests finish
//!    within the SHUTDOWN deadline, wipe the cache. This is the only way
//!    out once serving: an Extensions API failure takes it too, and if the
//!    task is dropped anyway (a panic), [`Serving`]'s `Drop` still wipes.
//!
//! The events processor never returns an error: `lambda-extension` reports
//! an error to Lambda and stops the loop when it does, which would take
//! every cached secret down with the extension.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use sidekey_cache::{Fetch, Kind, RefreshReport, SecretCache, SystemClock};

/// The fetcher: the lean SigV4 one, or the AWS SDK's with feature `aws-sdk`.
#[cfg(not(feature = "aws-sdk"))]
type Upstream = sidekey_aws::SigV4Fetcher;
#[cfg(feature = "aws-sdk")]
type Upstream = sidekey_aws::AwsFetcher;

/// The lean fetcher reads through the client the SDK endpoint shares; a
/// cold read of a secret falls back to the replica regions configured.
#[cfg(not(feature = "aws-sdk"))]
fn upstream(aws: &Arc<AwsClient>, config: &Config, _own: SocketAddr) -> Result<Upstream, Error> {
    let fallbacks = config
        .fallback_regions
        .iter()
        .map(|region| aws.endpoint_in(sidekey_aws::ops::Service::SecretsManager, region))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Upstream::new(Arc::clone(aws), config.timeouts()).with_fallback_regions(fallbacks))
}

/// The SDK's fetcher builds its own clients, passing over the same
/// endpoint variables.
#[cfg(feature = "aws-sdk")]
fn upstream(_aws: &Arc<AwsClient>, config: &Config, own: SocketAddr) -> Result<Upstream, Error> {
    Ok(Upstream::from_env_excluding(
        config.timeouts(),
        config.max_connections,
        Some(own),
    )?)
}
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use sidekey_aws::AwsClient;

use crate::api::Api;
use crate::background::Background;
use crate::config::{Config, Lambda};
use crate::emf::Emf;
use crate::sdk::Sdk;
use crate::server;

/// The extension's name as Lambda knows it (the file under /opt/extensions).
pub const NAME: &str = "sidekey";

/// Most an INVOKE may wait for refreshes of values being read before the
/// extension tells Lambda it is done. The cache waits less when nothing is
/// due or when what it waits for is past its deadline (then the refresh
/// could not land anyway), so a healthy INVOKE is not held at all.
const INVOKE_REFRESH_BUDGET: Duration = Duration::from_secs(1);

/// Longest drain of in-flight requests at SHUTDOWN (Lambda gives
/// extensions 2 s at most, often less).
const MAX_DRAIN: Duration = Duration::from_millis(1500);

/// A failure that ends the extension.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The port is taken or not ours to bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for (127.0.0.1 and the configured port).
        addr: SocketAddr,
        /// Why the bind failed.
        source: std::io::Error,
    },
    /// The Extensions API refused or failed.
    #[error("Lambda Extensions API: {0}")]
    Lambda(lambda_extension::Error),
    /// The AWS clients could not be set up from the environment.
    #[error("AWS clients: {0}")]
    Aws(#[from] sidekey_aws::SetupError),
}

/// Run the extension to SHUTDOWN.
pub async fn run(config: Config) -> Result<(), Error> {
    let serving = Serving::start(&config).await?;
    let lambda = config.lambda;
    // Never frozen (Managed Instances): refreshes and metrics on our own
    // timers, as no INVOKE comes.
    let background = lambda.never_frozen.then(|| {
        tracing::info!(
            max_concurrency = lambda.max_concurrency,
            "Lambda Managed Instances: SHUTDOWN only, refreshes on a timer"
        );
        Background::start(&serving.cache, serving.emf.clone())
    });
    let ended = events(&serving.cache, lambda, serving.emf.clone()).await;
    if let Some(background) = background {
        background.stop().await;
    }
    let drain = match &ended {
        Ok(Some(deadline_ms)) => drain_budget(*deadline_ms),
        _ => MAX_DRAIN,
    };
    serving.shutdown(drain).await;
    ended.map(|_| ())
}

/// Phase 1 and 3: the listener bound, the cache built, the server running.
struct Serving<F: Fetch> {
    cache: SecretCache<F>,
    /// The metrics lines, if on: the last written after the drain.
    emf: Option<Arc<Emf>>,
    /// Holds the roles' credentials, wiped with the cache.
    aws: Arc<AwsClient>,
    stop: watch::Sender<Option<Duration>>,
    server: Option<JoinHandle<()>>,
}

impl Serving<Upstream> {
    async fn start(config: &Config) -> Result<Self, Error> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        // The function's SDK may be pointed at this listener
        // (AWS_ENDPOINT_URL_SECRETS_MANAGER...): sidekey's own calls pass
        // over an endpoint variable that names it.
        let timeouts = config.timeouts();
        let aws = Arc::new(
            AwsClient::from_env(timeouts.connect(), config.max_connections, Some(addr))?
                .with_roles(config.max_roles, config.allowed_roles.clone()),
        );
        let fetcher = upstream(&aws, config, addr)?.with_tree_limits(config.trees);
        let cache = SecretCache::new(fetcher, config.cache.clone());
        // Under SnapStart the environment may be restored from a snapshot
        // taken after INIT, hours later: every read (and every event)
        // compares the wall clock's progress with the monotonic one's, and a
        // restore makes every cached value due.
        cache.detect_restores(SystemClock);
        log_caching(&cache);
        start_prefetch(&cache, config.prefetch.clone());
        start_tag_prefetch(&cache, config.prefetch_tags.clone());
        if !config.prefetch_parameters.is_empty() {
            // Decrypted, as functions read configuration parameters.
            let started = cache.prefetch_parameters(&config.prefetch_parameters, true);
            tracing::debug!(started, "parameter prefetch started");
        }

        let sdk = Sdk::new(Arc::clone(&aws), timeouts.secrets_manager, timeouts.ssm);
        let api = Arc::new(Api::new(cache.clone(), config.token.clone(), sdk));
        let (stop, mut stop_rx) = watch::channel(None::<Duration>);
        let stopped = async move {
            match stop_rx.wait_for(Option::is_some).await {
                Ok(budget) => budget.unwrap_or_default(),
                Err(_) => Duration::ZERO,
            }
        };
        let server = tokio::spawn(server::serve(
            listener,
            api,
            config.max_client_connections,
            stopped,
        ));
        tracing::info!(%addr, "listening");
        let emf = config.emf.clone().map(|c| Arc::new(Emf::new(c)));
        Ok(Self {
            cache,
            emf,
            aws,
            stop,
            server: Some(server),
        })
    }
}

impl<F: Fetch> Serving<F> {
    /// Stop accepting, drain in-flight requests for at most `drain`, wipe
    /// the cache.
    async fn shutdown(mut self, drain: Duration) {
        let _ = self.stop.send(Some(drain));
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(emf) = &self.emf {
            emf.flush(self.cache.metrics());
        }
        self.cache.close();
        self.aws.roles().clear();
        tracing::info!("stopped; cache and role credentials wiped");
    }
}

impl<F: Fetch> Drop for Serving<F> {
    /// Whatever ends this phase, no value (nor role credential) outlives it.
    fn drop(&mut self) {
        self.cache.close();
        self.aws.roles().clear();
    }
}

/// Phase 2: register and run the event loop. `Ok(Some(deadline_ms))` at
/// SHUTDOWN, `Ok(None)` if Lambda ended the loop without one.
///
/// On-demand it asks for INVOKE and SHUTDOWN: INVOKE is when a frozen
/// environment runs, so refreshes and metrics happen then. Never frozen
/// (Managed Instances) it asks for SHUTDOWN only: Lambda refuses INVOKE
/// there, failing the INIT, and the timers do that work instead.
async fn events<F: Fetch>(
    cache: &SecretCache<F>,
    lambda: Lambda,
    emf: Option<Arc<Emf>>,
) -> Result<Option<u64>, Error> {
    let (shutdown_tx, mut shutdown_rx) = mpsc::channel::<u64>(1);
    let processor = {
        let cache = cache.clone();
        service_fn(move |event: LambdaEvent| {
            let cache = cache.clone();
            let emf = emf.clone();
            let shutdown_tx = shutdown_tx.clone();
            async move {
                // A restore found here (or by a read) makes every value due.
                cache.check_restore();
                match event.next {
                    NextEvent::Invoke(_) => {
                        let report = cache.refresh_due(INVOKE_REFRESH_BUDGET).await;
                        if report != RefreshReport::default() {
                            tracing::debug!(?report, "INVOKE refresh");
                        }
                        if let Some(emf) = &emf {
                            emf.tick(cache.metrics());
                        }
                    }
                    NextEvent::Shutdown(e) => {
                        tracing::info!(reason = %e.shutdown_reason, "shutdown");
                        let _ = shutdown_tx.send(e.deadline_ms).await;
                    }
                }
                Ok::<(), lambda_extension::Error>(())
            }
        })
    };
    let registered = Extension::new()
        .with_extension_name(NAME)
        .with_events(match lambda.never_frozen {
            true => &["SHUTDOWN"],
            false => &["INVOKE", "SHUTDOWN"],
        })
        .with_events_processor(processor)
        .register()
        .await
        .map_err(Error::Lambda)?;
    tracing::debug!("registered");
    tokio::select! {
        biased;
        deadline = shutdown_rx.recv() => Ok(deadline),
        result = registered.run() => match shutdown_rx.try_recv() {
            // After SHUTDOWN, Lambda may tear the API down under the next
            // poll: that error is the end of the loop, not a failure.
            Ok(deadline) => Ok(Some(deadline)),
            Err(_) => result.map(|()| None).map_err(Error::Lambda),
        },
    }
}

/// Say once, at start, when a kind is not cached (and so neither
/// prefetched nor refreshed at INVOKE).
fn log_caching<F: Fetch>(cache: &SecretCache<F>) {
    for (kind, name) in [(Kind::Secret, "secrets"), (Kind::Parameter, "parameters")] {
        if !cache.config().caching_enabled(kind) {
            tracing::info!("caching of {name} is off: every read goes upstream");
        }
    }
}

fn start_prefetch<F: Fetch>(cache: &SecretCache<F>, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    if !cache.config().caching_enabled(Kind::Secret) {
        tracing::info!(
            ids = ids.len(),
            "prefetch skipped: caching of secrets is off"
        );
        return;
    }
    let cache = cache.clone();
    tokio::spawn(async move {
        let report = cache.prefetch(&ids).await;
        tracing::info!(
            loaded = report.loaded.len(),
            failed = report.failed.len(),
            "prefetch done"
        );
        for (id, error) in report.failed {
            tracing::warn!(%id, %error, "prefetch failed");
        }
    });
}

/// Load every secret carrying the tags (`SIDEKEY_PREFETCH_TAGS`), in the
/// background, as the prefetch by ids.
fn start_tag_prefetch<F: Fetch>(cache: &SecretCache<F>, tags: Vec<(String, Option<String>)>) {
    if tags.is_empty() || !cache.config().caching_enabled(Kind::Secret) {
        return;
    }
    let cache = cache.clone();
    tokio::spawn(async move {
        let report = cache.prefetch_tagged(&tags).await;
        tracing::info!(
            loaded = report.loaded,
            pages = report.pages,
            "prefetch by tag done"
        );
        if report.truncated {
            tracing::info!(
                "the tags match more secrets than the cache holds \
                 (PARAMETERS_SECRETS_EXTENSION_CACHE_SIZE): the rest is read when asked"
            );
        }
        for (tag, error) in report.failed {
            tracing::warn!(%tag, %error, "prefetch by tag failed");
        }
    });
}

/// Time left before `deadline_ms` (epoch milliseconds), less a margin to exit.
fn drain_budget(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(deadline_ms.saturating_sub(now).saturating_sub(200)).min(MAX_DRAIN)
}

/// Register just to report `message` through `/extension/init/error`, so
/// Lambda fails the INIT with our reason instead of a bare exit code. Only
/// called under Lambda (`main` checks for `AWS_LAMBDA_RUNTIME_API`).
pub async fn report_init_error(error_type: &str, message: &str) {
    let registered = match Extension::new()
        .with_extension_name(NAME)
        .with_events(&[])
        .register()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not register to report the init error");
            return;
        }
    };
    let body = lambda_extension::requests::ErrorRequest {
        error_message: message,
        error_type,
        stack_trace: Vec::new(),
    };
    let sent = async {
        let req = lambda_extension::requests::init_error(
            &registered.extension_id,
            error_type,
            Some(body),
        )?;
        let client = lambda_runtime_api_client::Client::builder().build()?;
        client.call(req).await?;
        Ok::<(), lambda_extension::Error>(())
    };
    if let Err(e) = sent.await {
        tracing::error!(error = %e, "could not report the init error");
    }
}
