//! Clock-driven unit tests of the cache policy, over a scripted fetcher.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::testutil::ManualClock;
use crate::testutil::Scripted;
use crate::{CacheConfig, ErrorKind, Key, SecretRequest};
use tokio::task::JoinSet;

mod reliability;

const TTL: Duration = Duration::from_secs(300);

fn cache_with(config: CacheConfig) -> (SecretCache<Scripted, ManualClock>, Scripted, ManualClock) {
    let fetch = Scripted::new();
    let clock = ManualClock::new();
    let cache = SecretCache::with_clock(fetch.clone(), config, clock.clone());
    (cache, fetch, clock)
}

fn cache() -> (SecretCache<Scripted, ManualClock>, Scripted, ManualClock) {
    cache_with(CacheConfig::default())
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn text(v: &Arc<Cached>) -> String {
    v.text().unwrap().to_string()
}

#[tokio::test]
async fn hundred_concurrent_cold_reads_make_one_call() {
    let (fetch, gate) = Scripted::new().gated();
    fetch.set("k", "v1");
    let cache = SecretCache::with_clock(fetch.clone(), CacheConfig::default(), ManualClock::new());
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let c = cache.clone();
        tasks.spawn(async move { c.get(&Key::secret("k")).await });
    }
    settle().await;
    gate.add_permits(1000);
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        assert_eq!(text(&r.unwrap().unwrap()), "v1");
        ok += 1;
    }
    assert_eq!(ok, 100);
    assert_eq!(fetch.calls(), 1);
    let m = cache.metrics();
    assert_eq!(m.upstream_calls, 1);
    assert_eq!(m.misses, 100);
}

#[tokio::test]
async fn concurrent_callers_share_one_error() {
    let (fetch, gate) = Scripted::new().gated();
    let cache = SecretCache::with_clock(fetch.clone(), CacheConfig::default(), ManualClock::new());
    let mut tasks = JoinSet::new();
    for _ in 0..20 {
        let c = cache.clone();
        tasks.spawn(async move { c.get(&Key::secret("missing")).await });
    }
    settle().await;
    gate.add_permits(1000);
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap_err().kind(), ErrorKind::NotFound);
    }
    assert_eq!(fetch.calls(), 1);
}

#[tokio::test]
async fn fresh_hits_then_expiry() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    fetch.set("k", "v2");
    clock.advance(Duration::from_secs(200));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(fetch.calls(), 1);
    clock.advance(Duration::from_secs(101)); // 301 s: past any jittered TTL
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2);
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses), (1, 2));
}

#[tokio::test]
async fn jittered_ttls_fall_between_ninety_and_hundred_percent() {
    let (cache, fetch, clock) = cache();
    let keys: Vec<Key> = (0..200).map(|i| Key::secret(format!("k{i}"))).collect();
    for k in &keys {
        fetch.set(k.id(), "v");
        cache.get(k).await.unwrap();
    }
    let state = cache.inner.lock();
    let now = clock.now();
    let mut distinct = std::collections::HashSet::new();
    for k in &keys {
        let slot = state.entries.peek(k).unwrap();
        let ttl = slot.fresh_until - now;
        assert!(ttl <= TTL && ttl >= TTL.mul_f64(0.9), "{ttl:?}");
        distinct.insert(ttl);
    }
    assert!(distinct.len() > 100, "jitter spreads expiries");
}

/// "k" cached as v1 while upstream now holds v2, the clock inside the
/// refresh window ([216 s, 270 s) of the 300 s TTL) and the fetch gate shut.
async fn in_refresh_window() -> (
    SecretCache<Scripted, ManualClock>,
    Scripted,
    Arc<tokio::sync::Semaphore>,
    ManualClock,
    Key,
) {
    let (fetch, gate) = Scripted::new().gated();
    let clock = ManualClock::new();
    let cache = SecretCache::with_clock(fetch.clone(), CacheConfig::default(), clock.clone());
    fetch.set("k", "v1");
    let k = Key::secret("k");
    gate.add_permits(1);
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    clock.advance(Duration::from_secs(250));
    (cache, fetch, gate, clock, k)
}

#[tokio::test]
async fn hit_in_refresh_window_answers_at_once_and_refreshes_once() {
    let (cache, fetch, gate, _clock, k) = in_refresh_window().await;
    for _ in 0..10 {
        // The gate is shut: a hit must not wait on the refresh.
        assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    }
    settle().await;
    assert_eq!(fetch.calls(), 2, "one background refresh for ten hits");
    gate.add_permits(1);
    settle().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    let m = cache.metrics();
    assert_eq!(m.refreshes, 1);
    assert_eq!(m.hits, 11);
}

#[tokio::test(start_paused = true)]
async fn expired_value_is_served_while_its_refresh_is_in_flight() {
    let (cache, fetch, gate, clock, k) = in_refresh_window().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1"); // starts the refresh
    settle().await;
    // The refresh is slow (the gate is shut) and the value expires meanwhile:
    // it is already on its way, so readers get the previous value at once
    // instead of queueing behind it. (Only a reader that starts a refresh
    // waits for it, up to `stale_wait`: `a_hung_refresh_serves_...`.)
    clock.advance(Duration::from_secs(60));
    let t0 = tokio::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    }
    assert_eq!(t0.elapsed(), Duration::ZERO);
    assert_eq!(fetch.calls(), 2);
    assert_eq!(cache.metrics().stale, 10);
    gate.add_permits(1);
    settle().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    // Long past its TTL, with no cap on staleness (the default), the old
    // value is still what a reader gets while its refresh is on its way.
    fetch.set("k", "v3");
    clock.advance(Duration::from_secs(250));
    cache.get(&k).await.unwrap(); // refresh starts, gate shut
    settle().await;
    clock.advance(Duration::from_secs(1_000));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    gate.add_permits(1);
    settle().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v3");
}

#[tokio::test]
async fn serves_stale_through_transient_errors_until_a_max_stale_cap() {
    let (cache, fetch, clock) = cache_with(CacheConfig {
        max_stale: Some(Duration::from_secs(900)),
        ..CacheConfig::default()
    });
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.fail_next(ErrorKind::Throttled, 1_000);
    clock.advance(Duration::from_secs(301));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(fetch.calls(), 2);
    // Backing off: stale answers without upstream calls.
    for _ in 0..50 {
        assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    }
    assert_eq!(fetch.calls(), 2);
    // Each retry doubles the window up to 60 s, the delay drawn anywhere in
    // it (30 s on average at the cap): over 10 minutes of reads, about 7
    // ramp-up calls plus one per 30 s, instead of 600.
    for _ in 0..600 {
        clock.advance(Duration::from_secs(1));
        assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    }
    let calls = fetch.calls();
    assert!(calls <= 60, "backoff bounds upstream calls: {calls}");
    // Past max_stale (TTL + 900 s): the error, fast.
    clock.advance(Duration::from_secs(400));
    let err = cache.get(&k).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Throttled);
    assert!(cache.metrics().stale >= 600);
}

#[tokio::test]
async fn without_a_cap_stale_is_served_through_a_long_outage_and_not_past_a_permanent_answer() {
    // Issue 26: the last good value used to go 900 s past its TTL; a
    // regional incident lasts longer. By default it is served for as long
    // as the failures are transient.
    let (cache, fetch, clock) = cache();
    assert_eq!(cache.config().max_stale, None);
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    clock.advance(Duration::from_secs(301));
    // Twenty minutes of outage, throttling then timeouts, in virtual time:
    // every read is answered with the last good value.
    fetch.fail_next(ErrorKind::Throttled, 1_000_000);
    for second in 0..1200 {
        clock.advance(Duration::from_secs(1));
        let kind = if second < 600 {
            ErrorKind::Throttled
        } else {
            ErrorKind::Timeout
        };
        if second == 600 {
            fetch.clear_failures();
            fetch.fail_next(kind, 1_000_000);
        }
        assert_eq!(text(&cache.get(&k).await.unwrap()), "v1", "second {second}");
    }
    let calls = fetch.calls();
    assert!(calls <= 70, "backoff bounds upstream calls: {calls}");
    // The secret is deleted: a permanent answer ends it.
    fetch.clear_failures();
    fetch.remove("k");
    clock.advance(Duration::from_secs(61));
    let _ = cache.get(&k).await; // the retry that meets the answer
    settle().await;
    assert_eq!(cache.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn recovers_after_transient_errors() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.fail_next(ErrorKind::Unavailable, 1);
    clock.advance(Duration::from_secs(301));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    fetch.set("k", "v2");
    // Past the first backoff (<= 1 s). Upstream was failing: the read answers
    // stale at once and retries in the background; the retry succeeds and the
    // next read is fresh.
    clock.advance(Duration::from_secs(2));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    settle().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 3);
}

#[tokio::test]
async fn no_stale_after_a_non_transient_error() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.remove("k");
    clock.advance(Duration::from_secs(301));
    assert_eq!(cache.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(!cache.contains(&k));
    assert_eq!(cache.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fetch.calls(), 2, "the not-found answer is remembered");
}

#[tokio::test]
async fn access_denied_on_refresh_drops_the_value() {
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.fail_next(ErrorKind::AccessDenied, 1);
    clock.advance(Duration::from_secs(301));
    assert_eq!(
        cache.get(&k).await.unwrap_err().kind(),
        ErrorKind::AccessDenied
    );
    assert_eq!(cache.metrics().stale, 0);
}

#[tokio::test]
async fn not_found_is_cached_briefly() {
    let (cache, fetch, clock) = cache();
    let k = Key::secret("typo");
    for _ in 0..10 {
        assert_eq!(cache.get(&k).await.unwrap_err().kind(), ErrorKind::NotFound);
    }
    assert_eq!(fetch.calls(), 1);
    fetch.set("typo", "now it exists");
    clock.advance(Duration::from_secs(6));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "now it exists");
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn lru_evicts_least_recently_read() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_entries: 3,
        ..CacheConfig::default()
    });
    for id in ["a", "b", "c", "d"] {
        fetch.set(id, id);
    }
    // Repeated reads of the newest skip the LRU move (a hit writes no
    // line it need not): the order must come out as if they had moved it.
    for id in ["a", "b", "c", "c", "c"] {
        cache.get(&Key::secret(id)).await.unwrap();
    }
    cache.get(&Key::secret("a")).await.unwrap(); // a read is a use
    cache.get(&Key::secret("a")).await.unwrap();
    cache.get(&Key::secret("d")).await.unwrap();
    assert!(cache.contains(&Key::secret("a")));
    assert!(
        !cache.contains(&Key::secret("b")),
        "b was least recently used"
    );
    assert!(cache.contains(&Key::secret("c")));
    assert!(cache.contains(&Key::secret("d")));
    let m = cache.metrics();
    assert_eq!((m.entries, m.evictions, m.hits), (3, 1, 4));
}

#[tokio::test]
async fn get_body_answers_a_miss_and_hits_with_the_values_body() {
    let (cache, fetch, _clock) = cache();
    fetch.set("k", "v1");
    let key = Key::secret("k");
    let miss = cache.get_body(&key).await.unwrap();
    // The first hit memoizes the body for this thread, the next are its.
    let hits = [
        cache.get_body(&key).await.unwrap(),
        cache.get_body(&key).await.unwrap(),
    ];
    let whole = cache.get(&key).await.unwrap();
    assert_eq!(miss, whole.body());
    assert!(hits.iter().all(|h| *h == whole.body()));
    let m = cache.metrics();
    assert_eq!((m.hits, m.misses, m.upstream_calls), (3, 1, 1));
}

/// "k" read twice through `get_body`, so memoized for this thread.
async fn memoized(cache: &SecretCache<Scripted, ManualClock>, fetch: &Scripted) -> Key {
    fetch.set("k", "v1");
    let key = Key::secret("k");
    cache.get_body(&key).await.unwrap();
    cache.get_body(&key).await.unwrap();
    key
}

fn body_text(body: &bytes::Bytes) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["SecretString"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_memoized_hit_still_starts_refresh_ahead_and_sees_the_new_value() {
    let (cache, fetch, clock) = cache_with(no_jitter());
    let key = memoized(&cache, &fetch).await;
    fetch.set("k", "v2");
    // Before the refresh-ahead window: the memo answers, upstream is not read.
    clock.advance(TTL / 2);
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v1");
    assert_eq!(fetch.calls(), 1);
    // In it: the read goes through the cache, answers v1 and refreshes.
    clock.advance(TTL * 2 / 5);
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v1");
    settle().await;
    assert_eq!(fetch.calls(), 2);
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v2");
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v2");
}

#[tokio::test]
async fn a_value_dropped_upstream_is_not_served_from_a_memo() {
    let (cache, fetch, _clock) = cache();
    let key = memoized(&cache, &fetch).await;
    fetch.remove("k");
    cache.refresh_now(&key).await.unwrap_err();
    assert_eq!(
        cache.get_body(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn expire_all_and_close_reach_the_memos() {
    let (cache, fetch, _clock) = cache();
    let key = memoized(&cache, &fetch).await;
    fetch.set("k", "v2");
    cache.expire_all();
    settle().await;
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v2");
    assert_eq!(body_text(&cache.get_body(&key).await.unwrap()), "v2");
    cache.close();
    assert_eq!(
        cache.get_body(&key).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
}

#[tokio::test]
async fn an_evicted_value_is_not_served_from_a_memo() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_entries: 1,
        ..CacheConfig::default()
    });
    let key = memoized(&cache, &fetch).await;
    fetch.set("other", "x");
    cache.get(&Key::secret("other")).await.unwrap();
    assert_eq!(fetch.calls(), 2);
    cache.get_body(&key).await.unwrap();
    assert_eq!(fetch.calls(), 3, "read again from upstream, not the memo");
}

#[tokio::test]
async fn byte_bound_evicts_and_values_are_dropped() {
    let big = "x".repeat(4096);
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        max_bytes: 3 * 4096 * 2 + 3000,
        ..CacheConfig::default()
    });
    for i in 0..10 {
        fetch.set(&format!("k{i}"), &big);
    }
    let first = cache.get(&Key::secret("k0")).await.unwrap();
    let weak = Arc::downgrade(&first);
    drop(first);
    for i in 1..10 {
        cache.get(&Key::secret(format!("k{i}"))).await.unwrap();
    }
    let m = cache.metrics();
    assert!(m.bytes as usize <= cache.config().max_bytes, "{m:?}");
    assert!(m.entries < 10 && m.evictions > 0, "{m:?}");
    assert!(!cache.contains(&Key::secret("k0")));
    // The evicted value is gone (its zeroizing buffer ran its drop).
    assert!(weak.upgrade().is_none());
}

#[tokio::test]
async fn ttl_zero_disables_caching() {
    let (cache, fetch, _clock) = cache_with(CacheConfig {
        secret_ttl: Duration::ZERO,
        ..CacheConfig::default()
    });
    fetch.set("k", "v");
    for _ in 0..5 {
        cache.get(&Key::secret("k")).await.unwrap();
    }
    assert_eq!(fetch.calls(), 5);
    assert_eq!(cache.metrics().entries, 0);
}

#[tokio::test]
async fn forced_reads_go_upstream_at_most_once_a_second_and_respect_backoff() {
    // Issue 26: refreshNow ignored backoff, and a function sending it on
    // every read made an upstream call (and its retries) per read.
    let (cache, fetch, clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    assert_eq!(text(&cache.refresh_now(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2);
    // Within the second: answered from the cache.
    fetch.set("k", "v3");
    for _ in 0..10 {
        assert_eq!(text(&cache.refresh_now(&k).await.unwrap()), "v2");
    }
    assert_eq!(fetch.calls(), 2);
    clock.advance(Duration::from_millis(1001));
    assert_eq!(text(&cache.refresh_now(&k).await.unwrap()), "v3");
    assert_eq!(fetch.calls(), 3);
    // Throttled: a forced read that fails says so, and the next ones back
    // off like any read (the value answered meanwhile), never a call per
    // read: over a second of forced reads every 10 ms, a call or two.
    fetch.fail_next(ErrorKind::Throttled, 1_000);
    clock.advance(Duration::from_millis(1001));
    let _ = cache.refresh_now(&k).await;
    let after_first = fetch.calls();
    let mut answered = 0;
    for _ in 0..100 {
        clock.advance(Duration::from_millis(10));
        match cache.refresh_now(&k).await {
            Ok(v) => {
                assert_eq!(text(&v), "v3");
                answered += 1;
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Throttled),
        }
    }
    assert!(fetch.calls() <= after_first + 2, "{} calls", fetch.calls());
    assert!(answered >= 98, "{answered} answered");
}

#[tokio::test]
async fn a_value_outliving_its_page_is_repacked_at_refresh_due() {
    // A pinned version is never refreshed; its neighbours all are.
    let (cache, fetch, clock) = cache();
    let big = "p".repeat(4300);
    fetch.set("pinned", &big);
    let pinned = Key::Secret(SecretRequest {
        id: "pinned".into(),
        version_id: Some("v1".into()),
        version_stage: None,
        role: None,
    });
    cache.get(&pinned).await.unwrap();
    let others: Vec<Key> = (0..40).map(|i| Key::secret(format!("o{i}"))).collect();
    for key in &others {
        fetch.set(key.id(), &big);
        cache.get(key).await.unwrap();
    }
    // Replace every other value twice over: their old bodies go.
    for _ in 0..2 {
        for key in &others {
            cache.refresh_now(key).await.unwrap();
        }
        clock.advance(Duration::from_millis(1_001));
    }
    let sparse_before = cache
        .inner
        .lock()
        .entries
        .peek(&pinned)
        .unwrap()
        .value
        .sparse();
    cache.refresh_due(Duration::from_millis(10)).await;
    let state = cache.inner.lock();
    assert!(state.entries.iter().all(|(_, s)| !s.value.sparse()));
    if !sparse_before {
        eprintln!("(other tests' bodies shared the page: nothing was sparse to begin with)");
    }
    let body = state.entries.peek(&pinned).unwrap().value.text().unwrap();
    assert_eq!(body.as_str(), big, "the repacked body reads the same");
}

#[tokio::test]
async fn invalidate_forgets_values_markers_and_reads_in_flight() {
    let (cache, fetch, _clock) = cache();
    fetch.set("a", "1");
    fetch.set("b", "2");
    cache.get(&Key::secret("a")).await.unwrap();
    cache.get(&Key::secret("b")).await.unwrap();
    assert!(
        cache.get(&Key::secret("new")).await.is_err(),
        "not found yet"
    );
    let forgotten = cache.invalidate(|key, _| key.id() == "a" || key.id() == "new");
    assert_eq!(forgotten, 2);
    assert!(!cache.contains(&Key::secret("a")));
    assert!(cache.contains(&Key::secret("b")));
    fetch.set("new", "3");
    assert_eq!(
        text(&cache.get(&Key::secret("new")).await.unwrap()),
        "3",
        "no marker left"
    );
    // By what the value's body names it, too.
    let by_name =
        cache.invalidate(|_, value| value.is_some_and(|v| v.identity().0.as_deref() == Some("b")));
    assert_eq!(by_name, 1);
}

#[tokio::test]
async fn refresh_now_bypasses_and_refills() {
    let (cache, fetch, _clock) = cache();
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    fetch.set("k", "v2");
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    assert_eq!(text(&cache.refresh_now(&k).await.unwrap()), "v2");
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2);
}

#[tokio::test]
async fn prefetch_reports_what_failed() {
    let (cache, fetch, _clock) = cache();
    let ids: Vec<String> = (0..25).map(|i| format!("s{i}")).collect();
    for id in ids.iter().filter(|id| *id != "s3" && *id != "s21") {
        fetch.set(id, "v");
    }
    let report = cache.prefetch(&ids).await;
    assert_eq!(report.loaded.len(), 23);
    let mut failed: Vec<_> = report.failed.iter().map(|(id, _)| id.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["s21", "s3"]);
    assert!(report
        .failed
        .iter()
        .all(|(_, e)| e.kind() == ErrorKind::NotFound));
    assert_eq!(
        fetch.batch_calls.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    let calls_before = fetch.calls();
    cache.get(&Key::secret("s7")).await.unwrap();
    assert_eq!(fetch.calls(), calls_before, "prefetched values are hits");
}

fn gated_cache(
    fetch: Scripted,
) -> (
    SecretCache<Scripted, ManualClock>,
    Scripted,
    Arc<tokio::sync::Semaphore>,
) {
    let (fetch, gate) = fetch.gated();
    let cache = SecretCache::with_clock(fetch.clone(), batching(), ManualClock::new());
    (cache, fetch, gate)
}

/// Prefetch through `BatchGetSecretValue` whatever the list's length.
fn batching() -> CacheConfig {
    CacheConfig {
        prefetch_singles_up_to: 0,
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn a_short_prefetch_reads_one_by_one_a_long_one_in_batches() {
    let (cache, fetch, _clock) = cache();
    let ids: Vec<String> = (0..45).map(|i| format!("s{i}")).collect();
    for id in &ids {
        fetch.set(id, "v");
    }
    let report = cache.prefetch(&ids[..10]).await;
    assert_eq!(report.loaded.len(), 10);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (0, 10));
    let report = cache.prefetch(&ids[10..]).await;
    assert_eq!(report.loaded.len(), 35);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (2, 10));
}

#[tokio::test(start_paused = true)]
async fn a_throttled_batch_falls_back_to_single_reads_at_once() {
    let fetch = Scripted::new().batch_fails(ErrorKind::Throttled);
    let cache = SecretCache::with_clock(fetch.clone(), batching(), ManualClock::new());
    let ids: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
    for id in &ids {
        fetch.set(id, "v");
    }
    let t0 = tokio::time::Instant::now();
    let report = cache.prefetch(&ids).await;
    assert_eq!(report.loaded.len(), 3);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 3));
    assert_eq!(t0.elapsed(), Duration::ZERO, "no wait between them");
}

/// Start a prefetch of `ids` in the background, as the extension does.
fn spawn_prefetch(
    cache: &SecretCache<Scripted, ManualClock>,
    ids: Vec<String>,
) -> tokio::task::JoinHandle<crate::PrefetchReport> {
    let cache = cache.clone();
    tokio::spawn(async move { cache.prefetch(&ids).await })
}

#[tokio::test]
async fn readers_during_a_prefetch_wait_for_its_batch() {
    let (cache, fetch, gate) = gated_cache(Scripted::new());
    let ids: Vec<String> = (0..3).map(|i| format!("s{i}")).collect();
    for id in &ids {
        fetch.set(id, "v");
    }
    let prefetch = spawn_prefetch(&cache, ids);
    settle().await;
    let mut readers = JoinSet::new();
    for _ in 0..10 {
        let c = cache.clone();
        readers.spawn(async move { c.get(&Key::secret("s1")).await });
    }
    settle().await;
    gate.add_permits(1);
    while let Some(r) = readers.join_next().await {
        assert_eq!(text(&r.unwrap().unwrap()), "v");
    }
    assert_eq!(prefetch.await.unwrap().loaded.len(), 3);
    assert_eq!(
        fetch.batch_calls.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(fetch.calls(), 0, "no GetSecretValue beside the batch");
    assert_eq!(cache.metrics().upstream_calls, 1);
}

#[tokio::test]
async fn without_batch_reads_prefetch_one_by_one_under_the_same_flights() {
    let (cache, fetch, gate) = gated_cache(Scripted::new().without_batch());
    fetch.set("a", "va");
    fetch.set("b", "vb");
    let ids = vec!["a".to_string(), "b".to_string(), "a".to_string()];
    let prefetch = spawn_prefetch(&cache, ids);
    settle().await;
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&Key::secret("a")).await }
    });
    settle().await;
    gate.add_permits(10);
    assert_eq!(text(&reader.await.unwrap().unwrap()), "va");
    let report = prefetch.await.unwrap();
    assert_eq!(report.loaded, ["a", "b", "a"]);
    assert_eq!(
        fetch.calls(),
        2,
        "one read per distinct id, the reader's included"
    );
}

#[tokio::test]
async fn a_cancelled_prefetch_leaves_no_flight_behind() {
    let (cache, fetch, gate) = gated_cache(Scripted::new());
    fetch.set("k", "v");
    let prefetch = spawn_prefetch(&cache, vec!["k".to_string()]);
    settle().await;
    prefetch.abort();
    assert!(prefetch.await.unwrap_err().is_cancelled());
    gate.add_permits(1);
    assert_eq!(text(&cache.get(&Key::secret("k")).await.unwrap()), "v");
    assert_eq!(fetch.calls(), 1, "the reader read afresh");
}

#[tokio::test]
async fn a_batch_answered_after_close_is_not_stored() {
    let (cache, fetch, gate) = gated_cache(Scripted::new());
    fetch.set("k", "v");
    let prefetch = spawn_prefetch(&cache, vec!["k".to_string()]);
    settle().await;
    cache.close();
    gate.add_permits(1);
    prefetch.await.unwrap();
    assert_eq!(cache.metrics().entries, 0, "nothing held after SHUTDOWN");
    let report = cache.prefetch(&["k".to_string()]).await;
    assert_eq!(report.failed[0].1.kind(), ErrorKind::Closed);
}

#[tokio::test]
async fn refresh_due_refreshes_only_entries_near_expiry() {
    let (cache, fetch, clock) = cache();
    fetch.set("old", "v1");
    fetch.set("new", "v1");
    cache.get(&Key::secret("old")).await.unwrap();
    clock.advance(Duration::from_secs(100));
    cache.get(&Key::secret("old")).await.unwrap(); // read again: worth refreshing
    clock.advance(Duration::from_secs(150));
    cache.get(&Key::secret("new")).await.unwrap();
    cache.get(&Key::secret("new")).await.unwrap();
    // "old" is in its refresh window but no hit there refreshed it;
    // refresh_due picks it up, not "new".
    let before = fetch.calls();
    fetch.set("old", "v2");
    let report = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!(report.started, 1);
    assert_eq!(report.waited_for, 1);
    assert_eq!(fetch.calls(), before + 1);
    assert_eq!(text(&cache.get(&Key::secret("old")).await.unwrap()), "v2");
}

#[tokio::test]
async fn refresh_due_waits_for_a_refresh_a_hit_already_started() {
    // At an INVOKE the function's own hit may start the refresh before the
    // extension's refresh_due runs: it must still hold INVOKE open for it,
    // or Lambda freezes the environment with the request half done.
    let (cache, fetch, gate, _clock, k) = in_refresh_window().await;
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v1");
    settle().await;
    assert_eq!(fetch.calls(), 2, "the hit started the refresh");
    let due = tokio::spawn({
        let cache = cache.clone();
        async move { cache.refresh_due(Duration::from_secs(30)).await }
    });
    settle().await;
    assert!(!due.is_finished(), "waits for the refresh in flight");
    gate.add_permits(1);
    let report = due.await.unwrap();
    assert_eq!(report.started, 0, "started none of its own");
    assert_eq!((report.waited_for, report.timed_out), (1, 0));
    assert_eq!(fetch.calls(), 2);
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
}

#[tokio::test]
async fn close_wipes_and_refuses() {
    let (cache, fetch, _clock) = cache();
    fetch.set("k", "v");
    let v = cache.get(&Key::secret("k")).await.unwrap();
    let weak = Arc::downgrade(&v);
    drop(v);
    cache.close();
    assert!(weak.upgrade().is_none(), "the value was dropped, so wiped");
    assert_eq!(cache.metrics().entries, 0);
    assert_eq!(
        cache.get(&Key::secret("k")).await.unwrap_err().kind(),
        ErrorKind::Closed
    );
}

/// A reader of `ids` at the same moment; each read twice, so each counts
/// as read since stored.
async fn read_twice(cache: &SecretCache<Scripted, ManualClock>, keys: &[Key]) {
    for key in keys {
        cache.get(key).await.unwrap();
        cache.get(key).await.unwrap();
    }
}

#[tokio::test]
async fn refresh_due_refreshes_a_readers_secrets_in_one_batch() {
    let (cache, fetch, clock) = cache_with(CacheConfig {
        ttl_jitter: 0.0,
        ..CacheConfig::default()
    });
    for id in ["a", "b", "c", "pinned"] {
        fetch.set(id, "v1");
    }
    let pinned = Key::Secret(SecretRequest {
        version_stage: Some("AWSPREVIOUS".into()),
        ..SecretRequest::current("pinned")
    });
    read_twice(&cache, &[Key::secret("a")]).await;
    clock.advance(Duration::from_secs(60));
    read_twice(&cache, &[Key::secret("b"), Key::secret("c"), pinned]).await;
    // "a" is due (past 240 s of 300); "b" and "c" are past half their TTL
    // and ride along; the staged read cannot be batched and is not due.
    clock.advance(Duration::from_secs(190));
    for id in ["a", "b", "c"] {
        fetch.set(id, "v2");
    }
    let calls = (fetch.batch_calls(), fetch.calls());
    let report = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!(report.started, 3);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (calls.0 + 1, calls.1));
    for id in ["a", "b", "c"] {
        assert_eq!(text(&cache.get(&Key::secret(id)).await.unwrap()), "v2");
    }
    assert_eq!(fetch.calls(), calls.1, "all three are fresh hits");
}

#[tokio::test]
async fn a_batch_refresh_the_fetcher_may_not_make_reads_one_by_one() {
    let fetch = Scripted::new().without_batch();
    let clock = ManualClock::new();
    let cache = SecretCache::with_clock(fetch.clone(), no_jitter(), clock.clone());
    fetch.set("p", "v1");
    fetch.set("q", "v1");
    let keys = [Key::parameter("p", true), Key::parameter("q", true)];
    read_twice(&cache, &keys).await;
    clock.advance(Duration::from_secs(250));
    fetch.set("p", "v2");
    fetch.set("q", "v2");
    let calls = fetch.calls();
    let report = cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!((report.started, report.timed_out), (2, 0));
    assert_eq!(fetch.calls(), calls + 2, "denied batch: read singly");
    for key in &keys {
        assert_eq!(text(&cache.get(key).await.unwrap()), "v2");
    }
    assert!(cache.inner.lock().flights.is_empty());
}

fn no_jitter() -> CacheConfig {
    CacheConfig {
        ttl_jitter: 0.0,
        ..CacheConfig::default()
    }
}

#[tokio::test]
async fn a_throttled_or_failing_batch_refresh_does_not_feed_the_storm() {
    // GetParameter shares GetParameters' quota, and a 5xx says the service
    // is down: neither is retried singly; the values are served on.
    for (kind, key) in [
        (
            ErrorKind::Throttled,
            Key::parameter as fn(String, bool) -> Key,
        ),
        (ErrorKind::Unavailable, |id, _| Key::secret(id)),
    ] {
        let fetch = Scripted::new().batch_fails(kind);
        let clock = ManualClock::new();
        let cache = SecretCache::with_clock(fetch.clone(), no_jitter(), clock.clone());
        fetch.set("a", "v1");
        fetch.set("b", "v1");
        let keys = [key("a".into(), true), key("b".into(), true)];
        read_twice(&cache, &keys).await;
        clock.advance(Duration::from_secs(250));
        let calls = fetch.calls();
        let report = cache.refresh_due(Duration::from_secs(1)).await;
        assert_eq!(report.started, 2);
        assert_eq!(fetch.calls(), calls, "{kind}: no single reads");
        assert_eq!(fetch.batch_calls(), 1);
        for k in &keys {
            assert_eq!(text(&cache.get(k).await.unwrap()), "v1");
        }
        assert_eq!(fetch.calls(), calls, "{kind}: backing off");
        // Past the backoff, failing secrets retry singly (their own, larger
        // quota), parameters in their batch (one shared quota).
        clock.advance(Duration::from_secs(2));
        cache.refresh_due(Duration::from_secs(1)).await;
        let expect = match kind {
            ErrorKind::Throttled => (2, calls),
            _ => (1, calls + 2),
        };
        assert_eq!((fetch.batch_calls(), fetch.calls()), expect, "{kind}");
    }
}

#[tokio::test]
async fn a_throttled_secret_batch_refresh_reads_singly_on_their_own_quota() {
    let fetch = Scripted::new().batch_fails(ErrorKind::Throttled);
    let clock = ManualClock::new();
    let cache = SecretCache::with_clock(fetch.clone(), no_jitter(), clock.clone());
    fetch.set("a", "v1");
    fetch.set("b", "v1");
    let keys = [Key::secret("a"), Key::secret("b")];
    read_twice(&cache, &keys).await;
    clock.advance(Duration::from_secs(250));
    fetch.set("a", "v2");
    let calls = fetch.calls();
    cache.refresh_due(Duration::from_secs(1)).await;
    assert_eq!(fetch.calls(), calls + 2);
    assert_eq!(text(&cache.get(&keys[0]).await.unwrap()), "v2");
}

#[tokio::test]
async fn prefetch_parameters_loads_them_in_one_call_and_readers_share_it() {
    let (fetch, gate) = Scripted::new().gated();
    let cache = SecretCache::with_clock(fetch.clone(), CacheConfig::default(), ManualClock::new());
    let names: Vec<String> = (0..12).map(|i| format!("/app/p{i}")).collect();
    for n in &names {
        fetch.set(n, "v");
    }
    assert_eq!(cache.prefetch_parameters(&names, true), 12);
    assert_eq!(
        cache.prefetch_parameters(&names, true),
        0,
        "already in flight"
    );
    let reader = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&Key::parameter("/app/p3", true)).await }
    });
    settle().await;
    gate.add_permits(10);
    assert_eq!(text(&reader.await.unwrap().unwrap()), "v");
    settle().await;
    assert_eq!((fetch.batch_calls(), fetch.calls()), (2, 0), "10 + 2 names");
    assert_eq!(cache.metrics().entries, 12);
}

#[tokio::test]
async fn the_timer_refreshes_a_value_read_once_before_it_expires_and_only_once() {
    // Lambda Managed Instances: never frozen, no INVOKE. A value read once
    // is refreshed once when its window opens (a read again after its first
    // TTL is then a hit), and, not read since, is left to expire.
    let config = CacheConfig {
        secret_ttl: Duration::from_secs(4),
        ..CacheConfig::default()
    };
    let (cache, fetch, clock) = cache_with(config);
    fetch.set("k", "v1");
    let k = Key::secret("k");
    assert_eq!(cache.next_due(), None, "nothing held");
    cache.get(&k).await.unwrap();
    let due = cache.next_due().expect("a read value comes due");
    let wait = due - clock.now();
    // Jittered TTL 3.6-4 s, refresh-ahead the last fifth of it.
    assert!(wait >= Duration::from_millis(2880) && wait <= Duration::from_millis(3200));
    assert_eq!(cache.start_due(), 0, "not due yet");
    clock.advance(wait);
    fetch.set("k", "v2");
    assert_eq!(cache.start_due(), 1);
    settle().await;
    assert_eq!(fetch.calls(), 2);
    // About 5 s after the first read, before the new value's window opens.
    clock.advance(Duration::from_secs(2));
    assert_eq!(text(&cache.get(&k).await.unwrap()), "v2");
    assert_eq!(fetch.calls(), 2, "a hit");
    // Read again: due once more; after that, never read, never refreshed.
    clock.advance(cache.next_due().unwrap() - clock.now());
    assert_eq!(cache.start_due(), 1);
    settle().await;
    assert_eq!(fetch.calls(), 3);
    for _ in 0..4 {
        if let Some(due) = cache.next_due() {
            clock.advance(due.saturating_duration_since(clock.now()));
        }
        clock.advance(Duration::from_secs(2));
        assert_eq!(cache.start_due(), 0);
    }
    assert_eq!(fetch.calls(), 3);
}

#[tokio::test]
async fn the_timer_waits_out_a_backoff_and_skips_pinned_and_uncached_values() {
    let config = CacheConfig {
        secret_ttl: Duration::from_secs(10),
        parameter_ttl: Duration::ZERO,
        ..CacheConfig::default()
    };
    assert_eq!(
        config.earliest_refresh(),
        Some(Duration::from_secs(7) + Duration::from_millis(200))
    );
    let (cache, fetch, clock) = cache_with(config);
    fetch.set("k", "v1");
    let k = Key::secret("k");
    cache.get(&k).await.unwrap();
    cache.get(&k).await.unwrap();
    let pinned = Key::Secret(SecretRequest {
        version_id: Some("v-1".into()),
        ..SecretRequest::current("k")
    });
    let _ = cache.get(&pinned).await;
    clock.advance(Duration::from_secs(10));
    fetch.fail_next(ErrorKind::Unavailable, 1);
    assert_eq!(cache.start_due(), 1, "the pinned value is never refreshed");
    settle().await;
    let due = cache.next_due().expect("the failing value retries");
    assert!(due > clock.now(), "not before its backoff ends");
    assert_eq!(cache.start_due(), 0);
}

#[tokio::test]
async fn failed_calls_are_counted_by_class() {
    let (cache, fetch, _clock) = cache();
    let kinds = [
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::AccessDenied,
        ErrorKind::Credentials,
        ErrorKind::NotFound,
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        fetch.fail_next(kind, 1);
        let _ = cache.get(&Key::secret(format!("k{i}"))).await;
    }
    let m = cache.metrics();
    assert_eq!(m.upstream_errors, 5);
    let classes = (
        m.upstream_throttled,
        m.upstream_5xx,
        m.upstream_denied,
        m.upstream_timeouts,
    );
    assert_eq!(classes, (1, 1, 2, 0), "a not-found is counted, in no class");
}
