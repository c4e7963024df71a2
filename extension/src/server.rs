//! The loopback HTTP server: accept loop, connection limit, graceful drain.
//!
//! Takes its listener and its shutdown signal as arguments (as mini-redis's
//! `server::run` does), so tests and the lifecycle drive it the same way.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use sidekey_cache::Fetch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::api::Api;
use crate::ApiError;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `api` on `listener` until `shutdown` resolves, then stop accepting
/// and let in-flight requests finish for at most the duration it yields.
pub async fn serve<F: Fetch>(
    listener: TcpListener,
    api: Arc<Api<F>>,
    max_connections: usize,
    shutdown: impl Future<Output = Duration>,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(max_connections));
    tokio::pin!(shutdown);
    let drain = loop {
        tokio::select! {
            budget = &mut shutdown => break budget,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if !peer.ip().is_loopback() {
                    // Bound to 127.0.0.1, so this cannot happen; refuse anyway.
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tokio::spawn(refuse(stream));
                    continue;
                };
                let api = Arc::clone(&api);
                let service = service_fn(move |req| {
                    let api = Arc::clone(&api);
                    async move { Ok::<_, Infallible>(api.handle(&req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
        }
    };
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish within {drain:?}");
    }
}

/// Answer a connection over the limit with 429 and close it.
async fn refuse(mut stream: TcpStream) {
    let body = ApiError::TooManyConnections.body();
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    // Read what the client sent first, so closing does not reset the
    // connection before it reads the answer.
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
