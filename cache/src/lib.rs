/*!
The caching core of sidekey.

A [`SecretCache`] sits in front of a [`Fetch`]er (AWS Secrets Manager and SSM
Parameter Store) and gives each caller a value fast, correct and without
waste:

* **single flight**: concurrent misses (or refreshes) for one key make one
  upstream call, and every caller gets its result;
* **TTL with jitter** per kind, **refresh-ahead** in the last part of the TTL,
  and [`SecretCache::refresh_due`] for Lambda's INVOKE event;
* **serve stale** while upstream fails transiently, up to `max_stale`, with
  capped exponential backoff; not-found and access-denied are answers, not
  outages, and are remembered briefly ([`CacheConfig::negative_ttl`]);
* **bounded** by entries and bytes, least recently *used* evicted first;
* **hygiene**: values live only in zeroizing buffers and no `Debug` prints one.

It knows nothing of HTTP servers or Lambda: the extension puts an HTTP front
and the Lambda lifecycle around it, and the edge function embeds it as is.

# Layout

* [`key`]: what is asked for ([`Key`], [`SecretRequest`], [`ParameterRequest`]).
* [`record`]: what comes back ([`Record`]) and how it is kept ([`Cached`]).
* [`fetch`]: the upstream seam ([`Fetch`]).
* `cache`: the policy itself ([`SecretCache`]).
* [`clock`]: injected time, so TTL logic is tested without sleeping.
* `aws` (feature `aws-sdk`): [`AwsFetcher`] over the official AWS SDK.
*/
#![warn(missing_docs)]

#[cfg(feature = "aws-sdk")]
mod aws;
mod cache;
pub mod clock;
mod config;
mod error;
pub mod fetch;
pub mod key;
mod metrics;
pub mod record;

#[cfg(test)]
mod testutil;

#[cfg(feature = "aws-sdk")]
pub use aws::{AwsFetcher, Timeouts};
pub use cache::{PrefetchReport, SecretCache};
pub use clock::{Clock, ManualClock, RestoreDetector, SystemClock, WallClock};
pub use config::{CacheConfig, DEFAULT_DEADLINE};
pub use error::{Error, ErrorKind};
pub use fetch::Fetch;
pub use key::{Key, Kind, ParameterRequest, SecretRequest};
pub use metrics::Metrics;
pub use record::{Cached, Parameter, Payload, Record, SecretValue};
