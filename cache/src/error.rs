//! The cache's error type. Every upstream failure is classified once, here,
//! into an [`ErrorKind`]; the cache decides retry and serve-stale from the
//! kind alone, and the extension maps kinds to HTTP statuses.
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
        )
    }
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
    /// `__type`, not only our kind's. An empty code is ignored.
    pub fn with_code(mut self, code: &str) -> Self {
        let code = code.rsplit('#').next().unwrap_or(code);
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
