//! Upstream-fault scenarios run end to end (moto behind the fault proxy,
//! the real `sidekey` under the simulator, the null runtime), shared by the
//! `upstream_faults` tests, which assert their outcomes, and the
//! `faults_probe` binary, which prints their figures. Timings are recorded,
//! never asserted on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws;
use crate::lambda::{Invoked, Lambda, Options};
use crate::moto::Moto;
use crate::proxy::{Fault, Proxy};
use crate::runtime::NullRuntime;

/// How long the tests' clients wait for an answer, as a function's HTTP
/// client might: an answer after this counts as none (status 0).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One read through the extension, timed.
#[derive(Clone, Debug)]
pub struct Timed {
    /// HTTP status; 0 if no answer came within [`CLIENT_TIMEOUT`].
    pub status: u16,
    /// `__type` of an error answer.
    pub code: Option<String>,
    /// `SecretString` of a 200 answer.
    pub value: Option<String>,
    /// From sending the request to having the whole answer.
    pub elapsed: Duration,
}

/// Call `probe` every 100 ms until it gives `Ok`, and return that. After
/// 30 s, fail the test with `what` and the last `Err`.
pub async fn poll_until<T, E, F, Fut>(what: &str, mut probe: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match probe().await {
            Ok(done) => return done,
            Err(last) => assert!(Instant::now() < deadline, "{what}: {last:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client with [`CLIENT_TIMEOUT`].
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("client")
}

/// GET `url` with the token; an error body is scanned for seeded values.
pub async fn timed_get(client: &reqwest::Client, url: &str, token: &str) -> Timed {
    let started = Instant::now();
    let sent = client
        .get(url)
        .header("X-Aws-Parameters-Secrets-Token", token)
        .send()
        .await;
    let (status, body) = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    };
    let elapsed = started.elapsed();
    if status != 200 {
        crate::hygiene::assert_clean(&body, &format!("the {status} answer to {url}"));
    }
    let json: Value = serde_json::from_str(&body).unwrap_or_default();
    let field = |name: &str| json[name].as_str().map(str::to_owned);
    Timed {
        status,
        code: field("__type"),
        value: field("SecretString"),
        elapsed,
    }
}

/// The mean of some durations (zero for none).
pub fn mean(durations: impl IntoIterator<Item = Duration>) -> Duration {
    let all: Vec<Duration> = durations.into_iter().collect();
    match all.len() {
        0 => Duration::ZERO,
        n => all.iter().sum::<Duration>() / n as u32,
    }
}

/// What the extension did with an upstream that accepts and never answers.
#[derive(Debug)]
pub struct HungReport {
    /// (a) A cached value just past its TTL, read again.
    pub expired: Timed,
    /// (a) Another read of it, that refresh still hanging.
    pub expired_again: Timed,
    /// (b) A secret never read before.
    pub cold: Timed,
    /// (c) INVOKEs while both kinds of read hang (a reader keeps asking).
    pub invokes: Vec<Invoked>,
    /// (c) The readers' answers during those INVOKEs: (status of the
    /// expired one, status of the cold one) per round.
    pub reads_during_invokes: Vec<(u16, u16)>,
    /// Requests the black hole swallowed.
    pub swallowed: u64,
}

/// The expired value of [`hung_upstream`].
pub const HUNG_OLD_VALUE: &str = "hung-upstream-old-value";

/// The hung-upstream scenario of issue 11, `SECRETS_MANAGER_TTL=2` and the
/// default read deadline (2 s).
pub async fn hung_upstream(invokes: usize) -> HungReport {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "hung/warm", HUNG_OLD_VALUE).await;
    aws::create_secret(&sm, "hung/cold", "hung-upstream-cold-value").await;
    let lambda = Lambda::start(
        Options::extension(proxy.url(), &[("SECRETS_MANAGER_TTL", "2")]).watching_events(),
    )
    .await;
    let _runtime = NullRuntime::start(lambda.sim.addr());
    let (url, token) = (lambda.url(), lambda.token.clone());
    let client = client();
    let warm = timed_get(&client, &format!("{url}/v1/hung/warm"), &token).await;
    assert_eq!(warm.status, 200, "the first read, upstream healthy");
    // Past the TTL (2 s, jittered down by up to 10 %).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    proxy.set_fault(Fault::BlackHole, 1);

    let expired = timed_get(&client, &format!("{url}/v1/hung/warm"), &token).await;
    let expired_again = timed_get(&client, &format!("{url}/v1/hung/warm"), &token).await;
    let cold = timed_get(&client, &format!("{url}/v1/hung/cold"), &token).await;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (client, url, token, stop) = (client.clone(), url.clone(), token.clone(), stop.clone());
        tokio::spawn(async move {
            let mut rounds = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (warm, cold) = (format!("{url}/v1/hung/warm"), format!("{url}/v1/hung/cold"));
                let (w, c) = tokio::join!(
                    timed_get(&client, &warm, &token),
                    timed_get(&client, &cold, &token),
                );
                rounds.push((w.status, c.status));
            }
            rounds
        })
    };
    // Spread over several seconds, so INVOKEs meet refreshes in flight
    // (hung until their deadline) and the pauses between (backoff).
    let mut done = Vec::new();
    for _ in 0..invokes {
        done.push(lambda.invoke_timed(serde_json::json!({})).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let reads_during_invokes = reader.await.expect("reader");
    HungReport {
        expired,
        expired_again,
        cold,
        invokes: done,
        reads_during_invokes,
        swallowed: proxy.held(),
    }
}

/// The INVOKE holds of issue 26's scenario: an upstream that accepts and
/// never answers, `SECRETS_MANAGER_TTL=2`, one secret read once while it
/// was healthy, then `invokes` INVOKEs 0.3 s apart with no reads. Each
/// hold is billed to the function. Returns the INVOKEs and the
/// extension's log (at debug, one line per INVOKE report).
pub async fn invoke_holds(invokes: usize) -> (Vec<Invoked>, String) {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "holds/one", "invoke-holds-value").await;
    let lambda = Lambda::start(
        Options::extension(proxy.url(), &[("SECRETS_MANAGER_TTL", "2")]).watching_events(),
    )
    .await;
    let _runtime = NullRuntime::start(lambda.sim.addr());
    let client = client();
    // Read twice: the second read, a hit, marks it read since stored (a
    // value read once is never refreshed).
    for _ in 0..2 {
        let url = format!("{}/v1/holds/one", lambda.url());
        let read = timed_get(&client, &url, &lambda.token).await;
        assert_eq!(read.status, 200, "the reads, upstream healthy");
    }
    // A healthy INVOKE first: nothing is due, nothing is held.
    lambda.invoke_timed(serde_json::json!({})).await;
    proxy.set_fault(Fault::BlackHole, 1);
    // Into the refresh-ahead window (the last 20 % of the TTL).
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let mut done = Vec::with_capacity(invokes);
    for _ in 0..invokes {
        done.push(lambda.invoke_timed(serde_json::json!({})).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    (done, lambda.logs())
}

/// Upstream calls made for values read once and never again.
#[derive(Debug)]
pub struct IdleReport {
    /// `GetSecretValue` calls of the reads.
    pub initial_calls: u64,
    /// `GetSecretValue` calls during the INVOKEs that followed.
    pub calls_during: u64,
    /// Those INVOKEs.
    pub invokes: Vec<Invoked>,
    /// How long they went on.
    pub elapsed: Duration,
}

/// The idle-refresh scenario of issue 11: `secrets` secrets read once and
/// never again, TTL `ttl_secs`, then INVOKEs for `seconds` with no reads.
pub async fn idle_refresh(secrets: usize, ttl_secs: u64, seconds: u64) -> IdleReport {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ids: Vec<String> = (0..secrets).map(|i| format!("idle/{i}")).collect();
    for id in &ids {
        aws::create_secret(&sm, id, &format!("idle-value-of-{id}")).await;
    }
    let lambda = Lambda::start(
        Options::extension(
            proxy.url(),
            &[("SECRETS_MANAGER_TTL", &ttl_secs.to_string())],
        )
        .watching_events(),
    )
    .await;
    let _runtime = NullRuntime::start(lambda.sim.addr());
    let (url, token) = (lambda.url(), lambda.token.clone());
    let client = client();
    for id in &ids {
        let a = timed_get(&client, &format!("{url}/v1/{id}"), &token).await;
        assert_eq!(a.status, 200, "{id}");
    }
    let initial_calls = proxy.calls("GetSecretValue");
    let started = Instant::now();
    let mut invokes = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        invokes.push(lambda.invoke_timed(serde_json::json!({})).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    IdleReport {
        initial_calls,
        calls_during: proxy.calls("GetSecretValue") - initial_calls,
        invokes,
        elapsed: started.elapsed(),
    }
}
