//! The cache's error type. Every upstream failure reaches the cache as an
//! [`ErrorKind`] (the AWS client classifies the services' codes into kinds
//! in one table, `sidekey_aws::errors`); the cache decides retry and
//! serve-stale from the kind alone, and the extension maps kinds to HTTP
//! statuses.
//!
//! Messages come from the service's error message or from our own text and
//! never contain a secret value.

use std::fmt;
use std::sync::Arc;

/// Why a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The secret, parameter or version does not exist (or is deleted).
    NotFound,
    /// The caller's role may not read it, or may not decrypt it.
    AccessDenied,
    /// The service refused the request's credentials rather than the
    /// read: expired or rotated credentials, a signature made with a skewed
    /// clock. It says nothing about the value, and fresh credentials (or a
    /// corrected clock) fix it. Transient.
    Credentials,
    /// The request was malformed (bad id, bad selector combination...).
    InvalidRequest,
    /// The KMS key could not decrypt the value.
    Decryption,
    /// The service throttled us. Transient.
    Throttled,
    /// The service answered 5xx. Transient.
    Unavailable,
    /// No answer within the configured timeout. Transient.
    Timeout,
    /// The connection could not be made or broke. Transient.
    Connection,
    /// The caller asked for something this fetcher cannot do.
    Unsupported,
    /// The cache was shut down.
    Closed,
    /// Anything else the service said.
    Other,
}

impl ErrorKind {
    /// Transient errors are retried with backoff and let the cache serve a
    /// stale value; the others are answers, not outages.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Throttled
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Connection
                | ErrorKind::Credentials
        )
    }

    /// The kind's name on the wire (`__type`). For the kinds AWS has a code
    /// for it is AWS's (`ResourceNotFoundException`...), so a function
    /// that switches from the SDK to the extension sees the same names;
    /// `sidekey_aws::errors` reads every one of them back as its kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "ResourceNotFoundException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Credentials => "InvalidCredentials",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::Decryption => "DecryptionFailure",
            ErrorKind::Throttled => "ThrottlingException",
            ErrorKind::Unavailable => "ServiceUnavailable",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Connection => "ConnectionError",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Closed => "Closed",
            ErrorKind::Other => "UpstreamError",
        }
    }

    /// Every kind, for tables and tests that must cover them all.
    pub const ALL: [ErrorKind; 12] = [
        ErrorKind::NotFound,
        ErrorKind::AccessDenied,
        ErrorKind::Credentials,
        ErrorKind::InvalidRequest,
        ErrorKind::Decryption,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::Unsupported,
        ErrorKind::Closed,
        ErrorKind::Other,
    ];
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure. Cheap to clone: one flight's error is handed to
/// every caller that waited on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: Arc<str>,
    /// The service's own error code, when it gave one we classified.
    code: Option<Arc<str>>,
}

impl Error {
    /// An error of `kind` with a human-readable message (never a secret).
    pub fn new(kind: ErrorKind, message: impl Into<Arc<str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            code: None,
        }
    }

    /// Keep the service's own error code (`ParameterNotFound`,
    /// `DecryptionFailure`...), so the extension answers with AWS's
    /// `__type`, not only our kind's. The code comes bare (the AWS client
    /// strips a namespace prefix where it reads one); an empty code is
    /// ignored.
    pub fn with_code(mut self, code: &str) -> Self {
        if !code.is_empty() {
            self.code = Some(code.into());
        }
        self
    }

    /// The error code for the wire: the service's, else the kind's.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or(self.kind.as_str())
    }

    /// What went wrong, for retry and status decisions.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for `self.kind().is_transient()`.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        for k in [
            ErrorKind::Throttled,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Connection,
            ErrorKind::Credentials,
        ] {
            assert!(k.is_transient(), "{k}");
        }
        for k in [
            ErrorKind::NotFound,
            ErrorKind::AccessDenied,
            ErrorKind::InvalidRequest,
            ErrorKind::Decryption,
            ErrorKind::Other,
        ] {
            assert!(!k.is_transient(), "{k}");
        }
    }
}
