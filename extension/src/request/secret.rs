//! `GET /secretsmanager/get?secretId=ID` and `GET /v1/ID`: one secret.

use sidekey_cache::{Key, SecretRequest};

use super::query::{bad, decode, Params};
use super::Read;
use crate::error::ApiError;
use crate::ids;

/// `/secretsmanager/get`'s query.
pub(super) fn get(query: &str) -> Result<Read, ApiError> {
    let params = Params::parse(
        query,
        &[
            "secretId",
            "versionId",
            "versionStage",
            "refreshNow",
            "key",
            "roleArn",
        ],
    )?;
    let id = params.required("secretId")?;
    read(id.into_owned(), &params)
}

/// `/v1/ID`: the id is the rest of the path, percent-decoded.
pub(super) fn v1(raw_id: &str, query: &str) -> Result<Read, ApiError> {
    let params = Params::parse(
        query,
        &["versionId", "versionStage", "refreshNow", "key", "roleArn"],
    )?;
    let id = decode(raw_id).map_err(|e| bad(format!("path: {e}")))?;
    read(id.into_owned(), &params)
}

fn read(id: String, params: &Params<'_>) -> Result<Read, ApiError> {
    ids::check(&id).map_err(|e| bad(format!("secretId: {e}")))?;
    Ok(Read {
        key: Key::Secret(SecretRequest {
            id,
            version_id: params.id("versionId")?,
            version_stage: params.id("versionStage")?,
            role: params.role()?,
        }),
        refresh_now: params.flag("refreshNow")?,
        field: params.id("key")?,
    })
}
