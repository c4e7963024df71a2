//! What verifying an SDK request's SigV4 signature costs the extension
//! (the SDK-compatible endpoint verifies every request): timed over many
//! verifications of a request shaped as boto3 signs `GetSecretValue`, with
//! a session token as long as Lambda's.

use std::time::{Duration, Instant, SystemTime};

use sidekey_aws::sigv4::{self, Credentials, Received, Scope, Signable};
use zeroize::Zeroizing;

/// Microseconds of one verification, the median of `rounds` rounds of
/// `per_round` each (on one core, as a request is).
pub fn verify_us(rounds: usize, per_round: usize) -> f64 {
    // Lambda's session tokens run to about 1 KB.
    let token = "IQoJb3JpZ2luX2VjEJr".repeat(45);
    let credentials = Credentials::new(
        "ASIAIOSFODNN7EXAMPLE".into(),
        Zeroizing::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        Some(Zeroizing::new(token.clone())),
    );
    let body = br#"{"SecretId": "prod/openweather"}"#;
    let date = sigv4::amz_date(SystemTime::now());
    let mut headers = vec![
        ("host", "127.0.0.1:2773"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-date", date.as_str()),
        ("x-amz-security-token", token.as_str()),
    ];
    let payload = sigv4::sha256_hex(body);
    let authorization = sigv4::authorization(
        &Signable {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256: &payload,
        },
        &date,
        Scope {
            region: "us-east-1",
            service: "secretsmanager",
        },
        &credentials,
    );
    headers.push((
        "user-agent",
        "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux",
    ));
    headers.push(("authorization", authorization.as_str()));
    let request = Received {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                let ok = sigv4::verify(
                    &request,
                    &credentials,
                    "us-east-1",
                    &["secretsmanager"],
                    SystemTime::now(),
                );
                assert!(ok.is_ok(), "{ok:?}");
            }
            start.elapsed() / u32::try_from(per_round).unwrap_or(1)
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e6
}
