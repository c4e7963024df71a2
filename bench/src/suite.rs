//! The benchmark scenarios, run in one go against moto on loopback, the real
//! `sidekey` binary (the one the layer ships) under the Lambda simulator, and
//! the floor server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde_json::Value;
use sidekey_cache::{CacheConfig, Fetch, Key, SecretCache};
use sidekey_cache::{Embedded, SecretSource};
use sidekey_client::ExtensionClient;
use sidekey_tests::aws;
use sidekey_tests::client::status_kib;
use sidekey_tests::lambda::{session_token, vars, Lambda, Options};
use sidekey_tests::moto::{free_port, Moto};
use sidekey_tests::proxy::Proxy;

use crate::load::{self, Conn, Target};
use crate::machine::Machine;
use crate::results::{
    Cold, HotPath, LoadPoint, Paired, ReadCost, Resident, Results, Rss, Sizes, Startup,
};

/// How long to run.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Unmeasured seconds before each load point.
    pub warmup: Duration,
    /// Measured seconds per load point and round.
    pub measure: Duration,
    /// Rounds per load point, floor and sidekey back to back in each: the
    /// report takes the median round, so one slow stretch of a shared
    /// machine does not decide a ratio.
    pub rounds: usize,
    /// Rounds of the wrk runs, whose per-round ratios the targets read:
    /// more than `rounds`, as a shared machine's speed swings by a fifth
    /// between rounds and the median of the paired ratios needs several.
    /// With 9, two runs of one build gave 0.97 and 0.94 at 64 connections.
    pub wrk_rounds: usize,
    /// Sequential reads per function-side path (the service-each-time paths
    /// make a tenth of these).
    pub reads: usize,
    /// Requests per server and connection count under callgrind.
    pub instruction_requests: u64,
}

impl Settings {
    /// The full run.
    pub fn full() -> Settings {
        Settings {
            warmup: Duration::from_secs(1),
            measure: Duration::from_secs(3),
            rounds: 3,
            wrk_rounds: 15,
            reads: 20_000,
            instruction_requests: INSTRUCTION_REQUESTS,
        }
    }

    /// A short run that checks the harness works (figures are rough).
    pub fn quick() -> Settings {
        Settings {
            warmup: Duration::from_millis(200),
            measure: Duration::from_millis(800),
            rounds: 1,
            wrk_rounds: 1,
            reads: 1_000,
            instruction_requests: 2_000,
        }
    }
}

/// Requests counted per server and connection count under callgrind: a
/// few seconds each; two runs of one build agree to within a few
/// instructions per request at this count.
pub const INSTRUCTION_REQUESTS: u64 = 20_000;

/// Connection counts of the load runs.
pub const CONNS: [usize; 3] = [1, 8, 64];
/// Connections of the allocation count's run (the target most missed).
const ALLOCS_CONNS: usize = 64;
const PREFETCH: usize = 10;
const HOT: &str = "bench/openweather";
const HOT_VALUE: &str = r#"{"apikey":"0123456789abcdef0123456789abcdef"}"#;

/// Run everything; progress goes to stderr.
pub async fn run(settings: Settings, root: &Path, python: Option<PathBuf>) -> Results {
    let started_unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut skipped = Vec::new();
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, HOT, HOT_VALUE).await;
    let prefetch: Vec<String> = (0..PREFETCH)
        .map(|i| format!("bench/prefetch/{i}"))
        .collect();
    for id in &prefetch {
        aws::create_secret(&sm, id, &format!("{{\"key\":\"value-{id}\"}}")).await;
    }

    eprintln!("start-up: {PREFETCH} secrets prefetched");
    let proxy = Proxy::start(moto.addr()).await;
    let (lambda, startup) = start_up(&proxy, &prefetch).await;
    let port = lambda.port;
    let token = lambda.token.clone();
    let ext_pid = lambda.extension.pid();
    // Everything the function will read is cached now (the hot secret by
    // one read); let the process settle before the idle figure.
    let hot = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        path: format!("/secretsmanager/get?secretId={HOT}"),
        token: Some(token.clone()),
    };
    let body = load::get_once(&hot).await.expect("first read").1;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = resident(ext_pid);

    eprintln!("load: floor vs sidekey at {CONNS:?} connections");
    let floor = Floor::start(&body);
    let floor_target = Target {
        addr: floor.addr,
        path: hot.path.clone(),
        // The same request bytes as sidekey gets, token header included:
        // parsing it is part of what any server of this API does per
        // request (hyper allocates a custom header's name), so the floor
        // pays for it too. The floor does not check it.
        token: hot.token.clone(),
    };
    let before = metrics(&hot).await;
    let servers = [
        ("floor", &floor_target, floor.child.id()),
        ("sidekey", &hot, ext_pid),
    ];
    let with_wrk = crate::wrk::available();
    if !with_wrk {
        skipped.push("wrk (Debian's package wrk): not installed; run bench/run.sh".to_owned());
    }
    let mut points = Vec::new();
    let mut paired = Vec::new();
    for conns in CONNS {
        let mut rounds: Vec<LoadPoint> = Vec::new();
        for round in 0..settings.rounds {
            // Floor and sidekey back to back under each client, so both
            // meet the same machine weather, and in turns (`in_turn`).
            for (server, target, pid) in in_turn(servers, round) {
                let cpu = crate::wrk::process_cpu(pid);
                let own = crate::wrk::process_cpu(std::process::id());
                let r = load::run(target, conns, settings.warmup, settings.measure).await;
                let per = |d: Duration| d.as_secs_f64() * 1e6 / r.requests.max(1) as f64;
                rounds.push(LoadPoint {
                    client: "hyper",
                    server,
                    conns,
                    requests: r.requests,
                    failures: r.failures,
                    rps: r.rps(),
                    p50_us: r.quantile_us(0.50),
                    p90_us: r.quantile_us(0.90),
                    p99_us: r.quantile_us(0.99),
                    p999_us: Some(r.quantile_us(0.999)),
                    server_cpu_us: per(crate::wrk::process_cpu(pid) - cpu),
                    client_cpu_us: per(crate::wrk::process_cpu(std::process::id()) - own),
                });
            }
        }
        let wrk_rounds = if with_wrk { settings.wrk_rounds } else { 0 };
        for round in 0..wrk_rounds {
            for (server, target, pid) in in_turn(servers, round) {
                let cpu = crate::wrk::process_cpu(pid);
                let target = target.clone();
                let measure = settings.measure;
                let run =
                    tokio::task::spawn_blocking(move || crate::wrk::run(&target, conns, measure))
                        .await
                        .expect("wrk runner");
                let Some(r) = run else {
                    skipped.push(format!(
                        "wrk against {server} at {conns} connections: no figures"
                    ));
                    continue;
                };
                let server_cpu = crate::wrk::process_cpu(pid) - cpu;
                rounds.push(LoadPoint {
                    client: "wrk",
                    server,
                    conns,
                    requests: r.requests,
                    failures: r.failures,
                    rps: r.rps,
                    p50_us: r.p50_us,
                    p90_us: r.p90_us,
                    p99_us: r.p99_us,
                    p999_us: None,
                    server_cpu_us: server_cpu.as_secs_f64() * 1e6 / r.requests.max(1) as f64,
                    client_cpu_us: r.client_cpu_us,
                });
            }
        }
        if let Some(p) = Paired::of(conns, &rounds) {
            eprintln!(
                "    wrk {conns:>2} conns, sidekey / floor per round: req/s median {:.3} (min {:.3}, max {:.3}), p50 median {:.3} ({} rounds)",
                p.rps_ratio, p.rps_ratio_min, p.rps_ratio_max, p.p50_ratio, p.rounds
            );
            paired.push(p);
        }
        for client in ["hyper", "wrk"] {
            for (server, _, _) in servers {
                let of: Vec<&LoadPoint> = rounds
                    .iter()
                    .filter(|p| p.client == client && p.server == server)
                    .collect();
                let Some(p) = LoadPoint::median(&of) else {
                    continue;
                };
                eprintln!(
                    "  {:>5} -> {:>7} {conns:>2} conns: {:>8.0} req/s  p50 {:>6.1} µs  p99 {:>6.1} µs  cpu/req client {:>5.2} µs server {:>5.2} µs  ({} failures; median of {} rounds: {})",
                    p.client, p.server, p.rps, p.p50_us, p.p99_us, p.client_cpu_us, p.server_cpu_us, p.failures,
                    of.len(),
                    of.iter().map(|r| format!("{:.0}", r.rps)).collect::<Vec<_>>().join(", ")
                );
                points.push(p);
            }
        }
    }
    // Allocator calls per request: a count, where the times above move
    // with the machine (issue 14).
    let mut allocs = Vec::new();
    if with_wrk {
        let owned: Vec<_> = servers
            .iter()
            .map(|(server, target, pid)| (*server, (*target).clone(), *pid))
            .collect();
        let counted = tokio::task::spawn_blocking(move || {
            crate::allocs::count(&owned, ALLOCS_CONNS, Duration::from_secs(2))
        })
        .await
        .expect("allocation counter");
        match counted {
            Ok(counted) => {
                for a in &counted {
                    eprintln!(
                        "  allocations per request, {} at {} conns: malloc {:.2}, past the thread cache {}; syscalls {}",
                        a.server,
                        a.conns,
                        a.malloc,
                        a.past_cache.map_or("-".to_owned(), |n| format!("{n:.2}")),
                        a.syscalls.map_or("-".to_owned(), |n| format!("{n:.2}"))
                    );
                }
                allocs = counted;
            }
            Err(e) => skipped.push(format!("allocator calls per request (perf uprobes): {e}")),
        }
    }
    drop(floor);
    let after = metrics(&hot).await;
    // Instructions per request: a count, where the times above move with
    // the CPU model (issue 31). Its own sidekey and floor, under callgrind.
    let mut instructions = Vec::new();
    if crate::instructions::available() {
        eprintln!("instructions per request (callgrind)");
        match crate::instructions::measure(&proxy.url(), &hot.path, settings.instruction_requests)
            .await
        {
            Ok(figures) => {
                crate::instructions::print(&figures);
                instructions = figures;
            }
            Err(e) => skipped.push(format!("instructions per request (callgrind): {e}")),
        }
    } else {
        skipped.push(
            "instructions per request: valgrind (Debian's package) not installed; run bench/run.sh"
                .to_owned(),
        );
    }
    let count = |m: &Value, k: &str| m[k].as_u64().unwrap_or(0);
    let hot_path = HotPath {
        hits: count(&after, "hits") - count(&before, "hits"),
        misses: count(&after, "misses") - count(&before, "misses"),
        upstream_calls: count(&after, "upstream_calls") - count(&before, "upstream_calls"),
    };
    let after_load = resident(ext_pid);

    eprintln!("function-side read cost");
    let mut reads = function_reads(settings, &moto.url(), port, &token).await;
    match &python {
        Some(python) => match python_reads(python, root, settings, &moto.url(), port, &token) {
            Ok(mut r) => reads.append(&mut r),
            Err(e) => skipped.push(format!("Python baselines: {e}")),
        },
        None => skipped.push(
            "Python baselines (Powertools, boto3): no SIDEKEY_BENCH_PYTHON; run bench/run.sh"
                .to_owned(),
        ),
    }
    for r in &reads {
        eprintln!(
            "  {:<44} p50 {:>9.1} µs  p99 {:>9.1} µs",
            r.path, r.p50_us, r.p99_us
        );
    }
    drop(lambda);

    eprintln!("100 concurrent cold reads of one secret");
    let cold = cold_reads(&moto, &sm).await;
    eprintln!(
        "  {} GetSecretValue calls upstream",
        cold.get_secret_value_calls
    );

    eprintln!("RSS with 1,000 cached secrets of 4 KiB");
    let (before_1000, with_1000) = thousand_secrets(&moto, &sm).await;

    Results {
        machine: Machine::read(),
        started_unix,
        measure_secs: settings.measure.as_secs_f64(),
        rounds: settings.rounds,
        wrk_rounds: settings.wrk_rounds,
        body_bytes: body.len(),
        load: points,
        paired,
        hot_path,
        allocs,
        instructions,
        cold,
        startup,
        rss: Rss {
            idle,
            after_load,
            before_1000,
            with_1000,
        },
        reads,
        sdk_verify_us: crate::verify::verify_us(11, 2_000),
        sizes: sizes(root),
        skipped,
    }
}

/// The production log level: no per-request lines.
const QUIET: (&str, &str) = ("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL", "info");

/// Start the extension with `prefetch` listed, watching its port from the
/// moment it is spawned.
async fn start_up(proxy: &Proxy, prefetch: &[String]) -> (Lambda, Startup) {
    let port = free_port();
    let target = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        path: format!("/v1/{}", prefetch[0]),
        token: Some(session_token(port)),
    };
    let watcher = tokio::spawn(async move {
        let conn = loop {
            if let Ok(conn) = Conn::open(&target).await {
                break conn;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let listening = Instant::now();
        let mut conn = conn;
        loop {
            match conn.get().await {
                Ok((200, _)) => return (listening, Instant::now()),
                Ok(_) => tokio::time::sleep(Duration::from_micros(200)).await,
                Err(_) => conn = Conn::open(&target).await.expect("reconnect"),
            }
        }
    });
    let ids = prefetch.join(",");
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        extension_env: vars(&[("SIDEKEY_PREFETCH", &ids), QUIET]),
        port: Some(port),
        ..Options::default()
    })
    .await;
    let registered = lambda.spawned_at.elapsed();
    let (listening, first) = watcher.await.expect("watcher");
    let metrics_target = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        path: "/metrics".to_owned(),
        token: Some(lambda.token.clone()),
    };
    let all = loop {
        if metrics(&metrics_target).await["entries"].as_u64() >= Some(prefetch.len() as u64) {
            break Instant::now();
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    };
    let ms = |t: Instant| t.duration_since(lambda.spawned_at).as_secs_f64() * 1e3;
    let startup = Startup {
        prefetched: prefetch.len(),
        listener_ms: ms(listening),
        registered_ms: registered.as_secs_f64() * 1e3,
        first_secret_ms: ms(first),
        all_prefetched_ms: ms(all),
        batch_calls: proxy.calls("BatchGetSecretValue"),
        get_calls: proxy.calls("GetSecretValue"),
    };
    eprintln!(
        "  listening {:.1} ms, registered {:.1} ms, first secret {:.1} ms, all {} cached {:.1} ms",
        startup.listener_ms,
        startup.registered_ms,
        startup.first_secret_ms,
        prefetch.len(),
        startup.all_prefetched_ms
    );
    (lambda, startup)
}

/// The extension's `/metrics` (the target's path is replaced).
async fn metrics(target: &Target) -> Value {
    let target = Target {
        path: "/metrics".to_owned(),
        ..target.clone()
    };
    let (_, body) = load::get_once(&target).await.expect("metrics");
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

fn cost(path: &str, cached: bool, h: &Histogram<u64>) -> ReadCost {
    ReadCost {
        path: path.to_owned(),
        cached,
        reads: h.len(),
        p50_us: h.value_at_quantile(0.5) as f64 / 1e3,
        p99_us: h.value_at_quantile(0.99) as f64 / 1e3,
    }
}

/// Per-read cost from a Rust function: embedded cache, the extension over
/// localhost, and the service each time (no cache).
///
/// Measured on a current-thread runtime of its own, as the functions run
/// (the weather binary and the edge module both use one): on the harness's
/// two-worker runtime, reqwest's connection task could land on the other
/// worker, and the cross-thread wake-ups (p50 about 130 µs instead of 80)
/// were the harness's cost, not the function's.
async fn function_reads(settings: Settings, moto: &str, port: u16, token: &str) -> Vec<ReadCost> {
    let (moto, token) = (moto.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime")
            .block_on(function_reads_here(settings, &moto, port, &token))
    })
    .await
    .expect("the function-side reads")
}

async fn function_reads_here(
    settings: Settings,
    moto: &str,
    port: u16,
    token: &str,
) -> Vec<ReadCost> {
    let n = settings.reads;
    let embedded = Arc::new(Embedded::new(SecretCache::new(
        aws::fetcher(moto).await,
        CacheConfig::default(),
    )));
    let h = load::sequential(10, n * 10, || {
        let e = Arc::clone(&embedded);
        async move { e.secret(HOT, Some("apikey")).await.is_ok() }
    })
    .await;
    let mut out = vec![cost("embedded sidekey-cache (in-process, Rust)", true, &h)];

    let client = Arc::new(ExtensionClient::new(port, token.to_owned()).expect("client"));
    let h = load::sequential(100, n, || {
        let c = Arc::clone(&client);
        async move { c.secret(HOT, Some("apikey")).await.is_ok() }
    })
    .await;
    out.push(cost(
        "sidekey extension via ExtensionClient (Rust)",
        true,
        &h,
    ));

    let fetcher = Arc::new(aws::fetcher(moto).await);
    let h = load::sequential(5, (n / 10).max(50), || {
        let f = Arc::clone(&fetcher);
        async move { f.fetch(&Key::secret(HOT)).await.is_ok() }
    })
    .await;
    out.push(cost(
        "no cache: GetSecretValue each read (Rust SDK)",
        false,
        &h,
    ));
    out
}

/// The Python baselines: Powertools' cached `get_secret`, boto3 each time,
/// and a Python function reading sidekey over localhost.
fn python_reads(
    python: &Path,
    root: &Path,
    settings: Settings,
    moto: &str,
    port: u16,
    token: &str,
) -> Result<Vec<ReadCost>, String> {
    let out = Command::new(python)
        .arg(root.join("bench/baselines.py"))
        .args(["--secret", HOT, "--reads", &settings.reads.to_string()])
        .args(["--port", &port.to_string()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", moto)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!("bench/baselines.py exited with {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bench/baselines.py output: {e}"))
}

/// 100 readers ask for one uncached secret at the same moment.
async fn cold_reads(moto: &Moto, sm: &aws_sdk_secretsmanager::Client) -> Cold {
    const READERS: usize = 100;
    aws::create_secret(sm, "bench/cold", "cold-value").await;
    let proxy = Proxy::start(moto.addr()).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        extension_env: vars(&[QUIET]),
        ..Options::default()
    })
    .await;
    let target = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], lambda.port)),
        path: "/v1/bench%2Fcold".to_owned(),
        token: Some(lambda.token.clone()),
    };
    let mut conns = Vec::new();
    for _ in 0..READERS {
        conns.push(Conn::open(&target).await.expect("connect"));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(READERS));
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            matches!(conn.get().await, Ok((200, body)) if body.windows(10).any(|w| w == b"cold-value"))
        });
    }
    let mut answered = 0;
    while let Some(ok) = tasks.join_next().await {
        answered += usize::from(ok.expect("reader"));
    }
    Cold {
        readers: READERS,
        answered,
        get_secret_value_calls: proxy.calls("GetSecretValue"),
        cache_upstream_calls: metrics(&target).await["upstream_calls"]
            .as_u64()
            .unwrap_or(0),
    }
}

/// Instructions per request alone (`sidekey-bench instructions`): moto
/// with the hot secret, sidekey and the floor under callgrind.
pub async fn instructions(requests: u64) -> Result<(), String> {
    if !crate::instructions::available() {
        return Err("needs valgrind (callgrind, callgrind_control)".into());
    }
    let machine = Machine::read();
    eprintln!("{} ({} cores)", machine.cpu, machine.cores);
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, HOT, HOT_VALUE).await;
    let path = format!("/secretsmanager/get?secretId={HOT}");
    let figures = crate::instructions::measure(&moto.url(), &path, requests).await?;
    crate::instructions::print(&figures);
    Ok(())
}

/// sidekey with the hot secret cached, until stdin closes
/// (`sidekey-bench serve`).
pub async fn serve() {
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, HOT, HOT_VALUE).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: moto.url(),
        extension_env: vars(&[QUIET]),
        ..Options::default()
    })
    .await;
    let hot = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], lambda.port)),
        path: format!("/secretsmanager/get?secretId={HOT}"),
        token: Some(lambda.token.clone()),
    };
    let body = load::get_once(&hot).await.expect("first read").1;
    println!(
        "port {} token {} pid {} path {} body {} B",
        lambda.port,
        lambda.token,
        lambda.extension.pid(),
        hot.path,
        body.len()
    );
    let _ =
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await;
}

/// The two servers in the order `round` runs them: swapped every other
/// round. Whichever of a pair runs first measures slower on this VM (12
/// paired wrk rounds at 8 connections: sidekey / floor 0.98 with the floor
/// first, 0.91 with sidekey first, medians of 6), so a fixed order would
/// favour the second.
fn in_turn<T: Copy>(servers: [T; 2], round: usize) -> [T; 2] {
    if round.is_multiple_of(2) {
        servers
    } else {
        [servers[1], servers[0]]
    }
}

/// Start-up and the RSS figures alone, each followed by where the
/// resident pages are (`sidekey-bench memory`).
pub async fn memory() {
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    let prefetch: Vec<String> = (0..PREFETCH)
        .map(|i| format!("bench/prefetch/{i}"))
        .collect();
    for id in &prefetch {
        aws::create_secret(&sm, id, &format!("{{\"key\":\"value-{id}\"}}")).await;
    }
    let proxy = Proxy::start(moto.addr()).await;
    let (lambda, _) = start_up(&proxy, &prefetch).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = resident(lambda.extension.pid());
    eprintln!("  idle after start-up and prefetch: {idle:?}");
    print_mappings(lambda.extension.pid());
    // A SHUTDOWN, as Lambda ends an environment: the extension exits on its
    // own (scripts/hot-text.sh reads callgrind's dump, written at exit).
    lambda.shutdown().await;
    let (_, with) = thousand_secrets(&moto, &sm).await;
    eprintln!("  with 1,000: {with:?}");
}

/// The largest resident mappings of `pid`, from /proc/PID/smaps.
fn print_mappings(pid: u32) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut rows: Vec<(u64, String)> = Vec::new();
    let mut name = String::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range perms offset dev inode [path].
            let perms = fields.next().unwrap_or_default();
            name = format!("{perms} {}", fields.nth(3).unwrap_or("[anon]"));
        } else if first == "Rss:" {
            let kib = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            rows.push((kib, name.clone()));
        }
    }
    rows.sort_by_key(|row| std::cmp::Reverse(row.0));
    for (kib, name) in rows.iter().take(16) {
        eprintln!("    {kib:>6} KiB  {name}");
    }
}

/// RSS of a fresh extension before and after caching 1,000 secrets of 4 KiB.
async fn thousand_secrets(
    moto: &Moto,
    sm: &aws_sdk_secretsmanager::Client,
) -> (Resident, Resident) {
    const N: usize = 1_000;
    for i in 0..N {
        let value = format!("{i:04}{}", "x".repeat(4096 - 4));
        aws::create_secret(sm, &format!("bench/big/{i}"), &value).await;
    }
    // Through the proxy, which keeps the extension's upstream connection
    // open between calls, as AWS's endpoints do (moto closes each one):
    // reusing a pooled connection runs other code, and allocates otherwise,
    // than opening one per call.
    let proxy = Proxy::start(moto.addr()).await;
    let lambda = Lambda::start(Options {
        aws_endpoint: proxy.url(),
        extension_env: vars(&[QUIET]),
        ..Options::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = resident(lambda.extension.pid());
    let mut target = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], lambda.port)),
        path: String::new(),
        token: Some(lambda.token.clone()),
    };
    for i in 0..N {
        target.path = format!("/v1/bench%2Fbig%2F{i}");
        let (status, _) = load::get_once(&target).await.expect("read");
        assert_eq!(status, 200, "bench/big/{i}");
    }
    let entries = metrics(&target).await["entries"].as_u64().unwrap_or(0);
    assert_eq!(entries, N as u64, "all 1,000 secrets cached");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let with = resident(lambda.extension.pid());
    print_mappings(lambda.extension.pid());
    eprintln!(
        "  RSS {} KiB idle, {} KiB with {N} secrets cached (private {} KiB, binary pages {} KiB)",
        before.total_kib, with.total_kib, with.anon_kib, with.file_kib
    );
    lambda.shutdown().await;
    (before, with)
}

/// A process's resident memory, from /proc/PID/status.
fn resident(pid: u32) -> Resident {
    let [total_kib, anon_kib, file_kib] = status_kib(pid, ["VmRSS:", "RssAnon:", "RssFile:"]);
    Resident {
        total_kib,
        anon_kib,
        file_kib,
    }
}

fn sizes(root: &Path) -> Sizes {
    let size = |p: &str| std::fs::metadata(root.join(p)).ok().map(|m| m.len());
    Sizes {
        binary: size("target/layer/stage-x86_64/extensions/sidekey"),
        layer_zip: size("target/layer/sidekey-layer-x86_64.zip"),
        edge_zip: size("target/edge/sidekey-edge.zip"),
    }
}

/// The floor server, in a child process (this binary's `floor` mode).
struct Floor {
    child: Child,
    addr: SocketAddr,
}

impl Floor {
    fn start(body: &[u8]) -> Floor {
        let port = free_port();
        let file = std::env::temp_dir().join(format!("sidekey-floor-{port}.json"));
        std::fs::write(&file, body).expect("write the floor body");
        let child = Command::new(std::env::current_exe().expect("current exe"))
            .args(["floor", "--port", &port.to_string(), "--body"])
            .arg(&file)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn the floor server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "the floor server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Floor { child, addr }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
