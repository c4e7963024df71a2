//! A function-side figure: what reading 5 cached secrets costs a function
//! through the extension, as one `/secretsmanager/batch` request against 5
//! `/secretsmanager/get` requests, over one keep-alive connection (as
//! `ExtensionClient` reads). moto behind the real `sidekey` binary; every
//! value is cached before timing, so this is the localhost cost alone.
//!
//! `cargo run -p sidekey-tests --bin batch_probe [ROUNDS]`; the figure is
//! for the profile the `sidekey` binary found was built with (printed).

use std::time::{Duration, Instant};

use sidekey_tests::aws;
use sidekey_tests::client::send;
use sidekey_tests::lambda::{bin, Lambda, Options};
use sidekey_tests::moto::Moto;

const IDS: [&str; 5] = [
    "probe/db",
    "probe/api",
    "probe/queue",
    "probe/cache",
    "probe/mail",
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(500);
    let moto = Moto::start();
    let sm = aws::secrets(&moto.url()).await;
    for id in IDS {
        aws::create_secret(
            &sm,
            id,
            &format!(r#"{{"user":"u","password":"{id}-{}"}}"#, "p".repeat(40)),
        )
        .await;
    }
    let lambda = Lambda::start(Options::extension(moto.url(), &[])).await;
    let (url, token) = (lambda.url(), Some(lambda.token.as_str()));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .no_proxy()
        .build()
        .expect("client");
    let batch_url = format!("{url}/secretsmanager/batch?secretIds={}", IDS.join(","));
    let single_urls: Vec<String> = IDS
        .iter()
        .map(|id| format!("{url}/secretsmanager/get?secretId={id}"))
        .collect();
    // Warm: every value cached, the connection open.
    let a = send(&client, &batch_url, token).await;
    assert_eq!(a.status, 200, "{}", a.body);

    let mut batch = Vec::with_capacity(rounds);
    let mut singles = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        // Interleaved, so both see the same machine load.
        let t = Instant::now();
        let a = send(&client, &batch_url, token).await;
        batch.push(t.elapsed());
        assert_eq!(a.status, 200);
        let t = Instant::now();
        for u in &single_urls {
            let a = send(&client, u, token).await;
            assert_eq!(a.status, 200);
        }
        singles.push(t.elapsed());
    }
    let m = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 9 / 10])
    };
    let (b50, b90) = m(&mut batch);
    let (s50, s90) = m(&mut singles);
    let sidekey = bin("sidekey");
    let profile = if sidekey.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "debug"
    };
    println!(
        "5 cached secrets, {rounds} rounds, sidekey {profile} build ({})",
        sidekey.display()
    );
    println!("  batch of 5:     median {b50:?}  p90 {b90:?}");
    println!("  5 single reads: median {s50:?}  p90 {s90:?}");
    println!(
        "  5 singles / batch (median): {:.2}x",
        s50.as_secs_f64() / b50.as_secs_f64()
    );
    let m = send(&client, &format!("{url}/metrics"), token).await;
    println!("  extension metrics: {}", m.body);
    drop(lambda);
}
