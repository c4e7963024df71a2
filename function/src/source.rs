//! Where a function gets its secrets: one trait, two implementations.
//!
//! * [`Embedded`]: an in-process `sidekey-cache` (Lambda@Edge, which runs no
//!   extensions).
//! * `ExtensionClient` (feature `weather`): the `sidekey` extension over
//!   localhost HTTP.
//!
//! Handlers are generic over [`SecretSource`], so both paths share code and
//! tests.

use std::future::Future;

use sidekey_cache::{ErrorKind, Fetch, Key, SecretCache};
use zeroize::Zeroizing;

/// Why a secret could not be had. Messages name ids, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The secret (or the field in it) does not exist.
    #[error("secret {0} not found")]
    NotFound(String),
    /// The role may not read it.
    #[error("access to secret {0} denied")]
    Denied(String),
    /// The secret is there but not of the expected shape.
    #[error("secret {id}: {reason}")]
    Malformed {
        /// The secret id.
        id: String,
        /// What is wrong (no value quoted).
        reason: String,
    },
    /// The extension or the service could not be reached or failed.
    #[error("secret {id} unavailable: {reason}")]
    Unavailable {
        /// The secret id.
        id: String,
        /// What failed.
        reason: String,
    },
}

/// A source of secret values.
pub trait SecretSource: Send + Sync {
    /// The value of secret `id`, or of its JSON field `field`.
    fn secret(
        &self,
        id: &str,
        field: Option<&str>,
    ) -> impl Future<Output = Result<Zeroizing<String>, SourceError>> + Send;
}

/// An in-process cache as the source.
pub struct Embedded<F: Fetch> {
    cache: SecretCache<F>,
}

impl<F: Fetch> Embedded<F> {
    /// Serve secrets from `cache`.
    pub fn new(cache: SecretCache<F>) -> Self {
        Self { cache }
    }

    /// The cache (for its counters).
    pub fn cache(&self) -> &SecretCache<F> {
        &self.cache
    }
}

impl<F: Fetch> SecretSource for Embedded<F> {
    async fn secret(
        &self,
        id: &str,
        field: Option<&str>,
    ) -> Result<Zeroizing<String>, SourceError> {
        let value = self
            .cache
            .get(&Key::secret(id))
            .await
            .map_err(|e| from_cache(id, &e))?;
        let out = match field {
            Some(f) => value.field(f),
            None => value.text(),
        };
        out.map_err(|e| from_cache(id, &e))
    }
}

fn from_cache(id: &str, e: &sidekey_cache::Error) -> SourceError {
    match e.kind() {
        ErrorKind::NotFound => SourceError::NotFound(id.to_owned()),
        ErrorKind::AccessDenied | ErrorKind::Decryption => SourceError::Denied(id.to_owned()),
        ErrorKind::InvalidRequest => SourceError::Malformed {
            id: id.to_owned(),
            reason: e.message().to_owned(),
        },
        _ => SourceError::Unavailable {
            id: id.to_owned(),
            reason: e.to_string(),
        },
    }
}
