//! The cache with each of its fetchers (the lean SigV4 one the extension
//! ships, and the AWS SDK one) against moto over HTTP, through the counting
//! proxy: every test here runs once per fetcher (`sigv4::` and `sdk::`).

use std::sync::Arc;

use std::future::Future;

use sidekey_aws::{AwsFetcher, SigV4Fetcher};
use sidekey_cache::{
    CacheConfig, ErrorKind, Fetch, Key, ParameterRequest, SecretCache, SecretRequest,
};
use sidekey_tests::aws;
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;

/// A fetcher aimed at an endpoint.
trait Upstream: Fetch + Sized {
    fn at(endpoint: &str) -> impl Future<Output = Self>;
}

impl Upstream for AwsFetcher {
    async fn at(endpoint: &str) -> Self {
        aws::fetcher(endpoint).await
    }
}

impl Upstream for SigV4Fetcher {
    async fn at(endpoint: &str) -> Self {
        aws::sigv4_fetcher(endpoint)
    }
}

/// Each test, once per fetcher.
macro_rules! for_each_fetcher {
    ($($test:ident),* $(,)?) => {
        mod sigv4 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<sidekey_aws::SigV4Fetcher>().await
                }
            )*
        }
        mod sdk {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test::<sidekey_aws::AwsFetcher>().await
                }
            )*
        }
    };
}

for_each_fetcher!(
    hundred_concurrent_cold_reads_make_one_upstream_call,
    wire_shape_matches_get_secret_value,
    version_id_and_stage_reads,
    binary_secrets_round_trip_as_base64,
    secret_deleted_upstream_stops_being_served,
    prefetch_of_25_ids_with_2_missing,
    parameters_with_and_without_decryption_and_selectors,
);

async fn setup<F: Upstream>() -> (Moto, Proxy, SecretCache<F>) {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let cache = SecretCache::new(F::at(&proxy.url()).await, CacheConfig::default());
    (moto, proxy, cache)
}

fn json(v: &sidekey_cache::Cached) -> serde_json::Value {
    serde_json::from_slice(v.json()).unwrap()
}

async fn hundred_concurrent_cold_reads_make_one_upstream_call<F: Upstream>() {
    let (moto, proxy, cache) = setup::<F>().await;
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

async fn wire_shape_matches_get_secret_value<F: Upstream>() {
    let (moto, _proxy, cache) = setup::<F>().await;
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

async fn version_id_and_stage_reads<F: Upstream>() {
    let (moto, _proxy, cache) = setup::<F>().await;
    let sm = aws::secrets(&moto.url()).await;
    let v1 = aws::create_secret(&sm, "rotating", "one").await;
    let v2 = aws::put_secret(&sm, "rotating", "two").await;
    let read = |version_id: Option<&str>, stage: Option<&str>| {
        Key::Secret(SecretRequest {
            id: "rotating".into(),
            version_id: version_id.map(Into::into),
            version_stage: stage.map(Into::into),
            role: None,
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

async fn binary_secrets_round_trip_as_base64<F: Upstream>() {
    let (moto, _proxy, cache) = setup::<F>().await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_binary_secret(&sm, "bin", &[0, 159, 146, 150, 255]).await;
    let v = cache.get(&Key::secret("bin")).await.unwrap();
    let j = json(&v);
    assert_eq!(j["SecretBinary"], "AJ+Slv8=");
    assert!(j.get("SecretString").is_none());
}

async fn secret_deleted_upstream_stops_being_served<F: Upstream>() {
    let (moto, _proxy, cache) = setup::<F>().await;
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

async fn prefetch_of_25_ids_with_2_missing<F: Upstream>() {
    let (moto, proxy, cache) = setup::<F>().await;
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

async fn parameters_with_and_without_decryption_and_selectors<F: Upstream>() {
    let (moto, proxy, cache) = setup::<F>().await;
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
