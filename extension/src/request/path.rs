//! `GET /systemsmanager/parameters/get-by-path?path=/p/`: a parameter tree.

use sidekey_cache::{Key, PathRequest};

use super::query::{bad, Params};
use super::Read;
use crate::error::ApiError;
use crate::ids;

/// `/systemsmanager/parameters/get-by-path`'s query.
pub(super) fn get(query: &str) -> Result<Read, ApiError> {
    let params = Params::parse(
        query,
        &[
            "path",
            "recursive",
            "withDecryption",
            "refreshNow",
            "roleArn",
        ],
    )?;
    let path = params.required("path")?;
    ids::check(&path).map_err(|e| bad(format!("path: {e}")))?;
    if !path.starts_with('/') {
        return Err(bad(format!("path: {path:?} does not start with /")));
    }
    Ok(Read {
        key: Key::Path(PathRequest {
            path: path.into_owned(),
            recursive: params.flag("recursive")?,
            with_decryption: params.flag("withDecryption")?,
            role: params.role()?,
        }),
        refresh_now: params.flag("refreshNow")?,
        field: None,
    })
}
