/*!
The caching core of sidekey.

A [`SecretCache`] sits in front of a [`Fetch`]er (AWS Secrets Manager and SSM
Parameter Store) and gives each caller a value fast, correct and without
waste:

* **single flight**: concurrent misses (or refreshes) for one key make one
  upstream call, and every caller gets its result;
* **TTL with jitter** per kind, **refresh-ahead** in the last part of the TTL,
  and [`SecretCache::refresh_due`] for Lambda's INVOKE event, both only for
  values read since they were last stored and never for a pinned
  `versionId` (immutable): a value read once is not re-read every TTL;
* **serve stale** while upstream fails transiently, up to `max_stale`, with
  capped exponential backoff; not-found and access-denied are answers, not
  outages, and are remembered briefly ([`CacheConfig::negative_ttl`]), apart
  from the values so they never evict one;
* **deadlines**: every upstream read ends by its kind's deadline
  ([`CacheConfig::secret_deadline`], default [`DEFAULT_DEADLINE`], 2 s, to fit
  a function with a 3 s timeout; zero means the default, never "wait
  forever"), waiting for one of the [`CacheConfig::max_upstream`] upstream
  slots included. A read that has a stale value waits at most
  [`CacheConfig::stale_wait`] (250 ms) for its refresh; one without gets
  [`ErrorKind::Timeout`] at the deadline. INVOKE is held only while a read
  it waits for can still answer;
* **bounded** by entries and bytes, least recently *used* evicted first;
* **SnapStart**: a [`RestoreDetector`] tells a restore from the clocks and
  [`SecretCache::expire_all`] makes every value due;
* **hygiene**: values live only in zeroizing buffers and no `Debug` prints one.

With a TTL of zero for a kind ([`CacheConfig::caching_enabled`]) caching of
that kind is off: every read goes upstream, prefetch and INVOKE-time refresh
do nothing.

It knows nothing of HTTP servers or Lambda: the extension puts an HTTP front
and the Lambda lifecycle around it, and the edge function embeds it as is.

# Layout

* [`key`]: what is asked for ([`Key`], [`SecretRequest`], [`ParameterRequest`],
  [`PathRequest`]).
* [`record`]: what comes back ([`Record`]) and how it is kept ([`Cached`]).
* [`fetch`]: the upstream seam ([`Fetch`]).
* [`protocol`]: the AWS JSON protocol: error codes to [`ErrorKind`] and
  back, answers to [`Record`]s, the wire bodies. Both fetchers feed it.
* `cache`: the policy itself ([`SecretCache`]), with its flights and
  deadlines, its slots, and the prefetch.
* `config`: the knobs and their defaults ([`CacheConfig`]).
* `source`: [`SecretSource`], what a function reads secrets through, and
  [`Embedded`], the cache in-process as one.
* [`clock`]: injected time, so TTL logic is tested without sleeping, and the
  SnapStart [`RestoreDetector`].
* [`sigv4`] (feature `sigv4`): [`SigV4Fetcher`], the extension's fetcher:
  AWS JSON calls signed with `aws-sigv4`, with retries and the container
  credentials of SnapStart; the edge signs with it too.
* `aws` (feature `aws-sdk`): [`AwsFetcher`], the same over the official
  AWS SDK, kept as an alternative (bigger: see [`sigv4`]).
* `upstream` (feature `https`): what both fetchers read from Lambda's
  environment ([`Timeouts`], [`SetupError`]).
* [`https`] (feature `https`): the one HTTPS client stack, HTTP/1.1 over
  rustls, for both fetchers and the edge module.
*/
#![warn(missing_docs)]

#[cfg(feature = "aws-sdk")]
mod aws;
mod cache;
pub mod clock;
mod config;
mod error;
pub mod fetch;
#[cfg(feature = "https")]
pub mod https;
pub mod key;
mod metrics;
pub mod protocol;
pub mod record;
#[cfg(feature = "sigv4")]
pub mod sigv4;
mod source;
#[cfg(feature = "https")]
mod upstream;

#[cfg(test)]
mod testutil;

#[cfg(feature = "aws-sdk")]
pub use aws::AwsFetcher;
pub use cache::{PrefetchReport, RefreshReport, SecretCache};
pub use clock::{Clock, RestoreDetector, SystemClock, WallClock};
pub use config::{CacheConfig, TreeLimits, DEFAULT_DEADLINE};
pub use error::{Error, ErrorKind};
pub use fetch::Fetch;
pub use key::{Key, Kind, ParameterRequest, PathRequest, SecretRequest};
pub use metrics::Metrics;
pub use record::{wiped_bytes, Cached, Parameter, Payload, Record, SecretValue};
#[cfg(feature = "sigv4")]
pub use sigv4::SigV4Fetcher;
pub use source::{Embedded, SecretSource, SourceError};
#[cfg(feature = "https")]
pub use upstream::{SetupError, Timeouts};
