//! A function runtime that does nothing: it takes each invocation from the
//! simulator's Runtime API and answers `{}` at once, reading no secret. With
//! it, an INVOKE costs only what the extension adds (its refresh), which is
//! what the INVOKE-hold and idle-refresh tests measure.

use std::net::SocketAddr;
use std::time::Duration;

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
