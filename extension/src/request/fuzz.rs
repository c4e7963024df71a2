//! Property tests (fuzzing in the normal suite): whatever method, path,
//! query and headers a client sends, routing never panics and never answers
//! a 5xx, because input alone is never the server's fault.

use http::{HeaderName, HeaderValue, StatusCode};
use proptest::prelude::*;

use super::*;
use crate::auth::TOKEN_HEADER;

/// Cases per property; `PROPTEST_CASES` overrides it for a longer run.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(4096);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn token() -> Token {
    Token::new("session-token".into())
}

fn check(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), TestCaseError> {
    if let Err(e) = route(method, uri, headers, &token()) {
        let status = e.status();
        prop_assert!(status.is_client_error(), "{uri} gave {status}");
        // The message names the problem, never echoes the token.
        prop_assert!(!e.to_string().contains("session-token"));
    }
    Ok(())
}

fn headers(token: Option<Vec<u8>>, extra: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(t) = token.and_then(|t| HeaderValue::from_bytes(&t).ok()) {
        h.append(TOKEN_HEADER, t);
    }
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(&value),
        ) {
            h.append(n, v);
        }
    }
    h
}

/// Pieces of the real grammar, mixed with hostile bytes, so the search
/// reaches the deep branches (decoding, flags, versions) and not only 404.
fn path() -> impl Strategy<Value = String> {
    let v1 = "[a-zA-Z0-9%/._~+ -]{0,40}".prop_map(|id| format!("/v1/{id}"));
    prop_oneof![
        Just("/secretsmanager/get".to_owned()),
        Just("/systemsmanager/parameters/get".to_owned()),
        Just("/secretsmanager/batch".to_owned()),
        Just("/systemsmanager/parameters/get-by-path".to_owned()),
        Just("/ping".to_owned()),
        Just("/metrics".to_owned()),
        v1,
        "/[ -~]{0,30}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("secretId"),
        Just("versionId"),
        Just("versionStage"),
        Just("refreshNow"),
        Just("key"),
        Just("name"),
        Just("version"),
        Just("label"),
        Just("withDecryption"),
        Just("secretIds"),
        Just("names"),
        Just("path"),
        Just("recursive"),
        Just("x"),
        Just(""),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9/._-]{0,20}",
        "[a-c/,]{0,30}",
        "(%[0-9A-Fa-f]{2}){0,8}",
        "%[^0-9A-Fa-f]?[0-9a-z]?",
        Just("true".to_owned()),
        Just("FALSE".to_owned()),
        Just("%00".to_owned()),
        Just("%FF%FE".to_owned()),
        "[0-9]{1,25}",
        "-?[0-9]{1,3}",
    ];
    prop::collection::vec((name, value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        1 => Just(Method::POST),
        1 => Just(Method::HEAD),
        1 => Just(Method::DELETE),
        1 => "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap_or(Method::PUT)),
    ]
}

fn token_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        4 => Just(Some(b"session-token".to_vec())),
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Some),
        1 => Just(Some(vec![b'a'; 10_000])),
    ]
}

fn extra_headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop_oneof![
        Just("x-forwarded-for".to_owned()),
        Just(TOKEN_HEADER.as_str().to_owned()),
        "[a-z-]{1,12}",
    ];
    prop::collection::vec((name, prop::collection::vec(any::<u8>(), 0..32)), 0..3)
}

proptest! {
    #![proptest_config(config())]

    /// Structured requests: the real endpoints and parameters with hostile
    /// values, any method, any token, stray headers.
    #[test]
    fn structured_requests_never_panic_or_5xx(
        method in method(),
        path in path(),
        query in query(),
        token in token_value(),
        extra in extra_headers(),
    ) {
        let text = match query.is_empty() {
            true => path,
            false => format!("{path}?{query}"),
        };
        if let Ok(uri) = Uri::try_from(text.as_str()) {
            check(&method, &uri, &headers(token, extra))?;
        }
    }

    /// Arbitrary bytes as the request target (whatever `http` accepts as a
    /// URI reaches the router).
    #[test]
    fn arbitrary_targets_never_panic_or_5xx(target in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"/".to_vec();
        bytes.extend_from_slice(&target);
        if let Ok(uri) = Uri::try_from(bytes.as_slice()) {
            check(&Method::GET, &uri, &headers(Some(b"session-token".to_vec()), vec![]))?;
        }
    }

    /// Oversized queries are refused as such, never processed.
    #[test]
    fn huge_queries_are_400(len in 8_193usize..40_000) {
        let uri = Uri::try_from(format!("/secretsmanager/get?secretId={}", "a".repeat(len))).unwrap();
        let e = route(&Method::GET, &uri, &headers(Some(b"session-token".to_vec()), vec![]), &token()).unwrap_err();
        prop_assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
