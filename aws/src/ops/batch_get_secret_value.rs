//! `BatchGetSecretValue`: the current versions of up to [`MAX_IDS`]
//! secrets in one call.
//!
//! The answer names each value by its ARN and name, not by the id it was
//! asked by, so each is attributed back to an asked id ([`designates`]);
//! failures come per id in `Errors`. sidekey answers this operation itself
//! (the extension's `/secretsmanager/batch`) with [`body`], built from the
//! values' cached `GetSecretValue` bodies.

use serde::{Deserialize, Serialize};
use sidekey_cache::{BatchItem, Error, ErrorKind};
use zeroize::Zeroizing;

use super::get_secret_value::SecretValueAnswer;
use super::{two_lists, Operation, Service};
use crate::errors::{error_of, unreadable_answer};

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::SecretsManager,
    name: "BatchGetSecretValue",
};

/// Most ids one call takes (`SecretIdList`).
pub const MAX_IDS: usize = 20;

/// The codes it answers with, beyond [`crate::errors::COMMON`] (those of
/// `Errors` entries included).
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("ResourceNotFoundException", ErrorKind::NotFound),
    ("DecryptionFailure", ErrorKind::Decryption),
    ("InvalidParameterException", ErrorKind::InvalidRequest),
    ("InvalidRequestException", ErrorKind::InvalidRequest),
    ("InvalidNextTokenException", ErrorKind::InvalidRequest),
    ("InternalServiceError", ErrorKind::Unavailable),
];

/// The request body for a list of ids.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input<'a> {
    secret_id_list: &'a [String],
}

impl<'a> Input<'a> {
    /// The current versions of `ids` (at most [`MAX_IDS`]).
    pub fn ids(ids: &'a [String]) -> Self {
        Self {
            secret_id_list: ids,
        }
    }
}

/// A tag to select secrets by: a key, and a value if given. The service
/// matches each as a case-sensitive prefix of a tag's key (and of some
/// tag's value), as its `tag-key` and `tag-value` filters do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The tag's key.
    pub key: String,
    /// The tag's value, if it must have one.
    pub value: Option<String>,
}

/// The request body for a page of the secrets carrying `tag`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilteredInput<'a> {
    filters: Vec<Filter<'a>>,
    max_results: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Filter<'a> {
    key: &'static str,
    values: [&'a str; 1],
}

impl<'a> FilteredInput<'a> {
    /// The page of `tag`'s secrets that `next_token` names (the first
    /// without), [`MAX_IDS`] a page.
    pub fn tagged(tag: &'a Tag, next_token: Option<&'a str>) -> Self {
        let mut filters = vec![Filter {
            key: "tag-key",
            values: [&tag.key],
        }];
        if let Some(value) = &tag.value {
            filters.push(Filter {
                key: "tag-value",
                values: [value],
            });
        }
        Self {
            filters,
            max_results: MAX_IDS as u32,
            next_token,
        }
    }
}

/// Read a 2xx page of a filtered call: each value by its name, each
/// failure by its id, and the next page's token.
pub fn tagged_answer(body: &[u8]) -> Result<(Vec<BatchItem>, Option<String>), Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page<'a> {
        #[serde(borrow, default)]
        secret_values: Vec<SecretValueAnswer<'a>>,
        #[serde(default)]
        errors: Vec<AnswerError>,
        next_token: Option<String>,
    }
    let out: Page = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("BatchGetSecretValue answered malformed JSON"))?;
    let mut items = Vec::with_capacity(out.secret_values.len());
    for value in out.secret_values {
        if let Some(name) = value.name.clone() {
            items.push((name, value.into_record()));
        }
    }
    for e in out.errors {
        let Some(id) = e.secret_id else { continue };
        let code = e.error_code.unwrap_or_default();
        let message = e.message.unwrap_or_else(|| code.clone());
        items.push((id, Err(error_of(&code, 400, &message))));
    }
    Ok((items, out.next_token.filter(|t| !t.is_empty())))
}

/// The request as an SDK sends it to sidekey. Only a list of ids is
/// served from the cache; `Filters` or a page token pass through.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Request {
    /// `SecretIdList`.
    pub secret_id_list: Option<Vec<String>>,
    /// `Filters`, passed through.
    pub filters: Option<serde_json::Value>,
    /// `MaxResults` (only with `Filters`).
    pub max_results: Option<u32>,
    /// `NextToken` (only with `Filters`).
    pub next_token: Option<String>,
}

impl Request {
    /// The ids to serve from the cache: a list of at most [`MAX_IDS`] and
    /// nothing else. `None`: the request passes through to the service.
    pub fn served_ids(self) -> Option<Vec<String>> {
        let plain = self.filters.is_none() && self.next_token.is_none();
        self.secret_id_list
            .filter(|ids| plain && !ids.is_empty() && ids.len() <= MAX_IDS)
    }
}

/// Whether `id` (a name, a full ARN or an ARN without its 6-character
/// suffix) designates the secret called `name` with ARN `arn`, and how
/// exactly: `Some(true)` by its name or full ARN, `Some(false)` by a
/// partial ARN only.
pub fn designates(id: &str, name: Option<&str>, arn: Option<&str>) -> Option<bool> {
    if Some(id) == name || Some(id) == arn {
        return Some(true);
    }
    // A partial ARN lacks the 6-character random suffix "-AbCdEf".
    let partial = arn.is_some_and(|arn| {
        arn.strip_prefix(id)
            .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
    });
    partial.then_some(false)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer<'a> {
    #[serde(borrow, default)]
    secret_values: Vec<SecretValueAnswer<'a>>,
    #[serde(default)]
    errors: Vec<AnswerError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerError {
    secret_id: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

/// Read a 2xx answer: an outcome per asked id it names (values by name or
/// ARN, errors by the id asked).
///
/// Each asked id takes at most one value, and an exact designation (name
/// or full ARN) wins over a partial ARN's: with secrets `x` and
/// `x-AbCdEf`, the partial ARN `…:secret:x-AbCdEf` of the second is also
/// the full ARN of the first if its random suffix happens to be `AbCdEf`,
/// and the first match in the answer's order used to take it (issue 26).
pub fn answer(body: &[u8], ids: &[String]) -> Result<Vec<BatchItem>, Error> {
    let out: Answer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("BatchGetSecretValue answered malformed JSON"))?;
    let mut taken: Vec<Option<usize>> = vec![None; ids.len()];
    for exact in [true, false] {
        for (v, value) in out.secret_values.iter().enumerate() {
            if taken.contains(&Some(v)) {
                continue;
            }
            let free = ids.iter().enumerate().find(|(i, id)| {
                taken[*i].is_none()
                    && designates(id, value.name.as_deref(), value.arn.as_deref()) == Some(exact)
            });
            if let Some((i, _)) = free {
                taken[i] = Some(v);
            }
        }
    }
    let mut values: Vec<Option<SecretValueAnswer>> =
        out.secret_values.into_iter().map(Some).collect();
    let mut items = Vec::with_capacity(ids.len());
    for (id, v) in ids.iter().zip(taken) {
        if let Some(value) = v.and_then(|v| values[v].take()) {
            items.push((id.clone(), value.into_record()));
        }
    }
    for e in out.errors {
        let Some(id) = e.secret_id else { continue };
        let code = e.error_code.unwrap_or_default();
        let message = e.message.unwrap_or_else(|| code.clone());
        items.push((id, Err(error_of(&code, 400, &message))));
    }
    Ok(items)
}

/// One id's outcome in an answer sidekey writes: its cached body, or why not.
pub type Entry<'a> = (&'a str, Result<&'a [u8], &'a Error>);

/// The answer sidekey writes: `{"SecretValues":[...],"Errors":[...]}`.
/// Each `SecretValues` element is the value's cached `GetSecretValue` body;
/// each failure becomes `{"SecretId","ErrorCode","Message"}` (the service's
/// code, or the kind's), in the order of `entries`.
pub fn body(entries: &[Entry<'_>]) -> Zeroizing<Vec<u8>> {
    let errors: Vec<String> = entries
        .iter()
        .filter_map(|(id, outcome)| outcome.err().map(|e| error_entry(id, e)))
        .collect();
    let values: Vec<&[u8]> = entries.iter().filter_map(|(_, o)| o.ok()).collect();
    let errors: Vec<&[u8]> = errors.iter().map(String::as_bytes).collect();
    two_lists(("SecretValues", &values), ("Errors", &errors))
}

fn error_entry(id: &str, e: &Error) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct ErrorEntry<'a> {
        secret_id: &'a str,
        error_code: &'a str,
        message: &'a str,
    }
    serde_json::to_string(&ErrorEntry {
        secret_id: id,
        error_code: e.code(),
        message: e.message(),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use sidekey_cache::{Payload, Record};

    use super::*;

    fn text(item: &BatchItem) -> String {
        match &item.1 {
            Ok(Record::Secret(s)) => match &s.payload {
                Payload::String(v) => v.to_string(),
                Payload::Binary(_) => "binary".into(),
            },
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn ids_designate_by_name_arn_or_partial_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:app/key-AbCdEf";
        assert_eq!(
            designates("app/key", Some("app/key"), Some(arn)),
            Some(true)
        );
        assert_eq!(designates(arn, Some("app/key"), Some(arn)), Some(true));
        assert_eq!(
            designates(
                "arn:aws:secretsmanager:us-east-1:1:secret:app/key",
                Some("app/key"),
                Some(arn)
            ),
            Some(false)
        );
        assert_eq!(designates("app/ke", Some("app/key"), Some(arn)), None);
    }

    #[test]
    fn answers_are_attributed_to_the_ids_asked() {
        let body = br#"{"SecretValues":[{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf","Name":"a","VersionId":"v1","SecretString":"x\"y","VersionStages":["AWSCURRENT"],"CreatedDate":1.5}],
            "Errors":[{"SecretId":"b","ErrorCode":"ResourceNotFoundException","Message":"no b"}]}"#;
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let items = answer(body, &ids).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].0.as_str(), text(&items[0]).as_str()),
            ("a", "x\"y")
        );
        let (id, Err(e)) = &items[1] else {
            panic!("b: {:?}", items[1])
        };
        assert_eq!((id.as_str(), e.kind()), ("b", ErrorKind::NotFound));
        assert!(answer(b"{", &ids).is_err());
    }

    #[test]
    fn an_exact_match_wins_over_a_partial_arn_in_any_order() {
        // Secret "x" whose random suffix is AbCdEf, and secret "x-AbCdEf":
        // the asked id is x's full ARN and x-AbCdEf's partial ARN at once.
        let prefix = "arn:aws:secretsmanager:us-east-1:1:secret:";
        let x = format!(
            r#"{{"ARN":"{prefix}x-AbCdEf","Name":"x","VersionId":"1","SecretString":"of x"}}"#
        );
        let other = format!(
            r#"{{"ARN":"{prefix}x-AbCdEf-Zz9999","Name":"x-AbCdEf","VersionId":"1","SecretString":"of x-AbCdEf"}}"#
        );
        let asked = vec![format!("{prefix}x-AbCdEf"), "x-AbCdEf".to_owned()];
        for (first, second) in [(&x, &other), (&other, &x)] {
            let body = format!(r#"{{"SecretValues":[{first},{second}]}}"#);
            let items = answer(body.as_bytes(), &asked).unwrap();
            let got: Vec<(&str, String)> = items.iter().map(|i| (i.0.as_str(), text(i))).collect();
            assert_eq!(
                got,
                [
                    (asked[0].as_str(), "of x".to_owned()),
                    ("x-AbCdEf", "of x-AbCdEf".to_owned())
                ]
            );
        }
    }

    #[test]
    fn tagged_pages_are_asked_and_read() {
        let tag = Tag {
            key: "team".into(),
            value: Some("edge".into()),
        };
        let body = serde_json::to_string(&FilteredInput::tagged(&tag, Some("t2"))).unwrap();
        assert_eq!(
            body,
            r#"{"Filters":[{"Key":"tag-key","Values":["team"]},{"Key":"tag-value","Values":["edge"]}],"MaxResults":20,"NextToken":"t2"}"#
        );
        let page = br#"{"SecretValues":[{"ARN":"arn:a-AbCdEf","Name":"a","VersionId":"1","SecretString":"x"}],"NextToken":"t3"}"#;
        let (items, next) = tagged_answer(page).unwrap();
        assert_eq!((items[0].0.as_str(), next.as_deref()), ("a", Some("t3")));
        let (_, last) = tagged_answer(br#"{"SecretValues":[],"NextToken":null}"#).unwrap();
        assert_eq!(last, None);
    }

    #[test]
    fn the_body_is_exactly_sized_json() {
        let not_found = Error::new(ErrorKind::NotFound, "no such secret")
            .with_code("ResourceNotFoundException");
        let entries: [Entry<'_>; 3] = [
            ("a", Ok(br#"{"Name":"a","SecretString":"x"}"#)),
            ("b", Err(&not_found)),
            ("c", Ok(br#"{"Name":"c"}"#)),
        ];
        let out = body(&entries);
        assert_eq!(out.capacity(), out.len());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["SecretValues"][0]["Name"], "a");
        assert_eq!(v["SecretValues"][1]["Name"], "c");
        assert_eq!(v["Errors"][0]["SecretId"], "b");
        assert_eq!(v["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
        assert_eq!(v["Errors"][0]["Message"], "no such secret");
        assert_eq!(&body(&[])[..], br#"{"SecretValues":[],"Errors":[]}"#);
    }
}
