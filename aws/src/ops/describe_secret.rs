//! `DescribeSecret`: a secret's metadata, here its versions and their
//! staging labels (`VersionIdsToStages`), to tell whether a cached version
//! is still the current one without reading (and decrypting) the value.
//!
//! It has a quota of its own (40,000/s, against `GetSecretValue`'s
//! 10,000), and unlike `GetSecretValue` it calls no KMS `Decrypt` on a
//! secret under a customer-managed key.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sidekey_cache::{Error, ErrorKind};

use super::{Operation, Service};
use crate::errors::unreadable_answer;

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::SecretsManager,
    name: "DescribeSecret",
};

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("ResourceNotFoundException", ErrorKind::NotFound),
    ("InvalidParameterException", ErrorKind::InvalidRequest),
    ("InternalServiceError", ErrorKind::Unavailable),
];

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input<'a> {
    secret_id: &'a str,
}

impl<'a> Input<'a> {
    /// Describe `id`.
    pub fn new(id: &'a str) -> Self {
        Self { secret_id: id }
    }
}

/// The version that holds `stage` (`AWSCURRENT` for the current one) in a
/// 2xx answer, if any version does.
pub fn version_at(body: &[u8], stage: &str) -> Result<Option<String>, Error> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "VersionIdsToStages", default)]
        versions: Option<HashMap<String, Vec<String>>>,
    }
    let out: Answer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("DescribeSecret answered malformed JSON"))?;
    Ok(out
        .versions
        .unwrap_or_default()
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == stage))
        .map(|(version, _)| version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_at_a_stage_is_found() {
        let body = br#"{"ARN":"a","Name":"n","VersionIdsToStages":{"v1":["AWSPREVIOUS"],"v2":["AWSCURRENT","blue"]}}"#;
        assert_eq!(
            version_at(body, "AWSCURRENT").unwrap().as_deref(),
            Some("v2")
        );
        assert_eq!(
            version_at(body, "AWSPREVIOUS").unwrap().as_deref(),
            Some("v1")
        );
        assert_eq!(version_at(body, "green").unwrap(), None);
        assert_eq!(
            version_at(br#"{"Name":"n","VersionIdsToStages":null}"#, "AWSCURRENT").unwrap(),
            None
        );
        assert!(version_at(b"<html>", "AWSCURRENT")
            .unwrap_err()
            .is_transient());
        assert_eq!(
            serde_json::to_string(&Input::new("app/key")).unwrap(),
            r#"{"SecretId":"app/key"}"#
        );
    }
}
