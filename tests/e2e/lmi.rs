//! Lambda Managed Instances: an environment never frozen, running many
//! invocations at once (issue 29).
//!
//! The harness gives the extension and the function what Lambda sets there
//! (`AWS_LAMBDA_INITIALIZATION_TYPE=lambda-managed-instances`,
//! `AWS_LAMBDA_MAX_CONCURRENCY`) and never freezes the processes. The
//! function is what the Python runtime runs there: one process per
//! concurrent invocation, here 16 real `awslambdaric` processes polling one
//! Runtime API, each reading the same secrets through sidekey and through
//! Powertools' in-process cache.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use lambda_simulator::{EventType, Invocation};
use serde_json::{json, Value};
use sidekey_tests::aws;
use sidekey_tests::client::get;
use sidekey_tests::lambda::{vars, Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;

const WORKERS: usize = 16;

/// What Lambda sets in a Managed Instances environment of `WORKERS`.
fn managed_instances() -> Vec<(String, String)> {
    vars(&[
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "lambda-managed-instances"),
        ("AWS_LAMBDA_MAX_CONCURRENCY", "16"),
    ])
}

/// What the workers saw: the processes that answered, the invocations, and
/// each read's microseconds through sidekey and through Powertools.
#[derive(Default)]
struct Seen {
    pids: BTreeSet<u64>,
    invocations: u64,
    sidekey_us: Vec<f64>,
    powertools_us: Vec<f64>,
}

/// Wait until every worker process is polling (sixteen interpreters
/// importing boto3 and Powertools on a small machine take a while).
async fn wait_for_workers(lambda: &Lambda) {
    let started = std::time::Instant::now();
    while lambda.logs().matches("lmi worker ready").count() < WORKERS {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the workers did not start:\n{}",
            lambda.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("{WORKERS} Python processes up in {:?}", started.elapsed());
}

/// One round: `WORKERS` invocations sent together, each held 0.3 s by the
/// function so they spread over the processes.
async fn round(lambda: &Lambda, seen: &mut Seen) {
    let mut ids = Vec::new();
    for _ in 0..WORKERS {
        // Lambda's own timeout, not the simulator's 3 s default: on two
        // cores the first reads wait on a busy moto.
        let invocation = Invocation::new(json!({"hold": 0.3}), 120_000);
        ids.push(lambda.sim.enqueue(invocation).await);
    }
    for id in ids {
        let state = lambda
            .sim
            .wait_for_invocation_complete(&id, Duration::from_secs(180))
            .await
            .unwrap_or_else(|e| panic!("invocation: {e:?}\n{}", lambda.logs()));
        let payload = match state.response {
            Some(response) => response.payload,
            None => panic!("no response: {:?}\n{}", state.error, lambda.logs()),
        };
        assert_eq!(payload["sidekey"], payload["powertools"], "{payload}");
        seen.pids.insert(payload["pid"].as_u64().expect("a pid"));
        seen.invocations += 1;
        let micros = |name: &str| -> Vec<f64> {
            payload[name]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect()
        };
        seen.sidekey_us.extend(micros("sidekey_us"));
        seen.powertools_us.extend(micros("powertools_us"));
    }
}

/// Rounds until every process has answered one, or 8 rounds.
async fn invoke_until_every_worker_answered(lambda: &Lambda) -> Seen {
    wait_for_workers(lambda).await;
    let mut seen = Seen::default();
    for _ in 0..8 {
        round(lambda, &mut seen).await;
        if seen.pids.len() == WORKERS {
            break;
        }
    }
    seen
}

/// The `q` quantile of `values`, in microseconds.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values
        .get(((values.len() as f64 - 1.0) * q).round() as usize)
        .copied()
        .unwrap_or(0.0)
}

/// One cache for all the workers: 16 Python processes reading 5 secrets make
/// 5 `GetSecretValue` calls through sidekey, where Powertools' per-process
/// cache makes 5 per process. The extension asks for SHUTDOWN only (Lambda
/// refuses INVOKE there) and writes its metrics as an EMF line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cache_serves_sixteen_python_processes() {
    let moto = Moto::start();
    let through_sidekey = Proxy::start(moto.addr()).await;
    let through_powertools = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ids: Vec<String> = (0..5).map(|i| format!("lmi/app/secret-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        aws::create_secret(&sm, id, &format!("lmi-secret-value-{i}-6b1f")).await;
    }
    let python = std::env::var("SIDEKEY_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut function_env = managed_instances();
    function_env.extend(vars(&[
        ("SECRET_IDS", &ids.join(",")),
        // Powertools' boto3 client goes to its own counting proxy.
        ("AWS_ENDPOINT_URL", &through_powertools.url()),
    ]));
    let mut extension_env = managed_instances();
    // A deadline that 16 Python processes on two cores cannot turn into a
    // timeout: the count of calls is the point here.
    extension_env.extend(vars(&[
        ("SIDEKEY_METRICS", "emf"),
        ("SECRETS_MANAGER_TIMEOUT_MILLIS", "20000"),
    ]));
    let lambda = Lambda::start(Options {
        aws_endpoint: through_sidekey.url(),
        extension_env,
        runtime: Some((python.into(), function_env)),
        runtime_args: vec![
            "-m".into(),
            "awslambdaric".into(),
            "handler.lambda_handler".into(),
        ],
        runtime_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/lmi")),
        runtime_processes: WORKERS,
        ..Options::default()
    })
    .await;

    let seen = invoke_until_every_worker_answered(&lambda).await;
    let pids = seen.pids.len() as u64;
    let sidekey_calls = through_sidekey.calls("GetSecretValue");
    let powertools_calls = through_powertools.calls("GetSecretValue");
    println!(
        "{WORKERS} Python processes ({pids} answered), 5 secrets: GetSecretValue through sidekey {sidekey_calls}, through Powertools' per-process cache {powertools_calls}"
    );
    assert!(
        pids as usize >= WORKERS / 2,
        "the invocations spread: {:?}",
        seen.pids
    );
    assert_eq!(sidekey_calls, 5, "one cache for the environment");
    assert_eq!(powertools_calls, 5 * pids, "one cache per process");

    // Per-read latency once every cache is warm: one more round.
    let mut warm = Seen::default();
    round(&lambda, &mut warm).await;
    println!(
        "per read once warm, wall time as the function saw it with 16 processes on this machine ({} reads each): sidekey (localhost HTTP) p50 {:.0} us p99 {:.0} us; Powertools (in-process) p50 {:.0} us p99 {:.0} us",
        warm.sidekey_us.len(),
        quantile(&mut warm.sidekey_us, 0.5),
        quantile(&mut warm.sidekey_us, 0.99),
        quantile(&mut warm.powertools_us, 0.5),
        quantile(&mut warm.powertools_us, 0.99),
    );
    assert_eq!(through_sidekey.calls("GetSecretValue"), 5, "warm: no call");
    let warm_new_processes = warm.pids.difference(&seen.pids).count() as u64;
    assert_eq!(
        through_powertools.calls("GetSecretValue"),
        powertools_calls + 5 * warm_new_processes
    );

    // Registered for SHUTDOWN alone: Lambda refuses INVOKE there.
    let registered = lambda.sim.get_registered_extensions().await;
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].events, vec![EventType::Shutdown]);
    let report = lambda.shutdown().await;
    assert!(report.status.expect("exited").success(), "{}", report.logs);

    // The metrics lines (one a minute on the timer, one at SHUTDOWN) add
    // up to every read and every call, each read counted once: a hit, or
    // a miss that waited (the cold readers of one id share its one call).
    let lines = emf_lines(&report.logs);
    assert!(
        !lines.is_empty(),
        "an EMF line at SHUTDOWN:\n{}",
        report.logs
    );
    let sum = |name: &str| lines.iter().map(|l| l[name].as_u64().unwrap()).sum::<u64>();
    let reads = 5 * (seen.invocations + warm.invocations);
    assert_eq!(sum("Hits") + sum("Misses"), reads);
    assert!(sum("Hits") >= 5 * warm.invocations);
    assert_eq!(sum("UpstreamCalls"), 5);
    for line in &lines {
        let definition = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "sidekey");
        assert_eq!(definition["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(line["FunctionName"], "sidekey-test");
        for metric in definition["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(line[name].is_u64(), "{name} has a value: {line}");
        }
    }
    assert_eq!(lines.last().unwrap()["Entries"], 5);
}

/// The JSON objects of the EMF lines in `logs`.
fn emf_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\":"))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// With no INVOKE to refresh at, a value read once is refreshed once on
/// sidekey's own timer before it expires, so the read a TTL later is a hit;
/// a value not read again is left to expire. On demand (the control: the
/// same without Managed Instances' variables, and no INVOKE either) that
/// read waits on the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_read_once_is_refreshed_on_the_timer_before_it_expires() {
    const TTL: u64 = 4;
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "lmi/timer", "lmi-timer-value-41c7").await;
    let ttl = TTL.to_string();
    let start = |lmi: bool| {
        let moto = &moto;
        let ttl = &ttl;
        async move {
            let proxy = Proxy::start(moto.addr()).await;
            // A deadline long enough that a loaded machine does not turn
            // the timer's refresh into a timeout (the hit is the point).
            let mut env = vars(&[
                ("SECRETS_MANAGER_TTL", ttl),
                ("SECRETS_MANAGER_TIMEOUT_MILLIS", "20000"),
            ]);
            if lmi {
                env.extend(managed_instances());
            }
            let lambda = Lambda::start(Options {
                aws_endpoint: proxy.url(),
                extension_env: env,
                ..Options::default()
            })
            .await;
            (proxy, lambda)
        }
    };
    let ((lmi_proxy, lmi), (control_proxy, control)) = tokio::join!(start(true), start(false));
    let read = |lambda: &Lambda| {
        let (url, token) = (lambda.url(), lambda.token.clone());
        async move {
            let a = get(
                &format!("{url}/secretsmanager/get?secretId=lmi%2Ftimer"),
                Some(&token),
            )
            .await;
            assert_eq!(a.status, 200, "{}", a.body);
        }
    };
    let metrics = |lambda: &Lambda| {
        let (url, token) = (lambda.url(), lambda.token.clone());
        async move { get(&format!("{url}/metrics"), Some(&token)).await.json() }
    };
    // Read at 0, again at 5 s: past the TTL (4 s), and before the refreshed
    // value's own refresh window (it lands at about 3 s and lives 3.6 s to
    // 4 s), so the second read neither finds it expired nor starts a
    // refresh of its own.
    tokio::join!(read(&lmi), read(&control));
    tokio::time::sleep(Duration::from_secs(5)).await;
    tokio::join!(read(&lmi), read(&control));
    let (m, c) = (metrics(&lmi).await, metrics(&control).await);
    println!(
        "read again 5 s later (TTL {TTL} s), no INVOKE: Managed Instances hits {} misses {} GetSecretValue {}; on demand hits {} misses {} GetSecretValue {}",
        m["hits"], m["misses"], lmi_proxy.calls("GetSecretValue"),
        c["hits"], c["misses"], control_proxy.calls("GetSecretValue")
    );
    assert_eq!(
        m["misses"],
        1,
        "refreshed on the timer: a hit {m}\n{}",
        lmi.logs()
    );
    assert_eq!(m["hits"], 1, "{m}");
    // Refreshed once on the timer; a second call only if a loaded machine
    // made the read late enough to fall in the new value's refresh window,
    // which starts a refresh of its own (refresh-ahead).
    let calls = lmi_proxy.calls("GetSecretValue");
    assert!((2..=3).contains(&calls), "refreshed once: {calls}");
    assert_eq!(c["misses"], 2, "on demand, nothing ran in between: {c}");

    // The read at 5 s makes it due once more; then, unread, it is left to
    // expire: no call after that one however long the timer runs.
    tokio::time::sleep(Duration::from_secs(TTL * 3)).await;
    assert_eq!(
        lmi_proxy.calls("GetSecretValue"),
        3,
        "one refresh for the read, none for no read"
    );
    let m = metrics(&lmi).await;
    assert_eq!(m["refreshes"], 2, "{m}");
    assert!(lmi.extension_alive());
}
