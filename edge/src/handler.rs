//! The viewer-request handler: read the API key, call the API with it, let
//! the request through or answer the viewer.
//!
//! | outcome | reply |
//! |---|---|
//! | the API answered 2xx | the request, unchanged (it goes on to the origin) |
//! | the API answered anything else, or could not be reached | `502 Bad Gateway` |
//! | the key could not be read (missing, denied, outage) | `503 Service Unavailable` |
//! | the event is not a viewer-request event | `502 Bad Gateway`, as CloudFront itself answers when a function fails |
//!
//! Generated responses are `no-store` and carry a fixed text: the reason
//! goes to the function's log through [`EdgeError`]'s `Display`, which never
//! holds the key (nor the secret id's value, nor any part of the event).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use super::event::{Reply, Request, Response, ViewerRequestEvent};
use sidekey_cache::{SecretSource, SourceError};

/// The body the API expects from this function.
pub const API_BODY: &[u8] = br#"{"source":"lambda-edge"}"#;

/// The call to the external API, as a seam: the handler is tested with a
/// double, and runs with [`super::HttpApi`].
pub trait ApiCall: Send + Sync {
    /// `POST` `body` with `Authorization: <authorization>`; the status code.
    fn post(
        &self,
        authorization: &str,
        body: Bytes,
    ) -> impl Future<Output = Result<u16, ApiError>> + Send;
}

/// Why the API could not be called. Never holds the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The key has characters a header cannot carry.
    #[error("the API key is not a valid header value")]
    InvalidKey,
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS or HTTP failed.
    #[error("request failed: {0}")]
    Request(String),
}

/// Why a request was not let through. [`EdgeError::response`] is the one
/// place errors become CloudFront responses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// The input is not a viewer-request event (position only: the event
    /// holds the viewer's headers, which are not ours to log).
    #[error("malformed viewer-request event: {0}")]
    Event(String),
    /// The key could not be read.
    #[error("API key unavailable: {0}")]
    Secret(#[from] SourceError),
    /// The API answered with a non-2xx status.
    #[error("the API answered {0}")]
    Refused(u16),
    /// The API could not be called.
    #[error("the API could not be called: {0}")]
    Api(#[from] ApiError),
}

impl EdgeError {
    /// The HTTP status the viewer gets.
    pub fn status(&self) -> u16 {
        match self {
            EdgeError::Secret(_) => 503,
            EdgeError::Event(_) | EdgeError::Refused(_) | EdgeError::Api(_) => 502,
        }
    }

    /// The response CloudFront sends the viewer. Fixed texts only.
    pub fn response(&self) -> Response {
        match self.status() {
            503 => Response::text(
                503,
                "Service Unavailable",
                "The service is temporarily unavailable.\n",
            ),
            status => Response::text(
                status,
                "Bad Gateway",
                "The request could not be authorized.\n",
            ),
        }
    }
}

impl From<Result<Request, EdgeError>> for Reply {
    fn from(result: Result<Request, EdgeError>) -> Self {
        match result {
            Ok(request) => Reply::Forward(request),
            Err(e) => Reply::Respond(e.response()),
        }
    }
}

/// The handler: a key source, the API, and which secret (and JSON field)
/// holds the key.
#[derive(Debug)]
pub struct Handler<S, A> {
    source: S,
    api: A,
    secret_id: String,
    field: Option<String>,
}

impl<S: SecretSource, A: ApiCall> Handler<S, A> {
    /// Read the key from `secret_id` (its JSON `field`, or the whole string
    /// if `None`) through `source`, and call `api` with it.
    pub fn new(source: S, api: A, secret_id: String, field: Option<String>) -> Self {
        Self {
            source,
            api,
            secret_id,
            field,
        }
    }

    /// The key source (for its counters).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Handle one event given as JSON: the request to let through, or why
    /// not. `Reply::from` turns the result into what CloudFront expects.
    pub async fn handle(&self, event_json: &str) -> Result<Request, EdgeError> {
        let event: ViewerRequestEvent = serde_json::from_str(event_json).map_err(|e| {
            EdgeError::Event(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let record = event
            .records
            .into_iter()
            .next()
            .ok_or_else(|| EdgeError::Event("no record".to_owned()))?;
        // Associated with another trigger by mistake, the function must not
        // let an origin's request or response through unchecked.
        let trigger = record.cf.config.event_type.as_str();
        if trigger != "viewer-request" {
            let named = match trigger {
                "origin-request" | "origin-response" | "viewer-response" => trigger,
                _ => "unknown",
            };
            return Err(EdgeError::Event(format!(
                "a {named} event: this function handles viewer-request events only"
            )));
        }
        self.authorize().await?;
        Ok(record.cf.request)
    }

    /// Read the key and call the API; `Ok` if it answered 2xx.
    pub async fn authorize(&self) -> Result<(), EdgeError> {
        let key = self
            .source
            .secret(&self.secret_id, self.field.as_deref())
            .await?;
        let status = self.api.post(&key, Bytes::from_static(API_BODY)).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(EdgeError::Refused(status))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use sidekey_cache::ErrorKind;
    use zeroize::Zeroizing;

    use super::*;
    use crate::event::tests::EVENT;

    const KEY: &str = "k3y-v4lue-that-must-not-leak";

    /// A source that answers one scripted result and counts reads.
    struct Source {
        answer: Result<&'static str, SourceError>,
        reads: AtomicUsize,
        asked: Mutex<Vec<(String, Option<String>)>>,
    }

    impl Source {
        fn ok() -> Self {
            Self::answering(Ok(KEY))
        }
        fn answering(answer: Result<&'static str, SourceError>) -> Self {
            Self {
                answer,
                reads: AtomicUsize::new(0),
                asked: Mutex::new(Vec::new()),
            }
        }
    }

    impl SecretSource for Source {
        async fn secret(
            &self,
            id: &str,
            field: Option<&str>,
        ) -> Result<Zeroizing<String>, SourceError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.asked
                .lock()
                .unwrap()
                .push((id.to_owned(), field.map(str::to_owned)));
            self.answer.clone().map(|v| Zeroizing::new(v.to_owned()))
        }
    }

    /// An API that records what it got and answers a scripted result.
    struct Api {
        answer: Result<u16, ApiError>,
        seen: Mutex<Vec<(String, Bytes)>>,
    }

    impl Api {
        fn answering(answer: Result<u16, ApiError>) -> Self {
            Self {
                answer,
                seen: Mutex::new(Vec::new()),
            }
        }
    }

    impl ApiCall for Api {
        async fn post(&self, authorization: &str, body: Bytes) -> Result<u16, ApiError> {
            self.seen
                .lock()
                .unwrap()
                .push((authorization.to_owned(), body));
            self.answer.clone()
        }
    }

    fn handler(source: Source, api: Api) -> Handler<Source, Api> {
        Handler::new(source, api, "edge/api".into(), Some("apikey".into()))
    }

    /// The reply as CloudFront would read it, checked for the key.
    async fn reply(
        h: &Handler<Source, Api>,
        event: &str,
    ) -> (serde_json::Value, Option<EdgeError>) {
        let result = h.handle(event).await;
        let err = result.as_ref().err().cloned();
        if let Some(e) = &err {
            assert!(!e.to_string().contains(KEY), "key in error: {e}");
            assert!(!format!("{e:?}").contains(KEY), "key in error debug");
        }
        let text = serde_json::to_string(&Reply::from(result)).unwrap();
        assert!(!text.contains(KEY), "key in reply: {text}");
        (serde_json::from_str(&text).unwrap(), err)
    }

    #[tokio::test]
    async fn api_2xx_passes_the_request_through_unchanged() {
        for status in [200, 204, 299] {
            let h = handler(Source::ok(), Api::answering(Ok(status)));
            let (out, err) = reply(&h, EVENT).await;
            assert_eq!(err, None);
            let raw: serde_json::Value = serde_json::from_str(EVENT).unwrap();
            assert_eq!(out, raw["Records"][0]["cf"]["request"]);
            let seen = h.api.seen.lock().unwrap();
            assert_eq!(seen[0].0, KEY);
            assert_eq!(&seen[0].1[..], API_BODY);
            assert_eq!(
                h.source.asked.lock().unwrap()[0],
                ("edge/api".to_owned(), Some("apikey".to_owned()))
            );
        }
    }

    #[tokio::test]
    async fn api_refusal_is_502() {
        for status in [401, 403, 500, 302, 199] {
            let h = handler(Source::ok(), Api::answering(Ok(status)));
            let (out, err) = reply(&h, EVENT).await;
            assert_eq!(err, Some(EdgeError::Refused(status)));
            assert_eq!(out["status"], "502");
            assert_eq!(out["statusDescription"], "Bad Gateway");
            assert_eq!(out["headers"]["cache-control"][0]["value"], "no-store");
        }
    }

    #[tokio::test]
    async fn api_unreachable_is_502() {
        for e in [
            ApiError::Timeout(Duration::from_secs(1)),
            ApiError::Request("connection refused".into()),
            ApiError::InvalidKey,
        ] {
            let h = handler(Source::ok(), Api::answering(Err(e.clone())));
            let (out, err) = reply(&h, EVENT).await;
            assert_eq!(err, Some(EdgeError::Api(e)));
            assert_eq!(out["status"], "502");
        }
    }

    #[tokio::test]
    async fn secret_unavailable_is_503_and_the_api_is_not_called() {
        for (kind, message) in [
            (ErrorKind::NotFound, "no such secret"),
            (ErrorKind::AccessDenied, "denied"),
            (ErrorKind::Decryption, "KMS said no"),
            (ErrorKind::Throttled, "slow down"),
            (ErrorKind::InvalidRequest, "the value is not a JSON object"),
        ] {
            let e = SourceError::new("edge/api", sidekey_cache::Error::new(kind, message));
            let h = handler(Source::answering(Err(e.clone())), Api::answering(Ok(200)));
            let (out, err) = reply(&h, EVENT).await;
            assert_eq!(err, Some(EdgeError::Secret(e)));
            assert_eq!(out["status"], "503");
            // The viewer learns nothing about which secret or why.
            assert!(!out["body"].as_str().unwrap().contains("edge/api"));
            assert!(h.api.seen.lock().unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn malformed_event_is_502_without_reading_the_key() {
        for event in [
            "",
            "not json",
            "{}",
            r#"{"Records":[]}"#,
            r#"{"Records":[{"cf":{"config":{},"request":{}}}]}"#,
            r#"{"Records":[{"cf":{"request":{"clientIp":"1.2.3.4","headers":{"a":[{"value":7}]},"method":"GET","querystring":"","uri":"/"}}}]}"#,
        ] {
            let h = handler(Source::ok(), Api::answering(Ok(200)));
            let (out, err) = reply(&h, event).await;
            assert!(matches!(err, Some(EdgeError::Event(_))), "{event}: {err:?}");
            assert_eq!(out["status"], "502");
            assert_eq!(h.source.reads.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn other_triggers_are_refused_without_reading_the_key() {
        for (trigger, named) in [
            ("origin-request", "origin-request"),
            ("viewer-response", "viewer-response"),
            ("Bearer viewer-token", "unknown"),
        ] {
            let event = EVENT.replace("\"viewer-request\"", &format!("{trigger:?}"));
            let h = handler(Source::ok(), Api::answering(Ok(200)));
            let (out, err) = reply(&h, &event).await;
            let Some(EdgeError::Event(why)) = err else {
                panic!("{trigger}: {err:?}")
            };
            assert!(
                why.contains(named) && !why.contains("viewer-token"),
                "{why}"
            );
            assert_eq!(out["status"], "502");
            assert_eq!(h.source.reads.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn event_errors_do_not_quote_the_event() {
        let h = handler(Source::ok(), Api::answering(Ok(200)));
        let event = r#"{"Records":[{"cf":{"config":"Bearer viewer-token","request":{}}}]}"#;
        let err = h.handle(event).await.unwrap_err();
        assert!(!err.to_string().contains("viewer-token"), "{err}");
    }
}
