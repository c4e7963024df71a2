use super::*;
use sidekey_cache::{Error, ErrorKind};
use std::sync::Mutex;

fn failure(kind: ErrorKind, message: &str) -> SourceError {
    SourceError::new("weather/key", Error::new(kind, message))
}

struct FixedSource(Result<&'static str, SourceError>);

impl SecretSource for FixedSource {
    async fn secret(
        &self,
        _id: &str,
        _field: Option<&str>,
    ) -> Result<Zeroizing<String>, SourceError> {
        self.0.clone().map(|s| Zeroizing::new(s.to_owned()))
    }
}

#[derive(Default)]
struct RecordingApi {
    keys: Mutex<Vec<String>>,
    fail: Option<u16>,
}

impl WeatherApi for RecordingApi {
    async fn one_call(
        &self,
        key: &str,
        lat: f64,
        lon: f64,
        units: &str,
    ) -> Result<Value, WeatherError> {
        self.keys.lock().unwrap().push(key.to_owned());
        match self.fail {
            Some(401) => Err(WeatherError::KeyRejected),
            Some(s) => Err(WeatherError::Upstream(format!("HTTP {s}"))),
            None => {
                Ok(json!({ "lat": lat, "lon": lon, "units": units, "current": { "temp": 11.5 } }))
            }
        }
    }
}

fn config() -> WeatherConfig {
    WeatherConfig::from_lookup(|k| (k == "OPENWEATHER_SECRET_ID").then(|| "weather/key".to_owned()))
        .unwrap()
}

#[tokio::test]
async fn direct_invoke_returns_the_weather() {
    let api = RecordingApi::default();
    let out = handle(
        &json!({"lat": 52.37, "lon": "4.89"}),
        &config(),
        &FixedSource(Ok("KEY")),
        &api,
    )
    .await
    .unwrap();
    assert_eq!(out["current"]["temp"], 11.5);
    assert_eq!(out["units"], "metric");
    assert_eq!(*api.keys.lock().unwrap(), ["KEY"]);
}

#[tokio::test]
async fn function_url_event_gets_an_http_answer() {
    let event = json!({"rawPath": "/", "queryStringParameters": {"lat": "1", "lon": "2"}, "requestContext": {}});
    let out = handle(
        &event,
        &config(),
        &FixedSource(Ok("KEY")),
        &RecordingApi::default(),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 200);
    let body: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["lat"], 1.0);
}

#[tokio::test]
async fn bad_coordinates_are_400_with_a_reason() {
    for (q, needle) in [
        (json!({"lon": "2"}), "missing lat"),
        (json!({"lat": "x", "lon": "2"}), "lat is not a number"),
        (json!({"lat": "91", "lon": "2"}), "between"),
        (json!({"lat": "1", "lon": "-181"}), "between"),
        (json!({"lat": "NaN", "lon": "1"}), "not a number"),
    ] {
        let event = json!({"queryStringParameters": q, "requestContext": {}});
        let out = handle(
            &event,
            &config(),
            &FixedSource(Ok("KEY")),
            &RecordingApi::default(),
        )
        .await
        .unwrap();
        assert_eq!(out["statusCode"], 400, "{q}");
        assert!(out["body"].as_str().unwrap().contains(needle), "{out}");
    }
    let event = json!({"rawPath": "/", "requestContext": {}});
    let out = handle(
        &event,
        &config(),
        &FixedSource(Ok("KEY")),
        &RecordingApi::default(),
    )
    .await
    .unwrap();
    assert_eq!(out["statusCode"], 400);
    let direct = handle(
        &json!({"lat": 1}),
        &config(),
        &FixedSource(Ok("KEY")),
        &RecordingApi::default(),
    )
    .await;
    assert!(matches!(direct, Err(WeatherError::BadRequest(_))));
}

#[tokio::test]
async fn failures_are_clear_and_never_carry_the_key() {
    let http = json!({"queryStringParameters": {"lat": "1", "lon": "2"}, "requestContext": {}});
    let cases: Vec<(FixedSource, Option<u16>, u16)> = vec![
        (
            FixedSource(Err(failure(ErrorKind::NotFound, "no such secret"))),
            None,
            500,
        ),
        (
            FixedSource(Err(failure(
                ErrorKind::Connection,
                "extension not reachable",
            ))),
            None,
            503,
        ),
        (FixedSource(Ok("SECRET-KEY")), Some(401), 502),
        (FixedSource(Ok("SECRET-KEY")), Some(500), 502),
    ];
    for (source, fail, status) in cases {
        let api = RecordingApi {
            fail,
            ..Default::default()
        };
        let out = handle(&http, &config(), &source, &api).await.unwrap();
        assert_eq!(out["statusCode"], status, "{out}");
        assert!(!out.to_string().contains("SECRET-KEY"));
    }
}
