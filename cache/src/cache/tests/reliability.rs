//! Deadlines, stale budgets, refresh-what-is-read, bounds and restores,
//! against an upstream that is slow or never answers. On paused tokio time:
//! elapsed times are exact and no test waits for real.

use std::time::Duration;

use tokio::time::Instant as T;

use super::*;

use crate::testutil::Pace;
use crate::{RefreshReport, SecretRequest, DEFAULT_DEADLINE};

const MS: Duration = Duration::from_millis(1);

fn spawn_get(
    cache: &SecretCache<Scripted, ManualClock>,
    id: &str,
) -> tokio::task::JoinHandle<Result<Arc<Cached>, Error>> {
    let (cache, key) = (cache.clone(), Key::secret(id));
    tokio::spawn(async move { cache.get(&key).await })
}

#[tokio::test(start_paused = true)]
async fn a_hung_cold_read_times_out_at_the_deadline_for_every_waiter() {
    let (cache, fetch, _clock) = cache();
    fetch.set("k", "s3cr3t");
    fetch.pace(Pace::Hang);
    let t0 = T::now();
    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let c = cache.clone();
        tasks.spawn(async move { (c.get(&Key::secret("k")).await, T::now()) });
    }
    while let Some(r) = tasks.join_next().await {
        let (r, at) = r.unwrap();
        let err = r.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(!err.to_string().contains("s3cr3t"));
        assert_eq!(at - t0, DEFAULT_DEADLINE);
    }
    settle().await;
    assert!(
        cache.inner.lock().flights.is_empty(),
        "never left registered"
    );
    assert_eq!(fetch.calls(), 1);
    // Timeout is transient: the next read backs off instead of piling on.
    let err = cache.get(&Key::secret("k")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(fetch.calls(), 1);
    let m = cache.metrics();
    assert_eq!((m.upstream_errors, m.upstream_timeouts), (1, 1));
    assert_eq!(
        (m.upstream_throttled, m.upstream_5xx, m.upstream_denied),
        (0, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_refresh_serves_the_expired_value_after_stale_wait() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.pace(Pace::Hang);
    clock.advance(Duration::from_secs(301));
    let t0 = T::now();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(t0.elapsed(), cache.config().stale_wait);
    // The refresh has been slow for stale_wait already: no more waiting.
    let t1 = T::now();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(t1.elapsed(), Duration::ZERO);
    // At its deadline the refresh ends as a timeout and is unregistered;
    // reads keep getting the value at once while upstream backs off.
    tokio::time::sleep(DEFAULT_DEADLINE).await;
    assert!(cache.inner.lock().flights.is_empty());
    let t2 = T::now();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(t2.elapsed(), Duration::ZERO);
    assert_eq!(cache.metrics().stale, 3);
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_answering_within_stale_wait_is_served_fresh() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    fetch.pace(Pace::Slow(100 * MS));
    clock.advance(Duration::from_secs(301));
    let t0 = T::now();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(t0.elapsed(), 100 * MS);
    assert_eq!(cache.metrics().stale, 0);
    // A slow cold read still answers, as long as it is within the deadline.
    fetch.set("cold", "c");
    fetch.pace(Pace::Slow(1_900 * MS));
    assert_eq!(text(&cache.get(&Key::secret("cold")).await.unwrap()), "c");
}

#[tokio::test(start_paused = true)]
async fn refresh_due_returns_at_once_when_nothing_is_due() {
    let (cache, fetch, _clock) = cache();
    let t0 = T::now();
    assert_eq!(
        cache.refresh_due(Duration::from_secs(1)).await,
        RefreshReport::default()
    );
    fetch.set("k", "v");
    cache.get(&Key::secret("k")).await.unwrap();
    cache.get(&Key::secret("k")).await.unwrap();
    assert_eq!(
        cache.refresh_due(Duration::from_secs(1)).await,
        RefreshReport::default()
    );
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn refresh_due_holds_for_the_upstreams_healthy_latency_not_a_hung_reads_deadline() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    fetch.pace(Pace::Slow(20 * MS));
    cache.get(&k).await.unwrap(); // a healthy call: 20 ms
    fetch.pace(Pace::Hang);
    clock.advance(Duration::from_secs(250));
    cache.get(&k).await.unwrap(); // a hit in the window starts a refresh
    let t0 = T::now();
    let report = cache.refresh_due(Duration::from_secs(30)).await;
    assert_eq!(
        t0.elapsed(),
        80 * MS,
        "four times the healthy latency, not the 30 s budget nor the read's 2 s deadline"
    );
    assert_eq!(
        report,
        RefreshReport {
            started: 0,
            waited_for: 1,
            timed_out: 1,
            skipped: 0,
        }
    );
    // The next INVOKE, that read still hanging: already waited out once,
    // it is not waited for again.
    let t0 = T::now();
    let again = cache.refresh_due(Duration::from_secs(30)).await;
    assert_eq!(
        (t0.elapsed(), again.waited_for, again.skipped),
        (Duration::ZERO, 0, 1)
    );
    // That read times out at its deadline and backs off: nothing to hold
    // an INVOKE for meanwhile.
    tokio::time::sleep(DEFAULT_DEADLINE).await;
    settle().await;
    let t1 = T::now();
    assert_eq!(
        cache.refresh_due(Duration::from_secs(30)).await,
        RefreshReport::default()
    );
    assert_eq!(t1.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn refresh_due_never_waits_for_a_key_whose_last_attempt_timed_out() {
    // Issue 26: under a hung upstream every INVOKE was held, each hold
    // billed to the function.
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    fetch.pace(Pace::Hang);
    clock.advance(Duration::from_secs(250));
    let first = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!((first.started, first.timed_out), (1, 1));
    // The refresh runs to its deadline and fails as a timeout.
    tokio::time::sleep(DEFAULT_DEADLINE).await;
    settle().await;
    for _ in 0..6 {
        // Past the backoff (at most 60 s): the next attempt starts, and the
        // INVOKE does not wait for it.
        clock.advance(Duration::from_secs(61));
        let t0 = T::now();
        let report = cache.refresh_due(Duration::from_secs(1)).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        assert_eq!(
            (report.started, report.waited_for, report.skipped),
            (1, 0, 1)
        );
        tokio::time::sleep(DEFAULT_DEADLINE).await;
        settle().await;
    }
    // Healthy again: the next refresh is waited for, and lands.
    fetch.pace(Pace::Prompt);
    fetch.set("k", "v2");
    clock.advance(Duration::from_secs(61));
    let report = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!(report.started, 1);
    settle().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
}

#[tokio::test(start_paused = true)]
async fn a_healthy_15_ms_refresh_still_lands_before_the_invoke_returns() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    fetch.pace(Pace::Slow(15 * MS));
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    clock.advance(Duration::from_secs(250));
    let t0 = T::now();
    let report = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!(
        (report.started, report.waited_for, report.timed_out),
        (1, 1, 0)
    );
    assert_eq!(t0.elapsed(), 15 * MS);
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
}

#[tokio::test(start_paused = true)]
async fn refresh_due_holds_no_longer_than_its_budget() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    fetch.pace(Pace::Hang);
    clock.advance(Duration::from_secs(250));
    let t0 = T::now();
    let report = cache.refresh_due(30 * MS).await;
    assert_eq!(t0.elapsed(), 30 * MS, "below the latency's 50 ms floor");
    assert_eq!((report.started, report.timed_out), (1, 1));
}

#[tokio::test]
async fn entries_not_read_since_stored_are_refreshed_once_then_left_to_expire() {
    // 50 secrets read once, then only INVOKEs: each refreshed once (the
    // read that loaded it counts, so a value read again a TTL later is a
    // hit), then never again: nobody read the refreshed value.
    let (cache, fetch, clock) = cache();
    for i in 0..50 {
        let id = format!("s{i}");
        fetch.set(&id, "v");
        cache.get(&Key::secret(id)).await.unwrap();
    }
    let mut started = 0;
    for _ in 0..20 {
        clock.advance(Duration::from_secs(60));
        started += cache.refresh_due(Duration::from_secs(1)).await.started;
    }
    assert_eq!(started, 50);
    let calls = fetch.calls();
    assert!(calls <= 50 + 3, "in batches of 20: {calls}");
    // Prefetched (nobody waited for it), never read: never refreshed.
    fetch.set("p", "v");
    let report = cache.prefetch(&["p".to_string()]).await;
    assert!(report.failed.is_empty());
    let calls = fetch.calls();
    for _ in 0..10 {
        clock.advance(Duration::from_secs(60));
        assert_eq!(cache.refresh_due(Duration::from_secs(1)).await.started, 0);
    }
    assert_eq!(fetch.calls(), calls);
    // Read again after being stored: refreshed at the next INVOKE, once.
    let k = Key::secret("s7");
    cache.get(&k).await.unwrap(); // expired: read upstream, stored, read
    clock.advance(Duration::from_secs(250));
    assert_eq!(cache.refresh_due(Duration::from_secs(1)).await.started, 1);
    assert_eq!(cache.refresh_due(Duration::from_secs(1)).await.started, 0);
    assert_eq!(fetch.calls(), calls + 2);
}

#[tokio::test]
async fn pinned_versions_are_never_refreshed_ahead() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::Secret(SecretRequest {
        id: "k".into(),
        version_id: Some("v-2".into()),
        version_stage: None,
        role: None,
    });
    assert!(k.is_pinned() && !Key::secret("k").is_pinned());
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    clock.advance(Duration::from_secs(250));
    cache.get(&k).await.unwrap(); // a hit in the refresh window
    settle().await;
    assert_eq!(cache.refresh_due(Duration::from_secs(1)).await.started, 0);
    assert_eq!(fetch.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn upstream_concurrency_is_bounded() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_upstream: 2,
        ..CacheConfig::default()
    });
    fetch.pace(Pace::Slow(100 * MS));
    let t0 = T::now();
    let mut reads = JoinSet::new();
    for i in 0..10 {
        let id = format!("s{i}");
        fetch.set(&id, "v");
        let c = cache.clone();
        reads.spawn(async move { c.get(&Key::secret(id)).await });
    }
    while let Some(r) = reads.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        fetch.most_active.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    assert_eq!(t0.elapsed(), 500 * MS, "five rounds of two");
}

#[tokio::test(start_paused = true)]
async fn waiting_for_an_upstream_slot_counts_against_the_deadline() {
    // The one slot is held by a hung parameter read with a long deadline.
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_upstream: 1,
        parameter_deadline: Duration::from_secs(10),
        ..CacheConfig::default()
    });
    fetch.set("a", "v");
    fetch.set("b", "v");
    fetch.pace(Pace::Hang);
    let a = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&Key::parameter("a", true)).await }
    });
    settle().await;
    let t0 = T::now();
    let b = cache.get(&Key::secret("b")).await.unwrap_err();
    assert_eq!(b.kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), DEFAULT_DEADLINE);
    assert_eq!(fetch.calls(), 1, "b never reached upstream");
    assert_eq!(a.await.unwrap().unwrap_err().kind(), ErrorKind::Timeout);
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    let m = cache.metrics();
    assert_eq!((m.upstream_calls, m.upstream_errors), (1, 1));
}

#[tokio::test]
async fn reads_of_missing_ids_never_evict_values() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_entries: 3,
        ..CacheConfig::default()
    });
    for id in ["a", "b", "c"] {
        fetch.set(id, id);
        cache.get(&Key::secret(id)).await.unwrap();
    }
    for i in 0..1_000 {
        let err = cache.get(&Key::secret(format!("nope{i}"))).await;
        assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    }
    for id in ["a", "b", "c"] {
        assert!(cache.contains(&Key::secret(id)), "{id} survived the flood");
    }
    let m = cache.metrics();
    assert_eq!((m.entries, m.evictions), (3, 0));
    assert!(cache.inner.lock().failures.len() <= super::slot::FAILURE_ENTRIES);
}

#[tokio::test]
async fn caching_disabled_prefetches_and_refreshes_nothing() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        secret_ttl: Duration::ZERO,
        ..CacheConfig::default()
    });
    fetch.set("k", "v");
    let report = cache.prefetch(&["k".to_string()]).await;
    assert!(report.loaded.is_empty() && report.failed.is_empty());
    assert_eq!((fetch.batch_calls(), fetch.calls()), (0, 0), "no call made");
    cache.get(&Key::secret("k")).await.unwrap();
    cache.get(&Key::secret("k")).await.unwrap();
    assert_eq!(
        cache.refresh_due(Duration::from_secs(1)).await,
        RefreshReport::default()
    );
    assert_eq!(fetch.calls(), 2);
    assert_eq!(cache.metrics().entries, 0);
}

#[tokio::test(start_paused = true)]
async fn a_hung_batch_falls_back_to_single_reads_at_its_deadline() {
    let (cache, fetch, _clock) = cache_with(batching());
    let ids: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
    for id in &ids {
        fetch.set(id, "v");
    }
    fetch.batch_pace(Pace::Hang);
    let t0 = T::now();
    let report = cache.prefetch(&ids).await;
    assert_eq!(report.loaded.len(), 3);
    assert_eq!(t0.elapsed(), DEFAULT_DEADLINE);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 3));
    assert!(cache.inner.lock().flights.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_prefetch_against_a_hung_upstream_ends() {
    let (cache, fetch, _clock) = cache_with(batching());
    fetch.pace(Pace::Hang);
    let ids: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
    let t0 = T::now();
    let report = cache.prefetch(&ids).await;
    assert_eq!(
        t0.elapsed(),
        2 * DEFAULT_DEADLINE,
        "the batch, then single reads"
    );
    assert_eq!(report.failed.len(), 3);
    assert!(report
        .failed
        .iter()
        .all(|(_, e)| e.kind() == ErrorKind::Timeout));
    settle().await;
    assert!(cache.inner.lock().flights.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restore_makes_the_next_read_go_upstream() {
    let (cache, fetch, _clock) = cache();
    let wall = ManualClock::new();
    cache.detect_restores(wall.clone());
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    assert!(!cache.check_restore());
    // Three hours on disk: the wall clock moved, the monotonic one did not.
    wall.advance(Duration::from_secs(3 * 3600));
    assert!(cache.check_restore());
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_read_right_after_a_restore_is_not_served_from_before_it() {
    // Issue 26: a restore was noticed only on the next Lambda event; a read
    // before it (an afterRestore hook) got the snapshot's value as fresh,
    // even from the hot path's memo.
    let (cache, fetch, _clock) = cache();
    let wall = ManualClock::new();
    cache.detect_restores(wall.clone());
    fetch.set("k", "v1");
    let k = Key::secret("k");
    for _ in 0..3 {
        assert_eq!(body_text(&cache.get_body(&k).await.unwrap()), "v1");
    }
    fetch.set("k", "v2");
    wall.advance(Duration::from_secs(3 * 3600));
    // No event in between: the very next read finds the restore.
    assert_eq!(body_text(&cache.get_body(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2);
    assert!(!cache.check_restore(), "told once");
}

#[tokio::test(start_paused = true)]
async fn after_expire_all_the_old_value_is_stale_for_max_stale_from_now() {
    let max_stale = Duration::from_secs(900);
    let (cache, fetch, clock) = cache_with(CacheConfig {
        max_stale: Some(max_stale),
        ..CacheConfig::default()
    });
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    cache.expire_all();
    fetch.pace(Pace::Hang);
    let t0 = T::now();
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(t0.elapsed(), cache.config().stale_wait);
    tokio::time::sleep(DEFAULT_DEADLINE).await;
    // Past max_stale from the restore: the error, not the old value.
    clock.advance(max_stale + Duration::from_secs(1));
    cache.expire_all(); // also forgets the backoff of the timed-out refresh
    clock.advance(max_stale + Duration::from_secs(1));
    assert_eq!(cache.get(&k).await.unwrap_err().kind(), ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn expire_all_forgets_markers_and_stops_reads_in_flight() {
    let (cache, fetch, _clock) = cache();
    assert_eq!(
        cache.get(&Key::secret("m")).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    fetch.set("m", "now here");
    fetch.set("c", "v");
    fetch.pace(Pace::Hang);
    let hung = spawn_get(&cache, "c");
    settle().await;
    cache.expire_all();
    fetch.pace(Pace::Prompt);
    assert_eq!(
        text(&cache.get(&Key::secret("m")).await.unwrap()),
        "now here"
    );
    assert_eq!(text(&cache.get(&Key::secret("c")).await.unwrap()), "v");
    // The detached read was stopped: its reader is answered at once.
    let t0 = T::now();
    assert!(hung.await.unwrap().unwrap_err().is_transient());
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert!(cache.contains(&Key::secret("c")));
    assert_eq!(fetch.calls(), 4);
}
