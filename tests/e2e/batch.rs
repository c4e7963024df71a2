//! Many values in one read, through the real extension against moto:
//! `/secretsmanager/batch`, `/systemsmanager/parameters/get?names=` and
//! `/systemsmanager/parameters/get-by-path`, with the upstream calls
//! counted by the proxy.

use serde_json::{json, Value};
use sidekey_tests::aws;
use sidekey_tests::client::get;
use sidekey_tests::lambda::{Lambda, Options};
use sidekey_tests::moto::Moto;
use sidekey_tests::proxy::{Fault, Proxy};

async fn start(proxy: &Proxy, extra: &[(&str, &str)]) -> Lambda {
    Lambda::start(Options::extension(proxy.url(), extra)).await
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|p| p["Name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mixes_cached_uncached_and_missing_ids() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    let mut arns = Vec::new();
    for i in 1..=4 {
        let c = aws::create_secret(&sm, &format!("db/{i}"), &format!("batch-value-{i}")).await;
        arns.push(c.arn);
    }
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));

    // db/1 is cached by a single read first.
    let single = get(&format!("{url}/secretsmanager/get?secretId=db/1"), token).await;
    assert_eq!(single.status, 200);
    proxy.reset_counts();

    // Cached, uncached, missing, and one asked for by its full ARN.
    let ids = format!("db/1,db/2,nope,db/3,{}", arns[3]);
    let a = get(
        &format!("{url}/secretsmanager/batch?secretIds={ids}"),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.content_type, "application/json");
    let j = a.json();
    assert_eq!(names(&j["SecretValues"]), ["db/1", "db/2", "db/3", "db/4"]);
    assert_eq!(j["SecretValues"][1]["SecretString"], "batch-value-2");
    assert_eq!(j["SecretValues"][0], single.json(), "the same body as /get");
    assert_eq!(j["Errors"].as_array().map(Vec::len), Some(1), "{j}");
    assert_eq!(j["Errors"][0]["SecretId"], "nope");
    assert_eq!(j["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
    assert!(j["Errors"][0]["Message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let counts = (
        proxy.calls("BatchGetSecretValue"),
        proxy.calls("GetSecretValue"),
    );
    println!(
        "batch of 5 (1 cached, 3 uncached, 1 missing): BatchGetSecretValue={}, GetSecretValue={}",
        counts.0, counts.1
    );
    assert_eq!(counts, (1, 0), "the four misses in one batch call");

    // Every value is its own entry (an id's: db/4 asked by ARN is cached
    // under its ARN): single reads and a second batch are hits, the missing
    // id is remembered as missing.
    let a = get(&format!("{url}/secretsmanager/get?secretId=db/3"), token).await;
    assert_eq!(a.json()["SecretString"], "batch-value-3");
    let a = get(
        &format!(
            "{url}/secretsmanager/batch?secretIds=db/3,{},nope,db/2",
            arns[3]
        ),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(names(&a.json()["SecretValues"]), ["db/3", "db/4", "db/2"]);
    assert_eq!(proxy.calls("BatchGetSecretValue"), 1);
    assert_eq!(proxy.calls("GetSecretValue"), 0);

    // Bad input: a 400 naming the parameter.
    let twenty_one: Vec<String> = (0..21).map(|i| format!("s{i}")).collect();
    for (query, needle) in [
        ("secretIds=".to_owned(), "secretIds"),
        ("secretIds=db/1,db/1".to_owned(), "more than once"),
        (
            format!("secretIds={}", twenty_one.join(",")),
            "more than 20",
        ),
        ("secretId=db/1".to_owned(), "secretId"),
    ] {
        let a = get(&format!("{url}/secretsmanager/batch?{query}"), token).await;
        assert_eq!(a.status, 400, "{query}: {}", a.body);
        assert_eq!(a.json()["__type"], "BadRequest");
        assert!(
            a.json()["message"].as_str().unwrap().contains(needle),
            "{}",
            a.body
        );
    }
    let a = get(&format!("{url}/secretsmanager/batch?secretIds=db/1"), None).await;
    assert_eq!(a.status, 403);
    let logs = lambda.logs();
    assert!(
        !logs.contains("batch-value-"),
        "a secret value reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_batch_call_falls_back_to_single_reads() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let sm = aws::secrets(&moto.url()).await;
    for i in 1..=3 {
        aws::create_secret(&sm, &format!("t/{i}"), &format!("throttle-value-{i}")).await;
    }
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    proxy.set_operation_fault("BatchGetSecretValue", Fault::Throttle);
    let a = get(
        &format!("{url}/secretsmanager/batch?secretIds=t/1,t/2,t/3,t/none"),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(names(&j["SecretValues"]), ["t/1", "t/2", "t/3"]);
    assert_eq!(j["Errors"][0]["SecretId"], "t/none");
    assert_eq!(j["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
    // The SDK retries a throttled call before giving it up; then one
    // GetSecretValue per id.
    let batch = proxy.calls("BatchGetSecretValue");
    println!(
        "throttled batch: BatchGetSecretValue={batch} (SDK retries), GetSecretValue={}",
        proxy.calls("GetSecretValue")
    );
    assert!(batch >= 1);
    assert_eq!(proxy.calls("GetSecretValue"), 4);
    assert!(!lambda.logs().contains("throttle-value-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_by_names_share_single_entries_and_decrypt() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let ssm = aws::ssm(&moto.url()).await;
    aws::put_parameter(&ssm, "/cfg/plain", "plain-value-1", false).await;
    aws::put_parameter(&ssm, "/cfg/secure", "secure-value-1", true).await;
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let base = format!("{url}/systemsmanager/parameters/get");

    let a = get(
        &format!("{base}?names=/cfg/secure,/cfg/none,/cfg/plain&withDecryption=true"),
        token,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(names(&j["Parameters"]), ["/cfg/secure", "/cfg/plain"]);
    assert_eq!(j["Parameters"][0]["Value"], "secure-value-1");
    assert_eq!(j["Parameters"][0]["Type"], "SecureString");
    assert_eq!(j["InvalidParameters"], json!(["/cfg/none"]));
    assert_eq!(proxy.calls("GetParameters"), 1);

    // The same entries as ?name=: hits.
    let a = get(
        &format!("{base}?name=/cfg/secure&withDecryption=true"),
        token,
    )
    .await;
    assert_eq!(a.json()["Parameter"], j["Parameters"][0]);
    assert_eq!(
        (proxy.calls("GetParameter"), proxy.calls("GetParameters")),
        (0, 1)
    );

    // Without decryption: other entries, and the SecureString stays encrypted.
    let a = get(&format!("{base}?names=/cfg/secure,/cfg/plain"), token).await;
    let j = a.json();
    assert_eq!(proxy.calls("GetParameters"), 2);
    assert_ne!(j["Parameters"][0]["Value"], "secure-value-1");
    assert_eq!(j["Parameters"][1]["Value"], "plain-value-1");
    let elevens: Vec<String> = (0..11).map(|i| format!("/n{i}")).collect();
    let a = get(&format!("{base}?names={}", elevens.join(",")), token).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("names"), "{}", a.body);
    assert!(!lambda.logs().contains("secure-value-1"));
}

/// 20 parameters right under `/tree/`, 5 more under `/tree/sub/`: 25
/// across 3 pages of 10 recursively; 20 flat, in 3 pages too (moto, like
/// the service may, answers a full page with a `NextToken` even when it is
/// the last: the third page is empty).
async fn seed_tree(ssm: &aws_sdk_ssm::Client) {
    for i in 0..20 {
        let secure = i == 7;
        aws::put_parameter(
            ssm,
            &format!("/tree/p{i:02}"),
            &format!("tree-value-{i:02}"),
            secure,
        )
        .await;
    }
    for i in 0..5 {
        aws::put_parameter(
            ssm,
            &format!("/tree/sub/q{i}"),
            &format!("tree-sub-{i}"),
            false,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_merges_pages_with_recursion_and_decryption() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let ssm = aws::ssm(&moto.url()).await;
    seed_tree(&ssm).await;
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let base = format!("{url}/systemsmanager/parameters/get-by-path");

    // Five readers at once: one tree read, three pages.
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (u, t) = (
            format!("{base}?path=/tree/&recursive=true&withDecryption=true"),
            lambda.token.clone(),
        );
        readers.spawn(async move { get(&u, Some(&t)).await });
    }
    let mut bodies = Vec::new();
    while let Some(a) = readers.join_next().await {
        let a = a.unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        bodies.push(a.json());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let j = &bodies[0];
    let list = j["Parameters"].as_array().unwrap();
    assert_eq!(list.len(), 25, "{j}");
    assert_eq!(
        j.as_object().map(|o| o.len()),
        Some(1),
        "no NextToken: whole"
    );
    let p07 = list.iter().find(|p| p["Name"] == "/tree/p07").unwrap();
    assert_eq!(p07["Value"], "tree-value-07");
    assert_eq!(p07["Type"], "SecureString");
    assert!(list.iter().any(|p| p["Name"] == "/tree/sub/q4"));
    assert_eq!(proxy.calls("GetParametersByPath"), 3, "3 pages, one flight");

    // Cached: no call.
    let a = get(
        &format!("{base}?path=/tree/&recursive=true&withDecryption=true"),
        token,
    )
    .await;
    assert_eq!(&a.json(), j);
    assert_eq!(proxy.calls("GetParametersByPath"), 3);

    // Flat: another entry, 20 parameters in 3 pages, still encrypted.
    let a = get(&format!("{base}?path=/tree/"), token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let flat = a.json();
    let list = flat["Parameters"].as_array().unwrap();
    assert_eq!(list.len(), 20);
    assert!(list
        .iter()
        .all(|p| !p["Name"].as_str().unwrap().starts_with("/tree/sub/")));
    let p07 = list.iter().find(|p| p["Name"] == "/tree/p07").unwrap();
    assert_ne!(p07["Value"], "tree-value-07");
    assert_eq!(proxy.calls("GetParametersByPath"), 6);

    // Empty tree: whole and empty.
    let a = get(&format!("{base}?path=/nothing/here"), token).await;
    assert_eq!(a.json(), json!({"Parameters": []}));

    let a = get(&format!("{base}?path=tree/"), token).await;
    assert_eq!(a.status, 400);
    assert!(a.body.contains("path"), "{}", a.body);
    assert!(!lambda.logs().contains("tree-value-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_past_its_bounds_is_a_clear_400_never_a_partial_tree() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    let ssm = aws::ssm(&moto.url()).await;
    seed_tree(&ssm).await;
    for i in 0..3 {
        aws::put_parameter(
            &ssm,
            &format!("/big/b{i}"),
            &format!("big-{i}-{}", "x".repeat(1500)),
            false,
        )
        .await;
    }
    let lambda = start(
        &proxy,
        &[
            ("SIDEKEY_TREE_MAX_PARAMETERS", "20"),
            ("SIDEKEY_TREE_MAX_BYTES", "4096"),
        ],
    )
    .await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let base = format!("{url}/systemsmanager/parameters/get-by-path");

    // 20 flat parameters fit; 25 recursive ones do not.
    let a = get(&format!("{base}?path=/tree/"), token).await;
    assert_eq!(a.status, 200, "{}", a.body);
    for _ in 0..2 {
        let a = get(&format!("{base}?path=/tree/&recursive=true"), token).await;
        assert_eq!(a.status, 400, "{}", a.body);
        let j = a.json();
        assert_eq!(j["__type"], "ParameterTreeTooLarge");
        let m = j["message"].as_str().unwrap();
        assert!(m.contains("/tree/") && m.contains("20 parameters"), "{m}");
    }
    // Paging stopped at the bound, and the refusal is remembered briefly.
    assert_eq!(proxy.calls("GetParametersByPath"), 3 + 3);

    // Three parameters of 1.5 KB: past 4096 bytes.
    let a = get(&format!("{base}?path=/big"), token).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.json()["message"].as_str().unwrap().contains("4096 bytes"));
    assert!(!a.body.contains("xxxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_next_token_is_an_error_not_a_loop() {
    // Issue 26: a service answering a NextToken it already gave had a tree
    // read page until its deadline, every time. Here every page names the
    // same next token.
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    proxy.set_operation_fault(
        "GetParametersByPath",
        Fault::Answer(
            200,
            r#"{"Parameters":[{"Name":"/loop/a","Type":"String","Value":"1","Version":1}],"NextToken":"again"}"#,
        ),
    );
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let a = get(
        &format!("{url}/systemsmanager/parameters/get-by-path?path=/loop/"),
        token,
    )
    .await;
    assert_eq!(a.status, 502, "{}", a.body);
    assert_eq!(a.json()["__type"], "RepeatedNextToken", "{}", a.body);
    assert_eq!(
        proxy.calls("GetParametersByPath"),
        2,
        "the second page's token is the first's: two calls, not a deadline's worth"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selector_answer_never_lands_as_the_latest_version() {
    // Issue 26: GetParameters answers were matched by Name alone, so with
    // /a and /a:3 in one call, the first answer won for both and /a could
    // hold version 3 as "latest" for a whole TTL. The stub answers in the
    // worst order: /a:3's answer first.
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr()).await;
    proxy.set_operation_fault(
        "GetParameters",
        Fault::Answer(
            200,
            r#"{"Parameters":[
                {"Name":"/sel/a","Type":"String","Value":"old","Version":3,"Selector":":3","ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/sel/a"},
                {"Name":"/sel/a","Type":"String","Value":"new","Version":4,"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/sel/a"}
            ],"InvalidParameters":[]}"#,
        ),
    );
    let lambda = start(&proxy, &[]).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let both = get(
        &format!("{url}/systemsmanager/parameters/get?names=/sel/a,/sel/a:3"),
        token,
    )
    .await;
    assert_eq!(both.status, 200, "{}", both.body);
    let versions: Vec<i64> = both.json()["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions,
        [4, 3],
        "each name its own answer, in the order asked"
    );
    // The latest, now cached from that call: version 4, with no call made.
    let calls = proxy.calls("GetParameter");
    let latest = get(
        &format!("{url}/systemsmanager/parameters/get?name=/sel/a"),
        token,
    )
    .await;
    assert_eq!(latest.json()["Parameter"]["Version"], 4, "{}", latest.body);
    assert_eq!(latest.json()["Parameter"]["Value"], "new");
    assert_eq!(proxy.calls("GetParameter"), calls, "served from the cache");
}
