/*!
The Rust client of the sidekey extension's localhost API.

A Rust Lambda function that reads its secrets through the extension adds
this crate and reads through [`ExtensionClient`], a
[`SecretSource`]: sidekey's extension or the official AWS Parameters and
Secrets Lambda Extension (the API is the same) on `127.0.0.1`, one
keep-alive connection reused across invocations, the token header set from
`AWS_SESSION_TOKEN` by the caller.

```no_run
# async fn handler() -> Result<(), Box<dyn std::error::Error>> {
use sidekey_client::{ExtensionClient, SecretSource};

let token = std::env::var("AWS_SESSION_TOKEN")?;
let client = ExtensionClient::new(2773, token)?;
let api_key = client.secret("prod/openweather", Some("apikey")).await?;
# Ok(()) }
```

An error answer's `__type` reads back as the [`ErrorKind`] the cache gave
it (`sidekey_aws::errors`): the function decides on the same kinds as with
an embedded cache, never by searching message text. Values are decoded
into wiped buffers and never copied by a parser.
*/
#![warn(missing_docs)]

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use sidekey_aws::errors::error_answer;
use sidekey_cache::json::unescape;
use sidekey_cache::{Error, ErrorKind};
pub use sidekey_cache::{SecretSource, SourceError};
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
            200 => decode(id, &body),
            // Error bodies are {"__type", "message"} and carry no value.
            _ => Err(SourceError::new(id, error_answer(status, &body))),
        }
    }
}

/// Pull the value out of a 200 answer: `{"key","value"}` for a field read,
/// GetSecretValue's JSON otherwise. The value is borrowed from the (wiped)
/// body and decoded into a wiped buffer: no parser's copy is left behind.
fn decode(id: &str, body: &[u8]) -> Result<Zeroizing<String>, SourceError> {
    #[derive(Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, alias = "SecretString")]
        value: Option<&'a RawValue>,
    }
    let malformed = |reason: &str| {
        SourceError::new(id, Error::new(ErrorKind::InvalidRequest, reason.to_owned()))
    };
    let answer: Answer =
        serde_json::from_slice(body).map_err(|_| malformed("the answer is not JSON"))?;
    let raw = match answer.value {
        Some(raw) if raw.get() != "null" => raw.get(),
        _ => return Err(malformed("the answer has no text value")),
    };
    if raw.starts_with('"') {
        unescape(raw).ok_or_else(|| malformed("the value is not a JSON string"))
    } else {
        // A field holding a number, object...: its JSON text.
        Ok(Zeroizing::new(raw.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_to_their_value() {
        let whole = br#"{"ARN":"a","Name":"n","SecretString":"{\"apikey\":\"k\\\"1\"}"}"#;
        assert_eq!(decode("n", whole).unwrap().as_str(), r#"{"apikey":"k\"1"}"#);
        let field = br#"{"key":"apikey","value":"k\u00e9y"}"#;
        assert_eq!(decode("n", field).unwrap().as_str(), "kéy");
        let number = br#"{"key":"port","value":5432}"#;
        assert_eq!(decode("n", number).unwrap().as_str(), "5432");
        for bad in [
            &br#"{"value":null}"#[..],
            b"{}",
            b"not json",
            br#"{"SecretBinary":"AA=="}"#,
        ] {
            let e = decode("n", bad).unwrap_err();
            assert_eq!((e.id(), e.kind()), ("n", ErrorKind::InvalidRequest));
        }
    }
}
