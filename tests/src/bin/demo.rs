//! The demo: the whole system on one machine, on loopback.
//!
//! moto stands in for Secrets Manager, a loopback server for OpenWeather,
//! and lambda-simulator for Lambda; the real `sidekey` extension and the
//! real `weather` function run under it. With `--real`, the same flow runs
//! against real AWS (credentials and region from the environment,
//! `OPENWEATHER_SECRET_ID` naming a real secret) and the real OpenWeather API.

use std::time::Instant;

use serde_json::{json, Value};
use sidekey_tests::lambda::{bin, Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;
use sidekey_tests::seed;
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
        seed::create_secret(
            &m.url(),
            SECRET_ID,
            &format!(r#"{{"apikey":"{DEMO_KEY}"}}"#),
        )
        .await;
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
    if let (Some(p), Some(python)) = (&proxy, std::env::var_os("SIDEKEY_PYTHON")) {
        sdk_read(&lambda, p, &python, &secret_id);
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

/// boto3, unchanged, reading the secret through sidekey's SDK-compatible
/// endpoint: all it takes is `AWS_ENDPOINT_URL_SECRETS_MANAGER` naming
/// sidekey, as a function's environment would (the function's own
/// credentials sign it, and sidekey verifies them). The Python with boto3
/// is moto's (scripts/tools.sh exports `SIDEKEY_PYTHON`): no install of its
/// own.
fn sdk_read(lambda: &Lambda, proxy: &Proxy, python: &std::ffi::OsStr, secret_id: &str) {
    const READ: &str = "import boto3, json, sys, time\n\
        sm = boto3.client('secretsmanager')\n\
        t = time.perf_counter()\n\
        value = json.loads(sm.get_secret_value(SecretId=sys.argv[1])['SecretString'])\n\
        print(json.dumps({'fields': sorted(value), 'chars': len(value.get('apikey', '')), \
        'key_ok': value.get('apikey') == sys.argv[2], 'ms': (time.perf_counter() - t) * 1e3}))\n";
    let upstream = proxy.calls("GetSecretValue");
    let out = std::process::Command::new(python)
        .args(["-c", READ, secret_id, DEMO_KEY])
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", lambda.url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_SESSION_TOKEN", &lambda.token)
        .env("AWS_REGION", "us-east-1")
        // boto3 reads this one (Lambda sets both).
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output();
    let answer = out
        .as_ref()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok());
    println!(
        "\n  boto3, unchanged, with AWS_ENDPOINT_URL_SECRETS_MANAGER={}:",
        lambda.url()
    );
    match answer {
        Some(a) => println!(
            "    get_secret_value -> fields {} (apikey: <{} chars>, as stored: {}) in {:.1} ms; upstream calls since: {}",
            a["fields"],
            a["chars"],
            if a["key_ok"] == true { "yes" } else { "NO" },
            a["ms"].as_f64().unwrap_or(0.0),
            proxy.calls("GetSecretValue") - upstream
        ),
        None => println!(
            "    not run ({})",
            out.map_or_else(
                |e| e.to_string(),
                // The exception, on the traceback's last line.
                |o| truncate(
                    String::from_utf8_lossy(&o.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default(),
                    200
                )
            )
        ),
    }
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
