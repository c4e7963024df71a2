//! The cache's counters as CloudWatch embedded metric format (EMF) lines.
//!
//! In Lambda nobody asks `/metrics`. An EMF line on stdout is how a Lambda
//! extension puts metrics in CloudWatch with no API call and no network
//! path: Lambda ships the extension's output to CloudWatch Logs, which
//! turns the line into metrics ("Specification: Embedded metric format",
//! CloudWatch user guide). One line, one JSON object, no newline inside.
//!
//! Each line carries what changed since the previous one (counts), plus
//! what the cache holds now (entries, bytes). It is written at most once a
//! minute while the environment runs and once at SHUTDOWN, and not at all
//! when nothing changed: log ingestion is billed. It carries counts only,
//! never an id or a value.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sidekey_cache::Metrics;

use crate::config::EmfConfig;

/// Least time between two lines while the environment runs.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// A metric: its name in CloudWatch, its unit, its reading, and whether the
/// line carries its change since the last line (a counter) or its value (a
/// level).
struct Metric {
    name: &'static str,
    unit: &'static str,
    read: fn(&Metrics) -> u64,
    delta: bool,
}

const fn count(name: &'static str, read: fn(&Metrics) -> u64) -> Metric {
    Metric {
        name,
        unit: "Count",
        read,
        delta: true,
    }
}

const METRICS: &[Metric] = &[
    count("Hits", |m| m.hits),
    count("Misses", |m| m.misses),
    count("StaleServed", |m| m.stale),
    count("Refreshes", |m| m.refreshes),
    count("UpstreamCalls", |m| m.upstream_calls),
    count("UpstreamErrors", |m| m.upstream_errors),
    count("UpstreamThrottled", |m| m.upstream_throttled),
    count("UpstreamTimeouts", |m| m.upstream_timeouts),
    count("Upstream5xx", |m| m.upstream_5xx),
    count("UpstreamDenied", |m| m.upstream_denied),
    count("FallbackReads", |m| m.fallback_reads),
    count("VersionChecks", |m| m.version_checks),
    count("VersionsUnchanged", |m| m.unchanged),
    count("Evictions", |m| m.evictions),
    Metric {
        name: "Entries",
        unit: "Count",
        read: |m| m.entries,
        delta: false,
    },
    Metric {
        name: "Bytes",
        unit: "Bytes",
        read: |m| m.bytes,
        delta: false,
    },
];

/// What was reported last, to report the change since.
struct Last {
    metrics: Metrics,
    at: Instant,
}

/// Writes the cache's metrics as EMF lines; shared by the INVOKE handler,
/// the timer of an environment never frozen, and SHUTDOWN.
pub struct Emf {
    config: EmfConfig,
    last: Mutex<Last>,
}

impl Emf {
    /// Start counting from zero, as the cache does: the first line carries
    /// everything since the cache was built, the prefetch included.
    pub fn new(config: EmfConfig) -> Self {
        Self {
            config,
            last: Mutex::new(Last {
                metrics: Metrics::default(),
                at: Instant::now(),
            }),
        }
    }

    /// Write a line if a minute has passed since the last one.
    pub fn tick(&self, now: Metrics) {
        self.emit(now, false);
    }

    /// Write a line now (SHUTDOWN), if anything changed.
    pub fn flush(&self, now: Metrics) {
        self.emit(now, true);
    }

    fn emit(&self, now: Metrics, force: bool) {
        if let Some(line) = self.take_line(now, force) {
            write(&line);
        }
    }

    /// The line for what changed since the last one, which it then
    /// becomes; `None` if it is not time yet or nothing changed.
    fn take_line(&self, now: Metrics, force: bool) -> Option<String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if !force && last.at.elapsed() < INTERVAL {
            return None;
        }
        let line = self.line(&last.metrics, &now, epoch_millis())?;
        *last = Last {
            metrics: now,
            at: Instant::now(),
        };
        Some(line)
    }

    /// The EMF line for the change from `before` to `now`, stamped
    /// `timestamp_ms`; `None` when no metric changed.
    fn line(&self, before: &Metrics, now: &Metrics, timestamp_ms: u64) -> Option<String> {
        if METRICS.iter().all(|m| (m.read)(before) == (m.read)(now)) {
            return None;
        }
        let definitions: Vec<Value> = METRICS
            .iter()
            .map(|m| json!({ "Name": m.name, "Unit": m.unit }))
            .collect();
        let dimensions: Vec<&str> = match self.config.function_name {
            Some(_) => vec!["FunctionName"],
            None => vec![],
        };
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.config.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": definitions,
                }],
            }),
        );
        if let Some(name) = &self.config.function_name {
            root.insert("FunctionName".into(), Value::from(name.as_str()));
        }
        for m in METRICS {
            let value = match m.delta {
                true => (m.read)(now).saturating_sub((m.read)(before)),
                false => (m.read)(now),
            };
            root.insert(m.name.into(), Value::from(value));
        }
        serde_json::to_string(&Value::Object(root)).ok()
    }
}

fn epoch_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One write of the whole line: Lambda splits the extension's stdout at
/// newlines, so a line must reach it in one piece.
fn write(line: &str) {
    let mut out = std::io::stdout().lock();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = out.write_all(&buf);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The units CloudWatch accepts (`StandardUnit`).
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    fn emf(function_name: Option<&str>) -> Emf {
        let config = EmfConfig {
            namespace: "sidekey".into(),
            function_name: function_name.map(str::to_owned),
        };
        Emf::new(config)
    }

    /// Check `line` against the EMF specification: one JSON object on one
    /// line; `_aws` with a millisecond `Timestamp` and `CloudWatchMetrics`
    /// directives, each with a namespace, at least one dimension set whose
    /// names are top-level string members, and at most 100 metric
    /// definitions with valid units whose names are top-level numbers.
    fn validate(line: &str) -> Value {
        assert!(!line.contains('\n'), "one line");
        let doc: Value = serde_json::from_str(line).expect("JSON");
        let root = doc.as_object().expect("an object");
        let aws = root["_aws"].as_object().expect("_aws");
        let ts = aws["Timestamp"].as_u64().expect("Timestamp in ms");
        assert!(ts > 1_600_000_000_000, "milliseconds since the epoch");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        for d in directives {
            let ns = d["Namespace"].as_str().expect("Namespace");
            assert!(!ns.is_empty() && ns.len() <= 255);
            let sets = d["Dimensions"].as_array().expect("Dimensions");
            assert!(!sets.is_empty(), "at least one dimension set");
            for set in sets {
                let set = set.as_array().expect("a dimension set");
                assert!(set.len() <= 30);
                for name in set {
                    let name = name.as_str().expect("dimension name");
                    assert!(root[name].is_string(), "{name} is a top-level string");
                }
            }
            let metrics = d["Metrics"].as_array().expect("Metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for m in metrics {
                let name = m["Name"].as_str().expect("Name");
                assert!(root[name].is_number(), "{name} is a top-level number");
                if let Some(unit) = m.get("Unit") {
                    assert!(UNITS.contains(&unit.as_str().unwrap()), "{unit}");
                }
            }
        }
        doc
    }

    #[test]
    fn lines_follow_the_specification_and_carry_changes() {
        let emf = emf(Some("orders"));
        let before = Metrics {
            hits: 10,
            misses: 2,
            entries: 3,
            bytes: 900,
            ..Metrics::default()
        };
        let now = Metrics {
            hits: 25,
            misses: 3,
            upstream_calls: 4,
            upstream_errors: 3,
            upstream_throttled: 1,
            upstream_timeouts: 1,
            upstream_5xx: 1,
            fallback_reads: 1,
            entries: 4,
            bytes: 1200,
            ..Metrics::default()
        };
        let line = emf.line(&before, &now, 1_765_000_000_000).unwrap();
        let doc = validate(&line);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "sidekey");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName"]])
        );
        assert_eq!(doc["FunctionName"], "orders");
        assert_eq!(
            (doc["Hits"].as_u64(), doc["Misses"].as_u64()),
            (Some(15), Some(1))
        );
        assert_eq!(doc["UpstreamThrottled"], 1);
        assert_eq!(doc["Upstream5xx"], 1);
        assert_eq!(
            (doc["Entries"].as_u64(), doc["Bytes"].as_u64()),
            (Some(4), Some(1200))
        );
        let units: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Unit"].as_str().unwrap())
            .collect();
        assert!(units.contains(&"Bytes"));
        assert_eq!(
            emf.line(&now, &now, 1_765_000_000_000),
            None,
            "nothing changed"
        );
    }

    #[test]
    fn without_a_function_name_the_dimension_set_is_empty() {
        let emf = emf(None);
        let now = Metrics {
            hits: 1,
            ..Metrics::default()
        };
        let doc = validate(
            &emf.line(&Metrics::default(), &now, 1_765_000_000_000)
                .unwrap(),
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert!(doc.get("FunctionName").is_none());
    }

    #[test]
    fn a_line_a_minute_at_most_and_always_at_shutdown() {
        let emf = emf(Some("f"));
        let now = Metrics {
            hits: 1,
            ..Metrics::default()
        };
        assert_eq!(emf.take_line(now, false), None, "not a minute yet");
        let line = emf.take_line(now, true).expect("SHUTDOWN writes");
        validate(&line);
        assert_eq!(emf.take_line(now, true), None, "and only changes");
    }
}
