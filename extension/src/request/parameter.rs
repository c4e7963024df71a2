//! `GET /systemsmanager/parameters/get?name=N`: one parameter; with
//! `names=A,B,...` instead, several (`GetParameters`).

use sidekey_aws::ops::get_parameters::MAX_NAMES;
use sidekey_cache::{Key, ParameterRequest};

use super::query::{bad, Params};
use super::{Read, Route};
use crate::error::ApiError;
use crate::ids;

/// `/systemsmanager/parameters/get`'s query.
pub(super) fn get(query: &str) -> Result<Route, ApiError> {
    let params = Params::parse(
        query,
        &[
            "name",
            "names",
            "version",
            "label",
            "withDecryption",
            "refreshNow",
            "roleArn",
        ],
    )?;
    if params.get("names").is_none() {
        return one(&params).map(Route::Read);
    }
    if let Some(other) = ["name", "version", "label", "refreshNow"]
        .into_iter()
        .find(|p| params.get(p).is_some())
    {
        return Err(bad(format!("names: not with {other:?}")));
    }
    Ok(Route::Parameters {
        names: params.list("names", MAX_NAMES)?,
        with_decryption: params.flag("withDecryption")?,
        role: params.role()?,
    })
}

/// `?name=N`: one parameter, at a version or label if given.
fn one(params: &Params<'_>) -> Result<Read, ApiError> {
    let name = params.required("name")?;
    ids::check(&name).map_err(|e| bad(format!("name: {e}")))?;
    let version = match params.get("version") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(bad(format!("version: {v:?} is not a version number"))),
        },
    };
    let label = params.id("label")?;
    if version.is_some() && label.is_some() {
        return Err(bad("give version or label, not both".into()));
    }
    Ok(Read {
        key: Key::Parameter(ParameterRequest {
            name: name.into_owned(),
            version,
            label,
            with_decryption: params.flag("withDecryption")?,
            role: params.role()?,
        }),
        refresh_now: params.flag("refreshNow")?,
        field: None,
    })
}
