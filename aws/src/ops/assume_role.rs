//! STS `AssumeRole`: temporary credentials of another role (`roleArn`),
//! in the query protocol STS speaks (a form in, XML out; the SDKs' STS
//! models list no JSON protocol, and moto answers none).
//!
//! The answer's credentials are read into wiped buffers; an error answer
//! (`<ErrorResponse><Error><Code>`) is classified by the one table.

use std::time::SystemTime;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sidekey_cache::{Error, ErrorKind};
use xmlparser::{ElementEnd, Token, Tokenizer};
use zeroize::Zeroizing;

use super::Service;
use crate::errors::{error_of, unreadable_answer};
use crate::sigv4::Credentials;

/// The service.
pub const SERVICE: Service = Service::Sts;

/// The content type of its requests.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// How long assumed credentials last (STS's default, and every role's
/// least maximum).
pub const DURATION_SECS: u32 = 3600;

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("RegionDisabledException", ErrorKind::AccessDenied),
    ("MalformedPolicyDocument", ErrorKind::InvalidRequest),
    ("PackedPolicyTooLarge", ErrorKind::InvalidRequest),
    ("IDPCommunicationError", ErrorKind::Unavailable),
];

/// Form values escaped as the query protocol wants (RFC 3986's unreserved
/// characters stay).
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The request body: assume `role_arn` for [`DURATION_SECS`], the session
/// named `session` (what CloudTrail shows).
pub fn request_body(role_arn: &str, session: &str) -> Vec<u8> {
    format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={}&DurationSeconds={DURATION_SECS}",
        utf8_percent_encode(role_arn, FORM),
        utf8_percent_encode(session, FORM)
    )
    .into_bytes()
}

/// A role session name from `function` (the function's name): STS takes
/// 2 to 64 of `[\w+=,.@-]`.
pub fn session_name(function: Option<&str>) -> String {
    let mut name = String::from("sidekey");
    if let Some(f) = function {
        name.push('@');
        name.extend(
            f.chars()
                .filter(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(*c)),
        );
    }
    name.truncate(64);
    name
}

/// The texts of the elements named `wanted`, in that order, found under
/// any path; `None` where an element is absent. Entities are decoded.
fn texts<const N: usize>(xml: &[u8], wanted: [&str; N]) -> Option<[Option<Zeroizing<String>>; N]> {
    let xml = std::str::from_utf8(xml).ok()?;
    let mut found: [Option<Zeroizing<String>>; N] = std::array::from_fn(|_| None);
    let mut open: Option<usize> = None;
    for token in Tokenizer::from(xml) {
        match token.ok()? {
            Token::ElementStart { local, .. } => {
                open = wanted.iter().position(|w| *w == local.as_str());
            }
            Token::Text { text } => {
                if let Some(i) = open {
                    found[i] = Some(decode_entities(text.as_str())?);
                }
            }
            Token::ElementEnd {
                end: ElementEnd::Close(..),
                ..
            } => open = None,
            _ => {}
        }
    }
    Some(found)
}

/// XML's five named entities and numeric references, decoded into a wiped
/// buffer (the secret key and the token pass through here).
fn decode_entities(text: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find(';')? + at;
        let entity = &rest[at + 1..end];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = match entity.strip_prefix("#x") {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => entity.strip_prefix('#')?.parse().ok()?,
                };
                char::from_u32(code)?
            }
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Read a 2xx answer: the role's credentials and when they expire.
pub fn answer(body: &[u8]) -> Result<(Credentials, SystemTime), Error> {
    let unreadable = || unreadable_answer("AssumeRole answered no credentials");
    let [id, secret, token, expiration] = texts(
        body,
        [
            "AccessKeyId",
            "SecretAccessKey",
            "SessionToken",
            "Expiration",
        ],
    )
    .ok_or_else(unreadable)?;
    let (Some(id), Some(secret), Some(token), Some(expiration)) = (id, secret, token, expiration)
    else {
        return Err(unreadable());
    };
    let expiry = humantime::parse_rfc3339_weak(&expiration).map_err(|_| unreadable())?;
    Ok((
        Credentials::new(id.to_string(), secret, Some(token)),
        expiry,
    ))
}

/// Read an error answer: its `Code` and `Message`, classified.
pub fn error_answer(status: u16, body: &[u8]) -> Error {
    match texts(body, ["Code", "Message"]) {
        Some([code, message]) => error_of(
            code.as_deref().map_or("", String::as_str),
            status,
            message.as_deref().map_or("", String::as_str),
        ),
        None => error_of("", status, "STS answered an error that could not be read"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:sidekey</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/reader/sidekey</Arn>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCY&amp;EXAMPLEKEY</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEJr+/token=</SessionToken>
      <Expiration>2026-12-06T06:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>"#;

    #[test]
    fn the_request_is_a_form() {
        let body = request_body("arn:aws:iam::123456789012:role/app/reader", "sidekey@fn");
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fapp%2Freader&RoleSessionName=sidekey%40fn&DurationSeconds=3600"
        );
        assert_eq!(session_name(Some("my fn/x")), "sidekey@myfnx");
        assert_eq!(session_name(Some(&"f".repeat(100))).len(), 64);
        assert_eq!(session_name(None), "sidekey");
    }

    #[test]
    fn answers_read_into_credentials() {
        let (credentials, expiry) = answer(ANSWER.as_bytes()).unwrap();
        assert_eq!(credentials.access_key_id(), "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            credentials.session_token(),
            Some("IQoJb3JpZ2luX2VjEJr+/token=")
        );
        assert_eq!(
            humantime::format_rfc3339_seconds(expiry).to_string(),
            "2026-12-06T06:00:00Z"
        );
        assert!(!format!("{credentials:?}").contains("wJalr"));
        let e = answer(b"<AssumeRoleResponse></AssumeRoleResponse>").unwrap_err();
        assert!(e.is_transient());
    }

    #[test]
    fn error_answers_keep_stss_code() {
        let body = br#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code>
  <Message>User: arn:aws:sts::1:assumed-role/fn is not authorized to perform: sts:AssumeRole</Message></Error>
  <RequestId>r</RequestId></ErrorResponse>"#;
        let e = error_answer(403, body);
        assert_eq!(
            (e.kind(), e.code()),
            (ErrorKind::AccessDenied, "AccessDenied")
        );
        assert!(e.message().contains("not authorized"));
        let e = error_answer(
            400,
            b"<ErrorResponse><Error><Code>ExpiredToken</Code></Error></ErrorResponse>",
        );
        assert_eq!(e.kind(), ErrorKind::Credentials);
        assert_eq!(error_answer(503, b"<html>").kind(), ErrorKind::Unavailable);
    }
}
