//! `sidekey-bench`: run the benchmark suite and write `bench/REPORT.md`,
//! `bench/chart.png` and `bench/results.json` (run it through
//! `bench/run.sh`, which builds and installs what it needs first).
//!
//! ```text
//! sidekey-bench [--quick] [--out DIR]
//! sidekey-bench floor --port PORT --body FILE   (the floor server; the suite starts it)
//! sidekey-bench verify                           (the SigV4 verification of one SDK request)
//! sidekey-bench instructions [--requests N]      (instructions per request, sidekey and
//!                                                the floor, under callgrind)
//! sidekey-bench fleet [--seeds N,N,N] [--threads N] [--quick] [--out DIR]
//!                                               (the fleet simulation only: merges its section
//!                                                into REPORT.md and "fleet" into results.json)
//! sidekey-bench fleet --report-only [--out DIR]  (the section and chart again from the "fleet"
//!                                                results.json holds, with today's notes)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

mod allocs;
mod chart;
mod fleet;
mod floor;
mod instructions;
mod load;
mod machine;
mod report;
mod results;
mod suite;
mod verify;
mod wrk;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.first().map(String::as_str) == Some("floor") {
        let (Some(port), Some(body)) = (flag("--port"), flag("--body")) else {
            eprintln!("usage: sidekey-bench floor --port PORT --body FILE");
            return ExitCode::from(2);
        };
        let (Ok(port), Ok(body)) = (port.parse(), std::fs::read(&body)) else {
            eprintln!("sidekey-bench floor: bad --port or unreadable --body");
            return ExitCode::from(2);
        };
        return match floor::serve(port, body.into()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sidekey-bench floor: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let out = flag("--out").map_or_else(|| root.join("bench"), PathBuf::from);
    if args.first().map(String::as_str) == Some("fleet") {
        let seeds: Vec<u64> = flag("--seeds")
            .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![13, 14, 15]);
        let threads = flag("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
        let size = if args.iter().any(|a| a == "--quick") {
            fleet::Size::QUICK
        } else {
            fleet::Size::FULL
        };
        if args.iter().any(|a| a == "--report-only") {
            return fleet_report(&out);
        }
        return run_fleet(&out, &seeds, threads, size);
    }
    if args.first().map(String::as_str) == Some("serve") {
        // sidekey under the simulator with the hot secret cached, for
        // driving and profiling by hand (wrk, perf): prints the port, the
        // token and the pid, and serves until stdin closes.
        runtime().block_on(suite::serve());
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("verify") {
        // The SigV4 verification of one SDK request, alone.
        println!(
            "SigV4 verification of one SDK request: {:.2} µs",
            verify::verify_us(11, 2_000)
        );
        return ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("instructions") {
        // Instructions per request alone: the quick loop for trying one
        // CPU lever at a time.
        let requests = flag("--requests")
            .and_then(|n| n.parse().ok())
            .unwrap_or(suite::INSTRUCTION_REQUESTS);
        return match runtime().block_on(suite::instructions(requests)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sidekey-bench instructions: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("memory") {
        // Start-up and RSS only, with where the resident pages are: the
        // quick loop for trying one memory lever at a time.
        runtime().block_on(suite::memory());
        return ExitCode::SUCCESS;
    }
    let settings = match args.iter().any(|a| a == "--quick") {
        true => suite::Settings::quick(),
        false => suite::Settings::full(),
    };
    let python = std::env::var_os("SIDEKEY_BENCH_PYTHON").map(PathBuf::from);

    let results = runtime().block_on(suite::run(settings, &root, python));

    let chart_file = "chart.png";
    let chart = chart::load_font()
        .and_then(|()| chart::draw(&results, &out.join(chart_file)).map_err(|e| e.to_string()));
    if let Err(why) = &chart {
        eprintln!("no chart: {why}");
    }
    let mut markdown = report::markdown(
        &results,
        chart.as_ref().map(|()| chart_file).map_err(String::as_str),
    );
    // The fleet simulation is run on its own (`fleet`): keep what it last
    // wrote rather than dropping it with the files this run rewrites.
    let old_report = std::fs::read_to_string(out.join("REPORT.md")).unwrap_or_default();
    if let Some(section) = fleet::report::section(&old_report) {
        markdown = fleet::report::splice(&markdown, section);
    }
    let mut json = serde_json::to_value(&results).expect("results serialize");
    if let (Some(doc), Ok(old)) = (
        json.as_object_mut(),
        std::fs::read_to_string(out.join("results.json")),
    ) {
        if let Ok(serde_json::Value::Object(old)) = serde_json::from_str(&old) {
            for key in ["fleet"] {
                if let Some(v) = old.get(key) {
                    doc.insert(key.to_owned(), v.clone());
                }
            }
        }
    }
    let json = serde_json::to_string_pretty(&json).expect("results serialize");
    for (name, text) in [
        ("REPORT.md", markdown.as_str()),
        ("results.json", json.as_str()),
    ] {
        if let Err(e) = std::fs::write(out.join(name), text) {
            eprintln!("cannot write {}: {e}", out.join(name).display());
            return ExitCode::FAILURE;
        }
    }
    println!("{markdown}");
    println!("wrote {}", out.join("REPORT.md").display());
    ExitCode::SUCCESS
}

/// The harness's runtime: two workers, as sidekey and the floor have.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The fleet section and chart written again from the figures
/// `results.json` holds (after the notes are edited), without a run.
fn fleet_report(out: &std::path::Path) -> ExitCode {
    let json_path = out.join("results.json");
    let results: Option<fleet::FleetResults> = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|doc| serde_json::from_value(doc.get("fleet")?.clone()).ok());
    let Some(results) = results else {
        eprintln!("{}: no fleet figures to report", json_path.display());
        return ExitCode::FAILURE;
    };
    if let Err(e) = fleet::report::merge_json(&json_path, &results) {
        eprintln!("cannot write {}: {e}", json_path.display());
        return ExitCode::FAILURE;
    }
    write_fleet(out, &results)
}

/// The fleet simulation alone: run it, draw `fleet.png`, and merge its
/// section and figures into `REPORT.md` and `results.json`.
fn run_fleet(out: &std::path::Path, seeds: &[u64], threads: usize, size: fleet::Size) -> ExitCode {
    eprintln!("fleet simulation: seeds {seeds:?}, {threads} thread(s), {size:?}");
    let results = fleet::run(seeds, threads, size, true);
    eprintln!("fleet simulation: {:.1} s", results.wall_secs);
    let json_path = out.join("results.json");
    if let Err(e) = fleet::report::merge_json(&json_path, &results) {
        eprintln!("cannot write {}: {e}", json_path.display());
        return ExitCode::FAILURE;
    }
    write_fleet(out, &results)
}

/// Draw `fleet.png` and splice the section into `REPORT.md`.
fn write_fleet(out: &std::path::Path, results: &fleet::FleetResults) -> ExitCode {
    let chart_file = "fleet.png";
    let chart = chart::load_font().and_then(|()| {
        fleet::chart_draw(results, &out.join(chart_file)).map_err(|e| e.to_string())
    });
    if let Err(why) = &chart {
        eprintln!("no fleet chart: {why}");
    }
    let section = fleet::report::markdown(
        results,
        chart.as_ref().map(|()| chart_file).map_err(String::as_str),
    );
    let report_path = out.join("REPORT.md");
    let old = std::fs::read_to_string(&report_path).unwrap_or_default();
    if let Err(e) = std::fs::write(&report_path, fleet::report::splice(&old, &section)) {
        eprintln!("cannot write {}: {e}", report_path.display());
        return ExitCode::FAILURE;
    }
    println!("{section}");
    println!("wrote {}", report_path.display());
    ExitCode::SUCCESS
}
