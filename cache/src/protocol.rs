//! The AWS JSON 1.1 protocol of Secrets Manager and Parameter Store, owned
//! in one place.
//!
//! The fetchers speak it (the lean SigV4 one of the extension and the edge,
//! and the AWS SDK one behind a feature) and the extension speaks it back
//! to functions; a
//! function's client reads it again. If each kept its own table of error
//! codes, the tables would drift (they did: one knew `InvalidKeyId`, the
//! other `MissingAuthenticationToken`). So this module holds:
//!
//! * the error vocabulary: AWS error codes and HTTP statuses to
//!   [`ErrorKind`] ([`ErrorKind::from_code`], [`ErrorKind::from_status`]) and
//!   back ([`ErrorKind::as_str`]), and error answers to [`Error`]
//!   ([`error_answer`]);
//! * the records: a `GetSecretValue` answer to a [`Record`]
//!   ([`secret_value_answer`], [`secret_record`]), the batch and parameter
//!   answers to records (`answers`), and the wire bodies the cache
//!   serializes once per value;
//! * `SecretBinary`'s base64 ([`decode_binary`]);
//! * the many-value answers (`BatchGetSecretValue`, `GetParameters`, the
//!   merged `GetParametersByPath`), built from cached bodies (`batch`).
//!
//! Nothing here performs I/O; every function is pure and tested below.

use base64::Engine as _;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::{Error, ErrorKind, Payload, Record, SecretValue};

mod answers;
mod batch;

#[cfg(feature = "aws-sdk")]
pub(crate) use answers::designates;
pub use answers::{
    batch_secret_values_answer, parameter_answer, parameters_answer, parameters_page,
};

pub use batch::{
    batch_secret_values_body, parameters_body, tree_too_large, BatchEntry, TREE_FRAME,
};
pub(crate) use batch::{ParametersWire, Tree};

/// The most of a service's error message kept (it ends up in logs and in
/// error bodies; it names ids, never values, but need not be long).
const MAX_MESSAGE: usize = 200;

impl ErrorKind {
    /// The code put on the wire as `__type`. For the kinds AWS has a code
    /// for, it is AWS's (`ResourceNotFoundException`...), so a function
    /// that switches from the SDK to the extension sees the same names.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "ResourceNotFoundException",
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::InvalidRequest => "InvalidRequestException",
            ErrorKind::Decryption => "DecryptionFailure",
            ErrorKind::Throttled => "ThrottlingException",
            ErrorKind::Unavailable => "ServiceUnavailable",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Connection => "ConnectionError",
            ErrorKind::Unsupported => "Unsupported",
            ErrorKind::Closed => "Closed",
            ErrorKind::Other => "UpstreamError",
        }
    }

    /// The kind of an error code: AWS's codes for both services (a
    /// namespace prefix such as `com.amazonaws.secretsmanager#` is ignored),
    /// and every code [`ErrorKind::as_str`] writes, so an answer of the
    /// extension reads back as the kind it was. `None` for a code nobody
    /// listed here: the caller falls back to the status.
    pub fn from_code(code: &str) -> Option<ErrorKind> {
        let code = code.rsplit('#').next().unwrap_or(code);
        Some(match code {
            "ResourceNotFoundException"
            | "ParameterNotFound"
            | "ParameterVersionNotFound"
            | "ParameterVersionLabelNotFound" => ErrorKind::NotFound,
            "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException" => ErrorKind::AccessDenied,
            "DecryptionFailure" | "InvalidKeyId" | "KMSAccessDeniedException" => {
                ErrorKind::Decryption
            }
            "InvalidParameterException"
            | "InvalidRequestException"
            | "ValidationException"
            | "InvalidParameterValue"
            | "ParameterTreeTooLarge" => ErrorKind::InvalidRequest,
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ThrottledException" => ErrorKind::Throttled,
            "InternalServiceError"
            | "InternalServerError"
            | "InternalFailure"
            | "ServiceUnavailable" => ErrorKind::Unavailable,
            "Timeout" => ErrorKind::Timeout,
            "ConnectionError" => ErrorKind::Connection,
            "Unsupported" => ErrorKind::Unsupported,
            "Closed" => ErrorKind::Closed,
            "UpstreamError" => ErrorKind::Other,
            _ => return None,
        })
    }

    /// The kind of an error answer that carries no code we know.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            429 => ErrorKind::Throttled,
            500..=599 => ErrorKind::Unavailable,
            401 | 403 => ErrorKind::AccessDenied,
            404 => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        }
    }

    /// The kind of an error answer: its code if known, else its status.
    pub fn from_answer(code: &str, status: u16) -> ErrorKind {
        ErrorKind::from_code(code).unwrap_or_else(|| ErrorKind::from_status(status))
    }
}

/// An error answer's body: `{"__type": CODE, "message"|"Message": TEXT}`.
/// Both spellings of the message are read as separate fields: an answer may
/// carry both (moto's do), and one field with an alias would reject it as a
/// duplicate, losing the code with it.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "Message", default)]
    message_upper: Option<String>,
}

/// Classify a non-2xx answer: by its `__type`, else by its status. The
/// message keeps the status, the code and the service's own (short) text.
pub fn error_answer(status: u16, body: &[u8]) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match &parsed {
        Some(b) => (
            b.code.rsplit('#').next().unwrap_or_default(),
            b.message
                .as_deref()
                .or(b.message_upper.as_deref())
                .unwrap_or_default(),
        ),
        None => ("", ""),
    };
    error_answer_of(code, status, message)
}

/// An error answer from its parts (also how a batch answer reports one
/// id's failure).
fn error_answer_of(code: &str, status: u16, message: &str) -> Error {
    let kind = ErrorKind::from_answer(code, status);
    let message: String = message.chars().take(MAX_MESSAGE).collect();
    let shown = if code.is_empty() {
        "no error code"
    } else {
        code
    };
    Error::new(kind, format!("HTTP {status} {shown}: {message}")).with_code(code)
}

/// A 2xx answer that could not be read: cut short, garbled or not what the
/// operation returns. Transient: the service answered, the bytes did not
/// arrive whole (a proxy, a dropped connection), so the cache keeps serving
/// the last good value and retries, instead of dropping it as it would for
/// a definite answer such as not-found.
pub fn unreadable_answer(what: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{what}: the answer could not be read"),
    )
}

/// The parts of a `GetSecretValue` (or `BatchGetSecretValue` item) answer,
/// as both fetchers get them.
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

/// Build the record of a secret version. A version with neither
/// `SecretString` nor `SecretBinary` is an unreadable answer.
pub fn secret_record(parts: SecretParts) -> Result<Record, Error> {
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

/// Decode `SecretBinary`'s base64 into a wiped buffer.
pub fn decode_binary(b64: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| unreadable_answer("SecretBinary is not valid base64"))
}

/// `GetSecretValue`'s answer as read off the wire; the value is borrowed
/// and unescaped by [`unescape`], never by serde_json's scratch buffer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretValueAnswer<'a> {
    #[serde(rename = "ARN")]
    arn: Option<String>,
    name: Option<String>,
    version_id: Option<String>,
    #[serde(borrow)]
    secret_string: Option<&'a RawValue>,
    #[serde(borrow)]
    secret_binary: Option<&'a RawValue>,
    version_stages: Option<Vec<String>>,
    created_date: Option<f64>,
}

impl SecretValueAnswer<'_> {
    fn into_record(self) -> Result<Record, Error> {
        let text = |raw: &RawValue| {
            unescape(raw.get())
                .ok_or_else(|| unreadable_answer("a secret value is not a JSON string"))
        };
        let string = self.secret_string.map(text).transpose()?;
        let binary = match (&string, self.secret_binary) {
            (None, Some(b64)) => Some(decode_binary(&text(b64)?)?),
            _ => None,
        };
        secret_record(SecretParts {
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

/// Read a 2xx `GetSecretValue` answer into a [`Record`].
pub fn secret_value_answer(body: &[u8]) -> Result<Record, Error> {
    let out: SecretValueAnswer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetSecretValue answered malformed JSON"))?;
    out.into_record()
}

// ---- the bodies the cache serializes once per value ----

/// `GetSecretValue`'s answer, as the extension writes it.
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

/// `GetParameter`'s answer, as the extension writes it.
#[derive(Serialize)]
pub(crate) struct ParameterEnvelope<'a> {
    #[serde(rename = "Parameter")]
    pub parameter: ParameterWire<'a>,
}

/// The `Parameter` object of `GetParameter`'s answer.
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

/// The value fields of a cached `GetSecretValue` body, read back as
/// borrowed JSON text: nothing is unescaped until [`unescape`] does it into
/// a wiped buffer.
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

/// Decode a JSON string literal (quotes included) into a wiped buffer.
///
/// serde_json unescapes a string with escapes through a scratch buffer that
/// it drops without wiping: reading a secret that way would leave a copy in
/// freed memory. This decoder writes only into its output, sized up front
/// (an escape never decodes to more bytes than it takes), so it never
/// reallocates either. `None` if `literal` is not a valid JSON string.
pub fn unescape(literal: &str) -> Option<Zeroizing<String>> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Zeroizing::new(String::with_capacity(inner.len()));
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == '"' || c.is_control() {
                return None;
            }
            out.push(c);
            continue;
        }
        let decoded = match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&high) {
                    if (chars.next()?, chars.next()?) != ('\\', 'u') {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                } else {
                    char::from_u32(high)?
                }
            }
            _ => return None,
        };
        out.push(decoded);
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0u32, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::AccessDenied,
        ErrorKind::InvalidRequest,
        ErrorKind::Decryption,
        ErrorKind::Throttled,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Connection,
        ErrorKind::Unsupported,
        ErrorKind::Closed,
        ErrorKind::Other,
    ];

    #[test]
    fn every_code_we_write_reads_back_as_its_kind() {
        for kind in ALL {
            assert_eq!(ErrorKind::from_code(kind.as_str()), Some(kind), "{kind}");
        }
    }

    #[test]
    fn codes_of_both_services_classify() {
        for (code, kind) in [
            ("ResourceNotFoundException", ErrorKind::NotFound),
            ("ParameterNotFound", ErrorKind::NotFound),
            ("ParameterVersionNotFound", ErrorKind::NotFound),
            ("MissingAuthenticationToken", ErrorKind::AccessDenied),
            ("ExpiredTokenException", ErrorKind::AccessDenied),
            ("InvalidKeyId", ErrorKind::Decryption),
            ("KMSAccessDeniedException", ErrorKind::Decryption),
            ("ThrottledException", ErrorKind::Throttled),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            (
                "com.amazonaws.secretsmanager#DecryptionFailure",
                ErrorKind::Decryption,
            ),
            ("InternalServiceError", ErrorKind::Unavailable),
        ] {
            assert_eq!(ErrorKind::from_code(code), Some(kind), "{code}");
        }
        assert_eq!(ErrorKind::from_code("Whatever"), None);
        assert_eq!(
            ErrorKind::from_answer("Whatever", 503),
            ErrorKind::Unavailable
        );
        assert_eq!(ErrorKind::from_answer("Whatever", 400), ErrorKind::Other);
        assert_eq!(ErrorKind::from_answer("", 429), ErrorKind::Throttled);
    }

    #[test]
    fn error_answers_classify_by_type_then_status() {
        let cases: [(u16, &str, ErrorKind); 6] = [
            (
                400,
                r#"{"__type":"ResourceNotFoundException","message":"no"}"#,
                ErrorKind::NotFound,
            ),
            (
                400,
                r#"{"__type":"com.amazonaws.secretsmanager#DecryptionFailure","Message":"kms"}"#,
                ErrorKind::Decryption,
            ),
            (503, "<html>", ErrorKind::Unavailable),
            (429, "", ErrorKind::Throttled),
            (403, "{}", ErrorKind::AccessDenied),
            (418, r#"{"__type":"Whatever"}"#, ErrorKind::Other),
        ];
        for (status, body, kind) in cases {
            assert_eq!(error_answer(status, body.as_bytes()).kind(), kind, "{body}");
        }
        let e = error_answer(
            400,
            br#"{"__type":"x#ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}"#,
        );
        assert_eq!(
            e.message(),
            "HTTP 400 ResourceNotFoundException: Secrets Manager can't find the specified secret."
        );
        assert_eq!(e.code(), "ResourceNotFoundException");
        let e = error_answer(400, br#"{"__type":"ParameterNotFound"}"#);
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::NotFound, "ParameterNotFound")
        );
        assert_eq!(error_answer(503, b"").code(), "ServiceUnavailable");
        // Both spellings of the message at once (moto's SSM answers).
        let e = error_answer(
            400,
            br#"{"__type": "ParameterNotFound", "message": "Parameter /p not found.", "Message": "Parameter /p not found."}"#,
        );
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::NotFound, "ParameterNotFound")
        );
        assert!(e.to_string().contains("Parameter /p not found."), "{e}");
    }

    #[test]
    fn secret_value_answers_parse_string_and_binary() {
        let r = secret_value_answer(br#"{"ARN":"arn:a","Name":"n","VersionId":"v","SecretString":"{\"apikey\":\"k\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1.5}"#).unwrap();
        let Record::Secret(s) = r else {
            panic!("not a secret")
        };
        assert_eq!(s.created_date, Some(1.5));
        assert!(matches!(&s.payload, Payload::String(v) if v.as_str() == r#"{"apikey":"k"}"#));
        let r =
            secret_value_answer(br#"{"ARN":"a","Name":"n","VersionId":"v","SecretBinary":"aGk="}"#)
                .unwrap();
        let Record::Secret(s) = r else {
            panic!("not a secret")
        };
        assert!(matches!(&s.payload, Payload::Binary(b) if b.as_slice() == b"hi"));
    }

    #[test]
    fn unescape_decodes_json_strings_without_serde() {
        for text in [
            "plain",
            "",
            r#"{"apikey":"k\\"}"#,
            "tab\tnew\nline \u{1F600} é \u{8}\u{c}\r/",
        ] {
            let literal = serde_json::to_string(text).unwrap();
            assert_eq!(unescape(&literal).unwrap().as_str(), text, "{literal}");
        }
        assert_eq!(
            unescape(r#""\ud83d\ude00 \u00e9\/""#).unwrap().as_str(),
            "\u{1F600} é/"
        );
        for bad in [
            r#""unterminated"#,
            r#""bad \x escape""#,
            r#""\ud83d alone""#,
            "7",
            r#""a"b""#,
        ] {
            assert!(unescape(bad).is_none(), "{bad}");
        }
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
            let e = secret_value_answer(body).unwrap_err();
            assert!(e.is_transient(), "{e}");
        }
    }
}
