//! The shapes of the bodies the cache keeps: what the services answer to
//! `GetSecretValue`, `GetParameter` and `GetParametersByPath` (every page
//! merged), as the cache serializes them once per value and reads fields
//! back from them.
//!
//! They are the cache's storage format: a hit is that body handed out as
//! is. How the services are called and their answers read is the AWS
//! client's (crate `sidekey-aws`, one module per operation), which builds
//! [`Record`](super::Record)s for the cache to keep in these shapes.

use base64::Engine as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::{Error, ErrorKind};

/// `GetSecretValue`'s answer.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SecretWire<'a> {
    #[serde(rename = "ARN")]
    pub arn: &'a str,
    pub name: &'a str,
    pub version_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "base64_opt")]
    pub secret_binary: Option<&'a [u8]>,
    pub version_stages: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_date: Option<f64>,
}

fn base64_opt<S: Serializer>(v: &Option<&[u8]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        // The encoded form is as secret as the value: build it in a wiped buffer.
        Some(b) => {
            let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(b));
            s.serialize_str(&encoded)
        }
        None => s.serialize_none(),
    }
}

/// Decode `SecretBinary`'s base64 into a wiped buffer. An answer that is
/// not base64 is unreadable: transient, as any garbled answer.
pub fn decode_binary(b64: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| {
            Error::new(
                ErrorKind::Unavailable,
                "SecretBinary is not valid base64: the answer could not be read",
            )
        })
}

/// `GetParameter`'s answer.
#[derive(Serialize)]
pub(crate) struct ParameterEnvelope<'a> {
    #[serde(rename = "Parameter")]
    pub parameter: ParameterWire<'a>,
}

/// The `Parameter` object of `GetParameter`'s answer (and an element of
/// `GetParameters`' and `GetParametersByPath`'s `Parameters`).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ParameterWire<'a> {
    #[serde(rename = "ARN")]
    pub arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_modified_date: Option<f64>,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_result: Option<&'a str>,
    pub r#type: &'a str,
    pub value: &'a str,
    pub version: i64,
}

/// `GetParametersByPath`'s answer with every page merged.
#[derive(Serialize)]
pub(crate) struct ParametersWire<'a> {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<ParameterWire<'a>>,
}

/// Bytes of a merged `GetParametersByPath` body around its elements:
/// `{"Parameters":[` and `]}`. Each element adds its size and a comma.
pub const TREE_FRAME: usize = r#"{"Parameters":[]}"#.len();

/// How the cache writes `GetParameter`'s body: the parameter object
/// follows this prefix and is closed by the body's last byte.
pub(crate) const PARAMETER_ENVELOPE: &[u8] = b"{\"Parameter\":";

/// The value fields of a cached `GetSecretValue` body, read back as
/// borrowed JSON text: nothing is unescaped until
/// [`unescape`](crate::json::unescape) does it into a wiped buffer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SecretFields<'a> {
    #[serde(borrow)]
    pub secret_string: Option<&'a RawValue>,
    #[serde(borrow)]
    pub secret_binary: Option<&'a RawValue>,
}

/// The value of a cached `GetParameter` body, read back; as [`SecretFields`].
#[derive(Deserialize)]
pub(crate) struct ParameterFields<'a> {
    #[serde(rename = "Parameter", borrow)]
    pub parameter: ParameterValue<'a>,
}

/// See [`ParameterFields`].
#[derive(Deserialize)]
pub(crate) struct ParameterValue<'a> {
    #[serde(rename = "Value", borrow)]
    pub value: &'a RawValue,
}
