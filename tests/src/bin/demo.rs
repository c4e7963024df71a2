//! The demo: the whole system on one machine, on loopback.
//!
//! moto stands in for Secrets Manager, a loopback server for OpenWeather,
//! and lambda-simulator for Lambda; the real `sidekey` extension and the
//! real `weather` function run under it. With `--real`, the same flow runs
//! against real AWS (credentials and region from the environment,
//! `OPENWEATHER_SECRET_ID` naming a real secret) and the real OpenWeather API.

use std::time::Instant;

use serde_json::{json, Value};
use sidekey_tests::aws;
use sidekey_tests::lambda::{bin, Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;
use sidekey_tests::stub::Stub;

const SECRET_ID: &str = "demo/openweather";
const DEMO_KEY: &str = "demo-openweather-key-0123456789ab";
const ONE_CALL: &str = r#"{"lat":52.37,"lon":4.89,"timezone":"Europe/Amsterdam","current":{"temp":11.5,"humidity":81,"weather":[{"main":"Rain","description":"light rain"}]}}"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let real = std::env::args().any(|a| a == "--real");
    let invocations: usize = std::env::var("DEMO_INVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    println!(
        "sidekey demo ({})",
        if real {
            "real AWS and OpenWeather"
        } else {
            "everything on loopback"
        }
    );

    let mut moto = None;
    let mut proxy = None;
    let mut stub = None;
    let (secret_id, base_url) = if real {
        let id = std::env::var("OPENWEATHER_SECRET_ID").unwrap_or_else(|_| {
            fail("--real needs OPENWEATHER_SECRET_ID (and AWS credentials) in the environment")
        });
        (id, "https://api.openweathermap.org".to_owned())
    } else {
        let started = Instant::now();
        let m = Moto::start();
        println!(
            "  moto (Secrets Manager)     {}  up in {:?}",
            m.url(),
            started.elapsed()
        );
        let p = Proxy::start(m.addr()).await;
        let sm = aws::secrets(&m.url()).await;
        aws::create_secret(&sm, SECRET_ID, &format!(r#"{{"apikey":"{DEMO_KEY}"}}"#)).await;
        println!(
            "  seeded secret              {SECRET_ID} = {{\"apikey\": <{} chars>}}",
            DEMO_KEY.len()
        );
        let s = Stub::start(200, ONE_CALL).await;
        println!("  OpenWeather stand-in       {}", s.url());
        let url = s.url();
        moto = Some(m);
        proxy = Some(p);
        stub = Some(s);
        (SECRET_ID.to_owned(), url)
    };

    let started = Instant::now();
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.as_ref().map(Proxy::url).unwrap_or_default(),
        real_aws: real,
        extension_env: vec![
            ("SIDEKEY_PREFETCH".into(), secret_id.clone()),
            (
                "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL".into(),
                "info".into(),
            ),
            // The counters as a CloudWatch embedded-metric-format line.
            ("SIDEKEY_METRICS".into(), "emf".into()),
        ],
        runtime: Some((
            bin("weather"),
            vec![
                ("OPENWEATHER_SECRET_ID".into(), secret_id.clone()),
                ("OPENWEATHER_BASE_URL".into(), base_url),
            ],
        )),
        ..Options::default()
    })
    .await;
    println!(
        "  sidekey extension          registered in {:?}, serving {} (prefetch: {secret_id})",
        started.elapsed(),
        lambda.url()
    );
    println!("  weather function           running under lambda-simulator\n");

    for i in 1..=invocations {
        let payload = json!({"lat": 52.37, "lon": 4.89});
        let t = Instant::now();
        let state = lambda.invoke(payload.clone()).await;
        let took = t.elapsed();
        match (&state.response, &state.error) {
            (Some(r), _) => {
                let w = &r.payload;
                let summary = format!(
                    "{} °C, {}",
                    w["current"]["temp"],
                    w["current"]["weather"][0]["description"]
                        .as_str()
                        .unwrap_or("?")
                );
                println!("  invoke {i}: {payload} -> ok in {took:>9.2?}  ({summary})");
                if i == 1 {
                    println!(
                        "            function answered: {}",
                        truncate(&w.to_string(), 160)
                    );
                }
            }
            (None, Some(e)) => {
                println!("  invoke {i}: error {}: {}", e.error_type, e.error_message)
            }
            (None, None) => println!("  invoke {i}: no answer"),
        }
    }

    let metrics = match reqwest::Client::new()
        .get(format!("{}/metrics", lambda.url()))
        .header("X-Aws-Parameters-Secrets-Token", &lambda.token)
        .send()
        .await
    {
        Ok(r) => r.json::<Value>().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    println!("\n  extension counters: {metrics}");
    if let Some(p) = &proxy {
        println!(
            "  upstream calls seen by moto: BatchGetSecretValue={} GetSecretValue={}",
            p.calls("BatchGetSecretValue"),
            p.calls("GetSecretValue")
        );
    }
    if let Some(s) = &stub {
        let seen = s.seen();
        let exact = seen
            .iter()
            .all(|r| r.param("appid").as_deref() == Some(DEMO_KEY));
        println!(
            "  OpenWeather stand-in got the key exactly as stored: {} ({} calls)",
            if exact { "yes" } else { "NO" },
            seen.len()
        );
    }
    let report = lambda.shutdown().await;
    println!(
        "  SHUTDOWN -> extension exited ({}) in {:?}",
        report
            .status
            .map_or("still running".into(), |s| s.to_string()),
        report.elapsed
    );
    let emf = |l: &&str| l.starts_with('{') && l.contains("\"_aws\":");
    if let Some(line) = report.logs.lines().find(emf) {
        println!("  metrics line for CloudWatch (SIDEKEY_METRICS=emf): {line}");
    }
    drop(moto);
    println!("done: everything the demo started is stopped.");
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("demo: {msg}");
    std::process::exit(2);
}
