//! `GET /systemsmanager/parameters/get?name=N`: one parameter.

use sidekey_cache::{Key, ParameterRequest};

use super::query::{bad, Params};
use super::Read;
use crate::error::ApiError;
use crate::ids;

/// `/systemsmanager/parameters/get`'s query.
pub(super) fn get(query: &str) -> Result<Read, ApiError> {
    let params = Params::parse(
        query,
        &["name", "version", "label", "withDecryption", "refreshNow"],
    )?;
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
        }),
        refresh_now: params.flag("refreshNow")?,
        field: None,
    })
}
