//! Where the fetcher's credentials come from: fixed ones from the
//! environment, or, under SnapStart, short-lived ones from the container
//! endpoint, fetched again before they expire (and at once after the
//! service refused them).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use serde::Deserialize;
use sidekey_cache::{Error, ErrorKind};
use zeroize::Zeroizing;

use crate::client::{exchange, Client};
use crate::errors::kind_of_status;
use crate::sigv4::Credentials;

/// Container credentials are fetched again once they are this close to
/// expiring (the SDK's own margin is of the same order).
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The largest credentials answer read.
const MAX_ANSWER: usize = 16 * 1024;

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

/// Where the fetcher's credentials come from.
pub enum Source {
    /// The environment's, for the environment's life.
    Fixed(Arc<Credentials>),
    /// The container endpoint's (SnapStart).
    Container {
        /// Where they are fetched.
        endpoint: ContainerEndpoint,
        /// The last fetched and when they expire.
        current: tokio::sync::Mutex<Option<(Arc<Credentials>, Option<SystemTime>)>>,
    },
}

impl Source {
    /// `credentials`, for good.
    pub fn fixed(credentials: Credentials) -> Self {
        Source::Fixed(Arc::new(credentials))
    }

    /// Fetched from `endpoint` when needed.
    pub fn container(endpoint: ContainerEndpoint) -> Self {
        Source::Container {
            endpoint,
            current: tokio::sync::Mutex::new(None),
        }
    }

    /// The credentials to sign with now: the fixed ones, or the
    /// container's, fetched when missing or about to expire. Callers at the
    /// same moment share one fetch.
    pub async fn get(&self, client: &Client) -> Result<Arc<Credentials>, Error> {
        let (endpoint, current) = match self {
            Source::Fixed(credentials) => return Ok(Arc::clone(credentials)),
            Source::Container { endpoint, current } => (endpoint, current),
        };
        let mut current = current.lock().await;
        let fresh = |expiry: &Option<SystemTime>| {
            expiry.is_none_or(|e| SystemTime::now() + REFRESH_MARGIN < e)
        };
        if let Some((credentials, _)) = current.as_ref().filter(|(_, e)| fresh(e)) {
            return Ok(Arc::clone(credentials));
        }
        let (credentials, expiry) = fetch_container(client, endpoint).await?;
        let credentials = Arc::new(credentials);
        *current = Some((Arc::clone(&credentials), expiry));
        Ok(credentials)
    }

    /// Forget credentials the service refused (expired early, rotated):
    /// the next call fetches fresh ones. Fixed credentials stay: nothing
    /// else could replace them.
    pub async fn forget(&self) {
        if let Source::Container { current, .. } = self {
            current.lock().await.take();
        }
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
    let answer = exchange(client, request, MAX_ANSWER)
        .await
        .map_err(|e| failed(e.message()))?;
    let (status, body) = (answer.status, answer.body);
    if !(200..300).contains(&status) {
        return Err(Error::new(
            kind_of_status(status),
            format!("container credentials endpoint: HTTP {status}"),
        ));
    }
    let answer: ContainerAnswer =
        serde_json::from_slice(&body).map_err(|_| failed("the answer is not credentials"))?;
    let expiry = match answer.expiration.as_deref() {
        None => None,
        Some(text) => Some(
            humantime::parse_rfc3339_weak(text).map_err(|_| failed("Expiration is not a date"))?,
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

    #[test]
    fn container_expirations_parse() {
        let t = humantime::parse_rfc3339_weak("2026-12-06T05:16:16Z").unwrap();
        assert_eq!(
            humantime::format_rfc3339_seconds(t).to_string(),
            "2026-12-06T05:16:16Z"
        );
    }
}
