//! The Lambda lifecycle around the cache and the HTTP server.
//!
//! Order matters: bind the listener and start prefetching **before**
//! registering, because Lambda starts the function's own init as soon as
//! every extension has registered, and that init code may already read
//! secrets. Then register for INVOKE and SHUTDOWN and hand the event loop to
//! `lambda-extension`.
//!
//! The events processor never returns an error: `lambda-extension` reports
//! an error to Lambda and stops the loop when it does, which would take
//! every cached secret down with the extension.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_extension::{service_fn, Extension, LambdaEvent, NextEvent};
use sidekey_cache::{AwsFetcher, Fetch, SecretCache};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::api::Api;
use crate::config::Config;
use crate::server;

/// The extension's name as Lambda knows it (the file under /opt/extensions).
pub const NAME: &str = "sidekey";

/// How long an INVOKE may wait for refreshes of near-expiry values before
/// the extension tells Lambda it is done (the rest finish in the background).
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
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The Extensions API refused or failed.
    #[error("Lambda Extensions API: {0}")]
    Lambda(lambda_extension::Error),
}

/// Run the extension to SHUTDOWN.
pub async fn run(config: Config) -> Result<(), Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let fetcher = AwsFetcher::from_env(config.timeouts, config.max_connections).await;
    let cache = SecretCache::new(fetcher, config.cache.clone());
    start_prefetch(&cache, config.prefetch.clone());

    let api = Arc::new(Api::new(cache.clone(), config.token.clone()));
    let (stop_tx, mut stop_rx) = watch::channel(None::<Duration>);
    let stop = async move {
        match stop_rx.wait_for(Option::is_some).await {
            Ok(budget) => budget.unwrap_or_default(),
            Err(_) => Duration::ZERO,
        }
    };
    let server = tokio::spawn(server::serve(
        listener,
        api,
        config.max_client_connections,
        stop,
    ));
    tracing::info!(%addr, "listening");

    let (shutdown_tx, mut shutdown_rx) = mpsc::channel::<u64>(1);
    let events = {
        let cache = cache.clone();
        service_fn(move |event: LambdaEvent| {
            let cache = cache.clone();
            let shutdown_tx = shutdown_tx.clone();
            async move {
                match event.next {
                    NextEvent::Invoke(_) => {
                        let started = cache.refresh_due(INVOKE_REFRESH_BUDGET).await.started;
                        if started > 0 {
                            tracing::debug!(started, "refreshed values near expiry");
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
        .with_events(&["INVOKE", "SHUTDOWN"])
        .with_events_processor(events)
        .register()
        .await
        .map_err(Error::Lambda)?;
    tracing::debug!("registered");

    let deadline_ms = tokio::select! {
        biased;
        deadline = shutdown_rx.recv() => deadline,
        result = registered.run() => match shutdown_rx.try_recv() {
            // After SHUTDOWN, Lambda may tear the API down under the next
            // poll: that error is the end of the loop, not a failure.
            Ok(deadline) => Some(deadline),
            Err(_) => {
                result.map_err(Error::Lambda)?;
                None
            }
        },
    };
    let drain = deadline_ms.map_or(MAX_DRAIN, drain_budget);
    let _ = stop_tx.send(Some(drain));
    let _ = server.await;
    cache.close();
    tracing::info!("stopped; cache wiped");
    Ok(())
}

fn start_prefetch<F: Fetch>(cache: &SecretCache<F>, ids: Vec<String>) {
    if ids.is_empty() {
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

/// Time left before `deadline_ms` (epoch milliseconds), less a margin to exit.
fn drain_budget(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Duration::from_millis(deadline_ms.saturating_sub(now).saturating_sub(200)).min(MAX_DRAIN)
}

/// Register just to report `message` through `/extension/init/error`, so
/// Lambda fails the INIT with our reason instead of a bare exit code. Does
/// nothing outside Lambda (no `AWS_LAMBDA_RUNTIME_API`).
pub async fn report_init_error(error_type: &str, message: &str) {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return;
    }
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
