//! The one HTTP client of the edge module, and the API call made with it.
//!
//! hyper-util's legacy client over rustls with ring, HTTP/1.1 only: the
//! smallest stack that speaks both `https://` (AWS, the real API) and
//! `http://` (loopback stand-ins in tests). The trust roots come from the
//! runtime's CA store (`rustls-native-certs`: the Lambda Python images ship
//! `/etc/pki/tls/certs/ca-bundle.crt`) instead of a bundled copy of the
//! Mozilla roots (`webpki-roots`), which measured +40 KB of .so and +32 KB of
//! zip, a third of the margin under the 1 MB limit (`edge/README.md`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::handler::{ApiCall, ApiError};

/// The shared client type: HTTPS or plain HTTP, pooled keep-alive.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The runtime's CA store had no usable certificate.
    #[error("no trusted root certificates found in the system store ({0} load errors)")]
    NoRoots(usize),
    /// rustls refused its configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Build the client: system roots, TLS 1.2 and 1.3 with ring, HTTP/1.1.
///
/// Pooled connections idle for more than 20 s are dropped rather than
/// reused: the Lambda environment is frozen between invocations, and a
/// connection the peer closed meanwhile would fail the next call.
pub fn http_client(connect_timeout: Duration) -> Result<HttpClient, ClientError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(ClientError::NoRoots(found.errors.len()));
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
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
        .pool_idle_timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(2)
        .build(https))
}

/// Most of an API answer we read (and discard) so the connection can be
/// reused; a longer one closes the connection instead.
const DRAIN_LIMIT: usize = 64 * 1024;

/// [`ApiCall`] over HTTP: `POST` the body as JSON to one URL.
#[derive(Clone, Debug)]
pub struct HttpApi {
    client: HttpClient,
    url: Uri,
    timeout: Duration,
}

impl HttpApi {
    /// Call `url` with `client`, giving up after `timeout`.
    pub fn new(client: HttpClient, url: Uri, timeout: Duration) -> Self {
        Self {
            client,
            url,
            timeout,
        }
    }
}

impl ApiCall for HttpApi {
    async fn post(&self, authorization: &str, body: Bytes) -> Result<u16, ApiError> {
        let mut auth = HeaderValue::from_str(authorization).map_err(|_| ApiError::InvalidKey)?;
        auth.set_sensitive(true);
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, auth)
            .body(Full::new(body))
            .map_err(|e| ApiError::Request(e.to_string()))?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ApiError::Request(error_chain(&e)))?;
            let status = response.status().as_u16();
            // Read the answer so the connection goes back to the pool; its
            // content is not ours to log.
            let _ = Limited::new(response.into_body(), DRAIN_LIMIT)
                .collect()
                .await;
            Ok(status)
        };
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| ApiError::Timeout(self.timeout))?
    }
}

/// An error and its sources on one line (hyper's top-level message alone,
/// "client error (Connect)", says too little to act on).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
