/*!
The functions that use sidekey.

* [`source`]: [`SecretSource`], implemented by the extension client and by
  an embedded cache.
* `weather` (feature `weather`): the regional function's handler, calling the
  OpenWeather One Call API with a key read from the extension.
*/
#![warn(missing_docs)]

pub mod source;

pub use source::{Embedded, SecretSource, SourceError};
#[cfg(feature = "edge")]
pub mod edge;
#[cfg(feature = "weather")]
pub mod weather;
#[cfg(feature = "weather")]
pub mod weather_client;
