//! The SDK-compatible endpoint with real SDK code: boto3 under
//! `awslambdaric` and the AWS SDK for JavaScript v3 under `aws-lambda-ric`,
//! as the runtime of a `lambda-simulator` environment, and the Rust SDK
//! here, all reading through the real `sidekey` binary from moto behind the
//! counting proxy. The function's environment, which the extension shares,
//! holds `AWS_ENDPOINT_URL_SECRETS_MANAGER` and `AWS_ENDPOINT_URL_SSM`
//! naming sidekey, and nothing else changes: the extension must pass over
//! those for its own calls (it reads AWS at `AWS_ENDPOINT_URL`).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sidekey_tests::aws;
use sidekey_tests::hygiene;
use sidekey_tests::lambda::{vars, Lambda, Options};
use sidekey_tests::moto::{free_port, Moto};
use sidekey_tests::proxy::Proxy;

use crate::platforms::summary;

const SECRET_ID: &str = "sdk/api-key";
const SECRET: &str = r#"{"apikey":"sdk-KEY-8e21c4"}"#;
const PARAMETER: &str = "/sdk/db/password";
const PARAMETER_VALUE: &str = "sdk-db-PW-51f0aa";

/// The seeded upstream and an environment whose function is `runtime`
/// (program, arguments, task root) with `extra` environment.
struct Setup {
    _moto: Moto,
    proxy: Proxy,
    lambda: Lambda,
    port: u16,
}

async fn setup(program: PathBuf, args: &[&str], dir: PathBuf, extra: &[(&str, &str)]) -> Setup {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ssm = aws::ssm(&moto.url()).await;
    aws::create_secret(&sm, SECRET_ID, SECRET).await;
    aws::create_secret(&sm, "sdk/db-user", "sdk-user-0b7d").await;
    aws::create_secret(&sm, "sdk/db-host", "sdk-host-c39e").await;
    aws::create_secret(&sm, "sdk/written", "sdk-before-write").await;
    aws::create_secret(&sm, "sdk/cold", "sdk-cold-77aa").await;
    aws::put_parameter(&ssm, PARAMETER, PARAMETER_VALUE, true).await;
    for (name, value) in [
        ("/sdk/tree/a", "tree-a-1f"),
        ("/sdk/tree/b", "tree-b-2e"),
        ("/sdk/tree/deep/c", "tree-c-3d"),
    ] {
        aws::put_parameter(&ssm, name, value, false).await;
    }
    let port = free_port();
    let sidekey = format!("http://127.0.0.1:{port}");
    // The same variables for the extension as for the function: in Lambda
    // they share one environment.
    let endpoints = [
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", sidekey.as_str()),
        ("AWS_ENDPOINT_URL_SSM", sidekey.as_str()),
    ];
    let mut function = vars(&endpoints);
    function.extend(vars(extra));
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        extension_env: vars(&endpoints),
        runtime: Some((program, function)),
        runtime_args: args.iter().map(|a| a.to_string()).collect(),
        runtime_dir: Some(dir),
        port: Some(port),
        ..Options::default()
    })
    .await;
    Setup {
        _moto: moto,
        proxy,
        lambda,
        port,
    }
}

impl Setup {
    async fn invoke(&self, event: Value) -> Value {
        let state = self.lambda.invoke(event.clone()).await;
        state
            .response
            .unwrap_or_else(|| panic!("{event}: no response; logs:\n{}", self.lambda.logs()))
            .payload
    }
}

fn here(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A Node.js task root: `file` beside the `node_modules` the runtimes ship
/// (the SDK), as Lambda lays a function out.
fn node_task_root(file: &Path) -> PathBuf {
    let modules = std::env::var("SIDEKEY_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| here("../target/tools/node/node_modules"));
    let root = std::env::temp_dir().join(format!(
        "sidekey-node-task-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&root).expect("task root");
    std::fs::copy(file, root.join(file.file_name().expect("a file"))).expect("copy handler");
    std::os::unix::fs::symlink(modules, root.join("node_modules")).expect("node_modules");
    root
}

fn python() -> PathBuf {
    std::env::var("SIDEKEY_PYTHON")
        .unwrap_or_else(|_| "python3".into())
        .into()
}

fn node_ric() -> String {
    std::env::var("SIDEKEY_NODE_RIC").unwrap_or_else(|_| {
        here("../target/tools/node/node_modules/aws-lambda-ric/bin/index.mjs")
            .display()
            .to_string()
    })
}

/// What every SDK must see, whichever it is.
async fn the_checks(s: &Setup) {
    let calls = |op: &str| s.proxy.calls(op);
    // N reads: one upstream call each.
    let reads = s
        .invoke(json!({"check": "reads", "times": 5, "secret": SECRET_ID, "parameter": PARAMETER}))
        .await;
    assert_eq!(reads["secret"], summary(SECRET)["sha256"]);
    assert_eq!(reads["parameter"], summary(PARAMETER_VALUE)["sha256"]);
    assert_eq!(calls("GetSecretValue"), 1, "5 reads, 1 call");
    assert_eq!(calls("GetParameter"), 1, "5 reads, 1 call");
    // The tree through the paginator, one parameter a page: the whole tree,
    // one upstream page of the cached tree (3 parameters fit in one).
    let tree = s
        .invoke(json!({"check": "tree", "path": "/sdk/tree/"}))
        .await;
    let names: Vec<&str> = tree["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["/sdk/tree/a", "/sdk/tree/b", "/sdk/tree/deep/c"],
        "{tree}"
    );
    assert!(tree["pages"].as_u64().unwrap() >= 3, "{tree}");
    assert_eq!(
        calls("GetParametersByPath"),
        1,
        "paged from the cached tree"
    );
    // A batch: both values, one call (one of them missing).
    let batch = s
        .invoke(json!({"check": "batch", "ids": ["sdk/db-user", "sdk/db-host", "sdk/absent"]}))
        .await;
    assert_eq!(
        batch["names"],
        json!(["sdk/db-host", "sdk/db-user"]),
        "{batch}"
    );
    assert_eq!(batch["errors"], json!(["sdk/absent"]), "{batch}");
    assert_eq!(calls("BatchGetSecretValue"), 1);
    // A missing secret: the SDK's own exception.
    let missing = s
        .invoke(json!({"check": "missing", "secret": "sdk/nope"}))
        .await;
    assert_eq!(missing["raised"], "ResourceNotFoundException", "{missing}");
    // Another operation reaches the service.
    let before = calls("DescribeSecret");
    let described = s
        .invoke(json!({"check": "describe", "secret": SECRET_ID}))
        .await;
    assert_eq!(described["name"], SECRET_ID);
    assert_eq!(calls("DescribeSecret"), before + 1);
    // A write passes through, and the function reads its own write.
    let written = s
        .invoke(json!({"check": "write", "secret": "sdk/written", "value": "sdk-after-write"}))
        .await;
    assert_eq!(written["sees_its_write"], true, "{written}");
    // A client signing with another secret key is refused, and reaches
    // nothing.
    let before = s.proxy.access_keys();
    let sm_calls = calls("GetSecretValue");
    let forged = s
        .invoke(json!({"check": "forged", "secret": SECRET_ID}))
        .await;
    assert_eq!(forged["forged"], "InvalidSignatureException", "{forged}");
    assert_eq!(
        calls("GetSecretValue"),
        sm_calls,
        "nothing of it reached AWS"
    );
    assert_eq!(s.proxy.access_keys(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_reads_through_sidekey_unchanged() {
    let s = setup(
        python(),
        &["-m", "awslambdaric", "checks.lambda_handler"],
        here("e2e/sdk"),
        &[],
    )
    .await;
    the_checks(&s).await;
    // boto3 only: another access key, and no signature at all.
    let refused = s
        .invoke(json!({"check": "forged", "secret": SECRET_ID}))
        .await;
    assert_eq!(
        refused["other_key"], "UnrecognizedClientException",
        "{refused}"
    );
    assert_eq!(
        refused["unsigned"], "IncompleteSignatureException",
        "{refused}"
    );
    // A throttled cold read: boto3 retries (its default mode tries 5
    // times); the upstream sees sidekey's own attempts only.
    s.proxy
        .set_operation_fault("GetSecretValue", sidekey_tests::proxy::Fault::Throttle);
    let before = s.proxy.calls("GetSecretValue");
    let throttled = s
        .invoke(json!({"check": "throttled", "secret": "sdk/cold"}))
        .await;
    s.proxy.heal();
    assert_eq!(throttled["code"], "ThrottlingException", "{throttled}");
    let upstream = s.proxy.calls("GetSecretValue") - before;
    let attempts = throttled["attempts"].as_u64().unwrap();
    assert!(attempts >= 3, "{throttled}");
    eprintln!("a throttled cold read: {attempts} boto3 attempts, {upstream} upstream calls");
    assert!(
        upstream <= 3,
        "{attempts} SDK attempts, {upstream} upstream calls"
    );
    // GetParameters with a selector among latest names.
    let parameters = s
        .invoke(json!({"check": "parameters", "names": [PARAMETER, "/sdk/tree/a", "/sdk/none"]}))
        .await;
    assert_eq!(
        parameters["names"],
        json!([PARAMETER, "/sdk/tree/a"]),
        "{parameters}"
    );
    assert_eq!(parameters["invalid"], json!(["/sdk/none"]));
    hygiene::assert_clean(&s.lambda.logs(), "the extension's and the function's logs");
    assert!(
        s.lambda.logs().contains("names sidekey's own listener"),
        "the extension said it passed over the variables"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_sdk_reads_through_sidekey_unchanged() {
    let root = node_task_root(&here("e2e/sdk/checks.mjs"));
    let s = setup("node".into(), &[&node_ric(), "checks.handler"], root, &[]).await;
    the_checks(&s).await;
    hygiene::assert_clean(&s.lambda.logs(), "the extension's and the function's logs");
}

/// The examples as AWS's documentation writes SDK code, invoked twice:
/// the second read of each is a hit.
async fn sdk_example(program: PathBuf, args: &[&str], dir: PathBuf) {
    let s = setup(
        program,
        args,
        dir,
        &[("SECRET_ID", SECRET_ID), ("PARAMETER_NAME", PARAMETER)],
    )
    .await;
    let expected = json!({"secret": summary(SECRET), "parameter": summary(PARAMETER_VALUE)});
    for _ in 0..2 {
        assert_eq!(
            s.invoke(json!({})).await,
            expected,
            "logs:\n{}",
            s.lambda.logs()
        );
    }
    assert_eq!(
        s.proxy.calls("GetSecretValue"),
        1,
        "the second read is a hit"
    );
    assert_eq!(s.proxy.calls("GetParameter"), 1, "the second read is a hit");
    hygiene::assert_clean(&s.lambda.logs(), "the extension's and the function's logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_example_runs_unchanged() {
    sdk_example(
        python(),
        &["-m", "awslambdaric", "sdk_handler.lambda_handler"],
        here("../examples/python"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sdk_example_runs_unchanged() {
    let root = node_task_root(&here("../examples/node/sdk.mjs"));
    sdk_example("node".into(), &[&node_ric(), "sdk.handler"], root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_sdk_reads_through_sidekey_unchanged() {
    // No function process: the Rust SDK runs here, with the function's
    // credentials (the harness's) and sidekey as its endpoint.
    let s = setup(
        python(),
        &["-m", "awslambdaric", "checks.lambda_handler"],
        here("e2e/sdk"),
        &[],
    )
    .await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test",
            "test",
            Some(s.lambda.token.clone()),
            None,
            "function",
        ))
        .endpoint_url(format!("http://127.0.0.1:{}", s.port))
        .http_client(
            sidekey_aws::AwsFetcher::http_client(std::time::Duration::from_secs(1), 3)
                .expect("the HTTPS client"),
        )
        .load()
        .await;
    let sm = aws_sdk_secretsmanager::Client::new(&config);
    for _ in 0..3 {
        let out = sm
            .get_secret_value()
            .secret_id(SECRET_ID)
            .send()
            .await
            .unwrap();
        assert_eq!(out.secret_string(), Some(SECRET));
        assert_eq!(out.name(), Some(SECRET_ID));
        assert!(
            out.created_date().is_some(),
            "dates read as the SDK expects"
        );
    }
    assert_eq!(s.proxy.calls("GetSecretValue"), 1);
    let e = sm
        .get_secret_value()
        .secret_id("sdk/nope")
        .send()
        .await
        .unwrap_err();
    assert!(e.into_service_error().is_resource_not_found_exception());
    let ssm = aws_sdk_ssm::Client::new(&config);
    let mut pages = ssm
        .get_parameters_by_path()
        .path("/sdk/tree/")
        .recursive(true)
        .into_paginator()
        .page_size(1)
        .send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        names.extend(
            page.unwrap()
                .parameters()
                .iter()
                .filter_map(|p| p.name().map(str::to_owned)),
        );
    }
    assert_eq!(names, ["/sdk/tree/a", "/sdk/tree/b", "/sdk/tree/deep/c"]);
    assert_eq!(s.proxy.calls("GetParametersByPath"), 1);
    let p = ssm
        .get_parameter()
        .name(PARAMETER)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(p.parameter().and_then(|p| p.value()), Some(PARAMETER_VALUE));
}
