//! `GetParametersByPath`: every parameter under a path, page by page
//! ([`PAGE`] a page), merged into one value that is cached as a whole.
//!
//! A tree is read whole or not at all: past a bound of its [`TreeLimits`]
//! (parameters, bytes, pages) it is an error naming the bound
//! ([`too_large`]), never a truncated tree presented as whole; a `NextToken`
//! the service already gave is an error too ([`Pages`]), not a loop.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use sidekey_cache::record::TREE_FRAME;
use sidekey_cache::{Error, ErrorKind, Parameter, PathRequest, Record, TreeLimits};

use super::get_parameter::ParameterAnswer;
use super::{Operation, Service};
use crate::errors::unreadable_answer;

/// The operation.
pub const OPERATION: Operation = Operation {
    service: Service::Ssm,
    name: "GetParametersByPath",
};

/// Parameters per page (the service's maximum).
pub const PAGE: u32 = 10;

/// The codes it answers with, beyond [`crate::errors::COMMON`].
pub const ERRORS: &[(&str, ErrorKind)] = &[
    ("InvalidFilterKey", ErrorKind::InvalidRequest),
    ("InvalidFilterOption", ErrorKind::InvalidRequest),
    ("InvalidFilterValue", ErrorKind::InvalidRequest),
    ("InvalidNextToken", ErrorKind::InvalidRequest),
    ("InvalidKeyId", ErrorKind::Decryption),
    ("InternalServerError", ErrorKind::Unavailable),
    // sidekey's own, for a tree past its bounds.
    ("ParameterTreeTooLarge", ErrorKind::InvalidRequest),
];

/// One page's request body.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Input<'a> {
    path: &'a str,
    recursive: bool,
    with_decryption: bool,
    max_results: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<&'a str>,
}

impl<'a> Input<'a> {
    /// The page of `req` that `next_token` names (the first without one).
    pub fn page(req: &'a PathRequest, next_token: Option<&'a str>) -> Self {
        Self {
            path: &req.path,
            recursive: req.recursive,
            with_decryption: req.with_decryption,
            max_results: PAGE,
            next_token,
        }
    }
}

/// Read a 2xx page: its parameters and the token of the next page, if any.
pub fn page(body: &[u8]) -> Result<(Vec<Parameter>, Option<String>), Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page<'a> {
        #[serde(borrow, default)]
        parameters: Vec<ParameterAnswer<'a>>,
        next_token: Option<String>,
    }
    let out: Page = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParametersByPath answered malformed JSON"))?;
    let list = out
        .parameters
        .into_iter()
        .map(ParameterAnswer::into_parameter)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((list, out.next_token.filter(|t| !t.is_empty())))
}

/// The request as an SDK sends it to sidekey. A tree is served from the
/// cache, page by page with sidekey's own tokens; `ParameterFilters`, or a
/// token sidekey did not issue, pass through to the service.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Request {
    /// `Path`.
    pub path: String,
    /// `Recursive`.
    #[serde(default)]
    pub recursive: bool,
    /// `WithDecryption`.
    #[serde(default)]
    pub with_decryption: bool,
    /// `MaxResults`: 1 to 10, 10 if absent.
    pub max_results: Option<u32>,
    /// `NextToken`.
    pub next_token: Option<String>,
    /// `ParameterFilters`, passed through.
    pub parameter_filters: Option<serde_json::Value>,
}

/// The first page's token a tree page of sidekey's names the start of.
const TOKEN_PREFIX: &str = "sidekey-page-";

impl Request {
    /// The tree to serve, and where its page starts: `None` when the
    /// request passes through (filters, or another's token).
    pub fn served(&self) -> Option<(PathRequest, usize)> {
        if self.parameter_filters.is_some() {
            return None;
        }
        let start = match &self.next_token {
            None => 0,
            Some(token) => token.strip_prefix(TOKEN_PREFIX)?.parse().ok()?,
        };
        let tree = PathRequest {
            path: self.path.clone(),
            recursive: self.recursive,
            with_decryption: self.with_decryption,
            role: None,
        };
        Some((tree, start))
    }

    /// Parameters per page asked: 1 to [`PAGE`].
    pub fn page_size(&self) -> usize {
        self.max_results.unwrap_or(PAGE).clamp(1, PAGE) as usize
    }
}

/// The page of a cached tree body (`{"Parameters":[...]}`) that starts at
/// `start` and holds at most `size` parameters, as the service answers a
/// page: `{"Parameters":[...],"NextToken":"..."}`, the token naming the
/// next page's start, none after the last. The elements are copied once
/// into a wiped buffer; `None` if the body is not a tree.
pub fn page_body(tree: &[u8], start: usize, size: usize) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    #[derive(Deserialize)]
    struct Tree<'a> {
        #[serde(rename = "Parameters", borrow)]
        parameters: Vec<&'a serde_json::value::RawValue>,
    }
    let tree: Tree = serde_json::from_slice(tree).ok()?;
    let end = start.saturating_add(size).min(tree.parameters.len());
    let page = tree.parameters.get(start.min(end)..end).unwrap_or_default();
    let token = (end < tree.parameters.len()).then(|| format!("{TOKEN_PREFIX}{end}"));
    // The frame, the elements and their commas, `,"NextToken":"…"`.
    let size = TREE_FRAME
        + page.iter().map(|p| p.get().len()).sum::<usize>()
        + page.len().saturating_sub(1)
        + token.as_ref().map_or(0, |t| t.len() + 15);
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(size));
    out.extend_from_slice(b"{\"Parameters\":[");
    for (i, p) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(p.get().as_bytes());
    }
    out.push(b']');
    if let Some(token) = token {
        out.extend_from_slice(b",\"NextToken\":\"");
        out.extend_from_slice(token.as_bytes());
        out.push(b'"');
    }
    out.push(b'}');
    Some(out)
}

/// The error a tree past its bound reads as: a 400 that says which bound.
/// Not transient: the tree is what it is until someone changes it.
pub fn too_large(path: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("the parameters under {path} exceed {what}; read a narrower path"),
    )
    .with_code("ParameterTreeTooLarge")
}

/// A tree merged page by page, held within its [`TreeLimits`].
pub struct Tree<'a> {
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
            return Err(too_large(self.path, &what));
        }
        if self.bytes > self.limits.max_bytes {
            let what = format!("{} bytes", self.limits.max_bytes);
            return Err(too_large(self.path, &what));
        }
        Ok(())
    }

    /// The whole tree.
    pub fn into_record(self) -> Record {
        Record::Parameters(self.list)
    }
}

/// The paging of one tree: at most [`TreeLimits::max_pages`] pages, and
/// never a token twice. A service that hands back a token it gave before
/// would have the reader page forever (or until its deadline, every time);
/// a page cap keeps a path of mostly empty pages (the service may answer a
/// page with no parameter and a token) from doing the same.
pub struct Pages<'a> {
    path: &'a str,
    max_pages: usize,
    pages: usize,
    seen: HashSet<String>,
}

impl<'a> Pages<'a> {
    /// The paging of the tree under `path`.
    pub fn new(path: &'a str, limits: TreeLimits) -> Self {
        Self {
            path,
            max_pages: limits.max_pages(),
            pages: 0,
            seen: HashSet::new(),
        }
    }

    /// Account for a page read, which answered `token`: the token of the
    /// next page to read, `None` when the tree is whole, or the error that
    /// ends the read.
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>, Error> {
        self.pages += 1;
        let Some(token) = token else {
            return Ok(None);
        };
        if self.pages >= self.max_pages {
            let what = format!("{} pages", self.max_pages);
            return Err(too_large(self.path, &what));
        }
        if !self.seen.insert(token.clone()) {
            // The service's fault, and no answer about the tree: transient,
            // so the last good tree is served while it is tried again later.
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "GetParametersByPath under {} answered a NextToken it had already given",
                    self.path
                ),
            )
            .with_code("RepeatedNextToken"));
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_their_token() {
        let page_body = br#"{"Parameters":[{"Name":"/a/x","Type":"String","Value":"1","Version":1}],"NextToken":"t2"}"#;
        let (list, next) = page(page_body).unwrap();
        assert_eq!((list.len(), next.as_deref()), (1, Some("t2")));
        let (_, last) = page(br#"{"Parameters":[],"NextToken":""}"#).unwrap();
        assert_eq!(last, None);
        let req = PathRequest {
            path: "/a/".into(),
            recursive: true,
            with_decryption: false,
            role: None,
        };
        let body = serde_json::to_string(&Input::page(&req, Some("t2"))).unwrap();
        assert_eq!(
            body,
            r#"{"Path":"/a/","Recursive":true,"WithDecryption":false,"MaxResults":10,"NextToken":"t2"}"#
        );
    }

    #[test]
    fn a_cached_tree_is_served_in_pages_with_sidekeys_tokens() {
        let tree = br#"{"Parameters":[{"Name":"/p/a"},{"Name":"/p/b"},{"Name":"/p/c"}]}"#;
        let mut request: Request =
            serde_json::from_str(r#"{"Path":"/p/","MaxResults":2}"#).unwrap();
        let (key, start) = request.served().unwrap();
        assert_eq!(
            (key.path.as_str(), start, request.page_size()),
            ("/p/", 0, 2)
        );
        let first = page_body(tree, start, request.page_size()).unwrap();
        assert_eq!(first.capacity(), first.len(), "sized up front");
        let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(v["Parameters"].as_array().unwrap().len(), 2);
        let token = v["NextToken"].as_str().unwrap().to_owned();
        request.next_token = Some(token);
        let (_, start) = request.served().unwrap();
        let last = page_body(tree, start, 2).unwrap();
        assert_eq!(&last[..], br#"{"Parameters":[{"Name":"/p/c"}]}"#);
        assert_eq!(last.capacity(), last.len(), "sized up front");
        // Past the end: an empty last page.
        assert_eq!(&page_body(tree, 9, 2).unwrap()[..], br#"{"Parameters":[]}"#);
        // Another's token, or filters: passed through.
        request.next_token = Some("AAEAAeyJ".into());
        assert!(request.served().is_none());
        let filtered: Request = serde_json::from_str(
            r#"{"Path":"/p/","ParameterFilters":[{"Key":"Type","Values":["String"]}]}"#,
        )
        .unwrap();
        assert!(filtered.served().is_none());
    }

    #[test]
    fn a_repeated_token_ends_the_read_with_an_error() {
        let mut pages = Pages::new("/p/", TreeLimits::default());
        assert_eq!(pages.next(Some("a".into())).unwrap().as_deref(), Some("a"));
        assert_eq!(pages.next(Some("b".into())).unwrap().as_deref(), Some("b"));
        let e = pages.next(Some("a".into())).unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(e.code(), "RepeatedNextToken");
        assert_eq!(pages.next(None).unwrap(), None);
    }

    #[test]
    fn pages_are_capped() {
        let limits = TreeLimits {
            max_parameters: 20,
            ..TreeLimits::default()
        };
        let cap = limits.max_pages();
        let mut pages = Pages::new("/p/", limits);
        for n in 1..cap {
            pages.next(Some(format!("t{n}"))).unwrap();
        }
        let e = pages.next(Some("last".into())).unwrap_err();
        assert_eq!(e.code(), "ParameterTreeTooLarge");
        assert!(!e.is_transient());
    }
}
