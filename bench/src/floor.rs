//! The floor: the cheapest HTTP/1.1 server hyper makes, answering every
//! request with the same fixed JSON body. It runs in its own process on the
//! same runtime shape as sidekey (a two-worker tokio runtime), so sidekey's
//! figures can be read as ratios of what the machine and client allow.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Serve `body` on `127.0.0.1:port` until killed.
pub fn serve(port: u16, body: Bytes) -> std::io::Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                stream.set_nodelay(true)?;
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        let response = http::Response::builder()
                            .header(http::header::CONTENT_TYPE, "application/json")
                            .body(Full::new(body.clone()))
                            .expect("a valid response");
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
