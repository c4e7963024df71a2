//! Instructions per request: what answering one request costs the server
//! in user-space instructions, counted by callgrind (valgrind's CPU, the
//! same on any machine) rather than timed.
//!
//! Times move with the CPU model and with whatever else the machine runs:
//! the same build measured 0.96× the floor's throughput on one CPU and
//! 0.8× on another (issue 31). An instruction count does not: it is the
//! work the server's code does per request, which is what a change to
//! that code changes. Both servers run under callgrind, each its own
//! process; the harness's hyper client, native, sends a fixed number of
//! requests over keep-alive connections opened and warmed first. The
//! counters are zeroed once the warm-up is answered and dumped once the
//! last request is (`callgrind_control`), so start-up, the first fetch
//! and connection set-up are not counted; idle time between requests
//! counts, as it is the server's too.
//!
//! User space only: the kernel's share (the socket calls) is not in these
//! counts; the allocator's and the syscalls' counts per request
//! ([`crate::allocs`]) cover what the server asks of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use sidekey_tests::lambda::{vars, Lambda, Options};
use sidekey_tests::moto::free_port;

use crate::load::{self, Conn, Target};

/// Connection counts measured.
pub const CONNS: [usize; 2] = [8, 64];

/// Instructions per request of one server at one connection count.
#[derive(Clone, Debug, Serialize)]
pub struct PerRequest {
    /// `floor` or `sidekey`.
    pub server: &'static str,
    /// Keep-alive connections, all busy at once.
    pub conns: usize,
    /// Requests counted (all answered `200`).
    pub requests: u64,
    /// User-space instructions per request (callgrind's `Ir`).
    pub instructions: f64,
}

/// Whether valgrind's callgrind and its control program are installed.
pub fn available() -> bool {
    ["valgrind", "callgrind_control"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

/// The words that run a program under callgrind, its dumps in `dir`.
fn callgrind(dir: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "-q".into(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}/callgrind.out.%p", dir.display()),
    ]
}

/// `callgrind_control ARG PID`.
fn control(arg: &str, pid: u32) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args([arg, &pid.to_string()])
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {arg} {pid}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The instructions of the newest dump in `dir` (its `totals:` line).
fn newest_total(dir: &Path) -> Result<u64, String> {
    let newest = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
        .ok_or("callgrind wrote no dump")?;
    let text = std::fs::read_to_string(&newest).map_err(|e| format!("{e}"))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no totals in {}", newest.display()))
}

/// Count what `requests` requests over `conns` connections cost the
/// server `pid` runs, callgrind writing its dumps to `dir`.
async fn count(
    server: &'static str,
    target: &Target,
    pid: u32,
    dir: &Path,
    conns: usize,
    requests: u64,
) -> Result<PerRequest, String> {
    let mut open = Vec::new();
    for _ in 0..conns {
        open.push(
            Conn::open(target)
                .await
                .map_err(|e| format!("{server}: {e}"))?,
        );
    }
    let per_conn = (requests / conns as u64).max(1);
    // Warm: every connection's buffers grown, every worker's memo filled.
    let (open, _) = load::fixed(open, (per_conn / 10).max(20)).await;
    control("--zero", pid)?;
    let (open, ok) = load::fixed(open, per_conn).await;
    control("--dump", pid)?;
    drop(open);
    let sent = per_conn * conns as u64;
    if ok != sent {
        return Err(format!("{server}: {ok} of {sent} requests answered 200"));
    }
    let total = newest_total(dir)?;
    Ok(PerRequest {
        server,
        conns,
        requests: sent,
        instructions: total as f64 / sent as f64,
    })
}

/// The floor server under callgrind, in a child process.
struct Floor {
    child: Child,
    addr: SocketAddr,
}

impl Floor {
    fn start(body: &[u8], dir: &Path) -> Result<Floor, String> {
        let port = free_port();
        let file = dir.join("floor-body.json");
        std::fs::write(&file, body).map_err(|e| format!("{e}"))?;
        let words = callgrind(dir);
        let child = Command::new(&words[0])
            .args(&words[1..])
            .arg(std::env::current_exe().map_err(|e| format!("{e}"))?)
            .args(["floor", "--port", &port.to_string(), "--body"])
            .arg(&file)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("valgrind: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                return Err("the floor did not start under callgrind".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Floor { child, addr })
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory of its own for one server's dumps.
fn dump_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "sidekey-bench-callgrind-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Instructions per request of sidekey (the hot secret `path` cached,
/// read from `aws_endpoint`) and of the floor answering the same bytes,
/// at each of [`CONNS`], `requests` requests each.
pub async fn measure(
    aws_endpoint: &str,
    path: &str,
    requests: u64,
) -> Result<Vec<PerRequest>, String> {
    let sidekey_dir = dump_dir("sidekey")?;
    let floor_dir = dump_dir("floor")?;
    let lambda = Lambda::start(Options {
        aws_endpoint: aws_endpoint.to_owned(),
        extension_env: vars(&[("PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL", "info")]),
        runner: callgrind(&sidekey_dir),
        ..Options::default()
    })
    .await;
    let hot = Target {
        addr: SocketAddr::from(([127, 0, 0, 1], lambda.port)),
        path: path.to_owned(),
        token: Some(lambda.token.clone()),
    };
    let (status, body) = load::get_once(&hot)
        .await
        .map_err(|e| format!("sidekey under callgrind: {e}"))?;
    if status != 200 {
        return Err(format!("sidekey under callgrind answered {status}"));
    }
    let floor = Floor::start(&body, &floor_dir)?;
    let floor_target = Target {
        addr: floor.addr,
        ..hot.clone()
    };
    let pid = lambda.extension.pid();
    let mut out = Vec::new();
    for conns in CONNS {
        out.push(
            count(
                "floor",
                &floor_target,
                floor.child.id(),
                &floor_dir,
                conns,
                requests,
            )
            .await?,
        );
        out.push(count("sidekey", &hot, pid, &sidekey_dir, conns, requests).await?);
    }
    drop(floor);
    drop(lambda);
    let _ = std::fs::remove_dir_all(&sidekey_dir);
    let _ = std::fs::remove_dir_all(&floor_dir);
    Ok(out)
}

/// sidekey's instructions per request over the floor's at `conns`.
pub fn ratio(figures: &[PerRequest], conns: usize) -> Option<f64> {
    let of = |server| {
        figures
            .iter()
            .find(|p| p.server == server && p.conns == conns)
            .map(|p| p.instructions)
    };
    Some(of("sidekey")? / of("floor")?)
}

/// One line per connection count, to stderr.
pub fn print(figures: &[PerRequest]) {
    for conns in CONNS {
        let of = |server| {
            figures
                .iter()
                .find(|p| p.server == server && p.conns == conns)
        };
        if let (Some(floor), Some(sidekey)) = (of("floor"), of("sidekey")) {
            eprintln!(
                "  instructions per request at {conns:>2} conns: floor {:>6.0}, sidekey {:>6.0}: {:.3}× ({} requests each)",
                floor.instructions,
                sidekey.instructions,
                sidekey.instructions / floor.instructions,
                sidekey.requests
            );
        }
    }
}
