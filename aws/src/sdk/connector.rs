//! The SDK's HTTP client: [`crate::https`]'s HTTP/1.1 stack behind the
//! smithy [`HttpClient`] trait, in place of `aws-smithy-http-client`, whose
//! hyper client always brings HTTP/2 (`h2`) along.
//!
//! Timeouts stay the SDK's (operation, attempt) plus the connect timeout
//! set on the stack; failures are told apart the way the SDK's retry
//! strategy needs them: a timeout, an I/O failure (retried), or other.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::body::SdkBody;

use crate::https::{self, HttpsClient, HttpsError};

/// One pooled client shared by every operation of both services.
#[derive(Clone, Debug)]
pub(super) struct Http1 {
    client: HttpsClient<SdkBody>,
}

impl Http1 {
    /// The SDK's client over [`https::client`].
    pub(super) fn shared(
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Result<SharedHttpClient, HttpsError> {
        let client = https::client(connect_timeout, max_idle)?;
        Ok(SharedHttpClient::new(Http1 { client }))
    }
}

impl HttpClient for Http1 {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Http1 {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request
                .try_into_http1x()
                .map_err(|e| ConnectorError::user(e.into()))?;
            let response = client.request(request).await.map_err(connector_error)?;
            Response::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// A hyper-util failure as the SDK's retry strategy reads it.
fn connector_error(e: hyper_util::client::legacy::Error) -> ConnectorError {
    let timed_out = source_chain(&e).any(|s| {
        s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    if timed_out {
        ConnectorError::timeout(e.into())
    } else if e.is_connect()
        || source_chain(&e).any(|s| s.is::<std::io::Error>() || s.is::<hyper::Error>())
    {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

fn source_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| e.source())
}
