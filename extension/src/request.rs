//! Turning an HTTP request into a [`Route`], or a precise [`ApiError`].
//!
//! Pure functions of the method, URI and headers: no I/O, no panics, every
//! rejection names what was wrong. Percent-decoding is strict (a `%` must
//! be followed by two hex digits) and `+` stays a plus: secret and parameter
//! names may contain `+` and never contain spaces.

use std::borrow::Cow;

use http::{HeaderMap, Method, Uri};
use sidekey_cache::{Key, ParameterRequest, SecretRequest};
use subtle::ConstantTimeEq;

use crate::config::Token;
use crate::ApiError;

/// The token header of the official extension.
pub const TOKEN_HEADER: &str = "x-aws-parameters-secrets-token";

/// Longest id accepted (a full secret ARN is at most 2048 characters).
const MAX_ID_LEN: usize = 2048;
/// Longest query string accepted.
const MAX_QUERY_LEN: usize = 8192;

/// What a valid request asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /ping`
    Ping,
    /// `GET /metrics`
    Metrics,
    /// A secret or parameter read.
    Read(Read),
}

/// A value read.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    /// What to read.
    pub key: Key,
    /// `refreshNow=true`: bypass the cache and refill it.
    pub refresh_now: bool,
    /// `key=FIELD`: answer one field of a JSON secret.
    pub field: Option<String>,
}

/// Route a request, checking method, relay header and token.
pub fn route(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    token: &Token,
) -> Result<Route, ApiError> {
    if headers.contains_key("x-forwarded-for") {
        return Err(ApiError::Forwarded);
    }
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let path = uri.path();
    enum Endpoint<'a> {
        Secret,
        Parameter,
        V1(&'a str),
    }
    let endpoint = match path {
        "/ping" => return Ok(Route::Ping),
        "/metrics" => None,
        "/secretsmanager/get" => Some(Endpoint::Secret),
        "/systemsmanager/parameters/get" => Some(Endpoint::Parameter),
        _ => match path.strip_prefix("/v1/") {
            Some(raw) => Some(Endpoint::V1(raw)),
            None => return Err(ApiError::UnknownPath),
        },
    };
    check_token(headers, token)?;
    let query = uri.query().unwrap_or("");
    if query.len() > MAX_QUERY_LEN {
        return Err(bad(format!(
            "query string longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    let Some(endpoint) = endpoint else {
        return match query {
            "" => Ok(Route::Metrics),
            _ => Err(bad("/metrics takes no parameters".into())),
        };
    };
    let params = Params::parse(query)?;
    let read = match endpoint {
        Endpoint::Secret => {
            params.only(&["secretId", "versionId", "versionStage", "refreshNow", "key"])?;
            let id = params.required("secretId")?;
            secret_read(id, &params)?
        }
        Endpoint::V1(raw) => {
            params.only(&["versionId", "versionStage", "refreshNow", "key"])?;
            let id = decode(raw).map_err(|e| bad(format!("path: {e}")))?;
            secret_read(id, &params)?
        }
        Endpoint::Parameter => {
            params.only(&["name", "version", "label", "withDecryption", "refreshNow"])?;
            let name = params.required("name")?;
            check_id(&name).map_err(|e| bad(format!("name: {e}")))?;
            let version = match params.get("version") {
                None => None,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n >= 1 => Some(n),
                    _ => return Err(bad(format!("version: {v:?} is not a version number"))),
                },
            };
            let label = params.get("label").map(Cow::into_owned);
            if version.is_some() && label.is_some() {
                return Err(bad("give version or label, not both".into()));
            }
            if let Some(l) = &label {
                check_id(l).map_err(|e| bad(format!("label: {e}")))?;
            }
            Read {
                key: Key::Parameter(ParameterRequest {
                    name: name.into_owned(),
                    version,
                    label,
                    with_decryption: params.flag("withDecryption")?,
                }),
                refresh_now: params.flag("refreshNow")?,
                field: None,
            }
        }
    };
    Ok(Route::Read(read))
}

fn secret_read(id: Cow<'_, str>, params: &Params<'_>) -> Result<Read, ApiError> {
    check_id(&id).map_err(|e| bad(format!("secretId: {e}")))?;
    let version_id = params.get("versionId").map(Cow::into_owned);
    let version_stage = params.get("versionStage").map(Cow::into_owned);
    for (name, v) in [("versionId", &version_id), ("versionStage", &version_stage)] {
        if let Some(v) = v {
            check_id(v).map_err(|e| bad(format!("{name}: {e}")))?;
        }
    }
    let field = params.get("key").map(Cow::into_owned);
    if let Some(f) = &field {
        check_id(f).map_err(|e| bad(format!("key: {e}")))?;
    }
    Ok(Read {
        key: Key::Secret(SecretRequest {
            id: id.into_owned(),
            version_id,
            version_stage,
        }),
        refresh_now: params.flag("refreshNow")?,
        field,
    })
}

/// Constant-time token check: 401 when absent, 403 when wrong.
fn check_token(headers: &HeaderMap, token: &Token) -> Result<(), ApiError> {
    let mut values = headers.get_all(TOKEN_HEADER).iter();
    let Some(given) = values.next() else {
        return Err(ApiError::MissingToken);
    };
    if values.next().is_some() {
        return Err(ApiError::WrongToken);
    }
    let expected = token.as_bytes();
    let given = given.as_bytes();
    // `ct_eq` on slices of different lengths is false without comparing
    // contents; the length of the expected token is not a secret worth
    // hiding (session tokens have a public format).
    if expected.is_empty() || !bool::from(given.ct_eq(expected)) {
        return Err(ApiError::WrongToken);
    }
    Ok(())
}

/// An id, version, label or field: non-empty, bounded, no control characters.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("longer than {MAX_ID_LEN} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

/// Strict percent-decoding to UTF-8.
fn decode(raw: &str) -> Result<Cow<'_, str>, String> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while let Some(p) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let hex = bytes
            .get(at + 1..at + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        if hex.is_none() {
            return Err("invalid percent-encoding".into());
        }
        i = at + 3;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "not valid UTF-8 once decoded".into())
}

/// Decoded query parameters, each name at most once.
struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    fn parse(query: &'a str) -> Result<Self, ApiError> {
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = decode(name).map_err(|e| bad(format!("parameter name: {e}")))?;
            let value = decode(value).map_err(|e| bad(format!("{name}: {e}")))?;
            if pairs.iter().any(|(n, _)| *n == name) {
                return Err(bad(format!("parameter {name:?} given more than once")));
            }
            pairs.push((name, value));
        }
        Ok(Params { pairs })
    }

    fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self
            .pairs
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_ref()))
        {
            Some((n, _)) => Err(bad(format!(
                "unknown parameter {n:?}; allowed: {}",
                allowed.join(", ")
            ))),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn required(&self, name: &str) -> Result<Cow<'a, str>, ApiError> {
        self.get(name)
            .ok_or_else(|| bad(format!("missing required parameter {name:?}")))
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(bad(format!("{name}: {v:?} is not true or false"))),
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
