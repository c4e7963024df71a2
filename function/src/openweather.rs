//! [`OpenWeather`]: the One Call API 3.0 client of the weather function.

use std::time::Duration;

use serde_json::Value;

use crate::weather::{WeatherApi, WeatherError};

/// The OpenWeather One Call API 3.0.
pub struct OpenWeather {
    client: reqwest::Client,
    base_url: String,
}

impl OpenWeather {
    /// A client for `base_url` (the real API, or a loopback stand-in).
    pub fn new(base_url: &str) -> Result<Self, WeatherError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| WeatherError::Upstream(e.without_url().to_string()))?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }
}

impl WeatherApi for OpenWeather {
    async fn one_call(
        &self,
        key: &str,
        lat: f64,
        lon: f64,
        units: &str,
    ) -> Result<Value, WeatherError> {
        // The key travels in the query string (OpenWeather's `appid`): strip
        // URLs from every error so it never reaches a message or a log.
        let response = self
            .client
            .get(format!("{}/data/3.0/onecall", self.base_url))
            .query(&[
                ("lat", lat.to_string().as_str()),
                ("lon", lon.to_string().as_str()),
                ("units", units),
                ("appid", key),
            ])
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    WeatherError::Timeout
                } else {
                    WeatherError::Upstream(e.without_url().to_string())
                }
            })?;
        match response.status().as_u16() {
            200..=299 => response
                .json::<Value>()
                .await
                .map_err(|_| WeatherError::Upstream("the answer is not JSON".into())),
            401 => Err(WeatherError::KeyRejected),
            s => Err(WeatherError::Upstream(format!("HTTP {s}"))),
        }
    }
}
