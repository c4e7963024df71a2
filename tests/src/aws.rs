//! AWS SDK clients aimed at an emulator: region us-east-1, dummy static
//! credentials, an explicit endpoint. Used to seed moto and to build the
//! cache's two fetchers in tests.

use aws_config::{BehaviorVersion, ConfigLoader, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use aws_sdk_secretsmanager::primitives::Blob;
use base64::Engine as _;
use sidekey_aws::{AwsClient, AwsFetcher, SigV4Fetcher, Timeouts};
use zeroize::Zeroizing;

/// Region, credentials and endpoint for the emulator at `endpoint`.
pub fn loader(endpoint: &str) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .http_client(
            AwsFetcher::http_client(std::time::Duration::from_secs(1), 3)
                .expect("the HTTPS client"),
        )
}

/// A loaded SDK configuration for `endpoint`.
pub async fn config(endpoint: &str) -> SdkConfig {
    loader(endpoint).load().await
}

/// The SDK fetcher, aimed at `endpoint`.
pub async fn fetcher(endpoint: &str) -> AwsFetcher {
    AwsFetcher::from_sdk_config(&config(endpoint).await, Timeouts::default())
}

/// The lean fetcher (the extension's), aimed at `endpoint` for both
/// services, with the same region and credentials.
pub fn sigv4_fetcher(endpoint: &str) -> SigV4Fetcher {
    let client =
        sidekey_aws::https::client(std::time::Duration::from_secs(1), 3).expect("the HTTPS client");
    let credentials =
        sidekey_aws::Credentials::new("test".into(), Zeroizing::new("test".into()), None);
    let aws = AwsClient::fixed(client, credentials, "us-east-1", endpoint).expect("the endpoint");
    SigV4Fetcher::new(std::sync::Arc::new(aws), Timeouts::default())
}

/// A Secrets Manager client for seeding.
pub async fn secrets(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&config(endpoint).await)
}

/// An SSM client for seeding.
pub async fn ssm(endpoint: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&config(endpoint).await)
}

/// What a created secret is known by.
#[derive(Clone, Debug)]
pub struct Created {
    /// Full ARN.
    pub arn: String,
    /// Version id of the first value.
    pub version_id: String,
}

/// Create a text secret.
pub async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &str,
) -> Created {
    crate::hygiene::remember(value);
    let out = client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
        .expect("CreateSecret");
    Created {
        arn: out.arn.unwrap_or_default(),
        version_id: out.version_id.unwrap_or_default(),
    }
}

/// Create a binary secret.
pub async fn create_binary_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    value: &[u8],
) -> Created {
    crate::hygiene::remember(&base64::engine::general_purpose::STANDARD.encode(value));
    let out = client
        .create_secret()
        .name(name)
        .secret_binary(Blob::new(value))
        .send()
        .await
        .expect("CreateSecret");
    Created {
        arn: out.arn.unwrap_or_default(),
        version_id: out.version_id.unwrap_or_default(),
    }
}

/// Put a new current value; returns its version id.
pub async fn put_secret(client: &aws_sdk_secretsmanager::Client, id: &str, value: &str) -> String {
    crate::hygiene::remember(value);
    client
        .put_secret_value()
        .secret_id(id)
        .secret_string(value)
        .send()
        .await
        .expect("PutSecretValue")
        .version_id
        .unwrap_or_default()
}

/// Put an SSM parameter (`String` or `SecureString`); returns its version.
pub async fn put_parameter(
    client: &aws_sdk_ssm::Client,
    name: &str,
    value: &str,
    secure: bool,
) -> i64 {
    crate::hygiene::remember(value);
    let kind = if secure {
        aws_sdk_ssm::types::ParameterType::SecureString
    } else {
        aws_sdk_ssm::types::ParameterType::String
    };
    client
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter")
        .version
}
