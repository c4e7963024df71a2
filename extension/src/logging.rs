//! Logging: our crates (extension, cache, AWS client) at the configured
//! level, everything else (the AWS
//! SDK, hyper, rustls) at most at WARN, so a debug run never dumps SDK wire
//! traces, which could carry values.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Install the global subscriber. `None` silences logging.
pub fn init(level: Option<tracing::Level>) {
    let ours = level.map_or(LevelFilter::OFF, LevelFilter::from_level);
    let others = ours.min(LevelFilter::WARN);
    let filter = Targets::new()
        .with_default(others)
        .with_target("sidekey_extension", ours)
        .with_target("sidekey_cache", ours)
        .with_target("sidekey_aws", ours);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::io::stderr);
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(filter)
        .try_init();
}
