//! `sidekey-bench`: run the benchmark suite and write `bench/REPORT.md`,
//! `bench/chart.png` and `bench/results.json` (run it through
//! `bench/run.sh`, which builds and installs what it needs first).
//!
//! ```text
//! sidekey-bench [--quick] [--out DIR]
//! sidekey-bench floor --port PORT --body FILE   (the floor server; the suite starts it)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

mod chart;
mod floor;
mod load;
mod machine;
mod report;
mod results;
mod suite;

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
    let settings = match args.iter().any(|a| a == "--quick") {
        true => suite::Settings::quick(),
        false => suite::Settings::full(),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let out = flag("--out").map_or_else(|| root.join("bench"), PathBuf::from);
    let python = std::env::var_os("SIDEKEY_BENCH_PYTHON").map(PathBuf::from);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let results = runtime.block_on(suite::run(settings, &root, python));

    let chart_file = "chart.png";
    let chart = chart::load_font()
        .and_then(|()| chart::draw(&results, &out.join(chart_file)).map_err(|e| e.to_string()));
    if let Err(why) = &chart {
        eprintln!("no chart: {why}");
    }
    let markdown = report::markdown(
        &results,
        chart.as_ref().map(|()| chart_file).map_err(String::as_str),
    );
    let json = serde_json::to_string_pretty(&results).expect("results serialize");
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
