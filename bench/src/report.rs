//! `bench/REPORT.md`: the figures, the ratios against the floor and the
//! baselines, and the targets of docs/architecture.md and the issues with whether this run met them.

use std::fmt::Write;

use crate::results::Results;
use crate::suite::CONNS;

/// One benchmark target and what this run measured against it.
pub struct Target {
    /// What is aimed at.
    pub goal: &'static str,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured.
    pub met: Option<bool>,
}

/// The targets, checked against `r`.
pub fn targets(r: &Results) -> Vec<Target> {
    let ratio =
        |v: Option<f64>| v.map_or_else(|| "not measured".to_owned(), |v| format!("{v:.2}x"));
    let mib = |b: Option<u64>| {
        b.map_or_else(
            || "not built".to_owned(),
            |b| format!("{b} B ({:.2} MB)", b as f64 / 1e6),
        )
    };
    vec![
        Target {
            goal: "throughput at 8 connections >= 0.9x the floor's",
            measured: ratio(r.rps_ratio(8)),
            met: r.rps_ratio(8).map(|v| v >= 0.9),
        },
        Target {
            goal: "throughput at 64 connections >= 0.9x the floor's",
            measured: ratio(r.rps_ratio(64)),
            met: r.rps_ratio(64).map(|v| v >= 0.9),
        },
        Target {
            goal: "one-connection p50 within 10% of the floor's",
            measured: ratio(r.p50_ratio(1)),
            met: r.p50_ratio(1).map(|v| v <= 1.10),
        },
        Target {
            goal: "RSS < 8 MB with 1,000 cached 4 KiB secrets",
            measured: format!(
                "{} KiB ({:.2} MB): private {} KiB, binary pages {} KiB",
                r.rss.with_1000.total_kib,
                r.rss.with_1000.total_kib as f64 * 1024.0 / 1e6,
                r.rss.with_1000.anon_kib,
                r.rss.with_1000.file_kib
            ),
            met: Some(r.rss.with_1000.total_kib * 1024 < 8_000_000),
        },
        Target {
            goal: "layer zip < 4 MB",
            measured: mib(r.sizes.layer_zip),
            met: r.sizes.layer_zip.map(|b| b < 4_000_000),
        },
        Target {
            goal: "edge zip <= 1 MB (1,048,576 B, Lambda@Edge's limit)",
            measured: mib(r.sizes.edge_zip),
            met: r.sizes.edge_zip.map(|b| b <= 1_048_576),
        },
        Target {
            goal: "1 upstream call for 100 concurrent cold reads",
            measured: format!(
                "{} GetSecretValue ({} of {} answered)",
                r.cold.get_secret_value_calls, r.cold.answered, r.cold.readers
            ),
            met: Some(r.cold.get_secret_value_calls == 1 && r.cold.answered == r.cold.readers),
        },
        Target {
            goal: "0 synchronous upstream calls on the hot path after INIT",
            measured: format!(
                "{} misses in {} reads under load ({} upstream calls)",
                r.hot_path.misses, r.hot_path.hits, r.hot_path.upstream_calls
            ),
            met: Some(r.hot_path.misses == 0),
        },
    ]
}

/// The report as Markdown.
pub fn markdown(r: &Results, chart: Result<&str, &str>) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let _ = writeln!(s, "# sidekey benchmarks\n");
    let _ = writeln!(
        s,
        "Written by `bench/run.sh` (do not edit by hand). Machine: {} core(s) of {}, {} MiB, Linux {}. \
         Upstream is moto's server on loopback; sidekey is the binary the layer ships \
         (`target/lambda/extensions/sidekey`), run under the Lambda simulator. \
         {:.0} s measured per load point; the served body is {} bytes (a GetSecretValue answer for an API key).\n",
        m.cores, m.cpu, m.memory_mib, m.kernel, r.measure_secs, r.body_bytes
    );
    match chart {
        Ok(file) => {
            let _ = writeln!(s, "![latency and read cost]({file})\n");
        }
        Err(why) => {
            let _ = writeln!(s, "(No chart in this run: {why}.)\n");
        }
    }

    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| target | measured | |\n|---|---|---|");
    for t in targets(r) {
        let mark = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(s, "| {} | {} | {} |", t.goal, t.measured, mark);
    }

    let _ = writeln!(
        s,
        "\n## Cache hits through the extension vs the floor\n\n\
         The floor is the cheapest hyper server: one fixed body for every request, same runtime \
         shape, same client, same run. Closed loop, keep-alive connections, latency in µs.\n"
    );
    let _ = writeln!(
        s,
        "| conns | server | req/s | p50 | p90 | p99 | p99.9 | non-200 | req/s vs floor | p50 vs floor |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for conns in CONNS {
        for server in ["floor", "sidekey"] {
            if let Some(p) = r.point(server, conns) {
                let (rr, pr) = match server {
                    "sidekey" => (
                        r.rps_ratio(conns)
                            .map_or(String::new(), |v| format!("{v:.2}x")),
                        r.p50_ratio(conns)
                            .map_or(String::new(), |v| format!("{v:.2}x")),
                    ),
                    _ => (String::new(), String::new()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
                    conns,
                    server,
                    p.rps,
                    p.p50_us,
                    p.p90_us,
                    p.p99_us,
                    p.p999_us,
                    p.failures,
                    rr,
                    pr
                );
            }
        }
    }

    let _ = writeln!(
        s,
        "\n## What one secret read costs a function\n\n\
         Sequential reads of the same secret after a warm-up; the ratio is against sidekey read \
         through `ExtensionClient`, what the weather function does. The Rust reads run on a \
         current-thread runtime, as both functions do.\n"
    );
    let base = r
        .reads
        .iter()
        .find(|c| c.path.contains("ExtensionClient"))
        .map(|c| c.p50_us);
    let _ = writeln!(s, "| read path | cached | reads | p50 µs | p99 µs | p50 vs sidekey |\n|---|---|---|---|---|---|");
    for c in &r.reads {
        let ratio = base.map_or(String::new(), |b| format!("{:.2}x", c.p50_us / b));
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.2} | {:.2} | {} |",
            c.path,
            if c.cached { "yes" } else { "no" },
            c.reads,
            c.p50_us,
            c.p99_us,
            ratio
        );
    }

    let st = &r.startup;
    let _ = writeln!(
        s,
        "\n## Start-up, cold reads, memory, sizes\n\n\
         - From spawning the process with {} secrets in `SIDEKEY_PREFETCH`: listener accepting after \
         **{:.1} ms**, registered after {:.1} ms (as the simulator saw it; the harness polls), first \
         prefetched secret served after **{:.1} ms**, all {} cached after {:.1} ms; upstream: {} \
         BatchGetSecretValue, {} GetSecretValue.\n\
         - {} concurrent cold reads of one secret: **{} GetSecretValue** upstream (proxy count; the \
         cache counted {}), {} of {} answered with the value.\n\
         - Under the load runs: {} hits, {} misses, {} upstream calls.\n\
         - RSS (total = private + binary pages, KiB): {} idle after start-up; {} \
         after all load runs; a fresh extension: {} idle, **{} with 1,000 cached \
         4 KiB secrets** (the binary's pages are clean and shared through the page cache; the \
         kernel maps them 64 KiB around each touched page, so they track the binary's size).\n\
         - Sizes: stripped binary {}, layer zip {}, edge zip {}.",
        st.prefetched,
        st.listener_ms,
        st.registered_ms,
        st.first_secret_ms,
        st.prefetched,
        st.all_prefetched_ms,
        st.batch_calls,
        st.get_calls,
        r.cold.readers,
        r.cold.get_secret_value_calls,
        r.cold.cache_upstream_calls,
        r.cold.answered,
        r.cold.readers,
        r.hot_path.hits,
        r.hot_path.misses,
        r.hot_path.upstream_calls,
        r.rss.idle,
        r.rss.after_load,
        r.rss.before_1000,
        r.rss.with_1000,
        bytes(r.sizes.binary),
        bytes(r.sizes.layer_zip),
        bytes(r.sizes.edge_zip),
    );
    if !r.skipped.is_empty() {
        let _ = writeln!(s, "\n## Not measured in this run\n");
        for why in &r.skipped {
            let _ = writeln!(s, "- {why}");
        }
    }
    s
}

fn bytes(b: Option<u64>) -> String {
    b.map_or_else(|| "not built".to_owned(), |b| format!("{b} B"))
}
