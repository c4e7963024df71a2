//! What the fleet simulation (`bench/`, issue 13) changed, tested against
//! moto through the real extension: the calls a cold start and a refresh
//! make, counted per AWS operation by the proxy.

use std::time::Duration;

use sidekey_tests::aws;
use sidekey_tests::client::get;
use sidekey_tests::lambda::{Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::{Fault, Proxy};
use sidekey_tests::runtime::NullRuntime;

/// Five secrets a function reads (twice: the second read is the one that
/// marks them as being read) reach their refresh window; one INVOKE then
/// refreshes all five with one `BatchGetSecretValue`, and the readers get
/// the new values without another call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoke_refreshes_what_is_read_in_one_batch_call() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let ids: Vec<String> = (0..5).map(|i| format!("fleet/{i}")).collect();
    for id in &ids {
        aws::create_secret(&sm, id, &format!("fleet-v1-{id}")).await;
    }
    // TTL 5 s: jittered to 4.5-5 s, refresh window from 3.6-4 s.
    let lambda = Lambda::start(
        Options::extension(proxy.url(), &[("SECRETS_MANAGER_TTL", "5")]).watching_events(),
    )
    .await;
    let _runtime = NullRuntime::start(lambda.sim.addr());
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    for _ in 0..2 {
        for id in &ids {
            assert_eq!(get(&format!("{url}/v1/{id}"), token).await.status, 200);
        }
    }
    assert_eq!(proxy.calls("GetSecretValue"), 5);
    for id in &ids {
        aws::put_secret(&sm, id, &format!("fleet-v2-{id}")).await;
    }
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let invoked = lambda.invoke_timed(serde_json::json!({})).await;
    assert!(invoked.ready, "{invoked:?}");
    assert_eq!(proxy.calls("BatchGetSecretValue"), 1, "one batch for five");
    assert_eq!(proxy.calls("GetSecretValue"), 5, "no single refresh");
    for id in &ids {
        let a = get(&format!("{url}/v1/{id}"), token).await;
        assert_eq!(a.json()["SecretString"], format!("fleet-v2-{id}"));
    }
    assert_eq!(proxy.calls("GetSecretValue"), 5, "no synchronous refetch");
}

/// `SIDEKEY_PREFETCH_PARAMETERS`: one `GetParameters` at INIT for every
/// listed parameter (Parameter Store's 40 requests/s is shared by the
/// account), and the reads that follow are hits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_parameters_are_prefetched_with_one_call() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let ssm = aws::ssm(&moto.url()).await;
    let names: Vec<String> = (0..5).map(|i| format!("/fleet/app/p{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        aws::put_parameter(&ssm, name, &format!("fleet-param-{i}"), i % 2 == 0).await;
    }
    let list = names.join(",");
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[("SIDEKEY_PREFETCH_PARAMETERS", &list)],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    for (i, name) in names.iter().enumerate() {
        let a = get(
            &format!("{url}/systemsmanager/parameters/get?name={name}&withDecryption=true"),
            token,
        )
        .await;
        assert_eq!(a.json()["Parameter"]["Value"], format!("fleet-param-{i}"));
    }
    assert_eq!(proxy.calls("GetParameters"), 1);
    assert_eq!(proxy.calls("GetParameter"), 0, "every read was prefetched");
}

/// A throttled `BatchGetSecretValue` is called once (no SDK retry: its
/// quota is 100 requests/s for the whole account), and the prefetch falls
/// back to one `GetSecretValue` per id at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_prefetch_batch_is_not_retried_and_falls_back() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    // More than 20: a prefetch that goes in batches.
    let ids: Vec<String> = (0..25).map(|i| format!("surge/{i}")).collect();
    for id in &ids {
        aws::create_secret(&sm, id, &format!("surge-value-{id}")).await;
    }
    proxy.set_operation_fault("BatchGetSecretValue", Fault::Throttle);
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[("SIDEKEY_PREFETCH", &ids.join(","))],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    for id in &ids {
        let a = get(&format!("{url}/v1/{id}"), token).await;
        assert_eq!(a.json()["SecretString"], format!("surge-value-{id}"));
    }
    assert_eq!(
        proxy.calls("BatchGetSecretValue"),
        2,
        "two batches, each called once"
    );
    assert_eq!(proxy.calls("GetSecretValue"), 25, "each id read once");
}
