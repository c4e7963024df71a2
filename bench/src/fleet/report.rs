//! The "Fleet" section of `bench/REPORT.md` and the `"fleet"` entry of
//! `bench/results.json`, merged into what the other benchmarks wrote so a
//! fleet run never redoes (or loses) them, and they never lose it.

use std::fmt::Write;
use std::path::Path;

use super::FleetResults;

/// Marks the fleet section in `REPORT.md`, so a later run replaces it.
pub const BEGIN: &str = "<!-- fleet:begin -->";
const END: &str = "<!-- fleet:end -->";

/// The section, with the before/after table when `before` is given.
pub fn markdown(
    r: &FleetResults,
    before: Option<&FleetResults>,
    chart: Result<&str, &str>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{BEGIN}\n## Fleet simulation (issue 13)\n");
    let _ = writeln!(
        s,
        "Written by `bench/run.sh --fleet` (`sidekey-bench fleet`; do not edit by hand). Seed {}, \
         {:.1} s of wall time on this machine for all {} runs (scenario x policy).\n",
        r.seed,
        r.wall_secs,
        r.scenarios.iter().map(|s| s.outcomes.len()).sum::<usize>()
    );
    s.push_str(METHOD);
    match chart {
        Ok(file) => {
            let _ = writeln!(
                s,
                "![fleet: requests/s per API against its quota]({file})\n"
            );
        }
        Err(why) => {
            let _ = writeln!(s, "(No fleet chart in this run: {why}.)\n");
        }
    }
    for sc in &r.scenarios {
        let _ = writeln!(s, "### {}\n", sc.title);
        let rotation = sc.outcomes.iter().any(|o| o.converged_s.is_some());
        let _ = write!(
            s,
            "| policy | invocations | reads failed | p50 / p99 ms | upstream calls | peak req/s vs quota | throttled | $ per 1M invocations |"
        );
        if rotation {
            let _ = write!(s, " old version served (reads, last at s after rotation) |");
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "|---|---|---|---|---|---|---|---|{}",
            if rotation { "---|" } else { "" }
        );
        for o in &sc.outcomes {
            let peaks: Vec<String> = o
                .apis
                .iter()
                .map(|a| {
                    let over = if a.throttled > 0 {
                        " **throttled**"
                    } else {
                        ""
                    };
                    format!("{} {} / {}{}", a.api, a.peak_rps, a.quota_rps, over)
                })
                .collect();
            let _ = write!(
                s,
                "| {} | {} | {} ({:.3}%) | {:.1} / {:.1} | {} | {} | {} | {:.3} |",
                o.policy,
                o.invocations,
                o.reads_failed,
                o.reads_failed_pct,
                o.p50_ms,
                o.p99_ms,
                o.upstream_calls,
                if peaks.is_empty() {
                    "-".to_owned()
                } else {
                    peaks.join("<br>")
                },
                o.throttled,
                o.cost_per_million
            );
            if rotation {
                let _ = write!(
                    s,
                    " {} ({:.0} s) |",
                    o.old_reads,
                    o.converged_s.unwrap_or(0.0)
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    if let Some(b) = before {
        let _ = writeln!(
            s,
            "### sidekey before and after the fixes this simulation motivated\n\n\
             \"Before\" is the same simulation (seed {}) run on the cache as it was when the simulation \
             was written, kept in `results.json` as `\"fleet_before\"`.\n",
            b.seed
        );
        let _ = writeln!(
            s,
            "| scenario | reads failed before -> after | upstream calls | throttled | past a quota | $ per 1M invocations |\n|---|---|---|---|---|---|"
        );
        for sc in &r.scenarios {
            let after = sc.outcomes.iter().find(|o| o.policy == "sidekey");
            let was = b
                .scenarios
                .iter()
                .find(|x| x.name == sc.name)
                .and_then(|x| x.outcomes.iter().find(|o| o.policy == "sidekey"));
            if let (Some(a), Some(w)) = (after, was) {
                let _ = writeln!(
                    s,
                    "| {} | {} -> {} | {} -> {} | {} -> {} | {} -> {} | {:.3} -> {:.3} |",
                    sc.name,
                    w.reads_failed,
                    a.reads_failed,
                    w.upstream_calls,
                    a.upstream_calls,
                    w.throttled,
                    a.throttled,
                    yes(w.apis.iter().any(|x| x.throttled > 0)),
                    yes(a.apis.iter().any(|x| x.throttled > 0)),
                    w.cost_per_million,
                    a.cost_per_million
                );
            }
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "{END}");
    s
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

const METHOD: &str = "\
How it works: discrete-event, virtual time. Each (scenario, policy) pair runs on a current-thread \
tokio runtime with paused time: every environment is a task, sidekey environments each run the \
real `sidekey-cache` (`SecretCache` with the extension's defaults, its TTL clock read from tokio's \
virtual clock), and the runtime jumps to the next timer whenever all tasks wait, so an hour costs \
what its events cost. The 20 runs go on two threads. Arrivals, latencies and retry jitter come \
from seeded generators, and the cache's own jitter (fastrand's thread-local generator) is seeded \
per run with `fastrand::seed`, so a seed gives the same figures every time; the traffic of a \
scenario is the same for every policy.

The service: one account's quotas as token buckets holding one second of their rate (AWS does \
not publish the burst), shared by the whole fleet; a request past its bucket answers \
`ThrottlingException` (`ErrorKind::Throttled`); latency log-normal (median 15 ms GetSecretValue, \
30 ms BatchGetSecretValue, 12 ms GetParameter); an outage answers 503. Every policy's client \
retries as the AWS SDKs' standard mode does (3 attempts, full-jitter backoff from 1 s): a retry \
is one more request against the quota, and every request counts as a call and costs.

Quotas used (per account and Region): GetSecretValue 10,000 requests/s and BatchGetSecretValue \
100 requests/s, not adjustable, 20 secrets a call \
([Secrets Manager quotas](https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html); \
GetSecretValue raised to 10,000/s in March 2025, \
[What's New](https://aws.amazon.com/about-aws/whats-new/2025/03/aws-secrets-manager-increases-api-requests-seconds/)); \
Parameter Store GetParameter and GetParameters 40 requests/s shared by default, 3,000 with higher \
throughput ([Systems Manager endpoints and quotas](https://docs.aws.amazon.com/general/latest/gr/ssm.html), \
[Parameter Store throughput](https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-throughput.html)). \
Cost: $0.05 per 10,000 API calls \
([Secrets Manager pricing](https://aws.amazon.com/secrets-manager/pricing/); Parameter Store \
charges the same with higher throughput and nothing at standard throughput, so scenario 5's \
dollars are what it would cost once the 40/s quota forces higher throughput).

Lambda as modelled: each of N slots holds one environment at a time. A cold start runs INIT \
(150 ms of the function's own; sidekey's prefetch starts at once and races it), then \
invocations arrive per slot as a Poisson process; each reads every id of the scenario once, in \
order, then works 20 ms. The environment is frozen between invocations: its requests leave, \
and their answers are read, only while it is thawed (the cache's own timers still run in \
virtual time while frozen, as Lambda's clock does, so a deadline that passes while frozen ends \
its read then rather than at the thaw: the same timeout, seen a little earlier). sidekey's \
INVOKE handling (`refresh_due` with the extension's 1 s budget) keeps the environment thawed \
until it returns, as the extension's `/next` call does. An environment idle 10 minutes is \
reaped, and each is recycled after a lifetime drawn in [30, 120] min (AWS publishes neither); \
the slot's next invocation then cold-starts a new one.

Policies: **sidekey**: the real cache with the extension's defaults, `CacheConfig::default()` (TTL 300 s, jitter 10%, refresh-ahead 20%, max_stale 900 s, 2 s deadline, stale_wait 250 ms, max_upstream 3, full-jitter backoff), the scenario's secrets prefetched at INIT (`prefetch`: up to 20 read one by one, longer lists 20 per BatchGetSecretValue), INVOKE-time `refresh_due` (batched: BatchGetSecretValue / GetParameters, no SDK retry on a batch, as `AwsFetcher` now calls them). In scenario 5 sidekey also prefetches its parameters with `prefetch_parameters` (one GetParameters at INIT), as the extension does for the names in `SIDEKEY_PREFETCH_PARAMETERS`; without that setting sidekey's cold starts read parameters one by one, as official-like's do. **official-like** (a model): TTL capped at 300 s, refetched on the first read \
after expiry, no serve-stale (a failed read fails), no prefetch, reads refused during INIT (our \
function reads in its handler, so that rule costs it nothing here). **agent-like** (a model of \
aws-secretsmanager-agent): fixed TTL, refetched on the first read after expiry, no \
refresh-ahead, the last value served on a transient error. **no cache**: every read is a call. \
\"Past a quota\" means the service throttled: the quota as enforced (the bucket and its second of burst) was exceeded. A busiest second above the quota that the burst absorbed is shown but is not throttling. Single flight changes nothing inside one Lambda environment, which runs one invocation at a \
time and reads sequentially; it matters across concurrent reads in one process, which the \
load benchmarks above measure.

Why it is fast: virtual time (no sleeping), one task per slot rather than per invocation, no \
I/O, and windows shorter than the issue's hour where the steady state is reached well before \
(figures are per million invocations). Every environment runs its own real cache; nothing is \
sampled.

";

/// Merge `fleet` into `results.json` under `"fleet"` (moving it to
/// `"fleet_before"` instead when `as_before`), leaving the rest as it is.
pub fn merge_json(path: &Path, fleet: &FleetResults, as_before: bool) -> Result<(), String> {
    let mut doc: serde_json::Value = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?,
        Err(_) => serde_json::json!({}),
    };
    let key = if as_before { "fleet_before" } else { "fleet" };
    let value = serde_json::to_value(fleet).map_err(|e| e.to_string())?;
    doc.as_object_mut()
        .ok_or("results.json is not an object")?
        .insert(key.to_owned(), value);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// A run kept in `results.json` under `key`, if any.
pub fn load(path: &Path, key: &str) -> Option<FleetResults> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    serde_json::from_value(doc.get(key)?.clone()).ok()
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
