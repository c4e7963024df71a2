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
        "\"hits\":3",
        "\"upstream_calls\":1",
        "BatchGetSecretValue=1 GetSecretValue=0",
        "got the key exactly as stored: yes (3 calls)",
        "exited (exit status: 0)",
        "everything the demo started is stopped",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("demo-openweather-key"),
        "the demo printed the key"
    );
}
