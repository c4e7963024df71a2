//! The `weather` function (provided.al2023): configuration once, then the
//! Lambda runtime loop.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::Value;
use sidekey_function::weather::{self, WeatherConfig, WeatherError};
use sidekey_function::{ExtensionClient, OpenWeather};

#[derive(Debug)]
struct Failure(WeatherError);

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.0.kind().to_owned(),
            error_message: f.0.to_string(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // stderr goes to CloudWatch Logs, which stamps every line itself.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .init();
    let env = |k: &str| std::env::var(k).ok();
    let config = WeatherConfig::from_lookup(env)?;
    let port = match env("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT") {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: {p:?} is not a port"))?,
        None => 2773,
    };
    let token = env("AWS_SESSION_TOKEN")
        .or_else(|| env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
        .ok_or("AWS_SESSION_TOKEN is not set: the extension would refuse every read")?;
    let source = ExtensionClient::new(port, token)?;
    let api = OpenWeather::new(&config.base_url)?;
    let (config, source, api) = (&config, &source, &api);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        weather::handle(&event.payload, config, source, api)
            .await
            .map_err(Failure)
    }))
    .await
}
