//! The regional weather function: read the OpenWeather key from a
//! [`SecretSource`], call the One Call API, answer its JSON.
//!
//! Input is either a direct invoke (`{"lat": .., "lon": ..}`) or an HTTP
//! event (Lambda Function URL, API Gateway v1/v2) with `lat`/`lon` in the
//! query string. HTTP events get an HTTP-shaped answer with a status code;
//! direct invokes get the weather JSON, or a typed error.

use std::future::Future;

use serde_json::{json, Value};
use zeroize::Zeroizing;

use sidekey_cache::{ErrorKind, SecretSource, SourceError};

/// The function's settings, read once at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeatherConfig {
    /// `OPENWEATHER_SECRET_ID`: the secret holding the key.
    pub secret_id: String,
    /// `OPENWEATHER_SECRET_KEY`: the JSON field with the key (default `apikey`).
    pub secret_field: String,
    /// `OPENWEATHER_BASE_URL` (default `https://api.openweathermap.org`).
    pub base_url: String,
    /// `OPENWEATHER_UNITS` (default `metric`).
    pub units: String,
}

/// A variable that is missing or wrong.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl WeatherConfig {
    /// Read the settings through `get` (the environment in `main`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret_id = get("OPENWEATHER_SECRET_ID")
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError {
                variable: "OPENWEATHER_SECRET_ID",
                reason: "not set: name or ARN of the secret holding the OpenWeather key".into(),
            })?;
        let base_url =
            get("OPENWEATHER_BASE_URL").unwrap_or_else(|| "https://api.openweathermap.org".into());
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError {
                variable: "OPENWEATHER_BASE_URL",
                reason: format!("{base_url:?} is not an http(s) URL"),
            });
        }
        Ok(Self {
            secret_id,
            secret_field: get("OPENWEATHER_SECRET_KEY").unwrap_or_else(|| "apikey".into()),
            base_url: base_url.trim_end_matches('/').to_owned(),
            units: get("OPENWEATHER_UNITS").unwrap_or_else(|| "metric".into()),
        })
    }
}

/// Why a request could not be answered with the weather.
#[derive(Debug, thiserror::Error)]
pub enum WeatherError {
    /// lat/lon missing, not numbers, or out of range.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The key could not be had.
    #[error("{0}")]
    Secret(#[from] SourceError),
    /// OpenWeather refused the key (401).
    #[error("OpenWeather rejected the API key (HTTP 401); check the secret's value")]
    KeyRejected,
    /// OpenWeather failed or could not be reached.
    #[error("OpenWeather failed: {0}")]
    Upstream(String),
    /// OpenWeather did not answer in time.
    #[error("OpenWeather did not answer in time")]
    Timeout,
}

impl WeatherError {
    /// The HTTP status for HTTP events.
    pub fn status(&self) -> u16 {
        match self {
            WeatherError::BadRequest(_) => 400,
            // The extension or the service is down, slow or shutting down:
            // worth a retry. Anything else (missing, denied, malformed) is
            // the deployment's to fix.
            WeatherError::Secret(e) if is_outage(e.kind()) => 503,
            WeatherError::Secret(_) => 500,
            WeatherError::KeyRejected | WeatherError::Upstream(_) => 502,
            WeatherError::Timeout => 504,
        }
    }

    /// A short type name, for the JSON body and Lambda's `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            WeatherError::BadRequest(_) => "BadRequest",
            WeatherError::Secret(_) => "SecretUnavailable",
            WeatherError::KeyRejected => "KeyRejected",
            WeatherError::Upstream(_) => "UpstreamError",
            WeatherError::Timeout => "UpstreamTimeout",
        }
    }
}

/// Whether a secret read failed for want of service rather than by answer.
fn is_outage(kind: ErrorKind) -> bool {
    kind.is_transient() || matches!(kind, ErrorKind::Closed)
}

/// The One Call API, behind a trait so the handler is testable.
pub trait WeatherApi: Send + Sync {
    /// The One Call answer for a place, as raw JSON.
    fn one_call(
        &self,
        key: &str,
        lat: f64,
        lon: f64,
        units: &str,
    ) -> impl Future<Output = Result<Value, WeatherError>> + Send;
}

/// Coordinates from the event, and whether it was an HTTP event.
#[derive(Debug, PartialEq)]
pub struct Query {
    /// Latitude, -90..=90.
    pub lat: f64,
    /// Longitude, -180..=180.
    pub lon: f64,
    /// Function URL / API Gateway event (answer with statusCode/body).
    pub http: bool,
}

/// Read lat/lon from a direct invoke or an HTTP event.
pub fn parse_event(event: &Value) -> Result<Query, WeatherError> {
    let (source, http) = match event.get("queryStringParameters") {
        Some(q) => (q, true),
        None if event.get("requestContext").is_some() || event.get("rawPath").is_some() => {
            (&Value::Null, true)
        }
        None => (event, false),
    };
    let coord = |name: &str, limit: f64| -> Result<f64, WeatherError> {
        let v = source
            .get(name)
            .ok_or_else(|| WeatherError::BadRequest(format!("missing {name}")))?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|n| n.is_finite())
        .ok_or_else(|| WeatherError::BadRequest(format!("{name} is not a number")))?;
        if n.abs() > limit {
            return Err(WeatherError::BadRequest(format!(
                "{name} must be between -{limit} and {limit}"
            )));
        }
        Ok(n)
    };
    Ok(Query {
        lat: coord("lat", 90.0)?,
        lon: coord("lon", 180.0)?,
        http,
    })
}

/// Answer one event. `Ok` carries what the function returns; `Err` is for
/// direct invokes only (HTTP events always get a status code).
pub async fn handle<S: SecretSource, W: WeatherApi>(
    event: &Value,
    config: &WeatherConfig,
    source: &S,
    api: &W,
) -> Result<Value, WeatherError> {
    let http = event.get("queryStringParameters").is_some()
        || event.get("requestContext").is_some()
        || event.get("rawPath").is_some();
    let result = weather(event, config, source, api).await;
    if !http {
        return result;
    }
    Ok(match result {
        Ok(body) => http_response(200, &body),
        Err(e) => {
            if e.status() >= 500 {
                tracing::warn!(error = %e, "weather request failed");
            }
            http_response(
                e.status(),
                &json!({ "error": e.kind(), "message": e.to_string() }),
            )
        }
    })
}

async fn weather<S: SecretSource, W: WeatherApi>(
    event: &Value,
    config: &WeatherConfig,
    source: &S,
    api: &W,
) -> Result<Value, WeatherError> {
    let q = parse_event(event)?;
    let key: Zeroizing<String> = source
        .secret(&config.secret_id, Some(&config.secret_field))
        .await?;
    api.one_call(&key, q.lat, q.lon, &config.units).await
}

fn http_response(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": { "content-type": "application/json" },
        "body": body.to_string(),
    })
}

#[cfg(test)]
mod tests;
