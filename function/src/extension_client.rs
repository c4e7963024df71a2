//! [`ExtensionClient`]: a function's [`SecretSource`] over the extension's
//! HTTP API on localhost (sidekey's, or the official extension's: the API is
//! the same).
//!
//! An error answer's `__type` reads back as the [`ErrorKind`] the cache gave
//! it ([`ErrorKind::from_code`]): the function decides on the same kinds as
//! with an embedded cache, never by searching message text.

use std::time::Duration;

use serde_json::Value;
use sidekey_cache::{protocol, Error, ErrorKind, SecretSource, SourceError};
use zeroize::Zeroizing;

/// How long a read from the extension may take before the function gives
/// up with a clear error (a frozen or wedged extension must not hang it).
const EXTENSION_TIMEOUT: Duration = Duration::from_secs(3);

/// The sidekey (or official) extension's HTTP API on localhost, over one
/// keep-alive connection reused across invocations.
pub struct ExtensionClient {
    client: reqwest::Client,
    base: String,
    token: Zeroizing<String>,
}

impl ExtensionClient {
    /// A client for the extension at `127.0.0.1:port`, presenting `token`.
    pub fn new(port: u16, token: String) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(EXTENSION_TIMEOUT)
            .no_proxy()
            .build()?;
        Ok(Self {
            client,
            base: format!("http://127.0.0.1:{port}"),
            token: Zeroizing::new(token),
        })
    }
}

impl SecretSource for ExtensionClient {
    async fn secret(
        &self,
        id: &str,
        field: Option<&str>,
    ) -> Result<Zeroizing<String>, SourceError> {
        let failed = |kind, message: String| SourceError::new(id, Error::new(kind, message));
        let mut query = vec![("secretId", id)];
        if let Some(f) = field {
            query.push(("key", f));
        }
        let response = self
            .client
            .get(format!("{}/secretsmanager/get", self.base))
            .query(&query)
            .header("X-Aws-Parameters-Secrets-Token", self.token.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    let message = format!("the extension at {} did not answer in time", self.base);
                    failed(ErrorKind::Timeout, message)
                } else {
                    let message = format!("the extension at {} is not reachable", self.base);
                    failed(ErrorKind::Connection, message)
                }
            })?;
        let status = response.status().as_u16();
        let mut body = Zeroizing::new(Vec::new());
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|_| {
            let message = "the extension's answer was cut short".to_owned();
            failed(ErrorKind::Connection, message)
        })? {
            body.extend_from_slice(&chunk);
        }
        match status {
            200 => decode(id, field, &body),
            // Error bodies are {"__type", "message"} and carry no value.
            _ => Err(SourceError::new(id, protocol::error_answer(status, &body))),
        }
    }
}

/// Pull the value out of a 200 answer: `{"key","value"}` for a field read,
/// GetSecretValue's JSON otherwise.
fn decode(id: &str, field: Option<&str>, body: &[u8]) -> Result<Zeroizing<String>, SourceError> {
    let malformed = |reason: &str| {
        SourceError::new(id, Error::new(ErrorKind::InvalidRequest, reason.to_owned()))
    };
    let mut v: Value =
        serde_json::from_slice(body).map_err(|_| malformed("the answer is not JSON"))?;
    let slot = match field {
        Some(_) => v.get_mut("value"),
        None => v.get_mut("SecretString"),
    };
    let out = match slot.map(Value::take) {
        Some(Value::String(s)) => Zeroizing::new(s),
        Some(Value::Null) | None => return Err(malformed("the answer has no text value")),
        Some(other) => Zeroizing::new(other.to_string()),
    };
    Ok(out)
}
