//! The real `sidekey` binary under the Lambda simulator, against moto, read
//! the way users of the official extension read it: a plain HTTP GET with
//! the token header, then `SecretString` out of the JSON.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sidekey_tests::aws;
use sidekey_tests::client::get;
use sidekey_tests::lambda::{bin, vars, Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;
use sidekey_tests::stub::Stub;

async fn env(moto: &Moto, proxy: &Proxy, extra: &[(&str, &str)]) -> Lambda {
    let _ = moto;
    Lambda::start(Options::extension(proxy.url(), extra)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_secrets_and_parameters_like_the_official_extension() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ssm = aws::ssm(&moto.url()).await;
    let created = aws::create_secret(&sm, "app/api/key", r#"{"apikey":"value-one","n":7}"#).await;
    aws::create_binary_secret(&sm, "bin", b"\x00\x01binary").await;
    aws::put_parameter(&ssm, "/app/db/password", "pw-secure", true).await;
    let lambda = env(&moto, &proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));

    // The official extension's documented read.
    let a = get(
        &format!("{url}/secretsmanager/get?secretId=app%2Fapi%2Fkey"),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.content_type, "application/json");
    let j = a.json();
    assert_eq!(j["ARN"], created.arn.as_str());
    assert_eq!(j["Name"], "app/api/key");
    assert_eq!(j["VersionId"], created.version_id.as_str());
    assert_eq!(j["VersionStages"], json!(["AWSCURRENT"]));
    assert!(j["CreatedDate"].is_number());
    let inner: Value = serde_json::from_str(j["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(inner["apikey"], "value-one");

    // By ARN, and through /v1/ (path-decoded).
    let a = get(
        &format!("{url}/secretsmanager/get?secretId={}", created.arn),
        token,
    )
    .await;
    assert_eq!(a.json()["Name"], "app/api/key");
    let a = get(&format!("{url}/v1/app%2Fapi%2Fkey"), token).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["Name"], "app/api/key");

    // One field of a JSON secret.
    let a = get(
        &format!("{url}/secretsmanager/get?secretId=app/api/key&key=apikey"),
        token,
    )
    .await;
    assert_eq!(a.json(), json!({"key": "apikey", "value": "value-one"}));
    let a = get(&format!("{url}/v1/app/api/key?key=n"), token).await;
    assert_eq!(a.json(), json!({"key": "n", "value": 7}));
    let a = get(&format!("{url}/v1/app/api/key?key=missing"), token).await;
    assert_eq!(a.status, 400);

    // Binary secrets come back base64, as GetSecretValue sends them.
    let a = get(&format!("{url}/secretsmanager/get?secretId=bin"), token).await;
    assert_eq!(a.json()["SecretBinary"], "AAFiaW5hcnk=");

    // Parameters.
    let a = get(
        &format!(
            "{url}/systemsmanager/parameters/get?name=%2Fapp%2Fdb%2Fpassword&withDecryption=true"
        ),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["Parameter"]["Value"], "pw-secure");
    assert_eq!(a.json()["Parameter"]["Type"], "SecureString");

    // Cached: the second read is a hit; refreshNow goes upstream.
    let before = proxy.calls("GetSecretValue");
    get(
        &format!("{url}/secretsmanager/get?secretId=app%2Fapi%2Fkey"),
        token,
    )
    .await;
    assert_eq!(proxy.calls("GetSecretValue"), before);
    aws::put_secret(&sm, "app/api/key", r#"{"apikey":"value-two"}"#).await;
    let a = get(
        &format!("{url}/secretsmanager/get?secretId=app/api/key&key=apikey"),
        token,
    )
    .await;
    assert_eq!(a.json()["value"], "value-one", "still cached");
    let a = get(
        &format!("{url}/secretsmanager/get?secretId=app/api/key&key=apikey&refreshNow=true"),
        token,
    )
    .await;
    assert_eq!(a.json()["value"], "value-two");
    let a = get(
        &format!(
            "{url}/secretsmanager/get?secretId=app/api/key&versionStage=AWSPREVIOUS&key=apikey"
        ),
        token,
    )
    .await;
    assert_eq!(a.json()["value"], "value-one");

    // Health and counters.
    let a = get(&format!("{url}/ping"), None).await;
    assert_eq!((a.status, a.body.as_str()), (200, "healthy"));
    let m = get(&format!("{url}/metrics"), token).await.json();
    assert!(m["hits"].as_u64().unwrap() >= 3, "{m}");
    assert!(m["upstream_calls"].as_u64().unwrap() >= 4, "{m}");

    let logs = lambda.logs();
    for value in ["value-one", "value-two", "pw-secure", "AAFiaW5hcnk"] {
        assert!(!logs.contains(value), "a secret value reached the logs");
    }
    // The request line, with the path and status (the path is taken out
    // of the request before it is answered: api.rs, `Api::route`).
    assert!(
        logs.lines().any(|l| l.contains("request")
            && l.contains("/secretsmanager/get")
            && l.contains("status=200")),
        "debug logs one line per request, with its path and status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_case_has_its_status_and_a_json_body() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "s", "top-secret-value").await;
    let lambda = env(&moto, &proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let cases: Vec<(String, Option<&str>, u16, &str)> = vec![
        (
            format!("{url}/secretsmanager/get?secretId=s"),
            None,
            403,
            "MissingToken",
        ),
        (
            format!("{url}/secretsmanager/get?secretId=s"),
            Some("wrong"),
            403,
            "InvalidToken",
        ),
        (
            format!("{url}/secretsmanager/get"),
            token,
            400,
            "BadRequest",
        ),
        (
            format!("{url}/secretsmanager/get?secretId=s&bogus=1"),
            token,
            400,
            "BadRequest",
        ),
        (
            format!("{url}/secretsmanager/get?secretId=s&secretId=t"),
            token,
            400,
            "BadRequest",
        ),
        (
            format!("{url}/secretsmanager/get?secretId=%zz"),
            token,
            400,
            "BadRequest",
        ),
        (
            format!("{url}/systemsmanager/parameters/get?name=x&version=abc"),
            token,
            400,
            "BadRequest",
        ),
        (
            format!("{url}/secretsmanager/get?secretId=does-not-exist"),
            token,
            400,
            "ResourceNotFoundException",
        ),
        (
            format!("{url}/systemsmanager/parameters/get?name=%2Fnope"),
            token,
            400,
            "ParameterNotFound",
        ),
        (format!("{url}/nowhere"), token, 404, "UnknownPath"),
    ];
    for (u, t, status, code) in cases {
        let a = get(&u, t).await;
        assert_eq!(a.status, status, "{u}: {}", a.body);
        assert_eq!(a.content_type, "application/json", "{u}");
        let j = a.json();
        assert_eq!(j["__type"], code, "{u}: {j}");
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()), "{u}");
        assert!(!a.body.contains("top-secret-value"));
    }
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{url}/secretsmanager/get?secretId=s"))
        .header("X-Aws-Parameters-Secrets-Token", &lambda.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .get(format!("{url}/secretsmanager/get?secretId=s"))
        .header("X-Aws-Parameters-Secrets-Token", &lambda.token)
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!lambda.logs().contains("top-secret-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetched_secrets_are_readable_as_soon_as_it_registers() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ids: Vec<String> = (0..10).map(|i| format!("pre-{i}")).collect();
    for id in &ids {
        aws::create_secret(&sm, id, &format!("v-{id}")).await;
    }
    let list = ids.join(",");
    let started = Instant::now();
    let lambda = env(&moto, &proxy, &[("SIDEKEY_PREFETCH", &list)]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    // Registered means the function's init may start: it can read at once.
    let a = get(&format!("{url}/secretsmanager/get?secretId=pre-0"), token).await;
    assert_eq!(a.status, 200);
    println!(
        "first secret served {:?} after process start",
        started.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&format!("{url}/metrics"), token).await.json()["entries"] != 10 {
        assert!(Instant::now() < deadline, "prefetch did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = proxy.calls("GetSecretValue");
    for id in &ids {
        let a = get(&format!("{url}/v1/{id}"), token).await;
        assert_eq!(a.json()["SecretString"], format!("v-{id}"));
    }
    // Ten ids fit GetSecretValue's quota (10,000/s) better than one
    // BatchGetSecretValue fits its own (100/s) in a fleet's cold start (the
    // fleet simulation, bench/): read one by one, each exactly once.
    assert_eq!(proxy.calls("BatchGetSecretValue"), 0);
    assert_eq!(
        proxy.calls("GetSecretValue"),
        before,
        "all ten were prefetched"
    );
    assert_eq!(before, 10, "a read racing the prefetch waits for its read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_wipes_and_exits_within_budget() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "s", "v").await;
    let lambda = env(&moto, &proxy, &[]).await;
    let a = get(&format!("{}/v1/s", lambda.url()), Some(&lambda.token)).await;
    assert_eq!(a.status, 200);
    let report = lambda.shutdown().await;
    println!("SHUTDOWN to exit: {:?}", report.elapsed);
    let status = report.status.expect("exited");
    assert!(status.success(), "{status:?}: {}", report.logs);
    assert!(
        report.elapsed < Duration::from_secs(2),
        "{:?}",
        report.elapsed
    );
    assert!(
        report
            .logs
            .contains("stopped; cache and role credentials wiped"),
        "{}",
        report.logs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_is_reported_through_init_error() {
    let cases = [
        ("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "not-a-port"),
        ("SECRETS_MANAGER_TTL", "-5"),
        ("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL", "chatty"),
        ("PARAMETERS_SECRETS_EXTENSION_CACHE_ENABLED", "sometimes"),
    ];
    for (var, value) in cases {
        let (message, logs) = init_error(&[(var, value)]).await;
        assert!(message.starts_with(var), "{message}");
        assert!(logs.contains(var));
    }
    // What Lambda always sets, missing: the fetcher cannot be set up, and
    // INIT says which variable, rather than every read failing later.
    let no_region = [("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")];
    let (message, _) = init_error(&no_region).await;
    assert!(message.contains("AWS_REGION"), "{message}");
    let (message, _) = init_error(&[("AWS_ACCESS_KEY_ID", "")]).await;
    assert!(
        message.contains("AWS_ACCESS_KEY_ID")
            && message.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        "{message}"
    );
    // An endpoint override without its scheme names its variable.
    let var = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
    let (message, _) = init_error(&[(var, "localhost:4566")]).await;
    assert!(message.contains(var), "{message}");
}

/// Start the extension with `env` over the harness's environment; it must
/// exit with one `Extension.ConfigError` init error. Its message and the
/// extension's logs.
async fn init_error(env: &[(&str, &str)]) -> (String, String) {
    let var = env[0].0;
    let mut lambda = Lambda::start(Options {
        aws_endpoint: "http://127.0.0.1:9".into(),
        extension_env: vars(env),
        record_init_errors: true,
        ..Options::default()
    })
    .await;
    let Some(status) = lambda.extension.wait_timeout(Duration::from_secs(5)) else {
        panic!(
            "sidekey did not exit with {env:?}: {}",
            lambda.extension.logs()
        )
    };
    assert!(!status.success());
    let recorded = lambda.front.as_ref().unwrap().recorded();
    assert_eq!(recorded.len(), 1, "one init/error for {var}");
    let r = &recorded[0];
    let error_type = r
        .headers
        .iter()
        .find(|(k, _)| k == "lambda-extension-function-error-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(error_type, Some("Extension.ConfigError"), "{var}");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let message = body["errorMessage"].as_str().unwrap().to_owned();
    (message, lambda.extension.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weather_function_end_to_end_with_the_extension() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "weather/openweather", r#"{"apikey":"ow-KEY-12345"}"#).await;
    let openweather = Stub::start(200, r#"{"lat":52.37,"lon":4.89,"current":{"temp":11.5}}"#).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        runtime: Some((
            bin("weather"),
            vec![
                ("OPENWEATHER_SECRET_ID".into(), "weather/openweather".into()),
                ("OPENWEATHER_BASE_URL".into(), openweather.url()),
            ],
        )),
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        let state = lambda.invoke(json!({"lat": 52.37, "lon": 4.89})).await;
        let out = state.response.expect("a response").payload;
        assert_eq!(out["current"]["temp"], 11.5, "{out}");
    }
    let url_event = json!({
        "rawPath": "/", "requestContext": {"http": {"method": "GET"}},
        "queryStringParameters": {"lat": "10", "lon": "20"}
    });
    let out = lambda.invoke(url_event).await.response.unwrap().payload;
    assert_eq!(out["statusCode"], 200);
    let bad =
        json!({"rawPath": "/", "requestContext": {}, "queryStringParameters": {"lat": "north"}});
    let out = lambda.invoke(bad).await.response.unwrap().payload;
    assert_eq!(out["statusCode"], 400);
    assert!(out["body"]
        .as_str()
        .unwrap()
        .contains("lat is not a number"));

    let seen = openweather.seen();
    assert_eq!(seen.len(), 4);
    for s in &seen {
        assert_eq!(s.path, "/data/3.0/onecall");
        assert_eq!(
            s.param("appid").as_deref(),
            Some("ow-KEY-12345"),
            "the key arrives exactly as stored"
        );
        assert_eq!(s.param("units").as_deref(), Some("metric"));
    }
    assert_eq!(
        proxy.calls("GetSecretValue"),
        1,
        "one upstream read for four invocations"
    );

    // OpenWeather refusing the key: a clear 502, no key in it.
    openweather.set_status(401);
    let out = lambda
        .invoke(json!({"rawPath": "/", "requestContext": {}, "queryStringParameters": {"lat": "1", "lon": "2"}}))
        .await
        .response
        .unwrap()
        .payload;
    assert_eq!(out["statusCode"], 502);
    assert!(!out.to_string().contains("ow-KEY-12345"));
    assert!(
        !lambda.logs().contains("ow-KEY-12345"),
        "the key reached a log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_refreshes_values_near_expiry_while_frozen_in_between() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "weather/openweather", r#"{"apikey":"key-v1"}"#).await;
    let openweather = Stub::start(200, r#"{"current":{"temp":1}}"#).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        // TTL 5 s: jittered to 4.5-5 s, refresh window from 3.6-4 s.
        extension_env: vec![("SECRETS_MANAGER_TTL".into(), "5".into())],
        runtime: Some((
            bin("weather"),
            vec![
                ("OPENWEATHER_SECRET_ID".into(), "weather/openweather".into()),
                ("OPENWEATHER_BASE_URL".into(), openweather.url()),
            ],
        )),
        freeze: true,
        ..Options::default()
    })
    .await;
    let invoke = || lambda.invoke(json!({"lat": 1, "lon": 2}));
    // Two invocations: the first reads the key from upstream (a miss), the
    // second from the cache. Only a value read since it was stored is
    // refreshed at INVOKE (a value nobody reads again is not re-read).
    assert!(invoke().await.response.is_some());
    assert!(invoke().await.response.is_some());
    lambda
        .sim
        .wait_for_frozen(Duration::from_secs(5))
        .await
        .expect("the environment freezes between invocations");
    assert!(lambda.sim.is_frozen());
    assert_eq!(proxy.calls("GetSecretValue"), 1);

    // Rotate upstream, then let the value enter its refresh window while
    // everything is frozen: nothing can refresh until the next INVOKE.
    aws::put_secret(&sm, "weather/openweather", r#"{"apikey":"key-v2"}"#).await;
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_eq!(
        proxy.calls("GetSecretValue"),
        1,
        "frozen: no background work"
    );

    // This INVOKE is answered from the cache (still fresh) while the
    // extension refreshes in the background of the same INVOKE. Which key
    // the function sees depends on who runs first: its read (the old key,
    // at once) or the extension's refresh (the new one, already stored).
    assert!(invoke().await.response.is_some());
    lambda
        .sim
        .wait_for_frozen(Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        proxy.calls("GetSecretValue"),
        2,
        "one refresh during the INVOKE"
    );
    // The new key arrives without another upstream call: at the latest by
    // the next invocation, unless a loaded machine made the refresh outlast
    // INVOKE's 1 s budget (it then completes after the thaw, still in the
    // background).
    let appids = || -> Vec<String> {
        openweather
            .seen()
            .iter()
            .filter_map(|s| s.param("appid"))
            .collect()
    };
    for _ in 0..5 {
        assert!(invoke().await.response.is_some());
        if appids().last().map(String::as_str) == Some("key-v2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let keys = appids();
    assert_eq!(keys[0], "key-v1");
    assert!(
        keys.iter().all(|k| k == "key-v1" || k == "key-v2"),
        "{keys:?}"
    );
    assert_eq!(keys.last().map(String::as_str), Some("key-v2"), "{keys:?}");
    assert_eq!(proxy.calls("GetSecretValue"), 2, "no synchronous refetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_killed_under_the_function_gives_a_clear_error() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "weather/openweather", r#"{"apikey":"k"}"#).await;
    let openweather = Stub::start(200, "{}").await;
    let mut lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        runtime: Some((
            bin("weather"),
            vec![
                ("OPENWEATHER_SECRET_ID".into(), "weather/openweather".into()),
                ("OPENWEATHER_BASE_URL".into(), openweather.url()),
            ],
        )),
        ..Options::default()
    })
    .await;
    lambda.extension.kill();
    let started = Instant::now();
    let event = json!({"rawPath": "/", "requestContext": {}, "queryStringParameters": {"lat": "1", "lon": "2"}});
    let out = lambda.invoke(event).await.response.unwrap().payload;
    assert_eq!(out["statusCode"], 503, "{out}");
    assert!(
        out["body"].as_str().unwrap().contains("not reachable"),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast, no hang"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_holding_del_and_c1_characters_read_back_through_the_api_and_the_client() {
    // Issue 26: JSON lets DEL (U+007F) and the C1 controls stand raw, and
    // serde_json (and so AWS) writes them raw; the field read rejected
    // them (502 "cached body is malformed") while the plain read worked.
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let value = json!({"k": "a\u{7f}b", "n": "x\u{85}y", "c": "\u{80}\u{9f}"}).to_string();
    aws::create_secret(&sm, "controls", &value).await;
    let lambda = env(&moto, &proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let whole = get(
        &format!("{url}/secretsmanager/get?secretId=controls"),
        token,
    )
    .await;
    assert_eq!(whole.json()["SecretString"], value.as_str());
    for (field, expected) in [("k", "a\u{7f}b"), ("n", "x\u{85}y"), ("c", "\u{80}\u{9f}")] {
        let a = get(
            &format!("{url}/secretsmanager/get?secretId=controls&key={field}"),
            token,
        )
        .await;
        assert_eq!(a.status, 200, "{field}: {}", a.body);
        assert_eq!(a.json()["value"], expected, "{field}");
    }
    // The Rust client of the API, reading the same fields.
    use sidekey_client::{ExtensionClient, SecretSource};
    let client = ExtensionClient::new(lambda.port, lambda.token.clone()).unwrap();
    let got = client.secret("controls", Some("n")).await.unwrap();
    assert_eq!(got.as_str(), "x\u{85}y");
    let got = client.fields("controls", &["k", "c"]).await.unwrap();
    assert_eq!(
        (got[0].as_str(), got[1].as_str()),
        ("a\u{7f}b", "\u{80}\u{9f}")
    );
}
