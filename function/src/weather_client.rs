//! The network halves of the weather function: [`ExtensionClient`] (the
//! sidekey extension on localhost) and [`OpenWeather`] (the One Call API).

use std::time::Duration;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::weather::{WeatherApi, WeatherError};
use crate::{SecretSource, SourceError};

/// How long a read from the extension may take before the function gives
/// up with a clear error (a frozen or wedged extension must not hang it).
const EXTENSION_TIMEOUT: Duration = Duration::from_secs(3);

/// The sidekey (or official) extension's HTTP API on localhost, over one
/// keep-alive connection reused across invocations.
pub struct ExtensionClient {
    client: reqwest::Client,
    base: String,
    token: Zeroizing<String>,
}

impl ExtensionClient {
    /// A client for the extension at `127.0.0.1:port`, presenting `token`.
    pub fn new(port: u16, token: String) -> Result<Self, SourceError> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(EXTENSION_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| SourceError::Unavailable {
                id: String::new(),
                reason: format!("cannot build the HTTP client: {}", e.without_url()),
            })?;
        Ok(Self {
            client,
            base: format!("http://127.0.0.1:{port}"),
            token: Zeroizing::new(token),
        })
    }
}

impl SecretSource for ExtensionClient {
    async fn secret(
        &self,
        id: &str,
        field: Option<&str>,
    ) -> Result<Zeroizing<String>, SourceError> {
        let unavailable = |reason: String| SourceError::Unavailable {
            id: id.to_owned(),
            reason,
        };
        let mut query = vec![("secretId", id)];
        if let Some(f) = field {
            query.push(("key", f));
        }
        let response = self
            .client
            .get(format!("{}/secretsmanager/get", self.base))
            .query(&query)
            .header("X-Aws-Parameters-Secrets-Token", self.token.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    unavailable(format!(
                        "the extension at {} did not answer in time",
                        self.base
                    ))
                } else {
                    unavailable(format!("the extension at {} is not reachable", self.base))
                }
            })?;
        let status = response.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        let mut response = response;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| unavailable("the extension's answer was cut short".into()))?
        {
            body.extend_from_slice(&chunk);
        }
        match status {
            200 => decode(id, field, &body),
            404 => Err(SourceError::NotFound(id.to_owned())),
            _ => {
                // Error bodies are {"__type", "message"} and carry no value.
                let detail = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_default();
                Err(match status {
                    403 if detail.contains("AccessDenied") => SourceError::Denied(id.to_owned()),
                    _ => unavailable(format!("the extension answered HTTP {status}: {detail}")),
                })
            }
        }
    }
}

/// Pull the value out of a 200 answer: `{"key","value"}` for a field read,
/// GetSecretValue's JSON otherwise.
fn decode(id: &str, field: Option<&str>, body: &[u8]) -> Result<Zeroizing<String>, SourceError> {
    let malformed = |reason: &str| SourceError::Malformed {
        id: id.to_owned(),
        reason: reason.to_owned(),
    };
    let mut v: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the answer is not JSON"))?;
    let slot = match field {
        Some(_) => v.get_mut("value"),
        None => v.get_mut("SecretString"),
    };
    let out = match slot.map(Value::take) {
        Some(Value::String(s)) => Zeroizing::new(s),
        Some(Value::Null) | None => return Err(malformed("the answer has no text value")),
        Some(other) => Zeroizing::new(other.to_string()),
    };
    Ok(out)
}

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
