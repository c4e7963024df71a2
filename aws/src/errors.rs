//! The one table from AWS's error answers to the cache's [`ErrorKind`]s.
//!
//! Every reader of an AWS error goes through it: the lean fetcher, the SDK
//! fetcher (feature `aws-sdk`), the edge, and the localhost client, which
//! reads the extension's own `__type` back (the extension writes AWS's
//! codes, [`ErrorKind::as_str`]). If each kept its own table they would
//! drift (they did: one knew `InvalidKeyId`, the other
//! `MissingAuthenticationToken`).
//!
//! A code is looked up in the codes every operation shares ([`COMMON`]),
//! then in the operations' own (`ops::*::ERRORS`, each next to the
//! operation that answers with them), then among the kinds' own names.
//! A code nobody listed falls back on the HTTP status.

use sidekey_cache::{Error, ErrorKind};

use crate::ops;

/// The most of a service's error message kept (it ends up in logs and in
/// error bodies; it names ids, never values, but need not be long).
const MAX_MESSAGE: usize = 200;

/// Codes any operation of the services may answer with.
///
/// The credential codes are [`ErrorKind::Credentials`], transient: an
/// expired or rotated credential, or a signature made with a skewed clock,
/// says nothing about the value, and fresh credentials fix it. Taken as
/// access denied (permanent) they dropped every cached value and
/// negative-cached it (issue 26).
pub const COMMON: &[(&str, ErrorKind)] = &[
    ("AccessDeniedException", ErrorKind::AccessDenied),
    ("AccessDenied", ErrorKind::AccessDenied),
    ("ExpiredTokenException", ErrorKind::Credentials),
    ("ExpiredToken", ErrorKind::Credentials),
    ("InvalidSignatureException", ErrorKind::Credentials),
    ("SignatureDoesNotMatch", ErrorKind::Credentials),
    ("IncompleteSignature", ErrorKind::Credentials),
    ("IncompleteSignatureException", ErrorKind::Credentials),
    ("UnrecognizedClientException", ErrorKind::Credentials),
    ("InvalidClientTokenId", ErrorKind::Credentials),
    ("MissingAuthenticationToken", ErrorKind::Credentials),
    ("RequestExpired", ErrorKind::Credentials),
    ("KMSAccessDeniedException", ErrorKind::Decryption),
    ("ValidationException", ErrorKind::InvalidRequest),
    ("InvalidParameterValue", ErrorKind::InvalidRequest),
    ("ThrottlingException", ErrorKind::Throttled),
    ("Throttling", ErrorKind::Throttled),
    ("TooManyRequestsException", ErrorKind::Throttled),
    ("RequestLimitExceeded", ErrorKind::Throttled),
    ("ThrottledException", ErrorKind::Throttled),
    ("InternalFailure", ErrorKind::Unavailable),
    ("ServiceUnavailable", ErrorKind::Unavailable),
];

/// Every table, [`COMMON`] first.
const TABLES: &[&[(&str, ErrorKind)]] = &[
    COMMON,
    ops::get_secret_value::ERRORS,
    ops::batch_get_secret_value::ERRORS,
    ops::describe_secret::ERRORS,
    ops::get_parameter::ERRORS,
    ops::get_parameters::ERRORS,
    ops::get_parameters_by_path::ERRORS,
    ops::assume_role::ERRORS,
];

/// A code as the services write it, bare: a namespace before `#`
/// (`com.amazonaws.secretsmanager#DecryptionFailure`, the JSON protocols'
/// `__type`) and a suffix after `:` (`X-Amzn-ErrorType`'s
/// `Code:http://internal.amazon.com/...`) are dropped. The one place this
/// is done.
pub fn bare(code: &str) -> &str {
    let code = code.rsplit('#').next().unwrap_or(code);
    code.split(':').next().unwrap_or(code).trim()
}

/// The kind of an error code: AWS's codes for the services sidekey calls,
/// and every code [`ErrorKind::as_str`] writes, so an answer of the
/// extension reads back as the kind it was. `None` for a code nobody
/// listed: the caller falls back on the status.
pub fn kind_of(code: &str) -> Option<ErrorKind> {
    let code = bare(code);
    TABLES
        .iter()
        .flat_map(|table| table.iter())
        .find(|(known, _)| *known == code)
        .map(|(_, kind)| *kind)
        .or_else(|| ErrorKind::ALL.into_iter().find(|k| k.as_str() == code))
}

/// The kind of an error answer that carries no code we know.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Unavailable,
        401 | 403 => ErrorKind::AccessDenied,
        404 => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    }
}

/// The kind of an error answer: its code if known, else its status.
pub fn kind_of_answer(code: &str, status: u16) -> ErrorKind {
    kind_of(code).unwrap_or_else(|| kind_of_status(status))
}

/// An error answer's body: `{"__type": CODE, "message"|"Message": TEXT}`.
/// Both spellings of the message are read as separate fields: an answer may
/// carry both (moto's do), and one field with an alias would reject it as a
/// duplicate, losing the code with it.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(rename = "__type", default)]
    code: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "Message", default)]
    message_upper: Option<String>,
}

/// Classify a non-2xx AWS JSON answer: by its `__type`, else by its status.
/// The message keeps the status, the code and the service's own (short) text.
pub fn error_answer(status: u16, body: &[u8]) -> Error {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message) = match &parsed {
        Some(b) => (
            b.code.as_str(),
            b.message
                .as_deref()
                .or(b.message_upper.as_deref())
                .unwrap_or_default(),
        ),
        None => ("", ""),
    };
    error_of(code, status, message)
}

/// An error from its parts: a code (bare or not), the status it came with,
/// and the service's message (also how a batch answer reports one id's
/// failure, and how the XML protocol's errors are read).
pub fn error_of(code: &str, status: u16, message: &str) -> Error {
    let code = bare(code);
    let kind = kind_of_answer(code, status);
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

/// The HTTP status the services answer a failure of `kind` with, for the
/// answers sidekey writes as the services would (the SDK-compatible
/// endpoint): their client errors (not found, invalid, denied,
/// undecryptable, refused credentials, throttling) are 400s.
pub fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::NotFound
        | ErrorKind::InvalidRequest
        | ErrorKind::AccessDenied
        | ErrorKind::Decryption
        | ErrorKind::Credentials
        | ErrorKind::Throttled => 400,
        ErrorKind::Timeout => 504,
        ErrorKind::Connection => 502,
        ErrorKind::Closed => 503,
        _ => 500,
    }
}

/// An error answer's body as the services write it:
/// `{"__type": CODE, "message": TEXT}` (the SDKs read `__type`; the
/// JavaScript SDK also the `X-Amzn-ErrorType` header, which the caller
/// sets to the same code).
pub fn answer_body(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "__type": code, "message": message }))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_we_write_reads_back_as_its_kind() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind_of(kind.as_str()), Some(kind), "{kind}");
        }
    }

    #[test]
    fn no_code_is_listed_twice_with_two_kinds() {
        let all: Vec<&(&str, ErrorKind)> = TABLES.iter().flat_map(|t| t.iter()).collect();
        for (code, kind) in &all {
            for (other, other_kind) in &all {
                assert!(code != other || kind == other_kind, "{code}");
            }
        }
    }

    #[test]
    fn codes_of_every_service_classify() {
        for (code, kind) in [
            ("ResourceNotFoundException", ErrorKind::NotFound),
            ("ParameterNotFound", ErrorKind::NotFound),
            ("ParameterVersionNotFound", ErrorKind::NotFound),
            ("InvalidKeyId", ErrorKind::Decryption),
            ("KMSAccessDeniedException", ErrorKind::Decryption),
            ("ThrottledException", ErrorKind::Throttled),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            (
                "com.amazonaws.secretsmanager#DecryptionFailure",
                ErrorKind::Decryption,
            ),
            (
                "ResourceNotFoundException:http://internal.amazon.com/coral/",
                ErrorKind::NotFound,
            ),
            ("InternalServiceError", ErrorKind::Unavailable),
            ("AccessDeniedException", ErrorKind::AccessDenied),
        ] {
            assert_eq!(kind_of(code), Some(kind), "{code}");
        }
        assert_eq!(kind_of("Whatever"), None);
        assert_eq!(kind_of_answer("Whatever", 503), ErrorKind::Unavailable);
        assert_eq!(kind_of_answer("Whatever", 400), ErrorKind::Other);
        assert_eq!(kind_of_answer("", 429), ErrorKind::Throttled);
    }

    #[test]
    fn refused_credentials_are_transient_not_access_denied() {
        // Issue 26: a clock skew or a credential rotation must not drop
        // every cached value as if the secrets had been denied.
        for code in [
            "ExpiredTokenException",
            "InvalidSignatureException",
            "UnrecognizedClientException",
            "IncompleteSignature",
            "MissingAuthenticationToken",
        ] {
            let kind = kind_of(code).unwrap();
            assert_eq!(kind, ErrorKind::Credentials, "{code}");
            assert!(kind.is_transient(), "{code}");
        }
        let e = error_answer(
            400,
            br#"{"__type":"ExpiredTokenException","message":"expired"}"#,
        );
        assert!(e.is_transient());
        assert_eq!(e.code(), "ExpiredTokenException");
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
}
