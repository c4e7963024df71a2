//! The edge module's API call, over sidekey's one HTTPS stack
//! ([`sidekey_aws::https`]: hyper-util's legacy client over rustls with
//! ring, HTTP/1.1 only, the runtime's CA store), which speaks both
//! `https://` (AWS, the real API) and `http://` (loopback stand-ins in
//! tests).

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use sidekey_aws::client::error_chain;
use sidekey_aws::https::{self, HttpsClient};

use super::handler::{ApiCall, ApiError};

/// The shared client type: HTTPS or plain HTTP, pooled keep-alive.
pub type HttpClient = HttpsClient<Full<Bytes>>;

/// Why the client could not be built.
pub type ClientError = https::HttpsError;

/// Build the client (at most 2 idle connections per host: the function
/// talks to its API and to AWS, one request at a time).
pub fn http_client(connect_timeout: Duration) -> Result<HttpClient, ClientError> {
    https::client(connect_timeout, 2)
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
