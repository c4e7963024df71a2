//! A closed-loop HTTP/1.1 load client on hyper: N keep-alive connections,
//! each sending the next request as soon as the last answer is read in full.
//! The same client drives sidekey and the floor server, so their figures
//! compare like with like.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to ask for.
#[derive(Clone, Debug)]
pub struct Target {
    /// Where the server listens (loopback).
    pub addr: SocketAddr,
    /// Path and query of every request.
    pub path: String,
    /// The `X-Aws-Parameters-Secrets-Token` header, if any.
    pub token: Option<String>,
}

/// The outcome of one load run.
pub struct Run {
    /// Answers read in the measured window.
    pub requests: u64,
    /// Answers other than 200, and failed connections or requests.
    pub failures: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Per-request latency in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Run {
    /// Answers per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// A latency quantile (0.5 for the median), in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1_000.0
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant figures.
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram bounds")
}

/// One open connection.
pub struct Conn {
    sender: http1::SendRequest<Empty<Bytes>>,
    target: Target,
}

impl Conn {
    /// Connect to `target` (no Nagle delay, as a function's client would).
    pub async fn open(target: &Target) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            target: target.clone(),
        })
    }

    /// Send one GET and read the whole answer: its status and body.
    pub async fn get(&mut self) -> Result<(u16, Bytes), hyper::Error> {
        let mut request =
            http::Request::get(self.target.path.as_str()).header(http::header::HOST, "localhost");
        if let Some(token) = &self.target.token {
            request = request.header("x-aws-parameters-secrets-token", token.as_str());
        }
        let request = request.body(Empty::new()).expect("a valid request");
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// One GET on a connection of its own, closed after: status and body.
pub async fn get_once(target: &Target) -> std::io::Result<(u16, Bytes)> {
    let mut conn = Conn::open(target).await?;
    conn.get().await.map_err(std::io::Error::other)
}

/// Drive `target` with `conns` connections: `warmup` unmeasured, then
/// `measure` measured.
pub async fn run(target: &Target, conns: usize, warmup: Duration, measure: Duration) -> Run {
    let start = Instant::now() + warmup;
    let end = start + measure;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let target = target.clone();
        tasks.spawn(async move {
            let mut latency = histogram();
            let (mut requests, mut failures) = (0u64, 0u64);
            let Ok(mut conn) = Conn::open(&target).await else {
                return (latency, requests, 1);
            };
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let outcome = conn.get().await;
                let done = Instant::now();
                if sent < start {
                    continue;
                }
                match outcome {
                    Ok((200, _)) => {
                        requests += 1;
                        let ns = done.duration_since(sent).as_nanos() as u64;
                        latency.saturating_record(ns.max(1_000));
                    }
                    Ok(_) => failures += 1,
                    Err(_) => {
                        failures += 1;
                        match Conn::open(&target).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latency, requests, failures)
        });
    }
    let mut run = Run {
        requests: 0,
        failures: 0,
        elapsed: measure,
        latency: histogram(),
    };
    while let Some(joined) = tasks.join_next().await {
        let (latency, requests, failures) = joined.expect("load task");
        run.latency.add(&latency).expect("same bounds");
        run.requests += requests;
        run.failures += failures;
    }
    run
}

/// Send `per_conn` requests on each of `conns`, one after the other on each
/// and all connections at once: a fixed amount of work, for counting what
/// it costs the server (`crate::instructions`). Gives the connections back
/// with the number of `200` answers.
pub async fn fixed(conns: Vec<Conn>, per_conn: u64) -> (Vec<Conn>, u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for mut conn in conns {
        tasks.spawn(async move {
            let mut ok = 0;
            for _ in 0..per_conn {
                if matches!(conn.get().await, Ok((200, _))) {
                    ok += 1;
                }
            }
            (conn, ok)
        });
    }
    let mut back = Vec::new();
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        let (conn, n) = joined.expect("load task");
        back.push(conn);
        ok += n;
    }
    (back, ok)
}

/// Time `reads` sequential calls of `read` (after `warmup` unmeasured ones):
/// the per-call latency histogram in nanoseconds.
pub async fn sequential<F, Fut>(warmup: usize, reads: usize, mut read: F) -> Histogram<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    for _ in 0..warmup {
        assert!(read().await, "a warm-up read failed");
    }
    for _ in 0..reads {
        let t = Instant::now();
        let ok = read().await;
        latency.saturating_record(t.elapsed().as_nanos().max(1) as u64);
        assert!(ok, "a measured read failed");
    }
    latency
}
