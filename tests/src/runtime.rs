//! A function runtime that does nothing: it takes each invocation from the
//! simulator's Runtime API and answers `{}` after 20 ms, reading no secret. With
//! it, an INVOKE costs only what the extension adds (its refresh), which is
//! what the INVOKE-hold and idle-refresh tests measure.

use std::net::SocketAddr;
use std::time::Duration;

/// How long the null runtime "works" on an invocation before answering.
pub const RUNTIME_WORK_MS: u64 = 20;

/// A running null runtime. Stops when dropped.
pub struct NullRuntime {
    task: tokio::task::JoinHandle<()>,
}

impl NullRuntime {
    /// Poll the Runtime API at `api` (the simulator's address) for events.
    pub fn start(api: SocketAddr) -> NullRuntime {
        let base = format!("http://{api}/2018-06-01/runtime/invocation");
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            loop {
                let next = client.get(format!("{base}/next")).send().await;
                let id = next.ok().and_then(|r| {
                    r.headers()
                        .get("lambda-runtime-aws-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                });
                let Some(id) = id else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                // A few milliseconds of "work" before answering, as any
                // function has: an extension that is done at once then
                // polls `/next` before the answer, away from the
                // lambda-simulator 0.2.0 race in which a poll that crosses
                // the runtime's answer is never counted and the next
                // invocation is never dispatched (see `Lambda::invoke_timed`).
                tokio::time::sleep(Duration::from_millis(RUNTIME_WORK_MS)).await;
                let _ = client
                    .post(format!("{base}/{id}/response"))
                    .body("{}")
                    .send()
                    .await;
            }
        });
        NullRuntime { task }
    }
}

impl Drop for NullRuntime {
    fn drop(&mut self) {
        self.task.abort();
    }
}
