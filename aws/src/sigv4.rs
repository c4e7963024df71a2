//! AWS Signature Version 4: signing sidekey's requests and verifying the
//! SDK requests the extension serves, with one canonicalization for both.
//!
//! Why not the `aws-sigv4` crate, which signed sidekey's requests until
//! v3: verification needs the canonical request of a request someone else
//! signed, over exactly the headers it lists in `SignedHeaders`, and
//! `aws-sigv4` only signs, choosing its own headers (it leaves out
//! `user-agent`, for one, which some clients sign). Computing it here, over
//! ring's HMAC-SHA256 and SHA-256 (already linked for TLS), serves both
//! sides, and dropping `aws-sigv4` with the smithy crates under it took
//! 28 KB off the Lambda@Edge zip (1,018,780 to 990,530 B; its limit is
//! 1 MB, and issue 25 asked for 5 % headroom).
//!
//! The algorithm is AWS's ("Create a signed AWS API request", IAM user
//! guide); the tests check it against AWS's published test-suite
//! signatures and against `aws-sigv4` itself.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The algorithm's name, first word of the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The hex SHA-256 of an empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a signature is made with: the access key id, the secret key (kept
/// in a wiped buffer, never printed) and, for temporary credentials, the
/// session token.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl Credentials {
    /// Credentials from their three parts.
    pub fn new(
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        session_token: Option<Zeroizing<String>>,
    ) -> Self {
        Self {
            access_key_id,
            secret_access_key,
            session_token,
        }
    }

    /// The access key id (not a secret: it is sent with every request).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The session token of temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref().map(String::as_str)
    }
}

/// Prints the access key id only.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The credential scope's region and service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The region signed for.
    pub region: &'a str,
    /// The service's signing name.
    pub service: &'a str,
}

/// The parts of an HTTP request a signature covers.
#[derive(Debug)]
pub struct Signable<'a> {
    /// `GET`, `POST`...
    pub method: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    /// The signed headers, names in any case; more than one value of a
    /// name is joined with commas, in order.
    pub headers: &'a [(&'a str, &'a str)],
    /// The hex SHA-256 of the body.
    pub payload_sha256: &'a str,
}

/// `time` as SigV4's `X-Amz-Date`: `YYYYMMDDTHHMMSSZ`, UTC.
pub fn amz_date(time: SystemTime) -> String {
    // humantime writes RFC 3339 (`2015-08-30T12:36:00Z`); SigV4 wants the
    // same digits without the separators.
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// The instant an `X-Amz-Date` names, if it is one.
pub fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &text[0..4],
        &text[4..6],
        &text[6..8],
        &text[9..11],
        &text[11..13],
        &text[13..15]
    );
    humantime::parse_rfc3339(&rfc3339).ok()
}

/// The hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// The signature of `request` at `amz_date` by `credentials`, in hex.
pub fn signature(
    request: &Signable<'_>,
    amz_date: &str,
    scope: Scope<'_>,
    credentials: &Credentials,
) -> String {
    let date = amz_date.get(..8).unwrap_or_default();
    let canonical = canonical_request(request);
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{}/{}/aws4_request\n{}",
        scope.region,
        scope.service,
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(&credentials.secret_access_key, date, scope);
    hex(hmac::sign(&key, to_sign.as_bytes()).as_ref())
}

/// The `Authorization` header's value for `request`.
pub fn authorization(
    request: &Signable<'_>,
    amz_date: &str,
    scope: Scope<'_>,
    credentials: &Credentials,
) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        credentials.access_key_id,
        amz_date.get(..8).unwrap_or_default(),
        scope.region,
        scope.service,
        signed_header_names(request.headers),
        signature(request, amz_date, scope, credentials)
    )
}

/// `kSigning`: the secret key narrowed to a day, a region and a service.
fn signing_key(secret: &str, date: &str, scope: Scope<'_>) -> hmac::Key {
    let mut seed = Zeroizing::new(String::with_capacity(4 + secret.len()));
    seed.push_str("AWS4");
    seed.push_str(secret);
    let mut key = hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes());
    for part in [date, scope.region, scope.service, "aws4_request"] {
        let tag = hmac::sign(&key, part.as_bytes());
        key = hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref());
    }
    key
}

/// RFC 3986's unreserved characters stay; everything else is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The canonical request (method, URI, query, headers, signed header
/// names, payload hash, one per line).
fn canonical_request(r: &Signable<'_>) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r.method);
    out.push('\n');
    // The path, each segment encoded again (every service but S3 signs the
    // path encoded twice); an empty path is `/`.
    if r.path.is_empty() {
        out.push('/');
    }
    for (i, segment) in r.path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.extend(utf8_percent_encode(segment, UNRESERVED));
    }
    out.push('\n');
    // The query: each name and value decoded, then encoded the canonical
    // way, sorted by name then value.
    let mut params: Vec<(String, String)> = r
        .query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (canonical_component(name), canonical_component(value))
        })
        .collect();
    params.sort();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let _ = write!(out, "{name}={value}");
    }
    out.push('\n');
    for (name, value) in canonical_headers(r.headers) {
        let _ = writeln!(out, "{name}:{value}");
    }
    out.push('\n');
    out.push_str(&signed_header_names(r.headers));
    out.push('\n');
    out.push_str(r.payload_sha256);
    out
}

fn canonical_component(raw: &str) -> String {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    utf8_percent_encode(&decoded, UNRESERVED).to_string()
}

/// Header names lower-cased and sorted, each with its values trimmed,
/// inner runs of spaces folded to one, and joined by commas.
fn canonical_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => {
                values.push(',');
                values.push_str(&value);
            }
            None => out.push((name, value)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn signed_header_names(headers: &[(&str, &str)]) -> String {
    let names: Vec<String> = canonical_headers(headers)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    names.join(";")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// An `Authorization` header, taken apart.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The access key id that signed.
    pub access_key_id: &'a str,
    /// The scope's date, `YYYYMMDD`.
    pub date: &'a str,
    /// The scope.
    pub scope: Scope<'a>,
    /// The signed headers' names, lower-case, in the header's order.
    pub signed_headers: Vec<&'a str>,
    /// The signature, hex.
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parse `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request,
    /// SignedHeaders=a;b, Signature=HEX`. `None` for anything else.
    pub fn parse(header: &'a str) -> Option<Self> {
        let rest = header.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=')?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return None,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        let mut scope = credential?.split('/');
        let (access_key_id, date, region, service) =
            (scope.next()?, scope.next()?, scope.next()?, scope.next()?);
        if scope.next()? != "aws4_request" || scope.next().is_some() {
            return None;
        }
        let signed_headers: Vec<&str> = signed?.split(';').collect();
        let signature = signature?;
        let well_formed = !access_key_id.is_empty()
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
            && signed_headers.iter().all(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
            })
            && signature.len() == 64
            && signature.bytes().all(|b| b.is_ascii_hexdigit());
        well_formed.then_some(Self {
            access_key_id,
            date,
            scope: Scope { region, service },
            signed_headers,
            signature,
        })
    }
}

/// Why a signed request was not accepted ([`verify`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization` header, or one that is not SigV4's shape, or a
    /// signed header (or `X-Amz-Date`) missing.
    #[error("the request is not signed with AWS Signature Version 4: {0}")]
    Incomplete(&'static str),
    /// Signed with another access key than the expected one.
    #[error("the request was signed with another access key than this function's")]
    OtherKey,
    /// Signed for another region or service, or with a session token other
    /// than the expected one.
    #[error("the request was signed for {0}")]
    OtherScope(&'static str),
    /// `X-Amz-Date` too far from now.
    #[error("the request's X-Amz-Date is more than 5 minutes from the current time")]
    Expired,
    /// The signature does not match.
    #[error("the request signature does not match the signature it should have")]
    Mismatch,
}

/// How far `X-Amz-Date` may be from now (AWS's own window).
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// A request as received, for [`verify`].
#[derive(Debug)]
pub struct Received<'a> {
    /// `GET`, `POST`...
    pub method: &'a str,
    /// The path as received.
    pub path: &'a str,
    /// The query string as received, without `?`.
    pub query: &'a str,
    /// Every header received, names in any case.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body received.
    pub body: &'a [u8],
}

impl Received<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Verify that `request` was signed by `credentials` for `region` and one
/// of `services` (the service's signing name it was signed for is
/// returned), at most [`MAX_SKEW`] from `now`. When `credentials` carry a
/// session token, the request must carry the same one.
///
/// Every comparison that involves a secret (the signature, the session
/// token) is made in constant time.
pub fn verify<'a>(
    request: &Received<'a>,
    credentials: &Credentials,
    region: &str,
    services: &[&'static str],
    now: SystemTime,
) -> Result<&'static str, Refusal> {
    let header = request
        .header("authorization")
        .ok_or(Refusal::Incomplete("no Authorization header"))?;
    let auth = Authorization::parse(header)
        .ok_or(Refusal::Incomplete("the Authorization header is malformed"))?;
    let amz_date = request
        .header("x-amz-date")
        .ok_or(Refusal::Incomplete("no X-Amz-Date header"))?;
    let signed_at =
        parse_amz_date(amz_date).ok_or(Refusal::Incomplete("X-Amz-Date is malformed"))?;
    if !auth.signed_headers.contains(&"host") || !auth.signed_headers.contains(&"x-amz-date") {
        return Err(Refusal::Incomplete(
            "Host and X-Amz-Date must be signed headers",
        ));
    }
    if auth.access_key_id != credentials.access_key_id {
        return Err(Refusal::OtherKey);
    }
    let service = services
        .iter()
        .copied()
        .find(|s| *s == auth.scope.service)
        .ok_or(Refusal::OtherScope("another service"))?;
    if auth.scope.region != region {
        return Err(Refusal::OtherScope("another region"));
    }
    if Some(auth.date) != amz_date.get(..8) {
        return Err(Refusal::Incomplete(
            "the credential scope's date is not X-Amz-Date's",
        ));
    }
    let skew = match now.duration_since(signed_at) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > MAX_SKEW {
        return Err(Refusal::Expired);
    }
    if let Some(expected) = credentials.session_token() {
        let given = request.header("x-amz-security-token").unwrap_or_default();
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(Refusal::OtherScope("another session token"));
        }
    }
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        let mut found = false;
        for (n, v) in request.headers {
            if n.eq_ignore_ascii_case(name) {
                headers.push((name, v));
                found = true;
            }
        }
        if !found {
            return Err(Refusal::Incomplete("a signed header is missing"));
        }
    }
    let payload = sha256_hex(request.body);
    let signable = Signable {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: &headers,
        payload_sha256: &payload,
    };
    let scope = Scope {
        region,
        service: auth.scope.service,
    };
    let expected = signature(&signable, amz_date, scope, credentials);
    match bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        true => Ok(service),
        false => Err(Refusal::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test suite's credentials, date, region and service.
    fn suite() -> (Credentials, Scope<'static>) {
        let credentials = Credentials::new(
            "AKIDEXAMPLE".into(),
            Zeroizing::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
            None,
        );
        let scope = Scope {
            region: "us-east-1",
            service: "service",
        };
        (credentials, scope)
    }

    const SUITE_DATE: &str = "20150830T123600Z";

    fn suite_signature(method: &str, path: &str, query: &str) -> String {
        let (credentials, scope) = suite();
        let headers = [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", SUITE_DATE),
        ];
        let request = Signable {
            method,
            path,
            query,
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        signature(&request, SUITE_DATE, scope, &credentials)
    }

    #[test]
    fn the_published_test_suite_signatures() {
        // AWS's sig-v4 test suite (get-vanilla, post-vanilla,
        // get-vanilla-query-order-key-case, get-unreserved).
        assert_eq!(
            suite_signature("GET", "/", ""),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(
            suite_signature("POST", "/", ""),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
        assert_eq!(
            suite_signature("GET", "/", "Param2=value2&Param1=value1"),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
        assert_eq!(
            suite_signature(
                "GET",
                "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                ""
            ),
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
        );
        let (credentials, scope) = suite();
        let headers = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", SUITE_DATE),
        ];
        let request = Signable {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            authorization(&request, SUITE_DATE, scope, &credentials),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn an_aws_json_request_signs_as_aws_sigv4_signs_it() {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let body = br#"{"SecretId":"app/key"}"#;
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let date = amz_date(when);
        let credentials = Credentials::new(
            "ASIAEXAMPLE".into(),
            Zeroizing::new("secret/key+1".into()),
            Some(Zeroizing::new("session token".into())),
        );
        let headers = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "secretsmanager.eu-west-1.amazonaws.com"),
            ("x-amz-date", date.as_str()),
            ("x-amz-security-token", "session token"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let payload = sha256_hex(body);
        let ours = authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                payload_sha256: &payload,
            },
            &date,
            Scope {
                region: "eu-west-1",
                service: "secretsmanager",
            },
            &credentials,
        );

        let identity = aws_credential_types::Credentials::new(
            "ASIAEXAMPLE",
            "secret/key+1",
            Some("session token".into()),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-1")
            .name("secretsmanager")
            .time(when)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let unsigned = [
            ("content-type", "application/x-amz-json-1.1"),
            ("host", "secretsmanager.eu-west-1.amazonaws.com"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "https://secretsmanager.eu-west-1.amazonaws.com/",
            unsigned.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let (theirs, _) = instructions.into_parts();
        let theirs = theirs
            .iter()
            .find(|h| h.name() == "authorization")
            .map(|h| h.value().to_owned())
            .unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn amz_dates_round_trip() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(when), SUITE_DATE);
        assert_eq!(parse_amz_date(SUITE_DATE), Some(when));
        for bad in [
            "",
            "20150830",
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    fn signed(
        credentials: &Credentials,
        when: SystemTime,
        body: &[u8],
        region: &str,
    ) -> (Vec<(String, String)>, String) {
        let date = amz_date(when);
        let mut headers: Vec<(String, String)> = vec![
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
            ("Host".into(), "127.0.0.1:2773".into()),
            ("X-Amz-Date".into(), date.clone()),
            (
                "X-Amz-Target".into(),
                "secretsmanager.GetSecretValue".into(),
            ),
            ("User-Agent".into(), "Boto3/1.40".into()),
        ];
        if let Some(token) = credentials.session_token() {
            headers.push(("X-Amz-Security-Token".into(), token.into()));
        }
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(n, _)| n != "User-Agent")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let payload = sha256_hex(body);
        let auth = authorization(
            &Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &refs,
                payload_sha256: &payload,
            },
            &date,
            Scope {
                region,
                service: "secretsmanager",
            },
            credentials,
        );
        headers.push(("Authorization".into(), auth.clone()));
        (headers, auth)
    }

    fn check(
        headers: &[(String, String)],
        body: &[u8],
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<&'static str, Refusal> {
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let received = Received {
            method: "POST",
            path: "/",
            query: "",
            headers: &refs,
            body,
        };
        verify(
            &received,
            credentials,
            "eu-west-1",
            &["secretsmanager", "ssm"],
            now,
        )
    }

    #[test]
    fn verification_accepts_what_was_signed_and_nothing_else() {
        let ours = Credentials::new(
            "ASIAOURS".into(),
            Zeroizing::new("our secret".into()),
            Some(Zeroizing::new("our token".into())),
        );
        let now = SystemTime::now();
        let body = br#"{"SecretId":"a"}"#;
        let (headers, _) = signed(&ours, now, body, "eu-west-1");
        assert_eq!(check(&headers, body, &ours, now), Ok("secretsmanager"));
        // Four minutes either way is fine; six is not.
        assert!(check(&headers, body, &ours, now + Duration::from_secs(240)).is_ok());
        assert!(check(&headers, body, &ours, now - Duration::from_secs(240)).is_ok());
        assert_eq!(
            check(&headers, body, &ours, now + Duration::from_secs(360)),
            Err(Refusal::Expired)
        );
        // Another body, another secret key, another access key, another token.
        assert_eq!(
            check(&headers, br#"{"SecretId":"b"}"#, &ours, now),
            Err(Refusal::Mismatch)
        );
        let forged = Credentials::new(
            "ASIAOURS".into(),
            Zeroizing::new("guessed".into()),
            Some(Zeroizing::new("our token".into())),
        );
        let (headers, _) = signed(&forged, now, body, "eu-west-1");
        assert_eq!(check(&headers, body, &ours, now), Err(Refusal::Mismatch));
        let other = Credentials::new(
            "ASIAOTHER".into(),
            Zeroizing::new("our secret".into()),
            Some(Zeroizing::new("our token".into())),
        );
        let (headers, _) = signed(&other, now, body, "eu-west-1");
        assert_eq!(check(&headers, body, &ours, now), Err(Refusal::OtherKey));
        let other_token = Credentials::new(
            "ASIAOURS".into(),
            Zeroizing::new("our secret".into()),
            Some(Zeroizing::new("their token".into())),
        );
        let (headers, _) = signed(&other_token, now, body, "eu-west-1");
        assert!(matches!(
            check(&headers, body, &ours, now),
            Err(Refusal::OtherScope(_))
        ));
        let (headers, _) = signed(&ours, now, body, "us-west-2");
        assert_eq!(
            check(&headers, body, &ours, now),
            Err(Refusal::OtherScope("another region"))
        );
        // Unsigned, and malformed.
        let unsigned: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| n != "Authorization")
            .cloned()
            .collect();
        assert!(matches!(
            check(&unsigned, body, &ours, now),
            Err(Refusal::Incomplete(_))
        ));
        let mut garbled = unsigned.clone();
        garbled.push(("Authorization".into(), "AWS4-HMAC-SHA256 nonsense".into()));
        assert!(matches!(
            check(&garbled, body, &ours, now),
            Err(Refusal::Incomplete(_))
        ));
    }

    #[test]
    fn authorization_headers_parse() {
        let a = Authorization::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ssm/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .unwrap();
        assert_eq!(a.access_key_id, "AKID");
        assert_eq!(a.scope.service, "ssm");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        for bad in [
            "",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/ssm, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "Basic dXNlcjpwYXNz",
        ] {
            assert_eq!(Authorization::parse(bad), None, "{bad}");
        }
    }
}
