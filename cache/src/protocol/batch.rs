//! The many-value answers: `BatchGetSecretValue`, `GetParameters` and
//! `GetParametersByPath`, as the extension writes them.
//!
//! Each element is a value's cached wire body (or, for a parameter, the
//! object inside it), copied once into one zeroizing buffer sized up front:
//! measured first, so the buffer never reallocates and no unwiped copy of a
//! value is left in freed memory.

use serde::Serialize;
use zeroize::Zeroizing;

use super::ParameterWire;
use crate::{Error, ErrorKind, Parameter, Record, TreeLimits};

/// `GetParametersByPath`'s answer with every page merged: the body a
/// parameter tree is cached as.
#[derive(Serialize)]
pub(crate) struct ParametersWire<'a> {
    #[serde(rename = "Parameters")]
    pub parameters: Vec<ParameterWire<'a>>,
}

/// Bytes of a merged `GetParametersByPath` body around its elements:
/// `{"Parameters":[` and `]}`. Each element adds its size and a comma.
pub const TREE_FRAME: usize = r#"{"Parameters":[]}"#.len();

/// One id's outcome in a batch answer: its cached body, or why not.
pub type BatchEntry<'a> = (&'a str, Result<&'a [u8], &'a Error>);

/// `BatchGetSecretValue`'s answer: `{"SecretValues":[...],"Errors":[...]}`.
/// Each `SecretValues` element is the value's cached `GetSecretValue` body;
/// each failure becomes `{"SecretId","ErrorCode","Message"}` (the service's
/// code, or the kind's), in the order of `entries`.
pub fn batch_secret_values_body(entries: &[BatchEntry<'_>]) -> Zeroizing<Vec<u8>> {
    let errors: Vec<String> = entries
        .iter()
        .filter_map(|(id, outcome)| outcome.err().map(|e| batch_error(id, e)))
        .collect();
    let values: Vec<&[u8]> = entries.iter().filter_map(|(_, o)| o.ok()).collect();
    let errors: Vec<&[u8]> = errors.iter().map(String::as_bytes).collect();
    two_lists(("SecretValues", &values), ("Errors", &errors))
}

/// `GetParameters`' answer: `{"Parameters":[...],"InvalidParameters":[...]}`,
/// `found` being the parameter objects ([`crate::Cached::parameter_json`])
/// and `invalid` the names that do not exist.
pub fn parameters_body(found: &[&[u8]], invalid: &[&str]) -> Zeroizing<Vec<u8>> {
    // Names are not secret; JSON-quoted with serde_json.
    let names: Vec<String> = invalid
        .iter()
        .map(|n| serde_json::to_string(n).unwrap_or_default())
        .collect();
    let names: Vec<&[u8]> = names.iter().map(String::as_bytes).collect();
    two_lists(("Parameters", found), ("InvalidParameters", &names))
}

/// The error a tree past its bound reads as: a 400 that says which bound,
/// never a truncated tree presented as whole. Not transient: the tree is
/// what it is until someone changes it.
pub fn tree_too_large(path: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("the parameters under {path} exceed {what}; read a narrower path"),
    )
    .with_code("ParameterTreeTooLarge")
}

/// A `GetParametersByPath` tree merged page by page, held within its
/// [`TreeLimits`]: past either bound it is an error, never a partial tree.
pub(crate) struct Tree<'a> {
    path: &'a str,
    limits: TreeLimits,
    list: Vec<Parameter>,
    bytes: usize,
}

impl<'a> Tree<'a> {
    /// An empty tree under `path`.
    pub fn new(path: &'a str, limits: TreeLimits) -> Self {
        Self {
            path,
            limits,
            list: Vec::new(),
            bytes: TREE_FRAME,
        }
    }

    /// Add a page's parameter; the bound's error once one is passed.
    pub fn push(&mut self, p: Parameter) -> Result<(), Error> {
        self.bytes += p.wire_size() + 1;
        self.list.push(p);
        if self.list.len() > self.limits.max_parameters {
            let what = format!("{} parameters", self.limits.max_parameters);
            return Err(tree_too_large(self.path, &what));
        }
        if self.bytes > self.limits.max_bytes {
            let what = format!("{} bytes", self.limits.max_bytes);
            return Err(tree_too_large(self.path, &what));
        }
        Ok(())
    }

    /// The whole tree.
    pub fn into_record(self) -> Record {
        Record::Parameters(self.list)
    }
}

fn batch_error(id: &str, e: &Error) -> String {
    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct BatchError<'a> {
        secret_id: &'a str,
        error_code: &'a str,
        message: &'a str,
    }
    serde_json::to_string(&BatchError {
        secret_id: id,
        error_code: e.code(),
        message: e.message(),
    })
    .unwrap_or_default()
}

/// `{"A":[a1,a2],"B":[b1]}` from JSON elements, in a buffer of its exact size.
fn two_lists(a: (&str, &[&[u8]]), b: (&str, &[&[u8]])) -> Zeroizing<Vec<u8>> {
    let list_len = |items: &[&[u8]]| {
        items.iter().map(|i| i.len()).sum::<usize>() + items.len().saturating_sub(1)
    };
    // {"A":[...],"B":[...]}: braces 2, quotes 4, colons 2, brackets 4, comma 1.
    let size = 13 + a.0.len() + b.0.len() + list_len(a.1) + list_len(b.1);
    let mut out = Zeroizing::new(Vec::with_capacity(size));
    out.push(b'{');
    for (n, (name, items)) in [a, b].into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.push(b']');
    }
    out.push(b'}');
    debug_assert_eq!(out.len(), size);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_body_is_exactly_sized_json() {
        let not_found = Error::new(ErrorKind::NotFound, "no such secret")
            .with_code("ResourceNotFoundException");
        let entries: [BatchEntry<'_>; 3] = [
            ("a", Ok(br#"{"Name":"a","SecretString":"x"}"#)),
            ("b", Err(&not_found)),
            ("c", Ok(br#"{"Name":"c"}"#)),
        ];
        let body = batch_secret_values_body(&entries);
        assert_eq!(body.capacity(), body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["SecretValues"][0]["Name"], "a");
        assert_eq!(v["SecretValues"][1]["Name"], "c");
        assert_eq!(v["Errors"][0]["SecretId"], "b");
        assert_eq!(v["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
        assert_eq!(v["Errors"][0]["Message"], "no such secret");
        let empty = batch_secret_values_body(&[]);
        assert_eq!(&empty[..], br#"{"SecretValues":[],"Errors":[]}"#);
    }

    #[test]
    fn parameters_body_lists_found_and_invalid() {
        let body = parameters_body(&[br#"{"Name":"/a"}"#], &["/b\"q", "/c"]);
        assert_eq!(body.capacity(), body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Parameters"][0]["Name"], "/a");
        assert_eq!(v["InvalidParameters"][0], "/b\"q");
        assert_eq!(v["InvalidParameters"][1], "/c");
        assert_eq!(TREE_FRAME, 17);
    }
}
