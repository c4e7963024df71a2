//! `GET /secretsmanager/batch?secretIds=A,B,...`: several secrets at once.

use sidekey_aws::ops::batch_get_secret_value::MAX_IDS;

use super::query::Params;
use super::Route;
use crate::error::ApiError;

/// `/secretsmanager/batch`'s query: up to 20 distinct ids, current versions.
pub(super) fn get(query: &str) -> Result<Route, ApiError> {
    let params = Params::parse(query, &["secretIds", "roleArn"])?;
    Ok(Route::Secrets {
        ids: params.list("secretIds", MAX_IDS)?,
        role: params.role()?,
    })
}
