/*!
sidekey, the Lambda extension: secrets from AWS Secrets Manager and
parameters from SSM Parameter Store, cached and served on
`127.0.0.1:2773`, speaking the AWS Parameters and Secrets Lambda
Extension's HTTP API so function code switches over unchanged.

# Layout

Dependencies point down this list; no module imports one above it.

* `lifecycle`: the phases: serve (bind, prefetch, server), register and
  run the event loop (INVOKE refresh, SnapStart restore, SHUTDOWN; SHUTDOWN
  only under Managed Instances), shut down (drain, last metrics, wipe). Its [`run`] is what `main` calls.
* `background`: the timers of an environment never frozen (Lambda
  Managed Instances): refreshes as values come due, metrics lines.
* `emf`: the cache's counters as CloudWatch embedded-metric-format lines.
* `server`: accept loop, connection limits, graceful drain.
* `api`: a routed request answered from the cache.
* `request`: an HTTP request to a route, one parser per endpoint.
* `sdk`: the SDK-compatible endpoint: AWS JSON 1.1 requests verified by
  their SigV4 signature, served from the cache or passed through.
* [`config`]: the environment, parsed once into a typed [`Config`].
* `auth`: the caller token and its constant-time check.
* `ids`: what an id may be.
* `error`: the one error type and its one mapping to HTTP statuses.
* `logging`: `tracing` set up from the configured level.

The process-wide choices (C's `pow` defined from the `libm` crate, glibc's
malloc capped at one arena) are the `sidekey` binary's
(`src/bin/sidekey/`), not this library's: a binary that links the library
gets none of them.

See `docs/architecture.md` for the data flow and the HTTP contract.
*/
#![warn(missing_docs)]

mod api;
mod auth;
mod background;
pub mod config;
mod emf;
mod error;
mod ids;
pub mod lifecycle;
mod logging;
mod request;
mod sdk;
mod server;

pub use auth::Token;
pub use config::{Config, ConfigError};
pub use lifecycle::{report_init_error, run};
pub use logging::init as init_logging;
