//! The loopback HTTP server: accept loop, connection limits, graceful drain.
//!
//! Takes its listener and its shutdown signal as arguments (as mini-redis's
//! `server::run` does), so tests and the lifecycle drive it the same way.
//!
//! It must outlive whatever a misbehaving caller or the sandbox does to it:
//!
//! * **accept errors** (EMFILE when the function leaks sockets) back off,
//!   doubling from 10 ms to 1 s, instead of spinning on a core the function
//!   needs;
//! * **over the client limit**, a connection is answered `429` by one of a
//!   few refusal slots; when those are taken too it is closed at once, so a
//!   flood costs a bounded number of tasks, not one per connection. A
//!   `GET /ping` over the limit is still answered `200 healthy`: a health
//!   check must not fail because the function is busy;
//! * **a client that sends and never reads** (pipelining into a full socket)
//!   is cut off once a write has made no progress for [`WRITE_STALL`], so
//!   it cannot hold a connection slot forever.
//!
//! There is no header-read timeout, on purpose (issue 26). hyper arms it
//! whenever a connection waits for its next request head, so it is an idle
//! timeout too, and Lambda freezes the sandbox between invocations: a
//! function's pooled keep-alive connection idle past it was closed by the
//! timer firing at the thaw, just as the function sent its first request
//! on it (a reset). Any finite timeout races that way for a longer freeze.
//! What it guarded against, a client dribbling its headers, can only be
//! the function's own code (the listener is bound to loopback inside the
//! sandbox), the connection limit still bounds what such a client holds,
//! and the timer cost about 1 % of the server's CPU per request.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::Full;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sidekey_cache::Fetch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

use crate::api::Api;
use crate::error::ApiError;
use crate::sdk;

mod drain;
use drain::Drain;

/// How long a write to a client may make no progress before the connection
/// is dropped (the client is not reading its answers).
const WRITE_STALL: Duration = Duration::from_secs(5);

/// Connections over the limit answered `429` at once; past these, closed.
const REFUSAL_SLOTS: usize = 16;

/// First and longest pause after a failed `accept`.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// Serve `api` on `listener` until `shutdown` resolves, then stop accepting
/// and let in-flight requests finish for at most the duration it yields.
pub(crate) async fn serve<F: Fetch>(
    listener: TcpListener,
    api: Arc<Api<F>>,
    max_connections: usize,
    shutdown: impl Future<Output = Duration>,
) {
    let drain = Drain::default();
    let permits = Arc::new(Semaphore::new(max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSAL_SLOTS));
    let mut backoff = ACCEPT_BACKOFF.0;
    tokio::pin!(shutdown);
    let budget = loop {
        let accepted = tokio::select! {
            budget = &mut shutdown => break budget,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF.0;
                accepted
            }
            Err(e) => {
                tracing::warn!(error = %e, pause = ?backoff, "accept failed");
                tokio::select! {
                    budget = &mut shutdown => break budget,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            // Bound to 127.0.0.1, so this cannot happen; refuse anyway.
            continue;
        }
        let _ = stream.set_nodelay(true);
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let conn = serve_connection(stream, Arc::clone(&api));
                let drain = drain.clone();
                tokio::spawn(async move {
                    let _ = drain.watch(conn).await;
                    drop(permit);
                });
            }
            Err(_) => {
                if let Ok(slot) = Arc::clone(&refusals).try_acquire_owned() {
                    tokio::spawn(refuse(stream, slot));
                }
                // else: dropped here, closing the connection.
            }
        }
    };
    drop(listener);
    drain.start();
    // Every connection holds a permit until it has closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(budget, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {budget:?}");
    }
}

/// One client connection, HTTP/1.1 with keep-alive, guarded against stalls.
fn serve_connection<F: Fetch>(
    stream: TcpStream,
    api: Arc<Api<F>>,
) -> impl hyper_util::server::graceful::GracefulConnection {
    let mut stream = TimeoutStream::new(stream);
    stream.set_write_timeout(Some(WRITE_STALL));
    // Each request's future needs an owned handle on the API. Cloning the
    // shared `Arc` per request would pass its count's cache line between
    // the workers on every request; a handle of the connection's own is
    // cloned instead, its count touched only by the worker running it.
    let api = Arc::new(api);
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        // A GET is routed here, and the request dropped before the answer
        // is awaited: see `Api::route`. An SDK request needs its body.
        let call = if sdk::is_sdk(&req) {
            Call::Sdk(req)
        } else {
            let routed = api.route(&req);
            if let Some(response) = api.answer_now(&routed) {
                return Answer::Ready(ready(response));
            }
            Call::Api(routed)
        };
        let api = Arc::clone(&api);
        // Boxed: hyper keeps the service's future in the connection, and
        // this one is large; the hot path's answer above is not moved.
        Answer::Later(Box::pin(async move {
            match call {
                Call::Api(routed) => api.answer(routed).await,
                Call::Sdk(req) => api.answer_sdk(req).await,
            }
        }))
    });
    // No timer: no header-read timeout (see the module's doc).
    http1::Builder::new().serve_connection(TokioIo::new(Box::pin(stream)), service)
}

/// A request's answer, as the service hands it to hyper: at hand
/// ([`Api::answer_now`]), or still to be worked out.
enum Answer<F> {
    /// The hot path's.
    Ready(Ready<Response<Full<Bytes>>>),
    /// Everything but the hot path.
    Later(Pin<Box<F>>),
}

impl<F: Future<Output = Response<Full<Bytes>>>> Future for Answer<F> {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Unpin: `Ready` is, and the other future is boxed.
        match self.get_mut() {
            Answer::Ready(ready) => Pin::new(ready).poll(cx).map(Ok),
            Answer::Later(later) => later.as_mut().poll(cx).map(Ok),
        }
    }
}

/// What a request is answered by.
enum Call {
    /// The GET API, the request already routed (and dropped).
    Api(crate::api::Routed),
    /// The SDK-compatible endpoint, with the whole request.
    Sdk(http::Request<hyper::body::Incoming>),
}

/// Answer a connection over the limit and close it: `200 healthy` to a
/// `GET /ping`, `429` to anything else.
async fn refuse(mut stream: TcpStream, slot: OwnedSemaphorePermit) {
    // Read what the client sent first: to see whether it is a ping, and so
    // that closing does not reset the connection before it reads the answer.
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
    let head = match read {
        Ok(Ok(n)) => &buf[..n],
        _ => &[][..],
    };
    let (status, content_type, body) = if is_ping(head) {
        ("200 OK", "text/plain", "healthy".to_owned())
    } else {
        (
            "429 Too Many Requests",
            "application/json",
            ApiError::TooManyConnections.body(),
        )
    };
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    drop(slot);
}

/// Whether a request head is `GET /ping` (with or without a query or a
/// trailing slash).
fn is_ping(head: &[u8]) -> bool {
    let line = head.split(|&b| b == b'\r' || b == b'\n').next();
    let mut parts = line.unwrap_or_default().split(|&b| b == b' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    method == b"GET" && matches!(path, b"/ping" | b"/ping/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_are_recognised_from_the_request_line() {
        assert!(is_ping(b"GET /ping HTTP/1.1\r\nhost: x\r\n\r\n"));
        assert!(is_ping(b"GET /ping/?a=b HTTP/1.1\r\n"));
        assert!(!is_ping(b"POST /ping HTTP/1.1\r\n"));
        assert!(!is_ping(b"GET /pingx HTTP/1.1\r\n"));
        assert!(!is_ping(
            b"GET /secretsmanager/get?secretId=ping HTTP/1.1\r\n"
        ));
        assert!(!is_ping(b""));
    }
}
