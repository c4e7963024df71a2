//! Where the official extension runs, sidekey runs: real function code
//! under the real runtime interface clients, and the extension built for the
//! architecture the harness runs it on.
//!
//! The examples (`examples/python/handler.py`, `examples/node/index.mjs`)
//! are written the way AWS's documentation shows; here they run under
//! `awslambdaric` (PyPI) and `aws-lambda-ric` (npm) as the runtime of a
//! `lambda-simulator` environment, reading through the real `sidekey`
//! binary from moto. `scripts/tools.sh` installs both clients and exports
//! `SIDEKEY_PYTHON` and `SIDEKEY_NODE_RIC`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sidekey_tests::aws;
use sidekey_tests::hygiene;
use sidekey_tests::lambda::{bin, vars, Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;

const SECRET_ID: &str = "examples/api-key";
const SECRET: &str = r#"{"apikey":"example-KEY-3f9c2a71"}"#;
const PARAMETER: &str = "/examples/db/password";
const PARAMETER_VALUE: &str = "example-db-PW-7d41e0";

fn examples(language: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(language)
}

/// What the examples answer for a value: its length and SHA-256, never the
/// value itself.
pub(crate) fn summary(value: &str) -> Value {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    json!({"length": value.len(), "sha256": hex})
}

/// Run `program args` in `dir` as the function, invoke it twice, and check
/// what arrived, what went upstream and what was logged.
async fn example_reads_through_sidekey(program: PathBuf, args: &[&str], dir: PathBuf) {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ssm = aws::ssm(&moto.url()).await;
    aws::create_secret(&sm, SECRET_ID, SECRET).await;
    aws::put_parameter(&ssm, PARAMETER, PARAMETER_VALUE, true).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        runtime: Some((
            program,
            vars(&[("SECRET_ID", SECRET_ID), ("PARAMETER_NAME", PARAMETER)]),
        )),
        runtime_args: args.iter().map(|a| a.to_string()).collect(),
        runtime_dir: Some(dir),
        ..Options::default()
    })
    .await;

    let expected = json!({"secret": summary(SECRET), "parameter": summary(PARAMETER_VALUE)});
    for _ in 0..2 {
        let state = lambda.invoke(json!({})).await;
        let response = state
            .response
            .unwrap_or_else(|| panic!("no response; logs:\n{}", lambda.logs()));
        assert_eq!(response.payload, expected, "logs:\n{}", lambda.logs());
    }
    assert_eq!(proxy.calls("GetSecretValue"), 1, "the second read is a hit");
    assert_eq!(proxy.calls("GetParameter"), 1, "the second read is a hit");

    let logs = lambda.logs();
    assert!(
        logs.contains(&format!(
            "read secret {SECRET_ID}: {} characters",
            SECRET.len()
        )),
        "the function's own log line is captured: {logs}"
    );
    hygiene::assert_clean(&logs, "the extension's and the function's logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_under_awslambdaric_reads_through_sidekey() {
    let python = std::env::var("SIDEKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    example_reads_through_sidekey(
        python.into(),
        &["-m", "awslambdaric", "handler.lambda_handler"],
        examples("python"),
    )
    .await;
}

/// The Python example's batch read: three secrets (one of them missing) in
/// one request, one `BatchGetSecretValue` upstream, the missing one
/// reported in `Errors` and logged by the function by its error code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_example_reads_a_batch_through_sidekey() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let batch = [
        ("example/db-user", "example-user-5c1e"),
        ("example/db-host", "example-host-93ab"),
    ];
    aws::create_secret(&sm, SECRET_ID, SECRET).await;
    for (id, value) in batch {
        aws::create_secret(&sm, id, value).await;
    }
    let python = std::env::var("SIDEKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        runtime: Some((
            python.into(),
            vars(&[
                ("SECRET_ID", SECRET_ID),
                (
                    "BATCH_SECRET_IDS",
                    "example/db-user,example/db-host,example/absent",
                ),
            ]),
        )),
        runtime_args: ["-m", "awslambdaric", "handler.lambda_handler"]
            .iter()
            .map(|a| a.to_string())
            .collect(),
        runtime_dir: Some(examples("python")),
        ..Options::default()
    })
    .await;
    let state = lambda.invoke(json!({})).await;
    let response = state
        .response
        .unwrap_or_else(|| panic!("no response; logs:\n{}", lambda.logs()));
    let expected: serde_json::Map<String, Value> = batch
        .iter()
        .map(|(id, value)| (id.to_string(), summary(value)))
        .collect();
    assert_eq!(response.payload["batch"], Value::Object(expected));
    assert_eq!(proxy.calls("BatchGetSecretValue"), 1);
    let logs = lambda.logs();
    assert!(
        logs.contains("could not read example/absent: ResourceNotFoundException"),
        "{logs}"
    );
    hygiene::assert_clean(&logs, "the extension's and the function's logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_example_under_aws_lambda_ric_reads_through_sidekey() {
    let ric = std::env::var("SIDEKEY_NODE_RIC")
        .expect("SIDEKEY_NODE_RIC (aws-lambda-ric's bin/index.mjs): run scripts/test.sh, or source scripts/tools.sh test");
    example_reads_through_sidekey("node".into(), &[&ric, "index.handler"], examples("node")).await;
}

/// The binary the harness runs is built for the machine it runs on:
/// `SIDEKEY_EXTENSION_RUNNER=qemu-aarch64` must be running an AArch64 build
/// (scripts/test.sh's qemu step), no runner means the host's.
#[test]
fn the_extension_binary_matches_its_runner() {
    const EM_X86_64: u16 = 62;
    const EM_AARCH64: u16 = 183;
    let path = bin("sidekey");
    let elf = std::fs::read(&path).expect("read the sidekey binary");
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not ELF", path.display());
    let machine = u16::from_le_bytes([elf[18], elf[19]]);
    let runner = std::env::var("SIDEKEY_EXTENSION_RUNNER").unwrap_or_default();
    let expected = match runner.split_whitespace().next() {
        Some(r) if r.ends_with("qemu-aarch64") => EM_AARCH64,
        Some(r) => panic!("unknown SIDEKEY_EXTENSION_RUNNER {r}"),
        None if cfg!(target_arch = "aarch64") => EM_AARCH64,
        None => EM_X86_64,
    };
    assert_eq!(machine, expected, "{} under {runner:?}", path.display());
}
