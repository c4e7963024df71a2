//! The batch read over the scripted fetcher: which ids go upstream, how.

use std::sync::Arc;

use super::*;
use crate::testutil::ManualClock;
use crate::testutil::Scripted;
use crate::{CacheConfig, ErrorKind};

fn cache_over(fetch: &Scripted) -> SecretCache<Scripted, ManualClock> {
    SecretCache::with_clock(fetch.clone(), CacheConfig::default(), ManualClock::new())
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn texts(out: &[Result<Arc<Cached>, Error>]) -> Vec<String> {
    out.iter()
        .map(|r| match r {
            Ok(v) => v.text().unwrap().to_string(),
            Err(e) => e.kind().to_string(),
        })
        .collect()
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn hits_stay_hits_and_misses_share_one_batch_call() {
    let fetch = Scripted::new();
    for id in ["a", "b", "c"] {
        fetch.set(id, &format!("v-{id}"));
    }
    let cache = cache_over(&fetch);
    cache.get(&Key::secret("a")).await.unwrap();
    assert_eq!(fetch.calls(), 1);

    let out = cache.get_secrets(&ids(&["a", "b", "x", "c"])).await;
    assert_eq!(
        texts(&out),
        ["v-a", "v-b", "ResourceNotFoundException", "v-c"]
    );
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 1), "a was a hit");
    // Each value is the entry a single read uses; the miss is remembered.
    assert!(cache.contains(&Key::secret("b")));
    let again = cache.get_secrets(&ids(&["c", "b", "x"])).await;
    assert_eq!(texts(&again), ["v-c", "v-b", "ResourceNotFoundException"]);
    assert_eq!(
        (fetch.batch_calls(), fetch.calls()),
        (1, 1),
        "all answered held"
    );
    let m = cache.metrics();
    assert_eq!(m.upstream_calls, 2);
}

#[tokio::test]
async fn a_refused_batch_call_falls_back_to_single_reads() {
    let fetch = Scripted::new().without_batch();
    fetch.set("a", "1");
    fetch.set("b", "2");
    let cache = cache_over(&fetch);
    let out = cache.get_secrets(&ids(&["a", "b", "gone"])).await;
    assert_eq!(texts(&out), ["1", "2", "ResourceNotFoundException"]);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 3));
}

#[tokio::test]
async fn ids_the_batch_leaves_unanswered_are_read_alone() {
    let fetch = Scripted::new();
    fetch.set("a", "1");
    fetch.set("b", "2");
    fetch.omit_from_batches("b");
    let cache = cache_over(&fetch);
    let out = cache.get_secrets(&ids(&["a", "b"])).await;
    assert_eq!(texts(&out), ["1", "2"]);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 1));
}

#[tokio::test]
async fn a_single_read_racing_the_batch_joins_its_flight() {
    let (fetch, gate) = Scripted::new().gated();
    fetch.set("a", "1");
    fetch.set("b", "2");
    let cache = cache_over(&fetch);
    let batch = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get_secrets(&ids(&["a", "b"])).await }
    });
    settle().await;
    let single = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&Key::secret("b")).await }
    });
    settle().await;
    gate.add_permits(10);
    assert_eq!(texts(&batch.await.unwrap()), ["1", "2"]);
    assert_eq!(single.await.unwrap().unwrap().text().unwrap().as_str(), "2");
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_hung_batch_call_leaves_half_the_deadline_to_single_reads() {
    let fetch = Scripted::new();
    fetch.set("a", "1");
    fetch.set("b", "2");
    fetch.batch_pace(crate::testutil::Pace::Hang);
    let cache = cache_over(&fetch);
    let began = tokio::time::Instant::now();
    let out = cache.get_secrets(&ids(&["a", "b"])).await;
    assert_eq!(texts(&out), ["1", "2"]);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 2));
    assert!(began.elapsed() <= CacheConfig::default().secret_deadline);
}

#[tokio::test]
async fn one_cold_id_is_read_alone_on_the_larger_quota() {
    // GetSecretValue's quota is a hundred times BatchGetSecretValue's, and
    // one id costs one call either way.
    let fetch = Scripted::new();
    fetch.set("a", "1");
    let cache = cache_over(&fetch);
    let out = cache.get_secrets(&ids(&["a"])).await;
    assert_eq!(texts(&out), ["1"]);
    assert_eq!((fetch.batch_calls(), fetch.calls()), (0, 1));
}

#[tokio::test]
async fn a_batch_reader_going_away_fails_no_other_reader() {
    // Issue 26: the batch's flights ran in the batch reader's future, so a
    // client that hung up failed every single reader joined to them with
    // "the upstream read was abandoned". They run in a task of their own.
    let (fetch, gate) = Scripted::new().gated();
    fetch.set("a", "1");
    fetch.set("b", "2");
    let cache = cache_over(&fetch);
    let batch = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get_secrets(&ids(&["a", "b"])).await }
    });
    settle().await;
    assert_eq!(cache.inner.lock().flights.len(), 2);
    let single = tokio::spawn({
        let cache = cache.clone();
        async move { cache.get(&Key::secret("b")).await }
    });
    settle().await;
    batch.abort();
    let _ = batch.await;
    gate.add_permits(10);
    let single = single.await.unwrap().unwrap();
    assert_eq!(single.text().unwrap().as_str(), "2");
    assert!(cache.contains(&Key::secret("a")), "the batch landed anyway");
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 0));
    assert!(cache.inner.lock().flights.is_empty());
}

#[tokio::test]
async fn parameters_are_their_single_entries_read_in_one_call() {
    let fetch = Scripted::new();
    fetch.set("/p/a", "1");
    let cache = cache_over(&fetch);
    let out = cache.get_parameters(&ids(&["/p/a", "/p/none"]), true).await;
    assert_eq!(out[1].as_ref().unwrap_err().kind(), ErrorKind::NotFound);
    assert!(out[0].is_ok());
    // One GetParameters for both names.
    assert_eq!((fetch.batch_calls(), fetch.calls()), (1, 0));
    assert_eq!(cache.metrics().upstream_calls, 1);
    assert!(cache.contains(&Key::parameter("/p/a", true)));
    assert!(!cache.contains(&Key::parameter("/p/a", false)));
}

#[tokio::test]
async fn caching_off_reads_every_id_upstream() {
    let fetch = Scripted::new();
    fetch.set("a", "1");
    let config = CacheConfig {
        secret_ttl: std::time::Duration::ZERO,
        ..CacheConfig::default()
    };
    let cache = SecretCache::with_clock(fetch.clone(), config, ManualClock::new());
    for _ in 0..2 {
        assert_eq!(texts(&cache.get_secrets(&ids(&["a"])).await), ["1"]);
    }
    assert_eq!(fetch.calls(), 2);
    assert!(!cache.contains(&Key::secret("a")));
}

#[tokio::test]
async fn a_closed_cache_answers_closed_for_every_id() {
    let fetch = Scripted::new();
    let cache = cache_over(&fetch);
    cache.close();
    let out = cache.get_secrets(&ids(&["a", "b"])).await;
    assert!(out
        .iter()
        .all(|r| r.as_ref().unwrap_err().kind() == ErrorKind::Closed));
}
