//! The one seam between the cache and the services.
//!
//! The extension and the edge plug in the AWS client (crate `sidekey-aws`:
//! its lean SigV4 fetcher, or the SDK's behind a feature); unit tests plug
//! in a scripted double, the fleet simulation a model of the services. The
//! cache never knows which.

use std::future::Future;

use crate::{Error, ErrorKind, Key, Kind, ParameterRequest, Record};

/// The per-id outcome of a batch read.
pub type BatchItem = (String, Result<Record, Error>);

/// Reads one value from upstream.
pub trait Fetch: Send + Sync + 'static {
    /// Read `key` from its service. Implementations classify every failure
    /// into an [`ErrorKind`] and never put a secret value into an error.
    fn fetch(&self, key: &Key) -> impl Future<Output = Result<Record, Error>> + Send;

    /// Read `key` when the cache holds nothing it may serve for it (a cold
    /// read): the fetcher may try more than it would for a refresh, such
    /// as a replica region when the home region fails transiently. The
    /// default reads it as [`Fetch::fetch`] does.
    fn fetch_cold(&self, key: &Key) -> impl Future<Output = Result<Record, Error>> + Send {
        self.fetch(key)
    }

    /// Reads answered by a region other than the first the fetcher tries
    /// (a replica), so far.
    fn fallback_reads(&self) -> u64 {
        0
    }

    /// Most ids one batch call of `kind` takes ([`Fetch::fetch_batch`],
    /// [`Fetch::fetch_parameters`]): the cache cuts batches to it. The
    /// services' limits are the AWS client's to know (20 for
    /// `BatchGetSecretValue`, 10 for `GetParameters`); a fetcher without
    /// batch calls keeps the default, one.
    fn batch_limit(&self, kind: Kind) -> usize {
        let _ = kind;
        1
    }

    /// Whether `version_id`, the version the cache holds for `key`, is still
    /// the one a read of `key` would answer, found without reading the
    /// value (`DescribeSecret`): `Ok(true)` to keep it for another TTL,
    /// `Ok(false)` to read it (it changed, or this cannot tell). The
    /// default cannot tell.
    fn revalidate(
        &self,
        key: &Key,
        version_id: &str,
    ) -> impl Future<Output = Result<bool, Error>> + Send {
        let _ = (key, version_id);
        async { Ok(false) }
    }

    /// Read a page of the current versions of the secrets tagged `key`
    /// (with `value`, if given): each value by its name, and the next
    /// page's token (`BatchGetSecretValue` with filters). The default says
    /// the fetcher cannot.
    fn fetch_tagged(
        &self,
        key: &str,
        value: Option<&str>,
        next_token: Option<&str>,
    ) -> impl Future<Output = Result<(Vec<BatchItem>, Option<String>), Error>> + Send {
        let _ = (key, value, next_token);
        async { Err(Error::new(ErrorKind::Unsupported, "no tagged read")) }
    }

    /// Read the current versions of up to [`Fetch::batch_limit`] secrets
    /// in one call (`BatchGetSecretValue`). Returns an outcome per
    /// requested id it could attribute; ids missing from the answer are
    /// read one by one by the caller. The default says the fetcher has no
    /// batch call.
    fn fetch_batch(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<BatchItem>, Error>> + Send {
        let _ = ids;
        async { Err(Error::new(ErrorKind::Unsupported, "no batch read")) }
    }

    /// Read the latest versions of up to [`Fetch::batch_limit`] parameters
    /// in one call (`GetParameters`). Returns an outcome per name it could
    /// attribute (a name that does not exist as [`ErrorKind::NotFound`]);
    /// names missing from the answer are read one by one by the caller. The
    /// default reads them one by one itself, one after the other, for a
    /// fetcher without the call.
    fn fetch_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> impl Future<Output = Result<Vec<BatchItem>, Error>> + Send {
        async move {
            let mut items = Vec::with_capacity(names.len());
            for name in names {
                let key = Key::Parameter(ParameterRequest::latest(name.clone(), with_decryption));
                items.push((name.clone(), self.fetch(&key).await));
            }
            Ok(items)
        }
    }
}
