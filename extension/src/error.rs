//! The extension's one error type and its one mapping to HTTP.
//!
//! Handlers return `Result<_, ApiError>`; only [`ApiError::into_response`]
//! picks a status code and writes the JSON body. Messages name parameters
//! and ids, never values.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sidekey_cache::ErrorKind;

/// Why a request was not answered with a value.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A missing, unknown, repeated or malformed query parameter, or a bad path.
    #[error("{0}")]
    BadRequest(String),
    /// `X-Forwarded-For` is present: the request was relayed, refuse it (SSRF).
    #[error("requests relayed with X-Forwarded-For are refused")]
    Forwarded,
    /// No `X-Aws-Parameters-Secrets-Token` header.
    #[error("missing X-Aws-Parameters-Secrets-Token header")]
    MissingToken,
    /// The token does not match.
    #[error("invalid X-Aws-Parameters-Secrets-Token")]
    WrongToken,
    /// No such endpoint.
    #[error("unknown path; use /secretsmanager/get, /secretsmanager/batch, /systemsmanager/parameters/get, /systemsmanager/parameters/get-by-path, /v1/ID, /ping or /metrics")]
    UnknownPath,
    /// Anything but GET.
    #[error("only GET is allowed")]
    MethodNotAllowed,
    /// Over the client connection limit.
    #[error("too many connections")]
    TooManyConnections,
    /// A `roleArn` the allowlist refuses (a malformed one is a
    /// `BadRequest` already).
    #[error("{0}")]
    Role(sidekey_aws::roles::RoleRefusal),
    /// The cache or the service said no.
    #[error("{0}")]
    Upstream(#[from] sidekey_cache::Error),
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::Forwarded => StatusCode::BAD_REQUEST,
            ApiError::MissingToken | ApiError::WrongToken => StatusCode::FORBIDDEN,
            ApiError::UnknownPath => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Role(sidekey_aws::roles::RoleRefusal::NotAllowed) => StatusCode::FORBIDDEN,
            ApiError::Role(_) => StatusCode::BAD_REQUEST,
            // The service's client errors keep the status AWS answered
            // them with (400) and AWS's `__type`, as AWS's own
            // implementation of this API passes them on.
            ApiError::Upstream(e) => match e.kind() {
                ErrorKind::NotFound
                | ErrorKind::InvalidRequest
                | ErrorKind::AccessDenied
                | ErrorKind::Decryption => StatusCode::BAD_REQUEST,
                ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::Closed => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            },
        }
    }

    /// The `__type` of the JSON body: ours, or the service's own code.
    pub fn code(&self) -> &str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Forwarded => "ForwardedRequestRefused",
            ApiError::MissingToken => "MissingToken",
            ApiError::WrongToken => "InvalidToken",
            ApiError::UnknownPath => "UnknownPath",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::TooManyConnections => "TooManyConnections",
            ApiError::Role(sidekey_aws::roles::RoleRefusal::NotAllowed) => "RoleNotAllowed",
            ApiError::Role(_) => "BadRequest",
            ApiError::Upstream(e) => e.code(),
        }
    }

    /// `{"__type": CODE, "message": TEXT}` with the status.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = json_response(self.status(), Bytes::from(self.body()));
        if matches!(self, ApiError::MethodNotAllowed) {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
        }
        response
    }

    /// The JSON body alone (also written raw by the connection limiter).
    pub(crate) fn body(&self) -> String {
        let message = match self {
            // The cache's message already starts with nothing secret; keep it.
            ApiError::Upstream(e) => e.message().to_owned(),
            other => other.to_string(),
        };
        serde_json::json!({ "__type": self.code(), "message": message }).to_string()
    }
}

/// A response with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use sidekey_cache::Error;

    #[test]
    fn statuses() {
        let up = |k| ApiError::Upstream(Error::new(k, "m")).status().as_u16();
        assert_eq!(up(ErrorKind::NotFound), 400);
        assert_eq!(up(ErrorKind::AccessDenied), 400);
        assert_eq!(up(ErrorKind::InvalidRequest), 400);
        assert_eq!(up(ErrorKind::Throttled), 502);
        assert_eq!(up(ErrorKind::Unavailable), 502);
        assert_eq!(up(ErrorKind::Connection), 502);
        // Refused credentials say nothing of the value: an upstream failure.
        assert_eq!(up(ErrorKind::Credentials), 502);
        assert_eq!(up(ErrorKind::Timeout), 504);
        assert_eq!(ApiError::MissingToken.status(), 403);
        assert_eq!(ApiError::WrongToken.status(), 403);
        assert_eq!(ApiError::MethodNotAllowed.status(), 405);
        assert_eq!(ApiError::TooManyConnections.status(), 429);
    }

    #[test]
    fn body_is_json_with_type_and_message() {
        let body = ApiError::BadRequest("unknown parameter \"x\"".into()).body();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["__type"], "BadRequest");
        assert_eq!(v["message"], "unknown parameter \"x\"");
    }
}
