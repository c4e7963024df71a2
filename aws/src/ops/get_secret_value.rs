//! `GetSecretValue`: one version of one secret.
//!
//! The request names the secret (name, partial or full ARN) and optionally a
//! version id and/or a staging label. The answer's value is borrowed from
//! the body as JSON text and decoded into a wiped buffer
//! ([`sidekey_cache::json::unescape`]), never through serde_json's scratch
//! buffer. The body sidekey answers this operation with is the cached one
//! ([`sidekey_cache::Cached::body`]): the cache keeps it in this shape.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sidekey_cache::json::unescape;
use sidekey_cache::record::decode_binary;
use sidekey_cache::{Error, ErrorKind, Payload, Record, SecretRequest, SecretValue};
use zeroize::Zeroizing;

use super::{Operation, Service};
use crate::errors::unreadable_answer;

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::SecretsManager,
    name: "GetSecretValue",
};

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("ResourceNotFoundException", ErrorKind::NotFound),
    ("DecryptionFailure", ErrorKind::Decryption),
    ("InvalidParameterException", ErrorKind::InvalidRequest),
    ("InvalidRequestException", ErrorKind::InvalidRequest),
    ("InternalServiceError", ErrorKind::Unavailable),
];

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input<'a> {
    secret_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_stage: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// The request for `req`, naming the secret as `id` (a replica region
    /// reads a full ARN with its own region in it).
    pub fn new(req: &'a SecretRequest, id: &'a str) -> Self {
        Self {
            secret_id: id,
            version_id: req.version_id.as_deref(),
            version_stage: req.version_stage.as_deref(),
        }
    }
}

/// The request as an SDK sends it to sidekey (the SDK-compatible
/// endpoint), read into the cache's key. Unknown fields are refused, as the
/// service refuses them.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Request {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

impl Request {
    /// The cache's key of what is asked.
    pub fn into_key(self) -> SecretRequest {
        SecretRequest {
            id: self.secret_id,
            version_id: self.version_id,
            version_stage: self.version_stage,
            role: None,
        }
    }
}

/// Read a 2xx answer into a [`Record`].
pub fn answer(body: &[u8]) -> Result<Record, Error> {
    let out: SecretValueAnswer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetSecretValue answered malformed JSON"))?;
    out.into_record()
}

/// The parts of a secret version as the SDK fetcher gets them.
#[derive(Default)]
pub struct SecretParts {
    /// `ARN`.
    pub arn: Option<String>,
    /// `Name`.
    pub name: Option<String>,
    /// `VersionId`.
    pub version_id: Option<String>,
    /// `SecretString`, moved in (never copied).
    pub string: Option<Zeroizing<String>>,
    /// `SecretBinary`, already decoded, moved in.
    pub binary: Option<Zeroizing<Vec<u8>>>,
    /// `VersionStages`.
    pub stages: Option<Vec<String>>,
    /// `CreatedDate`, epoch seconds.
    pub created: Option<f64>,
}

/// The record of a secret version. A version with neither `SecretString`
/// nor `SecretBinary` is an unreadable answer.
pub fn record(parts: SecretParts) -> Result<Record, Error> {
    let payload = match (parts.string, parts.binary) {
        (Some(s), _) => Payload::String(s),
        (None, Some(b)) => Payload::Binary(b),
        (None, None) => return Err(unreadable_answer("GetSecretValue answered no value")),
    };
    Ok(Record::Secret(SecretValue {
        arn: parts.arn.unwrap_or_default(),
        name: parts.name.unwrap_or_default(),
        version_id: parts.version_id.unwrap_or_default(),
        payload,
        version_stages: parts.stages.unwrap_or_default(),
        created_date: parts.created,
    }))
}

/// A secret version as the service writes it, in `GetSecretValue`'s answer
/// and in `BatchGetSecretValue`'s `SecretValues`; the value is borrowed.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SecretValueAnswer<'a> {
    #[serde(rename = "ARN")]
    pub arn: Option<String>,
    pub name: Option<String>,
    version_id: Option<String>,
    #[serde(borrow)]
    secret_string: Option<&'a RawValue>,
    #[serde(borrow)]
    secret_binary: Option<&'a RawValue>,
    version_stages: Option<Vec<String>>,
    created_date: Option<f64>,
}

impl SecretValueAnswer<'_> {
    pub(crate) fn into_record(self) -> Result<Record, Error> {
        let text = |raw: &RawValue| {
            unescape(raw.get())
                .ok_or_else(|| unreadable_answer("a secret value is not a JSON string"))
        };
        let string = self.secret_string.map(text).transpose()?;
        let binary = match (&string, self.secret_binary) {
            (None, Some(b64)) => Some(decode_binary(&text(b64)?)?),
            _ => None,
        };
        record(SecretParts {
            arn: self.arn,
            name: self.name,
            version_id: self.version_id,
            string,
            binary,
            stages: self.version_stages,
            created: self.created_date,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_what_is_asked() {
        let mut req = SecretRequest::current("app/key");
        let body = serde_json::to_string(&Input::new(&req, &req.id)).unwrap();
        assert_eq!(body, r#"{"SecretId":"app/key"}"#);
        req.version_stage = Some("AWSPREVIOUS".into());
        let body = serde_json::to_string(&Input::new(&req, "arn:x")).unwrap();
        assert_eq!(body, r#"{"SecretId":"arn:x","VersionStage":"AWSPREVIOUS"}"#);
        assert_eq!(OPERATION.target(), "secretsmanager.GetSecretValue");
    }

    #[test]
    fn answers_parse_string_and_binary() {
        let r = answer(br#"{"ARN":"arn:a","Name":"n","VersionId":"v","SecretString":"{\"apikey\":\"k\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.5}"#).unwrap();
        let Record::Secret(s) = r else {
            panic!("not a secret")
        };
        assert_eq!(s.created_date, Some(1.5));
        assert!(matches!(&s.payload, Payload::String(v) if v.as_str() == r#"{"apikey":"k"}"#));
        let r = answer(br#"{"ARN":"a","Name":"n","VersionId":"v","SecretBinary":"aGk="}"#).unwrap();
        let Record::Secret(s) = r else {
            panic!("not a secret")
        };
        assert!(matches!(&s.payload, Payload::Binary(b) if b.as_slice() == b"hi"));
    }

    #[test]
    fn del_and_c1_characters_read_raw() {
        // Issue 26: serde_json writes them unescaped, and so may AWS.
        let value = "{\"k\":\"a\u{7f}b\",\"n\":\"x\u{85}y\"}";
        let body = serde_json::json!({"ARN":"a","Name":"n","VersionId":"v","SecretString": value});
        let r = answer(body.to_string().as_bytes()).unwrap();
        let Record::Secret(s) = r else {
            panic!("not a secret")
        };
        assert!(matches!(&s.payload, Payload::String(v) if v.as_str() == value));
    }

    #[test]
    fn unreadable_2xx_answers_are_transient() {
        for body in [
            &b"{}"[..],
            b"{\"ARN\":\"a\",\"SecretStr",
            b"<html>",
            b"",
            b"{\"SecretBinary\":\"not base64!\"}",
        ] {
            let e = answer(body).unwrap_err();
            assert!(e.is_transient(), "{e}");
        }
    }
}
