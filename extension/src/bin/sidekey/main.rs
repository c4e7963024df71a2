//! The `sidekey` binary: read the configuration once, set up logging, run
//! the lifecycle, turn the outcome into an exit code.
//!
//! It also makes the process-wide choices a library must not make for the
//! binaries that link it (ripgrep sets its allocator in its `main.rs` the
//! same way): [`math`] defines C's `pow`, [`malloc`] caps glibc's arenas.
//! Both are for glibc Linux, what Lambda runs; `layer/check.sh` checks the
//! built layer for the first.

use std::process::ExitCode;
use std::time::Duration;

use sidekey_extension::{init_logging, lifecycle, report_init_error, Config};

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod malloc;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod math;

fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    malloc::limit_arenas();
    let config = Config::from_env();
    init_logging(match &config {
        Ok(c) => c.log_level,
        Err(_) => Some(tracing::Level::INFO),
    });
    // Only under Lambda is there an Extensions API to report an init error to.
    let under_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
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
        // What Lambda should be told failed the INIT, if anything.
        let init_error = match config {
            Err(e) => {
                tracing::error!(error = %e, "invalid configuration");
                Some(("Extension.ConfigError", e.to_string()))
            }
            Ok(config) => match lifecycle::run(config).await {
                Ok(()) => return ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "stopped");
                    let error_type = match e {
                        lifecycle::Error::Bind { .. } => Some("Extension.BindError"),
                        lifecycle::Error::Aws(_) => Some("Extension.ConfigError"),
                        lifecycle::Error::Lambda(_) => None,
                    };
                    error_type.map(|t| (t, e.to_string()))
                }
            },
        };
        if let (true, Some((error_type, message))) = (under_lambda, init_error) {
            report_init_error(error_type, &message).await;
        }
        ExitCode::FAILURE
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}
