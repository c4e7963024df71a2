//! Allocator calls per request, counted in the server by uprobes on libc's
//! `malloc` (every call) and `_int_malloc` (the calls its per-thread cache
//! cannot serve, which take an arena's lock).
//!
//! A count, not a time: it does not move with the machine's weather, so a
//! per-request allocation the floor does not make shows as a plain
//! difference between two numbers (issue 14). Needs `perf` and the right to
//! add probes (root); without them the figure is skipped, with the reason.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;

use crate::load::Target;

/// Allocator calls per request of one server under wrk.
#[derive(Clone, Debug, Serialize)]
pub struct Allocs {
    /// `floor` or `sidekey`.
    pub server: &'static str,
    /// wrk's keep-alive connections.
    pub conns: usize,
    /// Requests in the counted run.
    pub requests: u64,
    /// `malloc` calls per request.
    pub malloc: f64,
    /// `_int_malloc` calls per request (`None` when libc's symbol table
    /// does not name it).
    pub past_cache: Option<f64>,
    /// System calls per request (the `raw_syscalls:sys_enter` tracepoint):
    /// the kernel's work the server asks for, which the instruction counts
    /// (user space only, [`crate::instructions`]) leave out.
    pub syscalls: Option<f64>,
}

/// The probes, removed again when dropped.
struct Probes {
    /// The events added: `probe_libc:malloc`, and `probe_libc:_int_malloc`
    /// when it could be placed.
    events: Vec<String>,
}

impl Probes {
    fn add(libc: &str) -> Result<Self, String> {
        let mut events = Vec::new();
        for function in ["malloc", "_int_malloc"] {
            let event = format!("probe_libc:{function}");
            // A probe left behind by an interrupted run.
            let _ = perf(&["probe", "-q", "-d", &event]);
            match perf(&["probe", "-q", "-x", libc, "-a", function]) {
                Ok(()) => events.push(event),
                Err(e) if function == "malloc" => return Err(e),
                Err(_) => {} // optional: the count past the cache
            }
        }
        Ok(Self { events })
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        for event in &self.events {
            let _ = perf(&["probe", "-q", "-d", event]);
        }
    }
}

fn perf(args: &[&str]) -> Result<(), String> {
    let out = Command::new("perf")
        .args(args)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("perf: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(format!(
            "perf {}: {}",
            args.join(" "),
            err.lines().next().unwrap_or("failed")
        ))
    }
}

/// The C library `pid` has mapped, from /proc/PID/maps.
fn libc_of(pid: u32) -> Option<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|path| path.contains("/libc.so"))
        .map(str::to_owned)
}

/// Count the allocator calls of each server while wrk loads it with `conns`
/// connections for `duration`. Blocking: runs perf and wrk.
pub fn count(
    servers: &[(&'static str, Target, u32)],
    conns: usize,
    duration: Duration,
) -> Result<Vec<Allocs>, String> {
    let (_, _, first) = servers.first().ok_or("no server")?;
    let libc = libc_of(*first).ok_or("no libc.so mapped by the server")?;
    let probes = Probes::add(&libc)?;
    let mut counted = Vec::new();
    for (server, target, pid) in servers {
        let out = std::env::temp_dir().join(format!("sidekey-bench-allocs-{pid}.csv"));
        let mut stat = Command::new("perf")
            .args(["stat", "-x,", "-o"])
            .arg(&out)
            .args(["-p", &pid.to_string()])
            .args(probes.events.iter().flat_map(|e| ["-e", e.as_str()]))
            .args(["-e", "raw_syscalls:sys_enter"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("perf stat: {e}"))?;
        // perf attaches its probes to the process before counting starts.
        std::thread::sleep(Duration::from_millis(300));
        let run = crate::wrk::run(target, conns, duration);
        // perf stat writes its counts when interrupted.
        let _ = Command::new("kill")
            .args(["-INT", &stat.id().to_string()])
            .status();
        let _ = stat.wait();
        let csv = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        let run = run.ok_or_else(|| format!("wrk against {server}: no figures"))?;
        let per = |event: &str| {
            csv.lines()
                .find(|l| l.contains(event))
                .and_then(|l| l.split(',').next()?.trim().parse::<f64>().ok())
                .map(|n| n / run.requests.max(1) as f64)
        };
        counted.push(Allocs {
            server,
            conns,
            requests: run.requests,
            malloc: per("probe_libc:malloc,")
                .ok_or_else(|| format!("perf stat counted nothing for {server}"))?,
            past_cache: per("probe_libc:_int_malloc"),
            syscalls: per("raw_syscalls:sys_enter"),
        });
    }
    Ok(counted)
}
