//! The HTTP API: answers a routed request from the cache.
//!
//! A hit is the cached value's wire body handed to hyper without a copy
//! ([`sidekey_cache::Cached::body`]): serialized once when fetched, not per
//! request. A batch answer is built from the values' cached bodies, copied
//! once into one wiped buffer sized up front (the operations' own `body`,
//! `sidekey_aws::ops`).

use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use sidekey_aws::ops::{batch_get_secret_value, get_parameters};
use sidekey_cache::key::Role;
use sidekey_cache::{wiped_bytes, Error, ErrorKind, Fetch, SecretCache};
use zeroize::Zeroizing;

use crate::auth::Token;
use crate::error::{json_response, ApiError};
use crate::request::{self, Read, Route};
use crate::sdk::Sdk;

/// A request reduced to what answering it takes ([`Api::route`]).
pub(crate) struct Routed {
    route: Result<Route, ApiError>,
    /// The path and the arrival, for the request log; only while it is on.
    log: Option<(String, Instant)>,
}

/// The API's state: the cache, the token callers of the GET API must
/// present, and the SDK-compatible endpoint's own needs.
pub(crate) struct Api<F: Fetch> {
    pub(crate) cache: SecretCache<F>,
    token: Token,
    pub(crate) sdk: Sdk,
}

impl<F: Fetch> Api<F> {
    /// An API over `cache`, the GET API guarded by `token`, the
    /// SDK-compatible endpoint by `sdk`'s signature checks.
    pub(crate) fn new(cache: SecretCache<F>, token: Token, sdk: Sdk) -> Self {
        Self { cache, token, sdk }
    }

    /// Route `req`, taking out of it all its answer needs, so the caller
    /// can drop the request before awaiting [`Api::answer`].
    ///
    /// Why it matters: the request's head is a view of hyper's read buffer.
    /// While the request lives, the read hyper makes meanwhile (to notice a
    /// client that hangs up) cannot reuse that buffer and allocates a new
    /// 8 KiB one, a `malloc` and a `free` past the thread caches on every
    /// request, which the floor does not make (issue 14).
    pub(crate) fn route<B>(&self, req: &Request<B>) -> Routed {
        // Timed only when the request log is on: a clock read per request
        // is measurable on the hot path.
        let log = tracing::enabled!(tracing::Level::DEBUG)
            .then(|| (req.uri().path().to_owned(), Instant::now()));
        Routed {
            route: request::route(req.method(), req.uri(), req.headers(), &self.token),
            log,
        }
    }

    /// The answer to `routed` if it is at hand: a plain read of a value
    /// this thread's memo holds fresh ([`SecretCache::body_now`]), with the
    /// request log off. Anything else is [`Api::answer`]'s (`None`).
    ///
    /// Answered in the service call itself, the hot path builds no future
    /// for hyper to hold: `answer`'s, which every route shares, is large
    /// (the waits of a miss, a batch, a refresh), and hyper moved it into
    /// the connection's slot and polled it on every request (issue 31).
    pub(crate) fn answer_now(&self, routed: &Routed) -> Option<Response<Full<Bytes>>> {
        let Ok(Route::Read(read)) = &routed.route else {
            return None;
        };
        // A role must be admitted (its LRU touched): `read` does it.
        let plain = !read.refresh_now && read.field.is_none() && read.key.role().is_none();
        if !plain || routed.log.is_some() {
            return None;
        }
        let body = self.cache.body_now(&read.key)?;
        Some(json_response(StatusCode::OK, body))
    }

    /// Answer a routed request. Never fails: errors become their JSON
    /// response.
    pub(crate) async fn answer(&self, routed: Routed) -> Response<Full<Bytes>> {
        let Routed { route, log } = routed;
        let (id, result) = match route {
            Ok(Route::Read(read)) => {
                // The id is only for the debug line: no allocation without it.
                let id = log.is_some().then(|| read.key.to_string());
                (id, self.read(read).await)
            }
            Ok(Route::Secrets { ids, role }) => {
                let id = log.is_some().then(|| ids.join(","));
                (id, self.secrets(&ids, role).await)
            }
            Ok(Route::Parameters {
                names,
                with_decryption,
                role,
            }) => {
                let id = log.is_some().then(|| names.join(","));
                (id, self.parameters(&names, with_decryption, role).await)
            }
            Ok(Route::Ping) => (None, Ok(ping())),
            Ok(Route::Metrics) => (None, Ok(self.metrics())),
            Err(e) => (None, Err(e)),
        };
        let response = result.unwrap_or_else(ApiError::into_response);
        if let Some((path, started)) = log {
            tracing::debug!(
                status = response.status().as_u16(),
                path,
                key = id.as_deref().unwrap_or("-"),
                micros = started.elapsed().as_micros() as u64,
                "request"
            );
        }
        response
    }

    /// Take a read's role in ([`sidekey_aws::roles::Roles::admit`]): one
    /// the allowlist refuses is refused; one that pushes the least
    /// recently used role out drops that role's entries (its credentials
    /// are wiped as they go).
    fn admit(&self, role: Option<&str>) -> Result<(), ApiError> {
        let Some(arn) = role else {
            return Ok(());
        };
        let evicted = self.sdk.aws().roles().admit(arn).map_err(ApiError::Role)?;
        if let Some(evicted) = evicted {
            let dropped = self
                .cache
                .invalidate(|key, _| key.role() == Some(&*evicted));
            tracing::info!(role = %evicted, dropped, "role evicted: its credentials and entries wiped");
        }
        Ok(())
    }

    async fn read(&self, read: Read) -> Result<Response<Full<Bytes>>, ApiError> {
        self.admit(read.key.role())?;
        let value = match (read.refresh_now, &read.field) {
            (true, _) => self.cache.refresh_now(&read.key).await?,
            (false, Some(_)) => self.cache.get(&read.key).await?,
            // The hot path: only the body is needed, not the value.
            (false, None) => {
                let body = self.cache.get_body(&read.key).await?;
                return Ok(json_response(StatusCode::OK, body));
            }
        };
        let body = match read.field {
            None => value.body(),
            Some(field) => {
                let json = value.field_json(&field)?;
                let name = serde_json::to_string(&field).unwrap_or_default();
                let mut out = Zeroizing::new(Vec::with_capacity(json.len() + name.len() + 20));
                out.extend_from_slice(b"{\"key\":");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b",\"value\":");
                out.extend_from_slice(json.as_bytes());
                out.push(b'}');
                wiped_bytes(out)
            }
        };
        Ok(json_response(StatusCode::OK, body))
    }

    /// `BatchGetSecretValue`'s answer: one id's failure is its entry in
    /// `Errors`, not the request's; only a shut-down cache fails it whole.
    async fn secrets(&self, ids: &[String], role: Role) -> Result<Response<Full<Bytes>>, ApiError> {
        self.admit(role.as_deref())?;
        let outcomes = self.cache.get_secrets_as(ids, role).await;
        if let Some(Err(e)) = outcomes.iter().find(|o| is_closed(o)) {
            return Err(e.clone().into());
        }
        let entries: Vec<batch_get_secret_value::Entry<'_>> = ids
            .iter()
            .zip(&outcomes)
            .map(|(id, o)| (id.as_str(), o.as_ref().map(|v| v.json())))
            .collect();
        let body = batch_get_secret_value::body(&entries);
        Ok(json_response(StatusCode::OK, wiped_bytes(body)))
    }

    /// `GetParameters`' answer: names that do not exist are listed in
    /// `InvalidParameters`; any other failure fails the request, as it
    /// fails `GetParameters` (the shape has no place for it).
    async fn parameters(
        &self,
        names: &[String],
        with_decryption: bool,
        role: Role,
    ) -> Result<Response<Full<Bytes>>, ApiError> {
        self.admit(role.as_deref())?;
        let outcomes = self
            .cache
            .get_parameters_as(names, with_decryption, role)
            .await;
        let mut found = Vec::with_capacity(names.len());
        let mut invalid = Vec::new();
        for (name, outcome) in names.iter().zip(&outcomes) {
            match outcome {
                Ok(value) => found.push(value.parameter_json().ok_or_else(|| {
                    Error::new(ErrorKind::Other, "a cached parameter is malformed")
                })?),
                Err(e) if e.kind() == ErrorKind::NotFound => invalid.push(name.as_str()),
                Err(e) => return Err(e.clone().into()),
            }
        }
        let body = get_parameters::body(&found, &invalid);
        Ok(json_response(StatusCode::OK, wiped_bytes(body)))
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        let body = serde_json::to_vec(&self.cache.metrics()).unwrap_or_default();
        json_response(StatusCode::OK, Bytes::from(body))
    }
}

fn is_closed<T>(outcome: &Result<T, Error>) -> bool {
    matches!(outcome, Err(e) if e.kind() == ErrorKind::Closed)
}

fn ping() -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"healthy")));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}
