/*!
sidekey's one owner of the AWS wire.

Everything sidekey knows about calling AWS, and about answering the AWS
SDKs itself, lives here and nowhere else; the cache (`sidekey-cache`) sees
only records, keys and [`ErrorKind`](sidekey_cache::ErrorKind)s through its
[`Fetch`](sidekey_cache::Fetch) trait.

# Layout

* [`ops`]: one module per operation (`get_secret_value`,
  `batch_get_secret_value`, `get_parameter`, `get_parameters`,
  `get_parameters_by_path`), each owning its request shape, its answer
  parsing, the body sidekey writes when it answers that operation, and its
  error codes. "Where does sidekey build a `GetParameters` request, read
  its answer and classify its errors?" is answered by `ops/get_parameters.rs`.
* [`errors`]: the one table from AWS's error codes and statuses to kinds.
* [`sigv4`]: Signature Version 4, signing and verifying, over ring.
* `env` (feature `client`): what Lambda's environment says (region,
  credentials, endpoints, FIPS), each service's [`Endpoint`], [`Timeouts`].
* `credentials` (feature `client`): the environment's credentials, or the
  container endpoint's (SnapStart), refreshed before they expire.
* [`https`] (feature `client`): the one HTTPS client stack, HTTP/1.1 over
  rustls with ring, for every call sidekey makes.
* [`client`] (feature `client`): [`AwsClient`], the pooled client, the
  credentials, the home region's endpoints; signed calls and pass-through.
* [`fetcher`] (feature `client`): [`SigV4Fetcher`], the lean fetcher of the
  extension and the edge: sign, send, read, classify, retry.
* `sdk` (feature `aws-sdk`): [`AwsFetcher`], the same over the official
  AWS SDK, kept as an alternative (bigger: see [`fetcher`]).
*/
#![warn(missing_docs)]

pub mod errors;
pub mod ops;
pub mod sigv4;

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod credentials;
#[cfg(feature = "client")]
pub mod env;
#[cfg(feature = "client")]
pub mod fetcher;
#[cfg(feature = "client")]
pub mod https;
#[cfg(feature = "client")]
pub mod roles;
#[cfg(feature = "aws-sdk")]
mod sdk;

#[cfg(feature = "client")]
pub use client::AwsClient;
#[cfg(feature = "client")]
pub use env::{Endpoint, Environment, SetupError, Timeouts};
#[cfg(feature = "client")]
pub use fetcher::SigV4Fetcher;
#[cfg(feature = "aws-sdk")]
pub use sdk::AwsFetcher;
pub use sigv4::Credentials;
