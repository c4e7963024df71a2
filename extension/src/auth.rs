//! Who may read: the caller token and its constant-time check.
//!
//! The official extension's contract: every request but `/ping` carries
//! `X-Aws-Parameters-Secrets-Token` equal to the function's
//! `AWS_SESSION_TOKEN` (under SnapStart, `AWS_CONTAINER_AUTHORIZATION_TOKEN`),
//! which only code running in the sandbox knows. A missing token is refused
//! like a wrong one (403), as AWS's own implementation of the API does.

use std::fmt;

use http::{HeaderName, HeaderValue};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::ApiError;

/// The token header of the official extension: a ready-made [`HeaderName`],
/// compared with each of the request's header names as they are read.
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

/// The token headers of a request, gathered while its headers are read
/// once ([`crate::request::route`]): the first value, and whether there
/// were more.
#[derive(Clone, Copy, Default)]
pub(crate) struct Presented<'h> {
    first: Option<&'h HeaderValue>,
    more: bool,
}

impl<'h> Presented<'h> {
    /// One more `X-Aws-Parameters-Secrets-Token` value.
    pub(crate) fn add(&mut self, value: &'h HeaderValue) {
        match self.first {
            None => self.first = Some(value),
            Some(_) => self.more = true,
        }
    }
}

/// Check the request's token: exactly one header, equal to `token`.
pub(crate) fn check(presented: Presented<'_>, token: &Token) -> Result<(), ApiError> {
    let Some(given) = presented.first else {
        return Err(ApiError::MissingToken);
    };
    if presented.more {
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
