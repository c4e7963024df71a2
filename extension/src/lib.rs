/*!
sidekey, the Lambda extension: secrets from AWS Secrets Manager and
parameters from SSM Parameter Store, cached and served on
`127.0.0.1:2773`, speaking the AWS Parameters and Secrets Lambda
Extension's HTTP API so function code switches over unchanged.

# Layout

* [`config`]: the environment, parsed once into a typed [`Config`].
* [`request`]: an HTTP request to a [`request::Route`], or a precise error.
* [`api`]: a route answered from the cache.
* [`error`]: the one error type and its one mapping to HTTP statuses.
* [`server`]: accept loop, connection limit, graceful drain.
* [`lifecycle`]: bind, prefetch, register, INVOKE refresh, SHUTDOWN.
* `logging`: `tracing` set up from the configured level.
*/
#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod error;
pub mod lifecycle;
mod logging;
pub mod request;
pub mod server;

pub use config::{Config, ConfigError};
pub use error::ApiError;
pub use lifecycle::{report_init_error, run};
pub use logging::init as init_logging;
