//! Graceful drain: when the server stops, every open connection finishes
//! the request it is serving, answers it, and closes; idle kept-alive
//! connections close at once.
//!
//! Why not hyper-util's `GracefulShutdown`: its watcher polls a
//! `tokio::sync::watch` receiver on every poll of every connection, and a
//! waiting `Notified` takes one of eight mutexes shared by all the
//! connections each time it is polled. With two workers, that mutex's cache
//! line goes from one core to the other on nearly every request, which the
//! floor server does not pay (bench/REPORT.md, issue 14). Here a connection
//! hands its waker to the shared [`Notify`] once, on its first poll, and
//! after that reads one flag per poll; the line holding it is only ever
//! written once, when the drain starts, so both cores keep a copy.
//!
//! Knowing when every connection has closed is left to the caller: the
//! server's connection permits are all back then.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hyper_util::server::graceful::GracefulConnection;
use tokio::sync::Notify;

/// The drain signal all of the server's connections watch.
#[derive(Clone, Default)]
pub(super) struct Drain {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Set once, when the drain starts; never cleared.
    draining: AtomicBool,
    /// Wakes the connections waiting for their next request when it starts.
    wake: Notify,
}

impl Drain {
    /// Tell every connection to finish its request and close, and any
    /// connection watched from now on to close as soon as it is polled
    /// (having answered at most a request it had already read).
    pub(super) fn start(&self) {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.wake.notify_waiters();
    }

    /// Drive `conn` to its end, shutting it down gracefully once the drain
    /// starts.
    pub(super) async fn watch<C: GracefulConnection>(&self, conn: C) -> Result<(), C::Error> {
        let shared = &*self.shared;
        let mut conn = pin!(conn);
        // Created before the flag is first read: a `Notified` receives every
        // `notify_waiters` from its creation on, so a drain that starts
        // between the read and the first poll still wakes this task.
        let mut woken = pin!(shared.wake.notified());
        let mut registered = false;
        let mut shut = false;
        poll_fn(|cx| {
            if !shut {
                // The first poll leaves this task's waker with the `Notify`;
                // the task keeps that waker for its life, so later polls need
                // only the flag.
                let notified = !registered && woken.as_mut().poll(cx).is_ready();
                registered = true;
                if notified || shared.draining.load(Ordering::Acquire) {
                    conn.as_mut().graceful_shutdown();
                    shut = true;
                }
            }
            conn.as_mut().poll(cx)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::Semaphore;
    use tokio::task::JoinHandle;

    use super::*;

    /// Lets requests through one permit each, and counts those arrived.
    struct Gate {
        open: Semaphore,
        arrived: Semaphore,
    }

    impl Gate {
        fn open(permits: usize) -> Arc<Gate> {
            Arc::new(Gate {
                open: Semaphore::new(permits),
                arrived: Semaphore::new(0),
            })
        }
    }

    /// A connection over an in-memory pipe whose requests are answered
    /// "ok" as `gate` lets them through, watched by `drain`.
    fn connection(drain: &Drain, gate: Arc<Gate>) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(4096);
        let service = service_fn(move |_req| {
            let gate = Arc::clone(&gate);
            async move {
                gate.arrived.add_permits(1);
                gate.open.acquire().await.unwrap().forget();
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(server), service);
        let drain = drain.clone();
        let task = tokio::spawn(async move {
            let _ = drain.watch(conn).await;
        });
        (client, task)
    }

    async fn send(client: &mut DuplexStream) {
        let head = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        client.write_all(head).await.unwrap();
    }

    /// Everything the server sends until it closes the connection.
    async fn rest(client: &mut DuplexStream) -> String {
        let mut out = Vec::new();
        let read = client.read_to_end(&mut out);
        let closed = tokio::time::timeout(Duration::from_secs(5), read).await;
        assert!(closed.is_ok(), "the connection was not closed");
        String::from_utf8(out).unwrap()
    }

    async fn ends(task: JoinHandle<()>) -> bool {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_closes_when_the_drain_starts() {
        let drain = Drain::default();
        let gate = Gate::open(1);
        let (mut client, task) = connection(&drain, gate);
        send(&mut client).await;
        let mut buf = [0u8; 512];
        let n = client.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("ok"));
        // Kept alive, waiting for a next request that does not come.
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        drain.start();
        assert!(ends(task).await, "the idle connection was not closed");
        assert_eq!(rest(&mut client).await, "");
    }

    #[tokio::test]
    async fn a_request_in_flight_is_answered_before_the_connection_closes() {
        let drain = Drain::default();
        let gate = Gate::open(0);
        let (mut client, task) = connection(&drain, Arc::clone(&gate));
        send(&mut client).await;
        // The request is in the service, held by the gate.
        gate.arrived.acquire().await.unwrap().forget();
        drain.start();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!task.is_finished(), "closed with a request in flight");
        gate.open.add_permits(1);
        let answer = rest(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
        assert!(ends(task).await);
    }

    #[tokio::test]
    async fn a_connection_watched_after_the_drain_started_closes() {
        let drain = Drain::default();
        drain.start();
        let gate = Gate::open(1);
        let (mut client, task) = connection(&drain, gate);
        send(&mut client).await;
        assert!(ends(task).await, "kept open after the drain started");
        // Closed, having answered at most the request it had read.
        let answer = rest(&mut client).await;
        assert!(answer.is_empty() || answer.ends_with("ok"), "{answer}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_busy_connection_on_either_worker_sees_the_drain() {
        let drain = Drain::default();
        let gate = Gate::open(usize::MAX >> 4);
        let mut clients = Vec::new();
        for _ in 0..32 {
            let (mut client, task) = connection(&drain, Arc::clone(&gate));
            // Each has answered a request, so each has been polled and
            // registered its waker before the drain starts.
            send(&mut client).await;
            let mut buf = [0u8; 512];
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0);
            clients.push((client, task));
        }
        drain.start();
        for (_client, task) in clients {
            assert!(ends(task).await, "a connection missed the drain");
        }
    }
}
