//! The credentials a Lambda function has: fixed ones from the environment,
//! or, under SnapStart, short-lived ones from the container endpoint,
//! refreshed before they expire.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::date_time::{DateTime, Format};
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::Client;
use crate::{Error, ErrorKind};

/// Container credentials are fetched again once they are this close to
/// expiring (the SDK's own margin is of the same order).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The largest credentials answer read.
const MAX_ANSWER: usize = 16 * 1024;

/// A function's credentials, as Lambda puts them in its environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl Credentials {
    /// Credentials from their three parts.
    pub fn new(
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        session_token: Option<Zeroizing<String>>,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token,
        }
    }

    /// The signing identity, for credentials that do not expire.
    pub fn identity(&self) -> Identity {
        self.identity_until(None)
    }

    /// The signing identity, valid until `expiry` if given.
    pub(crate) fn identity_until(&self, expiry: Option<SystemTime>) -> Identity {
        AwsCredentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.to_string(),
            self.session_token.as_ref().map(|t| t.to_string()),
            expiry,
            "lambda",
        )
        .into()
    }
}

/// Prints the access key id only.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`)
/// and the token it expects in `Authorization`.
pub struct ContainerEndpoint {
    uri: Uri,
    token: Token,
}

/// Where the endpoint's token comes from.
enum Token {
    None,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Value(Zeroizing<String>),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: read at each fetch, as
    /// the file may be rotated.
    File(std::path::PathBuf),
}

impl ContainerEndpoint {
    /// The endpoint at `uri`, with its token given or in a file.
    pub fn new(
        uri: Uri,
        token: Option<Zeroizing<String>>,
        token_file: Option<std::path::PathBuf>,
    ) -> Self {
        let token = match (token, token_file) {
            (Some(t), _) => Token::Value(t),
            (None, Some(f)) => Token::File(f),
            (None, None) => Token::None,
        };
        Self { uri, token }
    }
}

/// Where the fetcher's signing identity comes from.
pub(crate) enum Source {
    Fixed(Identity),
    Container {
        endpoint: ContainerEndpoint,
        /// The last identity fetched and when it expires.
        current: tokio::sync::Mutex<Option<(Identity, Option<SystemTime>)>>,
    },
}

impl Source {
    pub(crate) fn fixed(credentials: &Credentials) -> Self {
        Source::Fixed(credentials.identity())
    }

    pub(crate) fn container(endpoint: ContainerEndpoint) -> Self {
        Source::Container {
            endpoint,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The identity to sign with now: the fixed one, or the container's,
    /// fetched when missing or about to expire. Callers at the same moment
    /// share one fetch.
    pub(crate) async fn identity(&self, client: &Client) -> Result<Identity, Error> {
        let (endpoint, current) = match self {
            Source::Fixed(identity) => return Ok(identity.clone()),
            Source::Container { endpoint, current } => (endpoint, current),
        };
        let mut current = current.lock().await;
        let fresh = |expiry: &Option<SystemTime>| {
            expiry.is_none_or(|e| SystemTime::now() + REFRESH_MARGIN < e)
        };
        if let Some((identity, _)) = current.as_ref().filter(|(_, e)| fresh(e)) {
            return Ok(identity.clone());
        }
        let (credentials, expiry) = fetch_container(client, endpoint).await?;
        let identity = credentials.identity_until(expiry);
        *current = Some((identity.clone(), expiry));
        Ok(identity)
    }
}

/// The endpoint's answer. The two secret parts are moved into wiped
/// buffers as soon as they are read.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerAnswer {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

async fn fetch_container(
    client: &Client,
    endpoint: &ContainerEndpoint,
) -> Result<(Credentials, Option<SystemTime>), Error> {
    let failed = |what: &str| {
        Error::new(
            ErrorKind::Connection,
            format!("container credentials endpoint: {what}"),
        )
    };
    let token = match &endpoint.token {
        Token::None => None,
        Token::Value(t) => Some(t.clone()),
        Token::File(path) => Some(Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| failed(&format!("token file {}: {e}", path.display())))?
                .trim()
                .to_owned(),
        )),
    };
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(endpoint.uri.clone())
        .body(Full::new(Bytes::new()))
        .map_err(|e| failed(&e.to_string()))?;
    if let Some(token) = token {
        let mut value =
            HeaderValue::from_str(&token).map_err(|_| failed("the token is not a header value"))?;
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let (status, body) = super::exchange(client, request, MAX_ANSWER)
        .await
        .map_err(|e| failed(e.message()))?;
    if !(200..300).contains(&status) {
        return Err(Error::new(
            ErrorKind::from_status(status),
            format!("container credentials endpoint: HTTP {status}"),
        ));
    }
    let answer: ContainerAnswer =
        serde_json::from_slice(&body).map_err(|_| failed("the answer is not credentials"))?;
    let expiry = match answer.expiration.as_deref() {
        None => None,
        Some(text) => Some(
            DateTime::from_str(text, Format::DateTime)
                .ok()
                .and_then(|d| SystemTime::try_from(d).ok())
                .ok_or_else(|| failed("Expiration is not a date"))?,
        ),
    };
    let credentials = Credentials::new(
        answer.access_key_id,
        Zeroizing::new(answer.secret_access_key),
        answer.token.map(Zeroizing::new),
    );
    Ok((credentials, expiry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_the_secret_parts() {
        let c = Credentials::new(
            "AKIDEXAMPLE".into(),
            Zeroizing::new("wJalrXUtnFEMI".into()),
            Some(Zeroizing::new("session-tok".into())),
        );
        let d = format!("{c:?}");
        assert!(d.contains("AKIDEXAMPLE"));
        assert!(!d.contains("wJalr") && !d.contains("session-tok"));
    }
}
