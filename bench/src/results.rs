//! The figures one run produces: what the report and the chart are made of
//! (also written as `bench/results.json`).

use serde::Serialize;

use crate::machine::Machine;

/// Everything measured in one run.
#[derive(Debug, Serialize)]
pub struct Results {
    /// What it ran on.
    pub machine: Machine,
    /// Seconds since the Unix epoch when the run started.
    pub started_unix: u64,
    /// Measured seconds per load point and round.
    pub measure_secs: f64,
    /// Rounds per load point (the report shows the median round).
    pub rounds: usize,
    /// Rounds per load point under wrk (floor and sidekey back to back).
    pub wrk_rounds: usize,
    /// Bytes of the JSON body both servers answer in the load runs.
    pub body_bytes: usize,
    /// Load runs, floor and sidekey, per connection count.
    pub load: Vec<LoadPoint>,
    /// sidekey against the floor round by round under wrk, per connection
    /// count: what the throughput and latency targets read.
    pub paired: Vec<Paired>,
    /// Upstream traffic while the load ran.
    pub hot_path: HotPath,
    /// Allocator calls per request, floor and sidekey, under wrk.
    pub allocs: Vec<crate::allocs::Allocs>,
    /// Instructions per request, floor and sidekey, under callgrind.
    pub instructions: Vec<crate::instructions::PerRequest>,
    /// Concurrent cold reads of one secret.
    pub cold: Cold,
    /// Start-up of the extension with secrets to prefetch.
    pub startup: Startup,
    /// Resident memory of the extension.
    pub rss: Rss,
    /// What one secret read costs a function, per way of reading it.
    pub reads: Vec<ReadCost>,
    /// CPU microseconds of verifying one SDK request's SigV4 signature.
    pub sdk_verify_us: f64,
    /// Artifact sizes in bytes (absent when not built).
    pub sizes: Sizes,
    /// Things that could not be measured in this run, and why.
    pub skipped: Vec<String>,
}

/// One load run.
#[derive(Clone, Debug, Serialize)]
pub struct LoadPoint {
    /// The load client: `wrk` or `hyper` (the harness's own).
    pub client: &'static str,
    /// `floor` or `sidekey`.
    pub server: &'static str,
    /// Concurrent keep-alive connections.
    pub conns: usize,
    /// 200 answers in the measured window.
    pub requests: u64,
    /// Anything but a 200.
    pub failures: u64,
    /// Answers per second.
    pub rps: f64,
    /// Latency percentiles in microseconds: p50, p90, p99, p99.9.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile (the hyper client's runs only; wrk does not
    /// print it).
    pub p999_us: Option<f64>,
    /// The server's CPU time per request, in microseconds.
    pub server_cpu_us: f64,
    /// The client's CPU time per request, in microseconds.
    pub client_cpu_us: f64,
}

/// sidekey's figures as multiples of the floor's, each round's pair (run
/// back to back, so both met the same machine weather) taken on its own.
/// The median of those ratios moves far less with a shared machine's
/// swings than the ratio of the two medians.
#[derive(Clone, Debug, Serialize)]
pub struct Paired {
    /// Concurrent keep-alive connections.
    pub conns: usize,
    /// Pairs measured.
    pub rounds: usize,
    /// Median of the rounds' sidekey / floor req/s.
    pub rps_ratio: f64,
    /// The lowest round's.
    pub rps_ratio_min: f64,
    /// The highest round's.
    pub rps_ratio_max: f64,
    /// Median of the rounds' sidekey / floor p50.
    pub p50_ratio: f64,
}

impl Paired {
    /// The wrk rounds of `conns` in `rounds`, paired in the order they ran
    /// (each floor run with the sidekey run of its round, before or after
    /// it).
    pub fn of(conns: usize, rounds: &[LoadPoint]) -> Option<Paired> {
        let runs = |server| {
            rounds
                .iter()
                .filter(move |p| p.client == "wrk" && p.server == server && p.conns == conns)
        };
        let pairs: Vec<(&LoadPoint, &LoadPoint)> = runs("floor").zip(runs("sidekey")).collect();
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let rps: Vec<f64> = pairs.iter().map(|(f, s)| s.rps / f.rps).collect();
        Some(Paired {
            conns,
            rounds: pairs.len(),
            rps_ratio: median(rps.clone())?,
            rps_ratio_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
            rps_ratio_max: rps.iter().copied().fold(0.0, f64::max),
            p50_ratio: median(pairs.iter().map(|(f, s)| s.p50_us / f.p50_us).collect())?,
        })
    }
}

impl LoadPoint {
    /// The median of several rounds of one client, server and connection
    /// count: the round with the median throughput, its latencies, and the
    /// CPU per request and failures over all rounds.
    pub fn median(rounds: &[&LoadPoint]) -> Option<LoadPoint> {
        let mut by_rps: Vec<&LoadPoint> = rounds.to_vec();
        by_rps.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let mid: LoadPoint = (*by_rps.get(by_rps.len() / 2)?).clone();
        let requests: u64 = rounds.iter().map(|r| r.requests).sum();
        let weighted = |f: fn(&LoadPoint) -> f64| {
            rounds.iter().map(|r| f(r) * r.requests as f64).sum::<f64>() / requests.max(1) as f64
        };
        Some(LoadPoint {
            requests,
            failures: rounds.iter().map(|r| r.failures).sum(),
            server_cpu_us: weighted(|r| r.server_cpu_us),
            client_cpu_us: weighted(|r| r.client_cpu_us),
            ..mid
        })
    }

    /// Which side spent more CPU per request: the one that saturates first
    /// when both share the machine.
    pub fn heavier(&self) -> &'static str {
        if self.client_cpu_us > self.server_cpu_us {
            "client"
        } else {
            "server"
        }
    }
}

/// The extension's counters across the load runs.
#[derive(Debug, Default, Serialize)]
pub struct HotPath {
    /// Reads served from the cache.
    pub hits: u64,
    /// Reads that had to wait for upstream (synchronous upstream calls).
    pub misses: u64,
    /// Upstream calls of any kind (background refreshes included).
    pub upstream_calls: u64,
}

/// N concurrent first reads of one secret.
#[derive(Debug, Default, Serialize)]
pub struct Cold {
    /// Concurrent readers.
    pub readers: usize,
    /// Of them, answered 200 with the value.
    pub answered: usize,
    /// GetSecretValue calls seen by the counting proxy in front of moto.
    pub get_secret_value_calls: u64,
    /// The cache's own upstream-call counter.
    pub cache_upstream_calls: u64,
}

/// From spawning the extension process.
#[derive(Debug, Default, Serialize)]
pub struct Startup {
    /// Secrets listed in `SIDEKEY_PREFETCH`.
    pub prefetched: usize,
    /// Until the listener accepted a connection.
    pub listener_ms: f64,
    /// Until the simulator saw it registered (the harness polls).
    pub registered_ms: f64,
    /// Until the first prefetched secret was served (200).
    pub first_secret_ms: f64,
    /// Until all prefetched secrets were in the cache.
    pub all_prefetched_ms: f64,
    /// BatchGetSecretValue calls made by the start-up.
    pub batch_calls: u64,
    /// GetSecretValue calls made by the start-up.
    pub get_calls: u64,
}

/// Resident set sizes in KiB: the total, and its private (anonymous) and
/// file-backed parts. The file-backed part is the binary's pages, clean and
/// shared through the page cache; the kernel maps them 64 KiB around each
/// touched page (fault-around), so it tracks the binary's size.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Resident {
    /// VmRSS.
    pub total_kib: u64,
    /// RssAnon: heap, stacks, the cache's values.
    pub anon_kib: u64,
    /// RssFile: mapped pages of the binary and libraries.
    pub file_kib: u64,
}

/// `total = private + binary pages`, in KiB, as the report prints it.
impl std::fmt::Display for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} = {} + {}",
            self.total_kib, self.anon_kib, self.file_kib
        )
    }
}

/// Resident memory of the extension at the points that matter.
#[derive(Debug, Default, Serialize)]
pub struct Rss {
    /// After start-up and prefetch, before any load.
    pub idle: Resident,
    /// After all load runs.
    pub after_load: Resident,
    /// A fresh extension, idle, before the reads below.
    pub before_1000: Resident,
    /// The same extension holding 1,000 secrets of 4 KiB.
    pub with_1000: Resident,
}

/// The cost of one secret read, seen from the function.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ReadCost {
    /// How the function reads it.
    pub path: String,
    /// Whether it is a cached path (as opposed to the service each time).
    pub cached: bool,
    /// Reads measured.
    pub reads: u64,
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
}

/// Artifact sizes in bytes.
#[derive(Debug, Default, Serialize)]
pub struct Sizes {
    /// The stripped `sidekey` binary the layer ships.
    pub binary: Option<u64>,
    /// The layer zip.
    pub layer_zip: Option<u64>,
    /// The Lambda@Edge zip.
    pub edge_zip: Option<u64>,
}

impl Results {
    /// The load point of `server` at `conns` connections, measured with
    /// the lighter client (wrk) where this run has it.
    pub fn point(&self, server: &str, conns: usize) -> Option<&LoadPoint> {
        self.point_by("wrk", server, conns)
            .or_else(|| self.point_by("hyper", server, conns))
    }

    /// The load point of `server` at `conns` connections under `client`.
    pub fn point_by(&self, client: &str, server: &str, conns: usize) -> Option<&LoadPoint> {
        self.load
            .iter()
            .find(|p| p.client == client && p.server == server && p.conns == conns)
    }

    /// The paired wrk rounds at `conns`.
    pub fn paired(&self, conns: usize) -> Option<&Paired> {
        self.paired.iter().find(|p| p.conns == conns)
    }

    /// sidekey's throughput as a share of the floor's at `conns`: the
    /// median of the paired wrk rounds where this run has them.
    pub fn rps_ratio(&self, conns: usize) -> Option<f64> {
        self.paired(conns)
            .map(|p| p.rps_ratio)
            .or_else(|| Some(self.point("sidekey", conns)?.rps / self.point("floor", conns)?.rps))
    }

    /// sidekey's median latency as a multiple of the floor's at `conns`,
    /// read as [`rps_ratio`](Self::rps_ratio) is.
    pub fn p50_ratio(&self, conns: usize) -> Option<f64> {
        self.paired(conns).map(|p| p.p50_ratio).or_else(|| {
            Some(self.point("sidekey", conns)?.p50_us / self.point("floor", conns)?.p50_us)
        })
    }
}
