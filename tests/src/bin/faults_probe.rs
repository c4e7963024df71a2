//! Figures for issue 11, printed, never asserted: the three hung-upstream
//! cases (time to answer and status), the INVOKE hold while reads hang, and
//! the upstream calls of idle entries. The same scenarios as the
//! `upstream_faults` tests (`sidekey_tests::faults`), on the `sidekey`
//! binary in `SIDEKEY_BIN_DIR` (e.g. `target/release`), else next to this
//! one (`target/debug`).
//!
//! `cargo build --workspace --bins [--release]`, then
//! `SIDEKEY_BIN_DIR=target/release target/debug/faults_probe`.

use std::time::Duration;

use sidekey_tests::faults::{self, mean, Timed};
use sidekey_tests::lambda::bin;

fn case(name: &str, t: &Timed) {
    println!(
        "  {name:<46} {:>4} {:<10} in {:>9.1} ms",
        t.status,
        t.code.as_deref().unwrap_or("-"),
        t.elapsed.as_secs_f64() * 1000.0
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!(
        "sidekey upstream-fault figures ({})",
        bin("sidekey").display()
    );
    println!(
        "hung upstream (accepts, never answers), SECRETS_MANAGER_TTL=2, default deadline 2 s:"
    );
    let r = faults::hung_upstream(20).await;
    case("(a) cached value just expired", &r.expired);
    case("(a) the same, a second reader", &r.expired_again);
    case("(b) never read before", &r.cold);
    let until: Vec<Duration> = r.invokes.iter().map(|i| i.until_ready).collect();
    let held = until
        .iter()
        .filter(|d| **d >= Duration::from_millis(100))
        .count();
    println!(
        "  (c) {} INVOKEs while reads hang (null runtime): INVOKE to the extension's /next mean {}, \
         max {}; {held} held 100 ms or more; hold past the function's answer mean {}",
        until.len(),
        ms(mean(until.iter().copied())),
        ms(until.iter().max().copied().unwrap_or_default()),
        ms(mean(r.invokes.iter().map(|i| i.hold))),
    );
    let (holds, _) = faults::invoke_holds(6).await;
    let until: Vec<Duration> = holds.iter().map(|i| i.until_ready).collect();
    println!(
        "hung upstream, TTL 2 s, one secret being read, 6 INVOKEs 0.3 s apart (null runtime): \
         INVOKE to /next {}; mean {}, max {}",
        until.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", "),
        ms(mean(until.iter().copied())),
        ms(until.iter().max().copied().unwrap_or_default()),
    );
    println!("idle refresh: 50 secrets read once, TTL 4 s, then 20 s of INVOKEs with no reads:");
    let idle = faults::idle_refresh(50, 4, 20).await;
    println!(
        "  {} GetSecretValue calls during {} INVOKEs over {:.1} s (the reads made {}); INVOKE to /next mean {}",
        idle.calls_during,
        idle.invokes.len(),
        idle.elapsed.as_secs_f64(),
        idle.initial_calls,
        ms(mean(idle.invokes.iter().map(|i| i.until_ready))),
    );
}
