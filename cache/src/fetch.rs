//! The one seam between the cache and the services.
//!
//! The extension plugs in the AWS SDK ([`crate::aws`], feature `aws-sdk`);
//! the edge function plugs in a lean SigV4 client; unit tests plug in a
//! scripted double. The cache never knows which.

use std::future::Future;

use crate::{Error, ErrorKind, Key, Record};

/// The per-id outcome of a batch read.
pub type BatchItem = (String, Result<Record, Error>);

/// Reads one value from upstream.
pub trait Fetch: Send + Sync + 'static {
    /// Read `key` from its service. Implementations classify every failure
    /// into an [`ErrorKind`] and never put a secret value into an error.
    fn fetch(&self, key: &Key) -> impl Future<Output = Result<Record, Error>> + Send;

    /// Read the current versions of up to 20 secrets in one call
    /// (`BatchGetSecretValue`). Returns an outcome per requested id it could
    /// attribute; ids missing from the answer are read one by one by the
    /// caller. The default says the fetcher has no batch call.
    fn fetch_batch(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<BatchItem>, Error>> + Send {
        let _ = ids;
        async { Err(Error::new(ErrorKind::Unsupported, "no batch read")) }
    }

    /// Read the latest versions of up to 10 parameters in one call
    /// (`GetParameters`), as [`fetch_batch`](Self::fetch_batch) does for
    /// secrets: an outcome per name it could attribute, the rest read one
    /// by one by the caller. The default says there is no batch call.
    fn fetch_parameters(
        &self,
        names: &[String],
        with_decryption: bool,
    ) -> impl Future<Output = Result<Vec<BatchItem>, Error>> + Send {
        let _ = (names, with_decryption);
        async { Err(Error::new(ErrorKind::Unsupported, "no batch read")) }
    }
}
