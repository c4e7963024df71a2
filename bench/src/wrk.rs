//! wrk (Debian's package: C, epoll, one thread here) as the load client, and
//! what each request costs the client and the server in CPU time.
//!
//! A load client that costs more per request than the server saturates first
//! and makes every server look alike; wrk costs less per request than either
//! server measured here, and the report shows both costs so that can be read
//! off each run rather than assumed.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::load::Target;

/// One wrk run.
pub struct WrkRun {
    /// Requests completed.
    pub requests: u64,
    /// Non-2xx/3xx answers and socket errors.
    pub failures: u64,
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles in microseconds.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// wrk's own CPU time per request, in microseconds.
    pub client_cpu_us: f64,
}

/// Whether wrk is installed.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Run wrk with one thread and `conns` connections against `target` for
/// `duration`. `None` when wrk cannot run or prints nothing readable.
pub fn run(target: &Target, conns: usize, duration: Duration) -> Option<WrkRun> {
    let url = format!("http://{}{}", target.addr, target.path);
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "--latency", "--timeout", "5s"])
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)));
    if let Some(token) = &target.token {
        cmd.arg("-H")
            .arg(format!("X-Aws-Parameters-Secrets-Token: {token}"));
    }
    let before = children_cpu();
    let out = cmd.arg(url).stderr(Stdio::null()).output().ok()?;
    let cpu = children_cpu() - before;
    let text = String::from_utf8_lossy(&out.stdout);
    let requests: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(prefix))
            .map(str::trim)
    };
    let failures = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + field("Socket errors:").map_or(0, socket_errors);
    Some(WrkRun {
        requests,
        failures,
        rps: field("Requests/sec:")?.parse().ok()?,
        p50_us: micros(field("50%")?)?,
        p90_us: micros(field("90%")?)?,
        p99_us: micros(field("99%")?)?,
        client_cpu_us: cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
    })
}

/// wrk's durations: "22.00us", "1.23ms", "2.00s".
fn micros(v: &str) -> Option<f64> {
    let (n, scale) = if let Some(n) = v.strip_suffix("us") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1e3)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1e6)
    } else {
        return None;
    };
    Some(n.trim().parse::<f64>().ok()? * scale)
}

/// "connect 0, read 0, write 0, timeout 0" summed.
fn socket_errors(v: &str) -> u64 {
    v.split(',')
        .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// CPU time (user + system) of this process's waited-for children.
fn children_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage struct into the zeroed value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage and a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time (user + system) a process has used so far, from /proc.
pub fn process_cpu(pid: u32) -> Duration {
    let ticks: u64 = sidekey_tests::client::stat_fields(pid)
        .iter()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_durations_and_errors() {
        assert_eq!(micros("22.00us"), Some(22.0));
        assert_eq!(micros("1.50ms"), Some(1500.0));
        assert_eq!(micros("2.00s"), Some(2e6));
        assert_eq!(micros("x"), None);
        assert_eq!(socket_errors("connect 0, read 2, write 1, timeout 3"), 6);
    }
}
