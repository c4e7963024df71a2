//! The one HTTPS client stack of sidekey (feature `https`): hyper-util's
//! pooled client over rustls with ring, HTTP/1.1 only.
//!
//! The edge module calls its API and Secrets Manager with it, the
//! extension's fetcher (`crate::fetcher`) calls AWS with it, and the
//! SDK-based fetcher, when built, hands it to the SDK. HTTP/1.1 is all the AWS
//! JSON endpoints and the edge API need; leaving HTTP/2 out keeps `h2`
//! (about 0.45 MB of code) out of both binaries. The trust roots come from
//! the runtime's CA store (`rustls-native-certs`; every Lambda image ships
//! one) rather than a bundled copy of the Mozilla roots, which would cost
//! the edge zip 32 KB of its 1 MB.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

mod provider;

/// The client over HTTPS or plain HTTP (loopback stand-ins in tests).
pub type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpsError {
    /// The runtime's CA store had no usable certificate.
    #[error("no trusted root certificates found in the system store ({0} load errors)")]
    NoRoots(usize),
    /// rustls refused its configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Pooled connections idle longer than this are dropped rather than
/// reused: the environment is frozen between invocations, and a connection
/// the peer (or a NAT gateway) closed meanwhile would fail the next call.
pub const POOL_IDLE: Duration = Duration::from_secs(20);

/// Build a client: system roots, TLS 1.2 and 1.3 with ring, HTTP/1.1,
/// `connect_timeout` per connection, at most `max_idle` idle connections
/// kept per host.
pub fn client<B>(connect_timeout: Duration, max_idle: usize) -> Result<HttpsClient<B>, HttpsError>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(HttpsError::NoRoots(found.errors.len()));
    }
    client_trusting(roots, connect_timeout, max_idle)
}

/// [`client`] trusting `roots` instead of the system's (a private CA).
pub fn client_trusting<B>(
    roots: rustls::RootCertStore,
    connect_timeout: Duration,
    max_idle: usize,
) -> Result<HttpsClient<B>, HttpsError>
where
    B: http_body::Body + Send,
    B::Data: Send,
{
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider::aes_gcm()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(max_idle)
        .build(https))
}
