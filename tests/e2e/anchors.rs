//! What the newest anchors added, through the real extension against moto
//! behind the counting proxy: reads as another role (`roleArn`, STS
//! `AssumeRole`), the version check after the TTL (`DescribeSecret`),
//! prefetch by tag, and reads that fall back to a replica region.

use sidekey_tests::aws;
use sidekey_tests::client::get;
use sidekey_tests::lambda::{Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::{Fault, Proxy};

const ACCOUNT_ROLE: &str = "arn:aws:iam::123456789012:role";

fn role(name: &str) -> String {
    format!("{ACCOUNT_ROLE}/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_as_a_role_sign_with_its_credentials_and_are_entries_of_their_own() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "shared/key", "role-read-value").await;
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[("SIDEKEY_MAX_ROLES", "2")],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let read_as = |r: Option<String>| {
        let url = url.clone();
        async move {
            let query = r.map_or(String::new(), |r| format!("&roleArn={r}"));
            get(
                &format!("{url}/secretsmanager/get?secretId=shared/key{query}"),
                token,
            )
            .await
        }
    };
    let a = read_as(Some(role("reader"))).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["SecretString"], "role-read-value");
    assert_eq!(proxy.calls("STS"), 1, "one AssumeRole");
    // Signed with the role's credentials: the access key moto issued for
    // it (ASIA...), not the function's ("test").
    let keys = proxy.access_keys();
    assert!(keys.iter().any(|k| k.starts_with("ASIA")), "{keys:?}");
    // A hit: no call; the function's own read is another entry.
    assert_eq!(read_as(Some(role("reader"))).await.status, 200);
    assert_eq!(proxy.calls("GetSecretValue"), 1);
    assert_eq!(read_as(None).await.status, 200);
    assert_eq!(proxy.calls("GetSecretValue"), 2, "two roles, two entries");
    assert_eq!(proxy.calls("STS"), 1, "the role's credentials are kept");

    // Past SIDEKEY_MAX_ROLES=2 the least recently used role goes, its
    // credentials and its entries with it.
    assert_eq!(read_as(Some(role("second"))).await.status, 200);
    assert_eq!(read_as(Some(role("third"))).await.status, 200);
    let (sts, gets) = (proxy.calls("STS"), proxy.calls("GetSecretValue"));
    assert_eq!(sts, 3);
    assert_eq!(read_as(Some(role("reader"))).await.status, 200);
    assert_eq!(proxy.calls("STS"), sts + 1, "evicted: assumed again");
    assert_eq!(
        proxy.calls("GetSecretValue"),
        gets + 1,
        "evicted: read again"
    );
    assert!(lambda.logs().contains("role evicted"));

    // A malformed ARN is a 400 naming the parameter; STS's refusal keeps
    // its code.
    let bad = read_as(Some("arn:aws:iam::123456789012:user/bob".into())).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("roleArn"),
        "{}",
        bad.body
    );
    proxy.set_operation_fault(
        "STS",
        Fault::Answer(
            403,
            r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>"#,
        ),
    );
    let denied = read_as(Some(role("forbidden"))).await;
    assert_eq!(denied.status, 400, "{}", denied.body);
    assert_eq!(denied.json()["__type"], "AccessDenied");
    sidekey_tests::hygiene::assert_clean(&lambda.logs(), "the extension's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_refuses_other_roles_before_any_call() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "allow/key", "allowlisted-value").await;
    let allowed = format!("{ACCOUNT_ROLE}/app-*");
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[("SIDEKEY_ALLOWED_ROLE_ARNS", allowed.as_str())],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let ok = get(
        &format!(
            "{url}/secretsmanager/get?secretId=allow/key&roleArn={}",
            role("app-reader")
        ),
        token,
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let refused = get(
        &format!(
            "{url}/secretsmanager/get?secretId=allow/key&roleArn={}",
            role("admin")
        ),
        token,
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json()["__type"], "RoleNotAllowed");
    assert_eq!(proxy.calls("STS"), 1, "only the allowed role was assumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_ttl_a_version_check_reads_the_value_only_if_it_changed() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    aws::create_secret(&sm, "checked/key", "checked-v1").await;
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[
            ("SECRETS_MANAGER_TTL", "2"),
            ("SIDEKEY_VERSION_CHECK", "describe"),
        ],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let address = format!("{url}/v1/checked/key");
    let read = || get(&address, token);
    assert_eq!(read().await.json()["SecretString"], "checked-v1");
    assert_eq!(proxy.calls("GetSecretValue"), 1);
    // Past the TTL, nothing changed: 1 DescribeSecret, 0 GetSecretValue.
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(read().await.json()["SecretString"], "checked-v1");
    assert_eq!(
        (proxy.calls("DescribeSecret"), proxy.calls("GetSecretValue")),
        (1, 1)
    );
    // Rotated: past the TTL, 1 DescribeSecret + 1 GetSecretValue.
    aws::put_secret(&sm, "checked/key", "checked-v2").await;
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(read().await.json()["SecretString"], "checked-v2");
    assert_eq!(
        (proxy.calls("DescribeSecret"), proxy.calls("GetSecretValue")),
        (2, 2)
    );
    let m = get(&format!("{url}/metrics"), token).await.json();
    assert_eq!(
        (m["version_checks"].as_u64(), m["unchanged"].as_u64()),
        (Some(2), Some(1)),
        "{m}"
    );
    // A role that may not describe reads the value instead, for good.
    proxy.set_operation_fault(
        "DescribeSecret",
        Fault::Answer(400, r#"{"__type":"AccessDeniedException","message":"not authorized to perform secretsmanager:DescribeSecret"}"#),
    );
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(read().await.json()["SecretString"], "checked-v2");
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(read().await.json()["SecretString"], "checked-v2");
    assert_eq!(
        proxy.calls("DescribeSecret"),
        3,
        "denied once, not asked again"
    );
    assert_eq!(proxy.calls("GetSecretValue"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_by_tag_loads_exactly_the_tagged_secrets() {
    use aws_sdk_secretsmanager::types::Tag;
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    for (name, tags) in [
        ("tagged/a", vec![tag("team", "edge")]),
        ("tagged/b", vec![tag("team", "edge"), tag("tier", "gold")]),
        ("tagged/c", vec![tag("team", "core")]),
        ("untagged/d", vec![]),
    ] {
        aws::create_secret(&sm, name, &format!("value-of-{name}")).await;
        if !tags.is_empty() {
            sm.tag_resource()
                .secret_id(name)
                .set_tags(Some(tags))
                .send()
                .await
                .expect("tag");
        }
    }
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[("SIDEKEY_PREFETCH_TAGS", "team=edge")],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    sidekey_tests::faults::poll_until("the tag prefetch", || async {
        let logs = lambda.logs();
        logs.contains("prefetch by tag done")
            .then_some(())
            .ok_or(logs)
    })
    .await;
    assert!(proxy.calls("BatchGetSecretValue") >= 1);
    let before = proxy.calls("GetSecretValue");
    for name in ["tagged/a", "tagged/b"] {
        let a = get(&format!("{url}/v1/{name}"), token).await;
        assert_eq!(a.json()["SecretString"], format!("value-of-{name}"));
    }
    assert_eq!(
        proxy.calls("GetSecretValue"),
        before,
        "both were prefetched"
    );
    let m = get(&format!("{url}/metrics"), token).await.json();
    assert_eq!(m["entries"], 2, "exactly the tagged ones: {m}");
    let c = get(&format!("{url}/v1/tagged/c"), token).await;
    assert_eq!(c.status, 200);
    assert_eq!(
        proxy.calls("GetSecretValue"),
        before + 1,
        "not tagged team=edge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_read_falls_back_to_a_replica_only_when_home_fails_transiently() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let home = aws::secrets(&moto.url()).await;
    let west = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&aws::config(&moto.url()).await)
            .region(aws_sdk_secretsmanager::config::Region::new("us-west-2"))
            .build(),
    );
    for (name, value) in [
        ("replicated/cold", "cold"),
        ("replicated/warm", "warm"),
        ("replicated/gone", "gone"),
    ] {
        aws::create_secret(&home, name, &format!("{value}-at-home")).await;
        aws::create_secret(&west, name, &format!("{value}-in-the-replica")).await;
    }
    let lambda = Lambda::start(Options::extension(
        proxy.url(),
        &[
            ("SIDEKEY_FALLBACK_REGIONS", "us-west-2"),
            ("SECRETS_MANAGER_TTL", "2"),
        ],
    ))
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let read = |id: &str| {
        let address = format!("{url}/v1/{id}");
        async move { get(&address, token).await }
    };
    // Held before the outage.
    assert_eq!(
        read("replicated/warm").await.json()["SecretString"],
        "warm-at-home"
    );

    proxy.set_region_fault("us-east-1", Fault::Status(503));
    // A cold read: the replica answers.
    let cold = read("replicated/cold").await;
    assert_eq!(cold.status, 200, "{}", cold.body);
    assert_eq!(cold.json()["SecretString"], "cold-in-the-replica");
    assert_eq!(proxy.calls_in("GetSecretValue", "us-west-2"), 1);
    // A held value past its TTL is served stale: no replica read.
    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    assert_eq!(
        read("replicated/warm").await.json()["SecretString"],
        "warm-at-home"
    );
    assert_eq!(proxy.calls_in("GetSecretValue", "us-west-2"), 1);
    let m = get(&format!("{url}/metrics"), token).await.json();
    assert_eq!(m["fallback_reads"], 1, "{m}");

    // A permanent answer at home never falls back.
    proxy.set_region_fault(
        "us-east-1",
        Fault::Answer(400, r#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#),
    );
    let gone = read("replicated/gone").await;
    assert_eq!(
        (gone.status, gone.json()["__type"].as_str()),
        (400, Some("ResourceNotFoundException"))
    );
    assert_eq!(proxy.calls_in("GetSecretValue", "us-west-2"), 1);
}
