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

It knows nothing of HTTP or Lambda, and of AWS only the vocabulary its
policy needs (an [`ErrorKind`] per failure, the shape of the bodies it
keeps): the AWS client (crate `sidekey-aws`, one module per operation)
implements [`Fetch`] for it, the extension puts an HTTP front and the
Lambda lifecycle around it, and the edge function embeds it as is.

# Layout

* [`key`]: what is asked for ([`Key`], [`SecretRequest`], [`ParameterRequest`],
  [`PathRequest`]).
* [`record`]: what comes back ([`Record`]) and how it is kept ([`Cached`]:
  the answer's JSON body, serialized once, in wiped pages).
* [`json`]: JSON string literals decoded into wiped buffers.
* [`fetch`]: the upstream seam ([`Fetch`]).
* `error`: [`Error`] and [`ErrorKind`], the failures the policy tells apart.
* `cache`: the policy itself ([`SecretCache`]), with its flights and
  deadlines, its slots, the prefetch, and the one batch landing.
* `config`: the knobs and their defaults ([`CacheConfig`], [`TreeLimits`]).
* `source`: [`SecretSource`], what a function reads secrets through, and
  [`Embedded`], the cache in-process as one.
* [`clock`]: injected time, so TTL logic is tested without sleeping, and the
  SnapStart [`RestoreDetector`].
*/
#![warn(missing_docs)]

mod cache;
pub mod clock;
mod config;
mod error;
pub mod fetch;
pub mod json;
pub mod key;
mod metrics;
pub mod record;
mod source;

#[cfg(test)]
mod testutil;

pub use cache::{PrefetchReport, RefreshReport, SecretCache, TagReport};
pub use clock::{Clock, RestoreDetector, SystemClock, WallClock};
pub use config::{or_default_deadline, CacheConfig, TreeLimits, DEFAULT_DEADLINE};
pub use error::{Error, ErrorKind};
pub use fetch::{BatchItem, Fetch};
pub use key::{Key, Kind, ParameterRequest, PathRequest, SecretRequest};
pub use metrics::Metrics;
pub use record::{wiped_bytes, Cached, Parameter, Payload, Record, SecretValue};
pub use source::{Embedded, SecretSource, SourceError};
