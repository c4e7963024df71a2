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
struct Shared {
    fault: Mutex<(Fault, u64)>,
    /// Faults for one operation only, applied before `fault`.
    op_faults: Mutex<HashMap<String, Fault>>,
    seen: AtomicU64,
    calls: Mutex<HashMap<String, u64>>,
    faults: AtomicU64,
    upstream: SocketAddr,
    stubs: Mutex<HashMap<String, u16>>,
    recorded: Mutex<Vec<Recorded>>,
}

/// A request the proxy answered itself from a stub.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The path.
    pub path: String,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// A running proxy. Stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listen on 127.0.0.1 and forward to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = Arc::new(Shared {
            fault: Mutex::new((Fault::None, 1)),
            op_faults: Mutex::new(HashMap::new()),
            seen: AtomicU64::new(0),
            calls: Mutex::new(HashMap::new()),
            faults: AtomicU64::new(0),
            upstream,
            stubs: Mutex::new(HashMap::new()),
            recorded: Mutex::new(Vec::new()),
        });
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&state);
                let client = client.clone();
                tokio::spawn(async move {
                    let svc =
                        service_fn(move |req| handle(Arc::clone(&state), client.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`, as `AWS_LAMBDA_RUNTIME_API` wants it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Apply `fault` to every `every`-th request from now on (1: all).
    pub fn set_fault(&self, fault: Fault, every: u64) {
        *self.shared.fault.lock().unwrap() = (fault, every.max(1));
        self.shared.seen.store(0, Ordering::SeqCst);
    }

    /// Apply `fault` to every request for `operation` (e.g.
    /// `BatchGetSecretValue`) from now on, whatever [`Proxy::set_fault`] says.
    pub fn set_operation_fault(&self, operation: &str, fault: Fault) {
        self.shared
            .op_faults
            .lock()
            .unwrap()
            .insert(operation.to_owned(), fault);
    }

    /// Forward everything again.
    pub fn heal(&self) {
        self.shared.op_faults.lock().unwrap().clear();
        self.set_fault(Fault::None, 1);
    }

    /// Answer requests to `path` with `status` and record them, instead of
    /// forwarding (for endpoints the upstream emulator lacks).
    pub fn stub(&self, path: &str, status: u16) {
        self.shared
            .stubs
            .lock()
            .unwrap()
            .insert(path.to_owned(), status);
    }

    /// Requests answered by stubs so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.recorded.lock().unwrap().clone()
    }

    /// Requests seen for one operation (e.g. `GetSecretValue`), faulted or not.
    pub fn calls(&self, operation: &str) -> u64 {
        let calls = self.shared.calls.lock().unwrap();
        calls.get(operation).copied().unwrap_or(0)
    }

    /// Requests answered with a fault so far.
    pub fn faults(&self) -> u64 {
        self.shared.faults.load(Ordering::SeqCst)
    }

    /// Forget the counts.
    pub fn reset_counts(&self) {
        self.shared.calls.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<Shared>,
    client: Client<HttpConnector, Full<Bytes>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let stub = state.stubs.lock().unwrap().get(req.uri().path()).copied();
    if let Some(status) = stub {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        state.recorded.lock().unwrap().push(Recorded {
            path: parts.uri.path().to_owned(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body,
        });
        return Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap_or_default());
    }
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("unknown")
        .to_owned();
    let op_fault = state.op_faults.lock().unwrap().get(&op).copied();
    *state.calls.lock().unwrap().entry(op).or_default() += 1;
    let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
    let (fault, every) = *state.fault.lock().unwrap();
    let fault = match op_fault {
        Some(fault) => fault,
        None if n.is_multiple_of(every) => fault,
        None => Fault::None,
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
