//! The `sidekey` binary: read the configuration, set up logging, run.

use std::process::ExitCode;
use std::time::Duration;

use sidekey_extension::{init_logging, lifecycle, report_init_error, Config};

fn main() -> ExitCode {
    let config = Config::from_env();
    init_logging(match &config {
        Ok(c) => c.log_level,
        Err(_) => Some(tracing::Level::INFO),
    });
    // Two workers at most: Lambda gives small functions a fraction of a
    // vCPU, and the function's own process needs the rest.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sidekey: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match config {
            Err(e) => {
                tracing::error!(error = %e, "invalid configuration");
                report_init_error("Extension.ConfigError", &e.to_string()).await;
                ExitCode::FAILURE
            }
            Ok(config) => match lifecycle::run(config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "stopped");
                    if matches!(e, lifecycle::Error::Bind { .. }) {
                        report_init_error("Extension.BindError", &e.to_string()).await;
                    }
                    ExitCode::FAILURE
                }
            },
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}
