//! Work on sidekey's own timers, for an environment Lambda never freezes
//! (Lambda Managed Instances).
//!
//! On-demand, an environment runs only while an invocation does, and the
//! INVOKE event is when sidekey refreshes what is due and writes its
//! metrics. Under Managed Instances there is no INVOKE for extensions and
//! the environment runs all along, many invocations at once: a value read
//! once and not again inside its refresh window would expire and make the
//! next read wait on the upstream. Here a timer wakes when the next value
//! comes due ([`SecretCache::next_due`]) and starts its refresh
//! ([`SecretCache::start_due`]): the same values (read since stored), the
//! same jittered windows, backoff and batches as at an INVOKE.
//!
//! Each loop runs in a task of its own under a supervisor: a loop that
//! panicked is started again a second later, and the extension, whose
//! crash marks the whole environment unhealthy, keeps serving.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sidekey_cache::{Fetch, SecretCache};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::emf::{Emf, INTERVAL};

/// Longest the refresh timer sleeps without looking again. New values land
/// while it sleeps; none comes due sooner than the cache's shortest
/// refresh window after it lands, which bounds the sleep further.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Shortest sleep: nothing is refreshed twice within it, and a clock that
/// misbehaves cannot spin the loop.
const MIN_SLEEP: Duration = Duration::from_millis(10);

/// How long a panicked loop waits before it starts again.
const RESTART_AFTER: Duration = Duration::from_secs(1);

/// The timer loops, stopped together at SHUTDOWN.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    /// Start the refresh timer, and the metrics timer if `emf` is set.
    pub fn start<F: Fetch>(cache: &SecretCache<F>, emf: Option<Arc<Emf>>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let cache_for_refresh = cache.clone();
        tasks.push(supervise("refresh timer", stopped.clone(), move |stop| {
            refresh_on_timer(cache_for_refresh.clone(), stop)
        }));
        if let Some(emf) = emf {
            let cache = cache.clone();
            tasks.push(supervise("metrics timer", stopped, move |stop| {
                metrics_on_timer(cache.clone(), Arc::clone(&emf), stop)
            }));
        }
        Self { stop, tasks }
    }

    /// Stop every loop and wait for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Run the loop `make` builds until `stop`, building it again whenever it
/// panics.
fn supervise<Fut>(
    name: &'static str,
    mut stop: watch::Receiver<bool>,
    make: impl Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
) -> JoinHandle<()>
where
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let run = tokio::spawn(make(stop.clone())).await;
            match run {
                Err(e) if e.is_panic() && !*stop.borrow() => {
                    tracing::error!(loop_name = name, "background loop panicked; restarting");
                    tokio::select! {
                        _ = tokio::time::sleep(RESTART_AFTER) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
                _ => return,
            }
        }
    })
}

/// Sleep until the next value comes due, start its refresh, again.
async fn refresh_on_timer<F: Fetch>(cache: SecretCache<F>, mut stop: watch::Receiver<bool>) {
    let Some(window) = cache.config().earliest_refresh() else {
        return; // nothing is cached: nothing to refresh
    };
    let longest = window.clamp(MIN_SLEEP, MAX_SLEEP);
    loop {
        let sleep = match cache.next_due() {
            Some(due) => due.saturating_duration_since(Instant::now()),
            None => longest,
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep.clamp(MIN_SLEEP, longest)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let started = cache.start_due();
        if started > 0 {
            tracing::debug!(started, "timer refresh");
        }
    }
}

/// Write the metrics line once a minute (when anything changed).
async fn metrics_on_timer<F: Fetch>(
    cache: SecretCache<F>,
    emf: Arc<Emf>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        emf.tick(cache.metrics());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicked_loop_starts_again_and_all_stop_together() {
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&runs);
        let task = supervise("test", stopped, move |mut stop| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("loop {n} fails");
                }
                let _ = stop.wait_for(|s| *s).await;
            }
        });
        tokio::time::sleep(RESTART_AFTER * 3).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two panics, two restarts");
        let _ = stop.send(true);
        task.await.unwrap();
    }
}
