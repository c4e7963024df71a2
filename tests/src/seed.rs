//! Seeding moto without the AWS SDK: one signed `CreateSecret` through
//! sidekey-aws's own client. The demo seeds with this, so that it builds
//! without the SDK (the `sdk` feature, most of a fresh build); the suite
//! seeds with the SDK ([`crate::aws`], under that feature).

use std::time::Duration;

use serde_json::json;
use sidekey_aws::ops::{Operation, Service};
use sidekey_aws::{AwsClient, Credentials};
use zeroize::Zeroizing;

/// Create the text secret `name` with `value` in the emulator at
/// `endpoint` (us-east-1, the harness's dummy credentials). Panics if it
/// is not created: the caller has nothing to show without it.
pub async fn create_secret(endpoint: &str, name: &str, value: &str) {
    crate::hygiene::remember(value);
    let http = sidekey_aws::https::client(Duration::from_secs(1), 1).expect("the HTTPS client");
    let credentials = Credentials::new("test".into(), Zeroizing::new("test".into()), None);
    let aws = AwsClient::fixed(http, credentials, "us-east-1", endpoint).expect("the endpoint");
    let operation = Operation {
        service: Service::SecretsManager,
        name: "CreateSecret",
    };
    let body = json!({ "Name": name, "SecretString": value }).to_string();
    let answer = aws
        .call(
            aws.endpoint(Service::SecretsManager),
            Service::SecretsManager,
            &operation.target(),
            body.into_bytes(),
            Duration::from_secs(10),
            None,
        )
        .await
        .expect("CreateSecret");
    assert!(
        (200..300).contains(&answer.status),
        "CreateSecret {name}: {} {}",
        answer.status,
        answer.error_type.unwrap_or_default()
    );
}
