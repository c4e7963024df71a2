/*!
The regional `weather` function, and the client functions use to read
secrets through the sidekey extension.

* [`weather`]: the handler (generic over [`SecretSource`] and
  [`weather::WeatherApi`]), its configuration and its errors.
* [`extension_client`]: [`ExtensionClient`], a [`SecretSource`] over the
  extension's HTTP API on localhost. Any Rust function (and the benchmarks)
  reads secrets through it.
* [`openweather`]: [`OpenWeather`], the One Call API client.

The other [`SecretSource`], [`sidekey_cache::Embedded`], is the cache itself
in-process: the Lambda@Edge function (`edge/`) uses it.
*/
#![warn(missing_docs)]

pub mod extension_client;
pub mod openweather;
pub mod weather;

pub use extension_client::ExtensionClient;
pub use openweather::OpenWeather;
pub use sidekey_cache::{SecretSource, SourceError};
