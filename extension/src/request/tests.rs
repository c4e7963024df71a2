use super::*;
use crate::auth::TOKEN_HEADER;
use http::HeaderValue;
use sidekey_cache::{ParameterRequest, PathRequest, SecretRequest};

fn token() -> Token {
    Token::new("t0k".into())
}

fn headers(token: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(t) = token {
        h.insert(TOKEN_HEADER, HeaderValue::from_str(t).unwrap());
    }
    h
}

fn get(uri: &str) -> Result<Route, ApiError> {
    route(
        &Method::GET,
        &uri.parse().unwrap(),
        &headers(Some("t0k")),
        &token(),
    )
}

fn status(uri: &str) -> u16 {
    get(uri).err().map_or(200, |e| e.status().as_u16())
}

fn read(uri: &str) -> Read {
    match get(uri).unwrap() {
        Route::Read(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn secretsmanager_get() {
    let r = read("/secretsmanager/get?secretId=app%2Fapi%2Fkey&versionStage=AWSPREVIOUS&refreshNow=true&key=apikey");
    assert_eq!(
        r.key,
        Key::Secret(SecretRequest {
            id: "app/api/key".into(),
            version_id: None,
            version_stage: Some("AWSPREVIOUS".into()),
            role: None,
        })
    );
    assert!(r.refresh_now);
    assert_eq!(r.field.as_deref(), Some("apikey"));
}

#[test]
fn plus_is_a_plus() {
    let r = read("/secretsmanager/get?secretId=a+b%2Bc");
    assert_eq!(r.key.id(), "a+b+c");
}

#[test]
fn v1_path_is_decoded() {
    let r = read("/v1/app%2Fapi%2Fkey?versionId=abc");
    assert_eq!(r.key.id(), "app/api/key");
    let r = read("/v1/plain/with/slashes");
    assert_eq!(r.key.id(), "plain/with/slashes");
    // Nothing to decode in the path, some in the query: each as it is.
    let r = read("/v1/caf%C3%A9?versionStage=st%C3%A4ge");
    assert_eq!(r.key.id(), "café");
    let Key::Secret(SecretRequest { version_stage, .. }) = r.key else {
        panic!("not a secret: {:?}", r.key);
    };
    assert_eq!(version_stage.as_deref(), Some("stäge"));
}

#[test]
fn parameters_get() {
    let r = read("/systemsmanager/parameters/get?name=%2Fapp%2Fdb&version=3&withDecryption=true");
    assert_eq!(
        r.key,
        Key::Parameter(ParameterRequest {
            name: "/app/db".into(),
            version: Some(3),
            label: None,
            with_decryption: true,
            role: None,
        })
    );
    assert!(!read("/systemsmanager/parameters/get?name=x").refresh_now);
}

#[test]
fn ping_needs_no_token_but_the_rest_do() {
    let none = headers(None);
    let ping = route(&Method::GET, &"/ping".parse().unwrap(), &none, &token());
    assert_eq!(ping.unwrap(), Route::Ping);
    for uri in ["/metrics", "/secretsmanager/get?secretId=a", "/v1/a"] {
        // Missing is refused like wrong, as AWS's implementation does.
        let e = route(&Method::GET, &uri.parse().unwrap(), &none, &token()).unwrap_err();
        assert_eq!(e.status(), 403, "{uri}");
        let e = route(
            &Method::GET,
            &uri.parse().unwrap(),
            &headers(Some("nope")),
            &token(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 403, "{uri}");
        let e = route(
            &Method::GET,
            &uri.parse().unwrap(),
            &headers(Some("")),
            &token(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 403, "{uri}");
    }
}

#[test]
fn duplicated_token_headers_are_refused() {
    let mut h = headers(Some("t0k"));
    h.append(TOKEN_HEADER, HeaderValue::from_static("t0k"));
    let e = route(&Method::GET, &"/v1/a".parse().unwrap(), &h, &token()).unwrap_err();
    assert_eq!(e.status(), 403);
}

#[test]
fn relayed_and_non_get_requests_are_refused() {
    let mut h = headers(Some("t0k"));
    h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    let e = route(&Method::GET, &"/v1/a".parse().unwrap(), &h, &token()).unwrap_err();
    assert_eq!(e.status(), 400);
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::HEAD] {
        let e = route(
            &m,
            &"/v1/a".parse().unwrap(),
            &headers(Some("t0k")),
            &token(),
        )
        .unwrap_err();
        assert_eq!(e.status(), 405);
    }
}

#[test]
fn bad_requests_name_the_problem() {
    let cases = [
        ("/secretsmanager/get", "secretId"),
        ("/secretsmanager/get?secretId=", "secretId"),
        (
            "/secretsmanager/get?secretId=a&secretId=b",
            "more than once",
        ),
        ("/secretsmanager/get?secretId=a&bogus=1", "bogus"),
        ("/secretsmanager/get?secretId=a%zz", "percent-encoding"),
        ("/secretsmanager/get?secretId=a%", "percent-encoding"),
        ("/secretsmanager/get?secretId=a%00b", "control"),
        ("/secretsmanager/get?secretId=a%7Fb", "control"),
        // U+0085 (NEL), a C1 control, among other non-ASCII text.
        ("/secretsmanager/get?secretId=caf%C3%A9%C2%85", "control"),
        ("/secretsmanager/get?secretId=%ff%fe", "UTF-8"),
        (
            "/secretsmanager/get?secretId=a&refreshNow=yes",
            "refreshNow",
        ),
        ("/systemsmanager/parameters/get?name=a&version=0", "version"),
        ("/systemsmanager/parameters/get?name=a&version=x", "version"),
        (
            "/systemsmanager/parameters/get?name=a&version=1&label=l",
            "not both",
        ),
        ("/systemsmanager/parameters/get?name=a&key=k", "key"),
        (
            "/systemsmanager/parameters/get?name=a&withDecryption=2",
            "withDecryption",
        ),
        ("/metrics?x=1", "no parameters"),
        ("/v1/", "empty"),
        ("/v1/%e2%82", "UTF-8"),
    ];
    for (uri, needle) in cases {
        let e = get(uri).unwrap_err();
        assert_eq!(e.status(), 400, "{uri}: {e}");
        assert!(e.to_string().contains(needle), "{uri}: {e}");
    }
    let long = format!("/secretsmanager/get?secretId={}", "a".repeat(3000));
    assert_eq!(status(&long), 400);
    let huge = format!("/secretsmanager/get?secretId=a&key={}", "k".repeat(10_000));
    assert_eq!(status(&huge), 400);
}

#[test]
fn trailing_slashes_and_numeric_flags_are_accepted() {
    let r = read("/secretsmanager/get/?secretId=a&refreshNow=1");
    assert_eq!((r.key.id(), r.refresh_now), ("a", true));
    let r = read("/systemsmanager/parameters/get/?name=p&withDecryption=1&refreshNow=0");
    assert!(!r.refresh_now);
    assert!(matches!(
        r.key,
        Key::Parameter(ParameterRequest {
            with_decryption: true,
            ..
        })
    ));
    assert_eq!(get("/ping/").unwrap(), Route::Ping);
    assert_eq!(get("/metrics/").unwrap(), Route::Metrics);
}

#[test]
fn unknown_paths_are_404() {
    for uri in [
        "/",
        "/secretsmanager",
        "/secretsmanager/get/x",
        "/v2/a",
        "/pingx",
    ] {
        assert_eq!(status(uri), 404, "{uri}");
    }
}

#[test]
fn secrets_batch() {
    let r = get(
        "/secretsmanager/batch?secretIds=app%2Fdb,b+c,arn:aws:secretsmanager:us-east-1:1:secret:x",
    )
    .unwrap();
    assert_eq!(
        r,
        Route::Secrets {
            ids: vec![
                "app/db".into(),
                "b+c".into(),
                "arn:aws:secretsmanager:us-east-1:1:secret:x".into()
            ],
            role: None
        }
    );
    let twenty: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    let r = get(&format!(
        "/secretsmanager/batch/?secretIds={}",
        twenty.join(",")
    ))
    .unwrap();
    assert_eq!(
        r,
        Route::Secrets {
            ids: twenty,
            role: None
        }
    );
    let r = get("/secretsmanager/batch?secretIds=a&roleArn=arn:aws:iam::123456789012:role/reader")
        .unwrap();
    assert!(
        matches!(r, Route::Secrets { role: Some(ref arn), .. } if &**arn == "arn:aws:iam::123456789012:role/reader")
    );
}

#[test]
fn role_arns_are_read_and_checked_on_every_read() {
    let role = "arn:aws:iam::123456789012:role/app/reader";
    for path in [
        format!("/secretsmanager/get?secretId=a&roleArn={role}"),
        format!("/v1/a?roleArn={role}"),
        format!("/systemsmanager/parameters/get?name=/a&roleArn={role}"),
        format!("/systemsmanager/parameters/get-by-path?path=/a/&roleArn={role}"),
    ] {
        assert_eq!(read(&path).key.role(), Some(role), "{path}");
    }
    let e = get("/secretsmanager/get?secretId=a&roleArn=arn:aws:iam::1:user/bob").unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().starts_with("roleArn: "), "{e}");
}

#[test]
fn parameters_by_names() {
    let r = get("/systemsmanager/parameters/get?names=%2Fa,%2Fb&withDecryption=true").unwrap();
    assert_eq!(
        r,
        Route::Parameters {
            names: vec!["/a".into(), "/b".into()],
            with_decryption: true,
            role: None
        }
    );
    let r = get("/systemsmanager/parameters/get?names=a").unwrap();
    assert!(matches!(
        r,
        Route::Parameters {
            with_decryption: false,
            ..
        }
    ));
}

#[test]
fn parameters_by_path() {
    let r = read("/systemsmanager/parameters/get-by-path?path=%2Fapp%2Fprod%2F&recursive=true&withDecryption=1");
    assert_eq!(
        r.key,
        Key::Path(PathRequest {
            path: "/app/prod/".into(),
            recursive: true,
            with_decryption: true,
            role: None,
        })
    );
    assert!(!r.refresh_now && r.field.is_none());
    let r = read("/systemsmanager/parameters/get-by-path/?path=/&refreshNow=true");
    assert_eq!(
        r.key,
        Key::Path(PathRequest {
            path: "/".into(),
            recursive: false,
            with_decryption: false,
            role: None,
        })
    );
    assert!(r.refresh_now);
}

#[test]
fn bad_lists_and_paths_name_the_parameter() {
    let many = |n: usize, sep: &str| {
        (0..n)
            .map(|i| format!("i{i}"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let cases = [
        ("/secretsmanager/batch".to_owned(), "secretIds"),
        (
            "/secretsmanager/batch?secretIds=".to_owned(),
            "secretIds: the list is empty",
        ),
        (
            "/secretsmanager/batch?secretIds=a,,b".to_owned(),
            "secretIds: item 2",
        ),
        (
            "/secretsmanager/batch?secretIds=a,".to_owned(),
            "secretIds: item 2",
        ),
        (
            "/secretsmanager/batch?secretIds=a,b,a".to_owned(),
            "secretIds: \"a\" is given more than once",
        ),
        (
            format!("/secretsmanager/batch?secretIds={}", many(21, ",")),
            "secretIds: more than 20",
        ),
        (
            "/secretsmanager/batch?secretIds=a&secretId=b".to_owned(),
            "secretId",
        ),
        (
            "/secretsmanager/batch?secretIds=a%00".to_owned(),
            "secretIds: item 1",
        ),
        (
            "/systemsmanager/parameters/get?names=".to_owned(),
            "names: the list is empty",
        ),
        (
            format!("/systemsmanager/parameters/get?names={}", many(11, ",")),
            "names: more than 10",
        ),
        (
            "/systemsmanager/parameters/get?names=a,a".to_owned(),
            "names: \"a\"",
        ),
        (
            "/systemsmanager/parameters/get?names=a&name=b".to_owned(),
            "names: not with \"name\"",
        ),
        (
            "/systemsmanager/parameters/get?names=a&version=2".to_owned(),
            "version",
        ),
        (
            "/systemsmanager/parameters/get?names=a&refreshNow=true".to_owned(),
            "refreshNow",
        ),
        (
            "/systemsmanager/parameters/get?names=a&withDecryption=maybe".to_owned(),
            "withDecryption",
        ),
        ("/systemsmanager/parameters/get-by-path".to_owned(), "path"),
        (
            "/systemsmanager/parameters/get-by-path?path=".to_owned(),
            "path",
        ),
        (
            "/systemsmanager/parameters/get-by-path?path=app/prod".to_owned(),
            "path: \"app/prod\" does not start with /",
        ),
        (
            "/systemsmanager/parameters/get-by-path?path=/a&recursive=yes".to_owned(),
            "recursive",
        ),
        (
            "/systemsmanager/parameters/get-by-path?path=/a&name=b".to_owned(),
            "name",
        ),
    ];
    for (uri, needle) in cases {
        let e = get(&uri).unwrap_err();
        assert_eq!(e.status(), 400, "{uri}: {e}");
        assert!(e.to_string().contains(needle), "{uri}: {e}");
    }
}
