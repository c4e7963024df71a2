//! The cache with its production AWS SDK fetcher against moto over HTTP,
//! through the counting proxy.

use std::sync::Arc;

use sidekey_cache::{CacheConfig, ErrorKind, Key, ParameterRequest, SecretCache, SecretRequest};
use sidekey_tests::aws;
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;

async fn setup() -> (Moto, Proxy, SecretCache<sidekey_cache::AwsFetcher>) {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let cache = SecretCache::new(aws::fetcher(&proxy.url()).await, CacheConfig::default());
    (moto, proxy, cache)
}

fn json(v: &sidekey_cache::Cached) -> serde_json::Value {
    serde_json::from_slice(v.json()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_cold_reads_make_one_upstream_call() {
    let (moto, proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "app/api/key", r#"{"apikey":"k-123"}"#).await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let c = cache.clone();
        tasks.spawn(async move { c.get(&Key::secret("app/api/key")).await });
    }
    while let Some(r) = tasks.join_next().await {
        let v = r.unwrap().unwrap();
        assert_eq!(&*v.field("apikey").unwrap(), "k-123");
    }
    let calls = proxy.calls("GetSecretValue");
    println!("single flight: 100 concurrent cold reads -> {calls} GetSecretValue call(s) seen by the proxy, {} counted by the cache", cache.metrics().upstream_calls);
    assert_eq!(calls, 1);
    assert_eq!(cache.metrics().upstream_calls, 1);
}

#[tokio::test]
async fn wire_shape_matches_get_secret_value() {
    let (moto, _proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    let created = aws::create_secret(&sm, "shape", "plain-text").await;
    let v = cache.get(&Key::secret("shape")).await.unwrap();
    let j = json(&v);
    assert_eq!(j["ARN"], created.arn.as_str());
    assert_eq!(j["Name"], "shape");
    assert_eq!(j["VersionId"], created.version_id.as_str());
    assert_eq!(j["SecretString"], "plain-text");
    assert_eq!(j["VersionStages"][0], "AWSCURRENT");
    assert!(j["CreatedDate"].is_number(), "{j}");
    // Read by ARN too.
    let by_arn = cache.get(&Key::secret(created.arn.clone())).await.unwrap();
    assert_eq!(json(&by_arn)["Name"], "shape");
}

#[tokio::test]
async fn version_id_and_stage_reads() {
    let (moto, _proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    let v1 = aws::create_secret(&sm, "rotating", "one").await;
    let v2 = aws::put_secret(&sm, "rotating", "two").await;
    let read = |version_id: Option<&str>, stage: Option<&str>| {
        Key::Secret(SecretRequest {
            id: "rotating".into(),
            version_id: version_id.map(Into::into),
            version_stage: stage.map(Into::into),
        })
    };
    let text = |v: Arc<sidekey_cache::Cached>| v.text().unwrap().to_string();
    assert_eq!(text(cache.get(&read(None, None)).await.unwrap()), "two");
    assert_eq!(
        text(cache.get(&read(None, Some("AWSPREVIOUS"))).await.unwrap()),
        "one"
    );
    assert_eq!(
        text(cache.get(&read(Some(&v1.version_id), None)).await.unwrap()),
        "one"
    );
    assert_eq!(
        text(
            cache
                .get(&read(Some(&v2), Some("AWSCURRENT")))
                .await
                .unwrap()
        ),
        "two"
    );
    let err = cache
        .get(&read(Some("no-such-version"), None))
        .await
        .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::NotFound | ErrorKind::InvalidRequest),
        "{err}"
    );
}

#[tokio::test]
async fn binary_secrets_round_trip_as_base64() {
    let (moto, _proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_binary_secret(&sm, "bin", &[0, 159, 146, 150, 255]).await;
    let v = cache.get(&Key::secret("bin")).await.unwrap();
    let j = json(&v);
    assert_eq!(j["SecretBinary"], "AJ+Slv8=");
    assert!(j.get("SecretString").is_none());
}

#[tokio::test]
async fn secret_deleted_upstream_stops_being_served() {
    let (moto, _proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "doomed", "v").await;
    let key = Key::secret("doomed");
    cache.get(&key).await.unwrap();
    sm.delete_secret()
        .secret_id("doomed")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let err = cache.refresh_now(&key).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(!cache.contains(&key));
    assert_eq!(
        cache.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn prefetch_of_25_ids_with_2_missing() {
    let (moto, proxy, cache) = setup().await;
    let sm = aws::secrets(&moto.url()).await;
    let ids: Vec<String> = (0..25).map(|i| format!("pre/{i:02}")).collect();
    for id in ids
        .iter()
        .filter(|id| !id.ends_with("07") && !id.ends_with("19"))
    {
        aws::create_secret(&sm, id, &format!("value-{id}")).await;
    }
    let report = cache.prefetch(&ids).await;
    let mut failed: Vec<_> = report.failed.iter().map(|(id, _)| id.clone()).collect();
    failed.sort();
    println!(
        "prefetch: {} loaded, failed {:?}; BatchGetSecretValue calls {}, GetSecretValue calls {}",
        report.loaded.len(),
        failed,
        proxy.calls("BatchGetSecretValue"),
        proxy.calls("GetSecretValue")
    );
    assert_eq!(report.loaded.len(), 23);
    assert_eq!(failed, ["pre/07", "pre/19"]);
    assert!(report
        .failed
        .iter()
        .all(|(_, e)| e.kind() == ErrorKind::NotFound));
    assert_eq!(proxy.calls("BatchGetSecretValue"), 2);
    let before = proxy.calls("GetSecretValue");
    let v = cache.get(&Key::secret("pre/03")).await.unwrap();
    assert_eq!(&*v.text().unwrap(), "value-pre/03");
    assert_eq!(
        proxy.calls("GetSecretValue"),
        before,
        "prefetched reads are hits"
    );
}

#[tokio::test]
async fn parameters_with_and_without_decryption_and_selectors() {
    let (moto, proxy, cache) = setup().await;
    let ssm = aws::ssm(&moto.url()).await;
    aws::put_parameter(&ssm, "/app/db/password", "pw-1", true).await;
    aws::put_parameter(&ssm, "/app/db/password", "pw-2", true).await;
    let mut req = ParameterRequest::latest("/app/db/password", true);
    let v = cache.get(&Key::Parameter(req.clone())).await.unwrap();
    let j = json(&v);
    assert_eq!(j["Parameter"]["Value"], "pw-2");
    assert_eq!(j["Parameter"]["Type"], "SecureString");
    assert_eq!(j["Parameter"]["Version"], 2);
    req.version = Some(1);
    let v1 = cache.get(&Key::Parameter(req)).await.unwrap();
    assert_eq!(&*v1.text().unwrap(), "pw-1");
    let enc = cache
        .get(&Key::parameter("/app/db/password", false))
        .await
        .unwrap();
    assert_ne!(
        &*enc.text().unwrap(),
        "pw-2",
        "not decrypted without withDecryption"
    );
    let missing = cache.get(&Key::parameter("/nope", true)).await.unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(proxy.calls("GetParameter"), 4);
}
