//! Turning an HTTP request into a [`Route`], or a precise [`ApiError`].
//!
//! Pure functions of the method, URI and headers: no I/O, no panics, every
//! rejection names what was wrong. This file checks what every request
//! shares (relay header, method, path, token) and hands the query to the
//! endpoint's own parser: [`secret`], [`batch`], [`parameter`], [`path`];
//! [`query`] decodes.

use http::{HeaderMap, HeaderName, Method, Uri};
use sidekey_cache::key::Role;
use sidekey_cache::Key;

use crate::auth::{self, Token, TOKEN_HEADER};
use crate::error::ApiError;

mod batch;
mod parameter;
mod path;
mod query;
mod secret;

/// What a valid request asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /ping`
    Ping,
    /// `GET /metrics`
    Metrics,
    /// A secret, parameter or parameter tree read.
    Read(Read),
    /// `GET /secretsmanager/batch`: current secrets, distinct, in order.
    Secrets {
        /// The ids.
        ids: Vec<String>,
        /// `roleArn`.
        role: Role,
    },
    /// `GET /systemsmanager/parameters/get?names=`: latest parameters,
    /// distinct, in order.
    Parameters {
        /// The names.
        names: Vec<String>,
        /// `withDecryption=true`.
        with_decryption: bool,
        /// `roleArn`.
        role: Role,
    },
}

/// A value read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Read {
    /// What to read.
    pub key: Key,
    /// `refreshNow=true`: bypass the cache and refill it.
    pub refresh_now: bool,
    /// `key=FIELD`: answer one field of a JSON secret.
    pub field: Option<String>,
}

/// The endpoints, by path.
enum Endpoint<'a> {
    Ping,
    Metrics,
    Secret,
    SecretBatch,
    Parameter,
    ParameterPath,
    V1(&'a str),
}

impl<'a> Endpoint<'a> {
    /// The endpoint at `path`. A trailing slash is accepted on the fixed
    /// paths, as AWS's documentation writes them (`/secretsmanager/get/?...`).
    fn of(path: &'a str) -> Option<Self> {
        let fixed = match path.strip_suffix('/') {
            Some(p) if !p.is_empty() => p,
            _ => path,
        };
        Some(match fixed {
            "/ping" => Endpoint::Ping,
            "/metrics" => Endpoint::Metrics,
            "/secretsmanager/get" => Endpoint::Secret,
            "/secretsmanager/batch" => Endpoint::SecretBatch,
            "/systemsmanager/parameters/get" => Endpoint::Parameter,
            "/systemsmanager/parameters/get-by-path" => Endpoint::ParameterPath,
            _ => Endpoint::V1(path.strip_prefix("/v1/")?),
        })
    }
}

/// A relayed request's mark: the extension answers only local callers.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Route a request, checking relay header, method, path and token.
pub(crate) fn route(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    token: &Token,
) -> Result<Route, ApiError> {
    // One pass over the few headers a caller sends, comparing names:
    // looking the two up instead hashed each name on every request
    // (`hash_elem_using`, about 270 instructions a request, issue 31).
    let mut forwarded = false;
    let mut presented = auth::Presented::default();
    for (name, value) in headers {
        if *name == TOKEN_HEADER {
            presented.add(value);
        } else if *name == X_FORWARDED_FOR {
            forwarded = true;
        }
    }
    if forwarded {
        return Err(ApiError::Forwarded);
    }
    if method != Method::GET {
        return Err(ApiError::MethodNotAllowed);
    }
    let endpoint = Endpoint::of(uri.path()).ok_or(ApiError::UnknownPath)?;
    if let Endpoint::Ping = endpoint {
        return Ok(Route::Ping);
    }
    auth::check(presented, token)?;
    let query = uri.query().unwrap_or("");
    let read = match endpoint {
        Endpoint::Ping => return Ok(Route::Ping),
        Endpoint::Metrics => {
            query::Params::parse(query, &[])
                .map_err(|_| query::bad("/metrics takes no parameters".into()))?;
            return Ok(Route::Metrics);
        }
        Endpoint::Secret => secret::get(query)?,
        Endpoint::V1(raw_id) => secret::v1(raw_id, query)?,
        Endpoint::SecretBatch => return batch::get(query),
        Endpoint::Parameter => return parameter::get(query),
        Endpoint::ParameterPath => path::get(query)?,
    };
    Ok(Route::Read(read))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
