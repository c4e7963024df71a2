//! Where a function gets its secrets: one trait, two implementations.
//!
//! * [`Embedded`]: an in-process cache (Lambda@Edge, which runs no
//!   extensions).
//! * `ExtensionClient` (crate `sidekey-function`): the `sidekey` extension
//!   over localhost HTTP.
//!
//! Handlers are generic over [`SecretSource`], so both paths share code and
//! tests. Both report failures in the cache's own vocabulary
//! ([`ErrorKind`]): the extension's `__type` reads back as the kind the
//! cache gave it ([`ErrorKind::from_code`]), so a function decides the same
//! way whichever side of the process boundary the cache is on.

use std::future::Future;

use zeroize::Zeroizing;

use crate::record::object_fields;
use crate::{Error, ErrorKind, Fetch, Key, SecretCache};

/// Why secret `id` could not be had: the cache's [`Error`], for that id.
/// Messages name ids, never values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("secret {id}: {error}")]
pub struct SourceError {
    id: String,
    error: Error,
}

impl SourceError {
    /// `error` reading secret `id`.
    pub fn new(id: impl Into<String>, error: Error) -> Self {
        Self {
            id: id.into(),
            error,
        }
    }

    /// The secret asked for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What went wrong, as the cache classifies it.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }

    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

/// A source of secret values.
pub trait SecretSource: Send + Sync {
    /// The value of secret `id`, or of its JSON field `field`.
    fn secret(
        &self,
        id: &str,
        field: Option<&str>,
    ) -> impl Future<Output = Result<Zeroizing<String>, SourceError>> + Send;

    /// Several fields of secret `id`'s JSON object, in the order asked: one
    /// read and one parse, whatever the number of fields (the value borrowed
    /// from its wiped text, each field decoded into its own wiped buffer).
    fn fields(
        &self,
        id: &str,
        names: &[&str],
    ) -> impl Future<Output = Result<Vec<Zeroizing<String>>, SourceError>> + Send {
        async move {
            let text = self.secret(id, None).await?;
            object_fields(&text, names).map_err(|e| SourceError::new(id, e))
        }
    }
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
            .map_err(|e| SourceError::new(id, e))?;
        let out = match field {
            Some(f) => value.field(f),
            None => value.text(),
        };
        out.map_err(|e| SourceError::new(id, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Scripted;
    use crate::CacheConfig;

    #[tokio::test]
    async fn fields_read_the_secret_once() {
        let fetch = Scripted::new();
        fetch.set("db", r#"{"user":"app","password":"pw","host":"db.local"}"#);
        let source = Embedded::new(SecretCache::new(fetch.clone(), CacheConfig::default()));
        let got = source
            .fields("db", &["host", "user", "password"])
            .await
            .unwrap();
        let got: Vec<&str> = got.iter().map(|f| f.as_str()).collect();
        assert_eq!(got, ["db.local", "app", "pw"]);
        let e = source.fields("db", &["port"]).await.unwrap_err();
        assert_eq!((e.id(), e.kind()), ("db", ErrorKind::NotFound));
        assert_eq!(fetch.calls(), 1);
    }
}
