//! Who may read: the caller token and its constant-time check.
//!
//! The official extension's contract: every request but `/ping` carries
//! `X-Aws-Parameters-Secrets-Token` equal to the function's
//! `AWS_SESSION_TOKEN` (under SnapStart, `AWS_CONTAINER_AUTHORIZATION_TOKEN`),
//! which only code running in the sandbox knows. A missing token is refused
//! like a wrong one (403), as AWS's own implementation of the API does.

use std::fmt;

use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// The token header of the official extension.
/// Looked up by a ready-made [`HeaderName`]: a `&str` key is parsed and
/// lower-cased again on every request (`HdrName::from_bytes`, visible in
/// the hot path's profile).
pub(crate) const TOKEN_HEADER: HeaderName =
    HeaderName::from_static("x-aws-parameters-secrets-token");

/// The caller token. Wiped on drop, never printed.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wrap a token value.
    pub fn new(value: String) -> Self {
        Token(Zeroizing::new(value))
    }

    /// The token bytes, for the constant-time comparison.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Check the request's token: exactly one header, equal to `token`.
pub(crate) fn check(headers: &HeaderMap, token: &Token) -> Result<(), ApiError> {
    let mut values = headers.get_all(&TOKEN_HEADER).iter();
    let Some(given) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    if values.next().is_some() {
        return Err(ApiError::WrongToken);
    }
    let expected = token.as_bytes();
    let given = given.as_bytes();
    // `ct_eq` on slices of different lengths is false without comparing
    // contents; the length of the expected token is not a secret worth
    // hiding (session tokens have a public format).
    if expected.is_empty() || !bool::from(given.ct_eq(expected)) {
        return Err(ApiError::WrongToken);
    }
    Ok(())
}
