//! `GetParameter`: one parameter, at its latest version or at the version
//! or label its name's `:selector` suffix names.
//!
//! The parameter object ([`ParameterAnswer`]) is shared with
//! `GetParameters` and `GetParametersByPath`, which list the same objects.
//! The body sidekey answers this operation with is the cached one.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sidekey_cache::json::unescape;
use sidekey_cache::{Error, ErrorKind, Parameter, ParameterRequest, Record};
use zeroize::Zeroizing;

use super::{Operation, Service};
use crate::errors::unreadable_answer;

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::Ssm,
    name: "GetParameter",
};

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("ParameterNotFound", ErrorKind::NotFound),
    ("ParameterVersionNotFound", ErrorKind::NotFound),
    ("ParameterVersionLabelNotFound", ErrorKind::NotFound),
    ("InvalidKeyId", ErrorKind::Decryption),
    ("InternalServerError", ErrorKind::Unavailable),
];

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    name: String,
    with_decryption: bool,
}

impl Input {
    /// The request for `req`: its name with the selector suffix.
    pub fn new(req: &ParameterRequest) -> Self {
        Self {
            name: req.selector_name(),
            with_decryption: req.with_decryption,
        }
    }
}

/// The request as an SDK sends it to sidekey, read into the cache's key.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Request {
    name: String,
    #[serde(default)]
    with_decryption: bool,
}

impl Request {
    /// The cache's key of what is asked: the name's `:version` or
    /// `:label` suffix becomes the selector.
    pub fn into_key(self) -> ParameterRequest {
        selector_request(&self.name, self.with_decryption)
    }
}

/// `name` as `GetParameter` takes it (`/a`, `/a:3`, `/a:prod`, or an ARN
/// with the same suffixes), split into the parameter and its selector.
/// Parameter names hold no `:`; an ARN holds five before the name.
pub fn selector_request(name: &str, with_decryption: bool) -> ParameterRequest {
    let colons_before_name = if name.starts_with("arn:") { 5 } else { 0 };
    let split = name
        .match_indices(':')
        .nth(colons_before_name)
        .map(|(i, _)| (&name[..i], &name[i + 1..]));
    let (base, selector) = match split {
        Some((base, selector)) if !selector.is_empty() => (base, Some(selector)),
        _ => (name, None),
    };
    let mut req = ParameterRequest::latest(base, with_decryption);
    match selector.map(|s| (s, s.parse::<u64>())) {
        Some((_, Ok(version))) => req.version = Some(version),
        Some((label, Err(_))) => req.label = Some(label.to_owned()),
        None => {}
    }
    req
}

/// Read a 2xx answer.
pub fn answer(body: &[u8]) -> Result<Record, Error> {
    #[derive(Deserialize)]
    struct One<'a> {
        #[serde(rename = "Parameter", borrow)]
        parameter: Option<ParameterAnswer<'a>>,
    }
    let out: One = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParameter answered malformed JSON"))?;
    let p = out
        .parameter
        .ok_or_else(|| unreadable_answer("GetParameter answered no parameter"))?;
    Ok(Record::Parameter(p.into_parameter()?))
}

/// A `Parameter` object as the service writes it; the value is borrowed
/// and decoded into a wiped buffer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ParameterAnswer<'a> {
    #[serde(rename = "ARN")]
    pub arn: Option<String>,
    pub name: Option<String>,
    r#type: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    version: i64,
    pub selector: Option<String>,
    source_result: Option<String>,
    last_modified_date: Option<f64>,
    data_type: Option<String>,
}

impl ParameterAnswer<'_> {
    pub(crate) fn into_parameter(self) -> Result<Parameter, Error> {
        let value = match self.value {
            Some(raw) => unescape(raw.get())
                .ok_or_else(|| unreadable_answer("a parameter value is not a JSON string"))?,
            None => Zeroizing::new(String::new()),
        };
        Ok(Parameter {
            arn: self.arn.unwrap_or_default(),
            name: self.name.unwrap_or_default(),
            r#type: self.r#type.unwrap_or_default(),
            value,
            version: self.version,
            selector: self.selector,
            source_result: self.source_result,
            last_modified_date: self.last_modified_date,
            data_type: self.data_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_selector() {
        let mut req = ParameterRequest::latest("/app/db", true);
        req.version = Some(3);
        let body = serde_json::to_string(&Input::new(&req)).unwrap();
        assert_eq!(body, r#"{"Name":"/app/db:3","WithDecryption":true}"#);
    }

    #[test]
    fn selectors_split_off_names_and_arns() {
        let r = selector_request("/app/db", true);
        assert_eq!(
            (r.name.as_str(), r.version, r.label),
            ("/app/db", None, None)
        );
        let r = selector_request("/app/db:3", false);
        assert_eq!((r.name.as_str(), r.version), ("/app/db", Some(3)));
        let r = selector_request("/app/db:prod", false);
        assert_eq!(
            (r.name.as_str(), r.label.as_deref()),
            ("/app/db", Some("prod"))
        );
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db";
        assert_eq!(selector_request(arn, false).name, arn);
        let r = selector_request(&format!("{arn}:7"), false);
        assert_eq!((r.name.as_str(), r.version), (arn, Some(7)));
        assert_eq!(selector_request("/a:3", false).selector_name(), "/a:3");
    }

    #[test]
    fn answers_read_every_field() {
        let body = br#"{"Parameter":{"ARN":"arn:aws:ssm:us-east-1:1:parameter/p","Name":"/p","Type":"SecureString","Value":"s\u00e9cret","Version":3,"Selector":":3","LastModifiedDate":1.25,"DataType":"text"}}"#;
        let Record::Parameter(p) = answer(body).unwrap() else {
            panic!("not a parameter")
        };
        assert_eq!(
            (
                p.name.as_str(),
                p.r#type.as_str(),
                p.value.as_str(),
                p.version
            ),
            ("/p", "SecureString", "sécret", 3)
        );
        assert_eq!(p.selector.as_deref(), Some(":3"));
        assert_eq!(p.last_modified_date, Some(1.25));
        assert_eq!(answer(b"{}").unwrap_err().kind(), ErrorKind::Unavailable);
    }
}
