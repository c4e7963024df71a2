/*!
The regional `weather` function, and the client functions use to read
secrets through the sidekey extension.

* [`weather`]: the handler (generic over [`SecretSource`] and
  [`weather::WeatherApi`]), its configuration and its errors.
* [`ExtensionClient`] (crate `sidekey-client`): the [`SecretSource`] it
  reads its key through, the extension's HTTP API on localhost.
* [`openweather`]: [`OpenWeather`], the One Call API client.

The other [`SecretSource`], [`sidekey_cache::Embedded`], is the cache itself
in-process: the Lambda@Edge function (`edge/`) uses it.
*/
#![warn(missing_docs)]

pub mod openweather;
pub mod weather;

pub use openweather::OpenWeather;
pub use sidekey_cache::{SecretSource, SourceError};
pub use sidekey_client::ExtensionClient;
