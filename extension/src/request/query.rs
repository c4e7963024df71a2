//! Query strings: strict percent-decoding and named parameters.
//!
//! A `%` must be followed by two hex digits, the result must be UTF-8, and
//! `+` stays a plus: secret and parameter names may contain `+` and never
//! contain spaces. Each parameter may appear once.

use std::borrow::Cow;
use std::sync::Arc;

use sidekey_aws::roles::check_arn;
use sidekey_cache::key::Role;

use crate::error::ApiError;
use crate::ids;

/// Longest query string accepted.
pub(super) const MAX_QUERY_LEN: usize = 8192;

/// A 400 naming what was wrong.
pub(super) fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

/// Strict percent-decoding to UTF-8.
pub(super) fn decode(raw: &str) -> Result<Cow<'_, str>, String> {
    let bytes = raw.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        // Nothing encoded (the usual id): the text as it is, already UTF-8,
        // without decoding and validating it again.
        return Ok(Cow::Borrowed(raw));
    };
    let mut i = first;
    while let Some(p) = bytes[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let hex = bytes
            .get(at + 1..at + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        if hex.is_none() {
            return Err("invalid percent-encoding".into());
        }
        i = at + 3;
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| "not valid UTF-8 once decoded".into())
}

/// Most parameter names an endpoint takes.
const MAX_PARAMS: usize = 8;

/// Decoded query parameters, each name at most once, kept by the name's
/// place in the endpoint's list: parsing a query allocates nothing unless a
/// value is percent-encoded (a read is on the hot path).
pub(super) struct Params<'a> {
    allowed: &'a [&'a str],
    values: [Option<Cow<'a, str>>; MAX_PARAMS],
}

/// `text` split at each `sep`, an ASCII byte: a byte search, where
/// `str::split` with a `char` sets up a `CharSearcher` for each part.
fn split_ascii(text: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = text.get(i + 1..);
                text.get(..i)
            }
            None => rest.take(),
        }
    })
}

impl<'a> Params<'a> {
    /// Parse `query`, accepting only the names in `allowed` (at most
    /// [`MAX_PARAMS`]).
    pub(super) fn parse(query: &'a str, allowed: &'a [&'a str]) -> Result<Self, ApiError> {
        debug_assert!(
            allowed.len() <= MAX_PARAMS,
            "an endpoint with too many parameters"
        );
        if query.len() > MAX_QUERY_LEN {
            return Err(bad(format!(
                "query string longer than {MAX_QUERY_LEN} bytes"
            )));
        }
        let mut values: [Option<Cow<'a, str>>; MAX_PARAMS] = Default::default();
        for part in split_ascii(query, b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match part.bytes().position(|b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, ""),
            };
            let name = decode(name).map_err(|e| bad(format!("parameter name: {e}")))?;
            let value = decode(value).map_err(|e| bad(format!("{name}: {e}")))?;
            let Some(slot) = allowed
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values.get_mut(i))
            else {
                return Err(bad(format!(
                    "unknown parameter {name:?}; allowed: {}",
                    allowed.join(", ")
                )));
            };
            if slot.is_some() {
                return Err(bad(format!("parameter {name:?} given more than once")));
            }
            *slot = Some(value);
        }
        Ok(Params { allowed, values })
    }

    /// The decoded value of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        let i = self.allowed.iter().position(|n| *n == name)?;
        self.values.get(i)?.clone()
    }

    /// The value of `name`, which must be given.
    pub(super) fn required(&self, name: &str) -> Result<Cow<'a, str>, ApiError> {
        self.get(name)
            .ok_or_else(|| bad(format!("missing required parameter {name:?}")))
    }

    /// An id-like value of `name` (see [`ids::check`]), if given.
    pub(super) fn id(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                ids::check(&v).map_err(|e| bad(format!("{name}: {e}")))?;
                Ok(Some(v.into_owned()))
            }
        }
    }

    /// A comma-separated list of ids (ids never contain a comma): at least
    /// one, at most `max`, each an id ([`ids::check`]) given once.
    pub(super) fn list(&self, name: &str, max: usize) -> Result<Vec<String>, ApiError> {
        let raw = self.required(name)?;
        if raw.is_empty() {
            return Err(bad(format!("{name}: the list is empty")));
        }
        let mut list: Vec<String> = Vec::new();
        for (n, id) in raw.split(',').enumerate() {
            ids::check(id).map_err(|e| bad(format!("{name}: item {}: {e}", n + 1)))?;
            if list.iter().any(|known| known == id) {
                return Err(bad(format!("{name}: {id:?} is given more than once")));
            }
            if list.len() == max {
                return Err(bad(format!("{name}: more than {max} items")));
            }
            list.push(id.to_owned());
        }
        Ok(list)
    }

    /// `roleArn`, if given: an IAM role ARN (checked here for its shape,
    /// against the allowlist when it is used).
    pub(super) fn role(&self) -> Result<Role, ApiError> {
        match self.get("roleArn") {
            None => Ok(None),
            Some(arn) => {
                check_arn(&arn).map_err(|e| bad(format!("roleArn: {e}")))?;
                Ok(Some(Arc::from(arn.as_ref())))
            }
        }
    }

    /// A boolean flag: `true`/`false` (any case) or `1`/`0`; absent is false.
    pub(super) fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name).as_deref() {
            None => Ok(false),
            Some("1") => Ok(true),
            Some("0") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(bad(format!("{name}: {v:?} is not true or false"))),
        }
    }
}
