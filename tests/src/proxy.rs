//! A counting, fault-injecting HTTP proxy to put in front of moto.
//!
//! moto has no fault injection, so the tests route the SDK through this
//! proxy. It counts calls per AWS operation (from `X-Amz-Target`) and can
//! throttle, fail with a status, delay, or reset the connection, for every
//! request or every n-th one; and beyond errors: swallow requests (a black
//! hole), hold them until released (a freeze), or spoil a 2xx answer
//! (cut short mid-body, or garbled under a proper frame).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The proxy's answers: whole, or cut short on purpose.
type Answer = Response<BoxBody<Bytes, std::io::Error>>;

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
    /// Read the request and never answer, keeping the connection open (a
    /// NAT gateway's forgotten flow, a peer frozen mid-request).
    BlackHole,
    /// Hold the request unanswered until [`Proxy::release`], then forward
    /// it (an upstream that stalls for a while, then resumes).
    Hold,
    /// Forward, and cut a 2xx answer short: the headers announce the whole
    /// body, half of it is sent, then the connection is dropped.
    Truncate,
    /// Forward, and answer a 2xx with only the first half of its body, in
    /// a proper frame (a garbled answer: status 200, unreadable JSON).
    Garble,
    /// Answer this status and JSON body instead of the service (an error
    /// of the service's own, or an answer in an order it may choose).
    Answer(u16, &'static str),
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
    /// Bumped by [`Proxy::release`]: held requests go on when it changes.
    release: watch::Sender<u64>,
    /// Requests swallowed or held so far.
    held: AtomicU64,
    /// Access key ids seen in SigV4 `Authorization` headers.
    access_keys: Mutex<BTreeSet<String>>,
    /// When each request arrived, by path.
    arrivals: Mutex<Vec<(String, Instant)>>,
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
            release: watch::Sender::new(0),
            held: AtomicU64::new(0),
            access_keys: Mutex::new(BTreeSet::new()),
            arrivals: Mutex::new(Vec::new()),
        });
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            // Owned here, so aborting this task (dropping the proxy) also
            // ends the connections it keeps open.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let state = Arc::clone(&state);
                let client = client.clone();
                connections.spawn(async move {
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
    /// Apply `fault` to every request signed for `region` (a region's
    /// outage: one moto answers every region, told apart by the SigV4
    /// credential scope), before operation and general faults.
    pub fn set_region_fault(&self, region: &str, fault: Fault) {
        self.shared
            .op_faults
            .lock()
            .unwrap()
            .insert(format!("@{region}"), fault);
    }

    /// Calls of `operation` signed for `region`.
    pub fn calls_in(&self, operation: &str, region: &str) -> u64 {
        self.calls(&format!("{operation}@{region}"))
    }

    pub fn set_operation_fault(&self, operation: &str, fault: Fault) {
        self.shared
            .op_faults
            .lock()
            .unwrap()
            .insert(operation.to_owned(), fault);
    }

    /// Forward everything again. Requests already black-holed stay so;
    /// held ones stay held until [`Proxy::release`].
    pub fn heal(&self) {
        self.shared.op_faults.lock().unwrap().clear();
        self.set_fault(Fault::None, 1);
    }

    /// Forward everything again, held requests included (the upstream
    /// resumes after a freeze).
    pub fn release(&self) {
        self.heal();
        self.shared.release.send_modify(|g| *g += 1);
    }

    /// Requests swallowed ([`Fault::BlackHole`]) or held ([`Fault::Hold`]) so far.
    pub fn held(&self) -> u64 {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// The access key ids the requests were signed with (from their SigV4
    /// `Authorization` header).
    pub fn access_keys(&self) -> Vec<String> {
        self.shared
            .access_keys
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
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

    /// When the requests to `path` arrived, in order (stubbed, faulted or
    /// forwarded alike).
    pub fn arrivals(&self, path: &str) -> Vec<Instant> {
        let arrivals = self.shared.arrivals.lock().unwrap();
        arrivals
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, at)| *at)
            .collect()
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
) -> Result<Answer, std::io::Error> {
    state
        .arrivals
        .lock()
        .unwrap()
        .push((req.uri().path().to_owned(), Instant::now()));
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
        return Ok(whole(
            Response::builder()
                .status(status)
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap_or_default(),
        ));
    }
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .map(str::to_owned);
    if let Some(key) = key {
        state.access_keys.lock().unwrap().insert(key);
    }
    // An AWS JSON call names its operation in `X-Amz-Target`; a
    // query-protocol form (STS, sidekey's `AssumeRole`) counts as "STS".
    let form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or(if form { "STS" } else { "unknown" })
        .to_owned();
    let region = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("none")
        .to_owned();
    let op_fault = {
        let faults = state.op_faults.lock().unwrap();
        faults
            .get(&format!("@{region}"))
            .or_else(|| faults.get(&op))
            .copied()
    };
    *state
        .calls
        .lock()
        .unwrap()
        .entry(format!("{op}@{region}"))
        .or_default() += 1;
    *state.calls.lock().unwrap().entry(op).or_default() += 1;
    let n = state.seen.fetch_add(1, Ordering::SeqCst) + 1;
    let (fault, every) = *state.fault.lock().unwrap();
    let fault = match op_fault {
        Some(fault) => fault,
        None if n.is_multiple_of(every) => fault,
        None => Fault::None,
    };
    // A spoiled answer counts once spoiled (only 2xx answers are).
    if !matches!(fault, Fault::None | Fault::Truncate | Fault::Garble) {
        state.faults.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Throttle => return Ok(error(400, "ThrottlingException", "Rate exceeded")),
        Fault::Answer(status, body) => {
            return Ok(whole(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap_or_default(),
            ))
        }
        Fault::Status(code) => return Ok(error(code, "InternalServiceError", "injected failure")),
        Fault::Reset => {
            // A failing service makes hyper drop the connection unanswered.
            return Err(std::io::Error::other("injected connection reset"));
        }
        Fault::Delay(d) => tokio::time::sleep(d).await,
        Fault::BlackHole => {
            state.held.fetch_add(1, Ordering::SeqCst);
            // Read the whole request, as a live peer would, then nothing.
            let _ = req.into_body().collect().await;
            std::future::pending::<()>().await;
            unreachable!("a black hole never answers");
        }
        Fault::Hold => {
            state.held.fetch_add(1, Ordering::SeqCst);
            let mut release = state.release.subscribe();
            release.borrow_and_update();
            let _ = release.changed().await;
        }
        Fault::None | Fault::Truncate | Fault::Garble => {}
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
    let Ok(resp) = client.request(fwd).await else {
        return Ok(error(502, "InternalServiceError", "upstream unreachable"));
    };
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let spoil = matches!(fault, Fault::Truncate | Fault::Garble) && parts.status.is_success();
    if !spoil {
        return Ok(whole(Response::from_parts(parts, Full::new(body))));
    }
    state.faults.fetch_add(1, Ordering::SeqCst);
    let half = body.slice(..body.len() / 2);
    // `Transfer-Encoding` went with the hop-by-hop headers.
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Ok(match fault {
        Fault::Truncate => Response::from_parts(
            parts,
            Cut {
                half: Some(half),
                whole: body.len() as u64,
            }
            .boxed(),
        ),
        _ => whole(Response::from_parts(parts, Full::new(half))),
    })
}

/// Drop the headers that are about moto's connection, not its answer, as a
/// proxy must: those `Connection` names, RFC 9110's list (section 7.6.1)
/// and RFC 2616's older one (`Proxy-Authenticate`, `Trailer`). moto closes every connection after
/// one answer (`Connection: close`); passed on, that would make the caller
/// open a connection per call, where AWS's endpoints keep theirs open and
/// the caller's pool reuses them. The body is forwarded whole, with its
/// length, so its `Transfer-Encoding` goes too.
fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    use hyper::header::{self, HeaderName};
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| name.trim().parse().ok())
        .collect();
    let fixed = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ];
    for name in listed.into_iter().chain(fixed) {
        headers.remove(name);
    }
}

/// A whole answer, boxed like a cut one.
fn whole(response: Response<Full<Bytes>>) -> Answer {
    response.map(|b| b.map_err(|never| match never {}).boxed())
}

/// A body that announces `whole` bytes, sends `half`, then fails, which
/// makes hyper drop the connection mid-body.
struct Cut {
    half: Option<Bytes>,
    whole: u64,
}

impl Body for Cut {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(match self.half.take() {
            Some(half) => Ok(Frame::data(half)),
            None => Err(std::io::Error::other("injected truncation")),
        }))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.whole)
    }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    let body = format!(r#"{{"__type":"{code}","message":"{message}"}}"#);
    whole(
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", code)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default(),
    )
}
