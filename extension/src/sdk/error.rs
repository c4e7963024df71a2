//! The SDK-compatible endpoint's one error type and its one mapping to the
//! answers the services give: a status, `{"__type","message"}` and the
//! `X-Amzn-ErrorType` header (botocore reads the body's `__type`, the
//! JavaScript SDK the header first), with an `x-amzn-RequestId`.
//!
//! Messages name parameters and ids, never values.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sidekey_aws::client::AWS_JSON;
use sidekey_aws::errors::{answer_body, status_of};
use sidekey_aws::sigv4::Refusal;

/// Why an SDK request was not answered with a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SdkError {
    /// The request was relayed (`X-Forwarded-For`): refused, as the GET API
    /// refuses it.
    #[error("requests relayed with X-Forwarded-For are refused")]
    Forwarded,
    /// No `X-Amz-Target`, or one naming neither service.
    #[error("{0}")]
    UnknownOperation(String),
    /// A request body over the bound.
    #[error("the request body is over {0} bytes")]
    TooLarge(usize),
    /// The body could not be read, or is not the operation's JSON.
    #[error("{0}")]
    Serialization(String),
    /// The signature was missing, malformed, not the function's, or wrong.
    #[error("{}", refusal_message(.0))]
    Refused(Refusal),
    /// The cache or the service said no.
    #[error("{0}")]
    Upstream(#[from] sidekey_cache::Error),
}

/// What a refused caller is told: for another access key, which
/// credentials are served and what to do about a client that signs with
/// others (an assumed role's, say).
fn refusal_message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::OtherKey => format!(
            "{refusal}: the SDK-compatible endpoint serves only the function's own credentials \
             (AWS_ACCESS_KEY_ID). A client signing with others (an assumed role's) must not be \
             pointed at it: unset AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL_SSM for \
             that client, or read through the extension's roleArn parameter."
        ),
        other => other.to_string(),
    }
}

impl SdkError {
    /// The HTTP status and the `__type` for this error.
    fn status_and_code(&self) -> (u16, &str) {
        match self {
            SdkError::Forwarded => (400, "AccessDeniedException"),
            SdkError::UnknownOperation(_) => (400, "UnknownOperationException"),
            SdkError::TooLarge(_) => (413, "RequestEntityTooLargeException"),
            SdkError::Serialization(_) => (400, "SerializationException"),
            SdkError::Refused(Refusal::Incomplete(_)) => (400, "IncompleteSignatureException"),
            SdkError::Refused(Refusal::OtherKey) => (400, "UnrecognizedClientException"),
            SdkError::Refused(Refusal::Mismatch | Refusal::Expired | Refusal::OtherScope(_)) => {
                (400, "InvalidSignatureException")
            }
            SdkError::Upstream(e) => (status_of(e.kind()), e.code()),
        }
    }

    /// The answer, carrying `request_id`.
    pub(crate) fn into_response(self, request_id: &str) -> Response<Full<Bytes>> {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // The cache's message names ids, never values; keep it.
            SdkError::Upstream(e) => e.message().to_owned(),
            other => other.to_string(),
        };
        let code = code.to_owned();
        let mut response = aws_response(request_id, Bytes::from(answer_body(&code, &message)));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        if let Ok(value) = HeaderValue::from_str(&code) {
            response.headers_mut().insert("x-amzn-errortype", value);
        }
        response
    }
}

/// A 200 answer as the services write it: the AWS JSON 1.1 content type
/// and `x-amzn-RequestId`.
pub(crate) fn aws_response(request_id: &str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(AWS_JSON),
    );
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey_cache::{Error, ErrorKind};

    fn answer(e: SdkError) -> (u16, String, serde_json::Value) {
        let r = e.into_response("req-1");
        let kind = r.headers()["x-amzn-errortype"].to_str().unwrap().to_owned();
        assert_eq!(r.headers()["x-amzn-requestid"], "req-1");
        assert_eq!(r.headers()["content-type"], AWS_JSON);
        let body = futures_body(r.into_body());
        (0, kind, serde_json::from_slice(&body).unwrap())
    }

    fn futures_body(body: Full<Bytes>) -> Bytes {
        use http_body_util::BodyExt;
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(body.collect())
            .unwrap()
            .to_bytes()
    }

    #[test]
    fn errors_answer_as_the_services_do() {
        let (_, kind, body) = answer(SdkError::Refused(Refusal::OtherKey));
        assert_eq!(kind, "UnrecognizedClientException");
        assert_eq!(body["__type"], kind);
        assert!(body["message"]
            .as_str()
            .unwrap()
            .contains("AWS_ENDPOINT_URL_SECRETS_MANAGER"));
        let not_found = Error::new(ErrorKind::NotFound, "no such secret")
            .with_code("ResourceNotFoundException");
        let r = SdkError::Upstream(not_found).into_response("r");
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
        for (e, status, code) in [
            (
                SdkError::Refused(Refusal::Incomplete("x")),
                400,
                "IncompleteSignatureException",
            ),
            (
                SdkError::Refused(Refusal::Mismatch),
                400,
                "InvalidSignatureException",
            ),
            (
                SdkError::Refused(Refusal::Expired),
                400,
                "InvalidSignatureException",
            ),
            (
                SdkError::TooLarge(10),
                413,
                "RequestEntityTooLargeException",
            ),
            (
                SdkError::Upstream(Error::new(ErrorKind::Timeout, "slow")),
                504,
                "Timeout",
            ),
        ] {
            let r = e.into_response("r");
            assert_eq!(
                (r.status().as_u16(), &r.headers()["x-amzn-errortype"]),
                (status, &HeaderValue::from_static(code))
            );
        }
    }
}
