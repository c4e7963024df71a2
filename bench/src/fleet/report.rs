//! The "Fleet" section of `bench/REPORT.md` and the `"fleet"` entry of
//! `bench/results.json`, merged into what the other benchmarks wrote so a
//! fleet run never redoes (or loses) them, and they never lose it.

use std::fmt::Write;
use std::path::Path;

use super::stats::{Row, Spread};
use super::{FleetResults, ScenarioResult};

/// Marks the fleet section in `REPORT.md`, so a later run replaces it.
pub const BEGIN: &str = "<!-- fleet:begin -->";
const END: &str = "<!-- fleet:end -->";

/// A spread as the report prints it: the median, and the range over
/// seeds when the seeds disagree.
pub fn fmt_spread(s: Spread, decimals: usize) -> String {
    let f = |v: f64| format!("{v:.decimals$}");
    if f(s[0]) == f(s[2]) {
        f(s[1])
    } else {
        format!("{} ({}–{})", f(s[1]), f(s[0]), f(s[2]))
    }
}

/// The section.
pub fn markdown(r: &FleetResults, chart: Result<&str, &str>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}\n## Fleet simulation (issues 13 and 30)\n");
    let _ = writeln!(
        s,
        "Written by `bench/run.sh --fleet` (`sidekey-bench fleet`; do not edit by hand). Seeds {:?}: \
         every figure is the median over the seeds, with the range (least–most) beside it when the \
         seeds disagree. {} runs (scenario x policy x seed) took {:.0} s of wall time on {} (2 \
         threads, shared with other work: a rough figure, not a benchmark).\n",
        r.seeds, r.jobs, r.wall_secs, r.cpu
    );
    s.push_str(METHOD);
    match chart {
        Ok(file) => {
            let _ = writeln!(
                s,
                "![fleet: the busiest second of each minute per API against its quota, first seed]({file})\n"
            );
        }
        Err(why) => {
            let _ = writeln!(s, "(No fleet chart in this run: {why}.)\n");
        }
    }
    for sc in &r.scenarios {
        let _ = writeln!(s, "### {}\n", sc.title);
        let rotation = sc
            .rows
            .iter()
            .any(|o| o.figures.contains_key("converged_s"));
        let kms = sc.rows.iter().any(|o| o.get("kms_decrypts")[2] > 0.0);
        let replica = sc.rows.iter().any(|o| o.get("replica_calls")[2] > 0.0);
        let _ = write!(
            s,
            "| policy | invocations | throttled invocations (429) | peak concurrency | timed out | reads failed (of them of a value held: served there before) | p50 / p99 ms | calls per API (busiest second / quota) | throttled calls | $ per 1M inv., batch per call | $ per 1M inv., batch per secret |"
        );
        let mut extra = 0;
        if rotation {
            let _ = write!(s, " old version served (reads; last, s after rotation) |");
            extra += 1;
        }
        if kms {
            let _ = write!(s, " KMS Decrypt |");
            extra += 1;
        }
        if replica {
            let _ = write!(s, " replica calls |");
            extra += 1;
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|---|---|---|{}",
            "---|".repeat(extra)
        );
        for o in &sc.rows {
            let apis: Vec<String> = o
                .apis
                .iter()
                .map(|(api, quota, calls, throttled, peak)| {
                    let t = if throttled[2] > 0.0 {
                        format!(" **{} throttled**", fmt_spread(*throttled, 0))
                    } else {
                        String::new()
                    };
                    format!(
                        "{api} {} ({} / {quota}){t}",
                        fmt_spread(*calls, 0),
                        fmt_spread(*peak, 0)
                    )
                })
                .collect();
            let failed = o.get("reads_failed");
            let reads = o.get("reads")[1].max(1.0);
            let _ = write!(
                s,
                "| {} | {} | {} | {} | {} | {} ({:.3}%; held {}) | {} / {} | {} | {} | {} | {} |",
                o.policy,
                fmt_spread(o.get("invocations"), 0),
                fmt_spread(o.get("throttled_invocations"), 0),
                fmt_spread(o.get("peak_concurrency"), 0),
                fmt_spread(o.get("timeouts"), 0),
                fmt_spread(failed, 0),
                100.0 * failed[1] / reads,
                fmt_spread(o.get("reads_failed_held"), 0),
                fmt_spread(o.get("p50_ms"), 1),
                fmt_spread(o.get("p99_ms"), 1),
                if apis.is_empty() {
                    "-".to_owned()
                } else {
                    apis.join("<br>")
                },
                fmt_spread(o.get("throttled"), 0),
                fmt_spread(o.get("cost_per_call"), 3),
                fmt_spread(o.get("cost_per_secret"), 3),
            );
            if rotation {
                let _ = write!(
                    s,
                    " {} ({}) |",
                    fmt_spread(o.get("old_reads"), 0),
                    fmt_spread(o.get("converged_s"), 0)
                );
            }
            if kms {
                let _ = write!(s, " {} |", fmt_spread(o.get("kms_decrypts"), 0));
            }
            if replica {
                let _ = write!(s, " {} |", fmt_spread(o.get("replica_calls"), 0));
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{}\n", verdict(sc));
    }
    s.push_str(super::notes::NOTES);
    let _ = writeln!(s, "\n{END}");
    s
}

/// Reads a policy did not serve: those that failed, and those of the
/// invocations Lambda throttled (each would have made as many as an
/// admitted one), medians.
fn unserved(r: &Row) -> f64 {
    let per_invocation = r.get("reads")[1] / r.get("invocations")[1].max(1.0);
    r.get("reads_failed")[1] + r.get("throttled_invocations")[1] * per_invocation
}

/// What the scenario's figures say of sidekey against every rival, as
/// medians over the seeds.
fn verdict(sc: &ScenarioResult) -> String {
    let row = |name: &str| sc.rows.iter().find(|r| r.policy == name);
    let rivals = || sc.rows.iter().filter(|r| !r.policy.starts_with("sidekey"));
    let mut out = Vec::new();
    for sk in ["sidekey (defaults)", "sidekey (configured)"] {
        let Some(me) = row(sk) else { continue };
        let mine = unserved(me);
        let better: Vec<String> = rivals()
            .filter(|r| unserved(r) < mine)
            .map(|r| format!("{} ({:.0})", r.policy, unserved(r)))
            .collect();
        let fewer_calls: Vec<String> = rivals()
            .filter(|r| r.get("upstream_calls")[1] < me.get("upstream_calls")[1])
            .map(|r| format!("{} ({:.0})", r.policy, r.get("upstream_calls")[1]))
            .collect();
        let cheaper = |key: &str| -> String {
            let v: Vec<String> = rivals()
                .filter(|r| r.get(key)[1] < me.get(key)[1] - 1e-9)
                .map(|r| format!("{} (${:.3})", r.policy, r.get(key)[1]))
                .collect();
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        let none = |v: Vec<String>| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        out.push(format!(
            "**{sk}**: {mine:.0} reads not served (failed, or in a throttled invocation); rivals serving more: {}. \
             Rivals making fewer calls than its {:.0}: {}. Cheaper with batches billed per call (its ${:.3}): {}; \
             per secret (its ${:.3}): {}.",
            none(better),
            me.get("upstream_calls")[1],
            none(fewer_calls),
            me.get("cost_per_call")[1],
            cheaper("cost_per_call"),
            me.get("cost_per_secret")[1],
            cheaper("cost_per_secret"),
        ));
    }
    out.join("<br>\n")
}

const METHOD: &str = "\
**How it works.** Discrete-event, virtual time: each (scenario, policy, seed) runs on a \
current-thread tokio runtime with paused time; every invocation stream and invocation is a task; \
sidekey's environments each run the real `sidekey-cache` (`SecretCache`, its TTL clock read from \
tokio's virtual clock), and the runtime jumps to the next timer whenever all tasks wait. \
Arrivals, latencies and retry jitter come from seeded generators and the cache's own jitter is \
seeded per run, so a seed gives the same figures every time; a scenario's traffic is the same \
for every policy.

**The services** (`fleet/service.rs`): one account's quotas per region as token buckets holding \
one second of their rate (AWS does not publish the burst), shared by the whole fleet: \
GetSecretValue 10,000/s and DescribeSecret 40,000/s \
([What's New, March 2025](https://aws.amazon.com/about-aws/whats-new/2025/03/aws-secrets-manager-increases-api-requests-seconds/)), \
BatchGetSecretValue 100/s, 20 secrets a call \
([Secrets Manager quotas](https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html)), \
GetParameter and GetParameters 40/s shared at standard throughput \
([Systems Manager quotas](https://docs.aws.amazon.com/general/latest/gr/ssm.html)). A request past \
its bucket answers `ThrottlingException`; latency is log-normal (median 15 ms GetSecretValue, \
30 ms BatchGetSecretValue, 10 ms DescribeSecret, 12 ms GetParameter). In an outage every call \
answers 503 or hangs, half each: a hung call is accepted and never answered, so only the \
client's own timeout ends it.

**The clients** (`fleet/retry.rs`, the one place each is modelled): sidekey's `SigV4Fetcher` \
retry read from `sidekey_aws::fetcher` itself (`MAX_ATTEMPTS` 3, `backoff_pause` full jitter from \
100 ms, `attempt_bound` half the 2 s deadline, `retried`: 5xx, timeouts and connection failures \
but not throttling; batch calls and DescribeSecret once; a cold read falling back to the replica \
region with its share of the deadline when `SIDEKEY_FALLBACK_REGIONS` is set). Every rival on the \
AWS SDKs' standard retry: 3 attempts, backoff `rand * min(1 s * 2^n, 20 s)`, throttling retried, \
no per-attempt timeout (a hung call lasts until the function's timeout). boto3's default legacy \
mode makes up to 5 attempts: modelling 3 is kind to the Python rivals.

**Lambda** (`fleet/lambda.rs`, [Lambda scaling behavior](https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html)): \
each invocation in flight, INIT included and the time an extension holds the INVOKE, takes one \
unit of the account's concurrency, **1,000 (the default quota)**; each function adds at most \
1,000 environments per 10 s (a bucket of 1,000 refilled at 100/s). An invocation past either is \
**throttled (429)** and counted. Every scenario spreads its streams over 10 functions sharing \
the account (the surge's 10,000 environments in 10 s need at least ten). A stream's invocation \
runs on its idle warm environment, else on a new one (a cold start: 150 ms of the function's own \
INIT). Environments freeze between invocations, are reaped after 10 idle minutes, recycled after \
a lifetime drawn in [15, 90] min (AWS publishes none; windows of 30 to 80 min recycle many), and \
**reset** with their caches when an invocation passes the function's timeout (3 s, Lambda's \
default). A read counts as failed when it errs, or when the invocation timed out before it was \
answered or made. Under Lambda Managed Instances an environment is never frozen and runs up to 16 \
invocations at once (past that they are throttled); an in-process cache is one per process there, \
16 per environment; sidekey refreshes on its own timer (`next_due`, `start_due`).

**Cost**: Secrets Manager $0.05 per 10,000 API calls \
([pricing](https://aws.amazon.com/secrets-manager/pricing/)), every call that reached the \
service counted. Whether a BatchGetSecretValue call bills once or once per secret it returns the \
docs found do not settle, so both are shown. Parameter Store is free at standard throughput (40/s) \
and $0.05 per 10,000 with higher throughput: its dollars are the latter. KMS $0.03 per 10,000 \
requests ([pricing](https://aws.amazon.com/kms/pricing/)): each secret value Secrets Manager \
returns from a secret under a customer-managed key costs a `Decrypt` (DescribeSecret none); \
counted where the scenario says so. Dollars are per million invocations Lambda admitted.

**Policies** (`fleet/policy.rs`, each rival's source on its variant): **sidekey (defaults)**: \
`CacheConfig::default()`, no prefetch, no fallback, no version check, `refresh_due(1 s)` on every \
INVOKE. **sidekey (configured)**: the same with what the scenario sets (`SIDEKEY_PREFETCH`, or the \
parameters prefetched; `SIDEKEY_FALLBACK_REGIONS` in 5; `SIDEKEY_VERSION_CHECK=describe` in 8). \
**official-like**: the AWS Parameters and Secrets Lambda Extension as documented (closed source): \
TTL at most 300 s, refetched on the first read after it, no serve-stale, no timeout by default \
(`SECRETS_MANAGER_TIMEOUT_MILLIS` 0), no prefetch. **agent-like v3**: \
aws-workload-credentials-provider 3.0 at d47a49d, `aws_secretsmanager_caching/src/lib.rs`: after \
the TTL, DescribeSecret first and the cached value kept another TTL when the version holds \
(lib.rs:393, :452); on a transient error of either call the cached value served and its TTL reset \
(lib.rs:418, :458; `ignore_transient_errors` true by default); no prefetch by default, no single \
flight; Secrets Manager only. **agent v3 (prefetch, TTL 3600)**: its options: `ttl_seconds` 3600 \
and the ids prefetched with BatchGetSecretValue at start, a transient failure ignored \
(lib.rs:303-325). **global variable**: the seed's approach: each secret read with the SDK during \
INIT into a global, never refreshed; a failed read fails the INIT and the invocation. \
**Powertools-like**: powertools-lambda-python at fa1c29f2d, \
`utilities/parameters/base.py:103-118`: served from the process's cache while younger than \
`max_age`, else fetched; a failed fetch raises. `max_age` 5 s was the default until #4279 (May \
2024), 300 s since (`parameters/constants.py:10`). **no cache**: every read is a call.

";

/// Merge `fleet` into `results.json` under `"fleet"`, dropping the old
/// `"fleet_before"` (a run of the first model, not comparable), leaving the
/// rest as it is.
pub fn merge_json(path: &Path, fleet: &FleetResults) -> Result<(), String> {
    let mut doc: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(_) => serde_json::json!({}),
    };
    let value = serde_json::to_value(fleet).map_err(|e| e.to_string())?;
    let obj = doc.as_object_mut().ok_or("results.json is not an object")?;
    obj.remove("fleet_before");
    obj.insert("fleet".to_owned(), value);
    // One value a line, indented by one space a level: readable diffs at
    // half the bytes of the default indent.
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
    serde::Serialize::serialize(&doc, &mut ser).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `report` with its fleet section replaced by `section` (or appended).
pub fn splice(report: &str, section: &str) -> String {
    let head = match report.find(BEGIN) {
        Some(i) => {
            let tail = report[i..].find(END).map(|j| &report[i + j + END.len()..]);
            format!(
                "{}{}",
                &report[..i],
                tail.unwrap_or("").trim_start_matches('\n')
            )
        }
        None => report.to_owned(),
    };
    let head = head.trim_end();
    if head.is_empty() {
        section.to_owned()
    } else {
        format!("{head}\n\n{section}")
    }
}

/// The fleet section of `report`, if it has one.
pub fn section(report: &str) -> Option<&str> {
    let i = report.find(BEGIN)?;
    let j = report[i..].find(END)?;
    Some(&report[i..i + j + END.len()])
}
