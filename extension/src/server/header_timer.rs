//! The clock behind hyper's header-read timeout: one tokio timer per
//! connection, moved lazily.
//!
//! hyper arms its header timeout at the start of every request head and
//! drops it once the head is parsed. With hyper-util's `TokioTimer` that is
//! a new tokio `Sleep` per request: a clone of the runtime handle (an atomic
//! shared by every worker), a registration in the timer wheel and a
//! deregistration under the driver's lock. On a keep-alive connection
//! answered from the cache, that was about 1 µs of the 10 µs a request
//! costs at 8 and 64 connections (bench/REPORT.md, issue 14).
//!
//! Here each connection keeps one tokio `Sleep`. Arming the timeout only
//! records the wanted deadline; the `Sleep` is moved when it fires early
//! (the deadline was pushed out since: it is reset to the new one, once per
//! timeout period at most) or when a deadline sooner than its own is
//! wanted. A timeout still fires when the wanted deadline passes, as with
//! `TokioTimer`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

/// A [`hyper::rt::Timer`] for one connection's header-read timeout.
#[derive(Clone, Default)]
pub(crate) struct HeaderTimer(Arc<Mutex<State>>);

#[derive(Default)]
struct State {
    /// The deadline hyper last armed.
    wanted: Option<Instant>,
    /// The connection's one tokio timer, made on first wait.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HeaderTimer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing in the critical sections can panic halfway: the state
        // stays whole even if a holder panicked.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl hyper::rt::Timer for HeaderTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.state().wanted = Some(deadline);
        Box::pin(HeaderSleep(self.clone()))
    }

    /// tokio's clock, which the deadlines are compared against (the same
    /// as the system's monotonic clock outside tests).
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The future hyper polls while it waits for a head: ready once the
/// connection's wanted deadline has passed.
struct HeaderSleep(HeaderTimer);

impl hyper::rt::Sleep for HeaderSleep {}

impl Future for HeaderSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.0.state();
        let State { wanted, sleep } = &mut *state;
        let Some(wanted) = wanted.map(tokio::time::Instant::from_std) else {
            return Poll::Pending; // never armed: hyper always arms first
        };
        let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(wanted)));
        if wanted < sleep.deadline() {
            sleep.as_mut().reset(wanted);
        }
        loop {
            ready!(sleep.as_mut().poll(cx));
            if sleep.deadline() >= wanted {
                return Poll::Ready(());
            }
            // Fired at a deadline armed before this one: move it on.
            sleep.as_mut().reset(wanted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    use hyper::rt::Timer;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    const TIMEOUT: Duration = Duration::from_secs(10);

    /// One hyper connection over an in-memory pipe, with this timer as its
    /// header timeout; the client's end is returned.
    fn connection() -> DuplexStream {
        let (client, server) = tokio::io::duplex(4096);
        let service = service_fn(|_req| async {
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(
                bytes::Bytes::from_static(b"ok"),
            )))
        });
        tokio::spawn(
            http1::Builder::new()
                .timer(HeaderTimer::default())
                .header_read_timeout(TIMEOUT)
                .serve_connection(TokioIo::new(server), service),
        );
        client
    }

    /// Send one request and read its whole answer (it ends in "ok").
    async fn round_trip(client: &mut DuplexStream) {
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"ok") {
            let mut buf = [0u8; 256];
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before the answer");
            answer.extend_from_slice(&buf[..n]);
        }
    }

    /// Whether the server has closed the connection by now (after
    /// whatever it sent last, such as a 408).
    async fn closed(client: &mut DuplexStream) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_millis(1), client.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_sent_too_slowly_is_cut_off_at_the_timeout() {
        let mut client = connection();
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(TIMEOUT - Duration::from_millis(100)).await;
        assert!(!closed(&mut client).await, "cut off before the timeout");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(closed(&mut client).await, "still open after the timeout");
    }

    #[tokio::test(start_paused = true)]
    async fn each_request_gets_the_whole_timeout_on_a_kept_alive_connection() {
        let mut client = connection();
        // Requests 6 s apart: 30 s in all, each within its own 10 s.
        for _ in 0..5 {
            round_trip(&mut client).await;
            tokio::time::sleep(Duration::from_secs(6)).await;
        }
        round_trip(&mut client).await;
        // Idle past the timeout after the last one: cut off.
        tokio::time::sleep(TIMEOUT + Duration::from_millis(100)).await;
        assert!(closed(&mut client).await, "an idle connection stayed open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_sooner_deadline_moves_the_timer_back() {
        let timer = HeaderTimer::default();
        let start = tokio::time::Instant::now();
        // Make the connection's timer at 60 s, then ask for 1 s.
        let first = timer.sleep(Duration::from_secs(60));
        let _ = poll_once(first).await;
        timer.sleep(Duration::from_secs(1)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(2));
    }

    /// Poll a future once, so that it registers its timer.
    async fn poll_once(mut f: Pin<Box<dyn hyper::rt::Sleep>>) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await
    }
}
