//! The README's demo runs to completion and shows what it promises.

use std::process::Command;

use sidekey_tests::lambda::bin;

#[test]
fn demo_runs_to_completion() {
    let out = Command::new(bin("demo"))
        .env("DEMO_INVOCATIONS", "3")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "invoke 3:",
        "\"upstream_calls\":1",
        "BatchGetSecretValue=0 GetSecretValue=1",
        "got the key exactly as stored: yes (3 calls)",
        "exited (exit status: 0)",
        "metrics line for CloudWatch (SIDEKEY_METRICS=emf): {",
        "\"_aws\":{\"CloudWatchMetrics\":[{",
        "\"UpstreamCalls\":1",
        "everything the demo started is stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // Three reads, one upstream call: the first read is a hit, or (on a
    // loaded machine, the function's init racing the prefetch) a miss that
    // joined the prefetch's batch.
    let counters = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("extension counters: "))
        .expect("a counters line");
    let counters: serde_json::Value = serde_json::from_str(counters).expect("counters JSON");
    assert_eq!(
        counters["hits"].as_u64().unwrap() + counters["misses"].as_u64().unwrap(),
        3,
        "{counters}"
    );
    // boto3 through the SDK-compatible endpoint, from the cache, where the
    // demo has moto's Python (scripts/tools.sh exports it).
    if std::env::var_os("SIDEKEY_PYTHON").is_some() {
        assert!(
            stdout.contains("as stored: yes)") && stdout.contains("upstream calls since: 0"),
            "no boto3 read through sidekey in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("demo-openweather-key"),
        "the demo printed the key"
    );
}
