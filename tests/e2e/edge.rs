//! The Lambda@Edge handler as deployed (`sidekey_edge::build`):
//! the lean SigV4 fetcher against moto (through the counting proxy), and a
//! loopback server standing in for the external API that only accepts the
//! stored key, exactly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sidekey_cache::ErrorKind;
use sidekey_edge::{self as edge, Credentials, EdgeConfig, EdgeError, Reply, API_BODY};
use sidekey_tests::aws;
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::Proxy;
use tokio::net::TcpListener;
use zeroize::Zeroizing;

const EVENT: &str = r#"{"Records":[{"cf":{
  "config":{"distributionDomainName":"d111111abcdef8.cloudfront.net","distributionId":"EDFDVBD6EXAMPLE","eventType":"viewer-request","requestId":"r-1"},
  "request":{"clientIp":"203.0.113.178","headers":{"host":[{"key":"Host","value":"d111111abcdef8.cloudfront.net"}]},
             "method":"GET","querystring":"a=1","uri":"/index.html","notModelled":{"x":[1,2]}}}}]}"#;

/// The external API: 200 if `Authorization` is exactly the expected key and
/// the body is the function's, 401 otherwise (or the status set with
/// [`Api::answer`]). Counts calls and remembers what was wrong.
struct Api {
    addr: SocketAddr,
    state: Arc<Mutex<ApiState>>,
    task: tokio::task::JoinHandle<()>,
}

struct ApiState {
    key: String,
    status: u16,
    calls: usize,
    wrong: Vec<String>,
}

impl Api {
    async fn start(key: &str) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ApiState {
            key: key.to_owned(),
            status: 200,
            calls: 0,
            wrong: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let auth = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let mut s = state.lock().unwrap();
                            s.calls += 1;
                            let mut status = s.status;
                            if auth.as_deref() != Some(s.key.as_str()) {
                                s.wrong.push("Authorization is not the stored key".into());
                                status = 401;
                            }
                            if &body[..] != API_BODY {
                                s.wrong.push("unexpected body".into());
                                status = 400;
                            }
                            Ok::<_, std::convert::Infallible>(
                                Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"{}")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Api { addr, state, task }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/edge", self.addr)
    }

    fn answer(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    fn wrong(&self) -> Vec<String> {
        self.state.lock().unwrap().wrong.clone()
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn config(secret_id: &str, api: &Api, proxy: &Proxy, replicas: &[&str]) -> EdgeConfig {
    EdgeConfig::from_json(
        &serde_json::json!({
            "secret_id": secret_id,
            "api_url": api.url(),
            "primary_region": "us-east-1",
            "replica_regions": replicas,
            "timeout_ms": 1600,
            "secrets_manager_endpoint": proxy.url(),
        })
        .to_string(),
    )
    .unwrap()
}

fn credentials() -> Credentials {
    Credentials::new(
        "test".into(),
        Zeroizing::new("test".into()),
        Some(Zeroizing::new("session".into())),
    )
}

fn expected_request() -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(EVENT).unwrap()["Records"][0]["cf"]["request"].clone()
}

/// A Secrets Manager client for moto in `region`.
async fn secrets_in(moto: &Moto, region: &'static str) -> aws_sdk_secretsmanager::Client {
    let config = aws::loader(&moto.url())
        .region(aws_config::Region::new(region))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_invocations_one_get_secret_value_and_the_exact_key() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    // Characters a sloppy client would re-encode: the API must get them as is.
    let key = "edge-k3y-exact=/+value";
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(
        &sm,
        "edge/api",
        &serde_json::json!({ "apikey": key }).to_string(),
    )
    .await;
    let api = Api::start(key).await;

    let handler = edge::build(
        &config("edge/api", &api, &proxy, &[]),
        credentials(),
        Some("us-east-1"),
    )
    .unwrap();
    for _ in 0..25 {
        let request = handler.handle(EVENT).await.unwrap();
        let out = serde_json::to_value(Reply::Forward(request)).unwrap();
        assert_eq!(out, expected_request());
    }
    assert_eq!(api.wrong(), Vec::<String>::new());
    assert_eq!(api.calls(), 25);
    let calls = proxy.calls("GetSecretValue");
    println!(
        "edge: 25 invocations -> {calls} GetSecretValue call(s), {} API call(s)",
        api.calls()
    );
    assert_eq!(calls, 1);

    // The API refusing is a 502 that carries no key, and costs no extra read.
    api.answer(401);
    let err = handler.handle(EVENT).await.unwrap_err();
    assert_eq!(err, EdgeError::Refused(401));
    let reply = serde_json::to_string(&Reply::from(Err::<edge::Request, _>(err.clone()))).unwrap();
    assert!(reply.contains(r#""status":"502""#), "{reply}");
    assert!(!reply.contains(key) && !err.to_string().contains(key));
    assert_eq!(proxy.calls("GetSecretValue"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_is_503_and_the_api_is_not_called() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let api = Api::start("unused").await;
    let handler = edge::build(
        &config("edge/absent", &api, &proxy, &[]),
        credentials(),
        Some("us-east-1"),
    )
    .unwrap();
    let err = handler.handle(EVENT).await.unwrap_err();
    let EdgeError::Secret(e) = &err else {
        panic!("not a secret error: {err}")
    };
    assert_eq!((e.id(), e.kind()), ("edge/absent", ErrorKind::NotFound));
    assert_eq!(err.status(), 503);
    assert_eq!(api.calls(), 0);

    // A secret without the field is as unusable as none.
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "edge/other-shape", r#"{"token":"x"}"#).await;
    let handler = edge::build(
        &config("edge/other-shape", &api, &proxy, &[]),
        credentials(),
        Some("us-east-1"),
    )
    .unwrap();
    let err = handler.handle(EVENT).await.unwrap_err();
    assert_eq!(err.status(), 503, "{err}");
    assert_eq!(api.calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_the_local_replica_and_falls_back_to_the_primary() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let primary = secrets_in(&moto, "us-east-1").await;
    let replica = secrets_in(&moto, "eu-west-1").await;
    // moto keeps regions apart: the "replica" is the same name in eu-west-1
    // with a value the API accepts only from there.
    aws::create_secret(&primary, "edge/replicated", r#"{"apikey":"from-primary"}"#).await;
    aws::create_secret(&replica, "edge/replicated", r#"{"apikey":"from-replica"}"#).await;
    aws::create_secret(
        &primary,
        "edge/primary-only",
        r#"{"apikey":"from-primary"}"#,
    )
    .await;

    // In a replica region: the replica answers.
    let api = Api::start("from-replica").await;
    let cfg = config(
        "edge/replicated",
        &api,
        &proxy,
        &["eu-west-1", "ap-south-1"],
    );
    let handler = edge::build(&cfg, credentials(), Some("eu-west-1")).unwrap();
    handler.handle(EVENT).await.unwrap();
    assert_eq!(api.wrong(), Vec::<String>::new());
    assert_eq!(proxy.calls("GetSecretValue"), 1);

    // Elsewhere: the primary, even though a replica exists.
    let api = Api::start("from-primary").await;
    let cfg = config("edge/replicated", &api, &proxy, &["eu-west-1"]);
    let handler = edge::build(&cfg, credentials(), Some("sa-east-1")).unwrap();
    handler.handle(EVENT).await.unwrap();
    assert_eq!(api.wrong(), Vec::<String>::new());
    assert_eq!(proxy.calls("GetSecretValue"), 2);

    // The replica lacks the secret: not-found there falls back to the primary.
    let cfg = config("edge/primary-only", &api, &proxy, &["eu-west-1"]);
    let handler = edge::build(&cfg, credentials(), Some("eu-west-1")).unwrap();
    handler.handle(EVENT).await.unwrap();
    handler.handle(EVENT).await.unwrap();
    assert_eq!(api.wrong(), Vec::<String>::new());
    assert_eq!(api.calls(), 3);
    // Replica miss + primary hit, once: the cache holds the result.
    assert_eq!(proxy.calls("GetSecretValue"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edges_field_read_takes_del_and_c1_characters() {
    // Issue 26: the edge reads its key's field through the same decoder as
    // the extension: a field holding DEL or a C1 control failed there too.
    use sidekey_cache::{CacheConfig, Embedded, SecretCache, SecretSource};
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    let value = serde_json::json!({"apikey": "k\u{7f}\u{85}ey"}).to_string();
    aws::create_secret(&sm, "edge/controls", &value).await;
    let source = Embedded::new(SecretCache::new(
        aws::sigv4_fetcher(&moto.url()),
        CacheConfig::default(),
    ));
    let key = source
        .secret("edge/controls", Some("apikey"))
        .await
        .unwrap();
    assert_eq!(key.as_str(), "k\u{7f}\u{85}ey");
}
