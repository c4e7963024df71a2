//! `GetParameters`: up to [`MAX_NAMES`] parameters in one call.
//!
//! Each answered parameter is attributed to the name it was asked by: its
//! `Name` (or `ARN`) with its `Selector`, so `/a` and `/a:3` in one call
//! never take each other's answer. Names that do not exist come back in
//! `InvalidParameters`. sidekey answers this operation itself (the
//! extension's `parameters/get?names=`) with [`body`].

use serde::{Deserialize, Serialize};
use sidekey_cache::{BatchItem, Error, ErrorKind, Record};
use zeroize::Zeroizing;

use super::get_parameter::ParameterAnswer;
use super::{two_lists, Operation, Service};
use crate::errors::unreadable_answer;

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::Ssm,
    name: "GetParameters",
};

/// Most names one call takes.
pub const MAX_NAMES: usize = 10;

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("InvalidKeyId", ErrorKind::Decryption),
    ("InternalServerError", ErrorKind::Unavailable),
];

/// The request body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input<'a> {
    names: &'a [String],
    with_decryption: bool,
}

impl<'a> Input<'a> {
    /// `names` (at most [`MAX_NAMES`], selectors allowed), decrypted or not.
    pub fn new(names: &'a [String], with_decryption: bool) -> Self {
        Self {
            names,
            with_decryption,
        }
    }
}

/// The request as an SDK sends it to sidekey.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Request {
    /// The names asked, selectors included, as given.
    pub names: Vec<String>,
    /// Whether `SecureString` values are decrypted.
    #[serde(default)]
    pub with_decryption: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer<'a> {
    #[serde(borrow, default)]
    parameters: Vec<ParameterAnswer<'a>>,
    #[serde(default)]
    invalid_parameters: Vec<String>,
}

/// Read a 2xx answer: an outcome per asked name it names (found by name or
/// ARN, with the selector it was asked with; the invalid ones as not found).
pub fn answer(body: &[u8], names: &[String]) -> Result<Vec<BatchItem>, Error> {
    let out: Answer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParameters answered malformed JSON"))?;
    let mut items = Vec::with_capacity(names.len());
    for p in out.parameters {
        let selector = p.selector.as_deref().unwrap_or_default();
        let asked = names.iter().find(|n| {
            [p.name.as_deref(), p.arn.as_deref()]
                .into_iter()
                .flatten()
                .any(|id| n.strip_prefix(id) == Some(selector))
        });
        if let Some(name) = asked.cloned() {
            items.push((name, p.into_parameter().map(Record::Parameter)));
        }
    }
    for name in out.invalid_parameters {
        let error = Error::new(ErrorKind::NotFound, format!("parameter {name} not found"))
            .with_code("ParameterNotFound");
        items.push((name, Err(error)));
    }
    Ok(items)
}

/// The answer sidekey writes: `{"Parameters":[...],"InvalidParameters":[...]}`,
/// `found` being the parameter objects
/// ([`sidekey_cache::Cached::parameter_json`]) and `invalid` the names that
/// do not exist.
pub fn body(found: &[&[u8]], invalid: &[&str]) -> Zeroizing<Vec<u8>> {
    // Names are not secret; JSON-quoted with serde_json.
    let names: Vec<String> = invalid
        .iter()
        .map(|n| serde_json::to_string(n).unwrap_or_default())
        .collect();
    let names: Vec<&[u8]> = names.iter().map(String::as_bytes).collect();
    two_lists(("Parameters", found), ("InvalidParameters", &names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(item: &BatchItem) -> i64 {
        match &item.1 {
            Ok(Record::Parameter(p)) => p.version,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_list_found_and_invalid_names() {
        let body = br#"{"Parameters":[{"Name":"/a","Type":"String","Value":"1","Version":1}],"InvalidParameters":["/b"]}"#;
        let names = vec!["/a".to_owned(), "/b".to_owned()];
        let items = answer(body, &names).unwrap();
        assert_eq!(items[0].0, "/a");
        assert!(items[0].1.is_ok());
        let (name, Err(e)) = &items[1] else {
            panic!("/b: {:?}", items[1])
        };
        assert_eq!((name.as_str(), e.kind()), ("/b", ErrorKind::NotFound));
    }

    #[test]
    fn a_selector_answer_goes_to_the_name_asked_with_it_in_any_order() {
        // Issue 26: matched by Name alone, /a took /a:3's answer (version 3
        // held as "latest" for a whole TTL) when it came first.
        let latest = r#"{"Name":"/a","Type":"String","Value":"new","Version":4}"#;
        let third = r#"{"Name":"/a","Type":"String","Value":"old","Version":3,"Selector":":3"}"#;
        let names = vec!["/a".to_owned(), "/a:3".to_owned()];
        for (first, second) in [(latest, third), (third, latest)] {
            let body = format!(r#"{{"Parameters":[{first},{second}]}}"#);
            let items = answer(body.as_bytes(), &names).unwrap();
            let a = items.iter().find(|i| i.0 == "/a").unwrap();
            let a3 = items.iter().find(|i| i.0 == "/a:3").unwrap();
            assert_eq!((version(a), version(a3)), (4, 3));
        }
        let by_arn = br#"{"Parameters":[{"Name":"/a","ARN":"arn:aws:ssm:r:1:parameter/a","Type":"String","Value":"v","Version":2}]}"#;
        let names = vec!["arn:aws:ssm:r:1:parameter/a".to_owned()];
        assert_eq!(answer(by_arn, &names).unwrap()[0].0, names[0]);
    }

    #[test]
    fn the_body_lists_found_and_invalid() {
        let out = body(&[br#"{"Name":"/a"}"#], &["/b\"q", "/c"]);
        assert_eq!(out.capacity(), out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Parameters"][0]["Name"], "/a");
        assert_eq!(v["InvalidParameters"][0], "/b\"q");
        assert_eq!(v["InvalidParameters"][1], "/c");
    }
}
