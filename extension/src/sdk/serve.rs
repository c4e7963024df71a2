//! The operations the SDK-compatible endpoint answers from the cache, each
//! from the very entries the GET API reads (one value, one upstream call,
//! one TTL, whichever way it is read): `GetSecretValue`,
//! `BatchGetSecretValue` by ids, `GetParameter`, `GetParameters`, and
//! `GetParametersByPath` paged out of the cached tree. The requests' and
//! answers' shapes are the operations' own (`sidekey_aws::ops`).

use bytes::Bytes;
use sidekey_aws::ops::{
    batch_get_secret_value, get_parameter, get_parameters, get_parameters_by_path, get_secret_value,
};
use sidekey_cache::{wiped_bytes, Error, ErrorKind, Fetch, Key, SecretCache};

use super::error::SdkError;

/// What serving a request came to: an answer body, or "pass it through"
/// (a shape the cache does not serve, such as filters or another's page
/// token).
pub(super) enum Served {
    Body(Bytes),
    PassThrough,
}

/// Read `body` as `T`; a body the operation's served shape does not take
/// (a field sidekey does not know, filters) passes through to the service,
/// which answers it as it answers any.
fn request<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

pub(super) async fn get_secret_value<F: Fetch>(
    cache: &SecretCache<F>,
    body: &[u8],
) -> Result<Served, SdkError> {
    let Some(req) = request::<get_secret_value::Request>(body) else {
        return Ok(Served::PassThrough);
    };
    let body = cache.get_body(&Key::Secret(req.into_key())).await?;
    Ok(Served::Body(body))
}

pub(super) async fn get_parameter<F: Fetch>(
    cache: &SecretCache<F>,
    body: &[u8],
) -> Result<Served, SdkError> {
    let Some(req) = request::<get_parameter::Request>(body) else {
        return Ok(Served::PassThrough);
    };
    let body = cache.get_body(&Key::Parameter(req.into_key())).await?;
    Ok(Served::Body(body))
}

pub(super) async fn batch_get_secret_value<F: Fetch>(
    cache: &SecretCache<F>,
    body: &[u8],
) -> Result<Served, SdkError> {
    let Some(ids) = request::<batch_get_secret_value::Request>(body).and_then(|r| r.served_ids())
    else {
        return Ok(Served::PassThrough);
    };
    let outcomes = cache.get_secrets(&ids).await;
    if let Some(Err(e)) = outcomes.iter().find(|o| closed(o)) {
        return Err(e.clone().into());
    }
    let entries: Vec<batch_get_secret_value::Entry<'_>> = ids
        .iter()
        .zip(&outcomes)
        .map(|(id, o)| (id.as_str(), o.as_ref().map(|v| v.json())))
        .collect();
    Ok(Served::Body(wiped_bytes(batch_get_secret_value::body(
        &entries,
    ))))
}

/// Names that do not exist are listed in `InvalidParameters`; any other
/// failure fails the call, as it fails `GetParameters`. Latest versions
/// are read in one batch; names with a `:version` or `:label` selector
/// each on its own (the cache keeps selector reads out of batches).
pub(super) async fn get_parameters<F: Fetch>(
    cache: &SecretCache<F>,
    body: &[u8],
) -> Result<Served, SdkError> {
    let Some(req) = request::<get_parameters::Request>(body) else {
        return Ok(Served::PassThrough);
    };
    if req.names.is_empty() || req.names.len() > get_parameters::MAX_NAMES {
        return Ok(Served::PassThrough);
    }
    let keys: Vec<_> = req
        .names
        .iter()
        .map(|n| get_parameter::selector_request(n, req.with_decryption))
        .collect();
    let latest: Vec<String> = keys
        .iter()
        .filter(|k| k.version.is_none() && k.label.is_none())
        .map(|k| k.name.clone())
        .collect();
    let mut batch = cache
        .get_parameters(&latest, req.with_decryption)
        .await
        .into_iter();
    let mut outcomes = Vec::with_capacity(keys.len());
    for key in keys {
        let outcome = if key.version.is_none() && key.label.is_none() {
            batch
                .next()
                .unwrap_or_else(|| Err(Error::new(ErrorKind::Other, "a batch answer is missing")))
        } else {
            cache.get(&Key::Parameter(key)).await
        };
        outcomes.push(outcome);
    }
    let mut found = Vec::with_capacity(outcomes.len());
    let mut invalid = Vec::new();
    for (name, outcome) in req.names.iter().zip(&outcomes) {
        match outcome {
            Ok(value) => {
                found.push(value.parameter_json().ok_or_else(|| {
                    Error::new(ErrorKind::Other, "a cached parameter is malformed")
                })?)
            }
            Err(e) if e.kind() == ErrorKind::NotFound => invalid.push(name.as_str()),
            Err(e) => return Err(e.clone().into()),
        }
    }
    Ok(Served::Body(wiped_bytes(get_parameters::body(
        &found, &invalid,
    ))))
}

/// A page of the cached tree. A tree past the cache's bounds is passed
/// through: the service pages it itself.
pub(super) async fn get_parameters_by_path<F: Fetch>(
    cache: &SecretCache<F>,
    body: &[u8],
) -> Result<Served, SdkError> {
    let Some(req) = request::<get_parameters_by_path::Request>(body) else {
        return Ok(Served::PassThrough);
    };
    let Some((tree, start)) = req.served() else {
        return Ok(Served::PassThrough);
    };
    let value = match cache.get(&Key::Path(tree)).await {
        Ok(value) => value,
        Err(e) if e.code() == "ParameterTreeTooLarge" => return Ok(Served::PassThrough),
        Err(e) => return Err(e.into()),
    };
    let page = get_parameters_by_path::page_body(value.json(), start, req.page_size())
        .ok_or_else(|| Error::new(ErrorKind::Other, "a cached tree is malformed"))?;
    Ok(Served::Body(wiped_bytes(page)))
}

fn closed<T>(outcome: &Result<T, Error>) -> bool {
    matches!(outcome, Err(e) if e.kind() == ErrorKind::Closed)
}
