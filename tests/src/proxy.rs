//! A counting, fault-injecting HTTP proxy to put in front of moto.
//!
//! moto has no fault injection, so the tests route the SDK through this
//! proxy. It counts calls per AWS operation (from `X-Amz-Target`) and can
//! throttle, fail with a status, delay, or reset the connection, for every
//! request or every n-th one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// What the proxy does to a request it picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward it.
    None,
    /// Answer 400 `ThrottlingException`.
    Throttle,
    /// Answer this 5xx status with an `InternalServiceError` body.
    Status(u16),
    /// Wait this long, then forward.
    Delay(Duration),
    /// Drop the connection without an answer.
    Reset,
}

#[derive(Debug)]
struct State {
    fault: Fault,
    every: u64,
    seen: AtomicU64,
    calls: Mutex<HashMap<String, u64>>,
    faults: AtomicU64,
    upstream: SocketAddr,
}

/// A running proxy. Stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<Arc<State>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on 127.0.0.1 and forward to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(Mutex::new(Arc::new(State {
            fault: Fault::None,
            every: 1,
            seen: AtomicU64::new(0),
            calls: Mutex::new(HashMap::new()),
            faults: AtomicU64::new(0),
            upstream,
        })));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&shared);
                let client = client.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = Arc::clone(&state.lock().unwrap());
                        let client = client.clone();
                        async move { handle(state, client, req).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Apply `fault` to every `every`-th request from now on (1: all).
    pub fn set_fault(&self, fault: Fault, every: u64) {
        let mut guard = self.state.lock().unwrap();
        let old = Arc::clone(&guard);
        *guard = Arc::new(State {
            fault,
            every: every.max(1),
            seen: AtomicU64::new(0),
            calls: Mutex::new(old.calls.lock().unwrap().clone()),
            faults: AtomicU64::new(old.faults.load(Ordering::SeqCst)),
            upstream: old.upstream,
        });
    }

    /// Forward everything again.
    pub fn heal(&self) {
        self.set_fault(Fault::None, 1);
    }

    /// Requests seen for one operation (e.g. `GetSecretValue`), faulted or not.
    pub fn calls(&self, operation: &str) -> u64 {
        let state = Arc::clone(&self.state.lock().unwrap());
        let calls = state.calls.lock().unwrap();
        calls.get(operation).copied().unwrap_or(0)
    }

    /// Requests answered with a fault so far.
    pub fn faults(&self) -> u64 {
        self.state.lock().unwrap().faults.load(Ordering::SeqCst)
    }

    /// Forget the counts.
    pub fn reset_counts(&self) {
        let state = Arc::clone(&self.state.lock().unwrap());
        state.calls.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<State>,
    client: Client<HttpConnector, Full<Bytes>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    *state.calls.lock().unwrap().entry(op).or_default() += 1;
    let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
    let fault = if n.is_multiple_of(state.every) {
        state.fault
    } else {
        Fault::None
    };
    if fault != Fault::None {
        state.faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Throttle => return Ok(error(400, "ThrottlingException", "Rate exceeded")),
        Fault::Status(code) => return Ok(error(code, "InternalServiceError", "injected failure")),
        Fault::Reset => {
            // A failing service makes hyper drop the connection unanswered.
            return Err(std::io::Error::other("injected connection reset"));
        }
        Fault::Delay(d) => tokio::time::sleep(d).await,
        Fault::None => {}
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let uri = format!(
        "http://{}{}",
        state.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut fwd = Request::builder().method(parts.method).uri(uri);
    for (k, v) in &parts.headers {
        fwd = fwd.header(k, v);
    }
    let Ok(fwd) = fwd.body(Full::new(body)) else {
        return Ok(error(
            500,
            "InternalServiceError",
            "proxy could not build the request",
        ));
    };
    match client.request(fwd).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok(Response::from_parts(parts, Full::new(body)))
        }
        Err(_) => Ok(error(502, "InternalServiceError", "upstream unreachable")),
    }
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", code)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
