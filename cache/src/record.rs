//! What the services answer, and the form the cache keeps it in.
//!
//! A fetcher returns a typed [`Record`]. The cache turns it at once into a
//! [`Cached`]: the exact JSON body of `GetSecretValue` / `GetParameter` /
//! `GetParametersByPath` (every page merged),
//! serialized once, held in a buffer zeroized when it goes (packed with
//! others in a page: [`pages`]), plus the few non-secret fields the cache
//! itself needs. A cache hit then costs no serialization
//! and no copy ([`Cached::body`] shares the buffer), and only one copy of
//! each value lives in memory.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::json::unescape;
use crate::key::Kind;
use crate::{Error, ErrorKind};

mod pages;
mod wire;

pub use wire::{decode_binary, TREE_FRAME};
use wire::{
    ParameterEnvelope, ParameterFields, ParameterWire, ParametersWire, SecretFields, SecretWire,
    PARAMETER_ENVELOPE,
};

/// A secret's payload: `SecretString` or `SecretBinary`. Wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub enum Payload {
    /// A text secret (often a JSON object of key/value pairs).
    String(Zeroizing<String>),
    /// A binary secret (raw bytes; base64 on the wire).
    Binary(Zeroizing<Vec<u8>>),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::String(s) => write!(f, "String(<redacted {} bytes>)", s.len()),
            Payload::Binary(b) => write!(f, "Binary(<redacted {} bytes>)", b.len()),
        }
    }
}

/// The data of a `GetSecretValue` answer.
#[derive(Clone, Debug, PartialEq)]
pub struct SecretValue {
    /// Full ARN of the secret.
    pub arn: String,
    /// Friendly name of the secret.
    pub name: String,
    /// The version returned.
    pub version_id: String,
    /// The value.
    pub payload: Payload,
    /// Staging labels attached to this version.
    pub version_stages: Vec<String>,
    /// Creation time of this version, epoch seconds (millisecond precision).
    pub created_date: Option<f64>,
}

/// The data of a `GetParameter` answer.
#[derive(Clone, PartialEq)]
pub struct Parameter {
    /// Full ARN of the parameter.
    pub arn: String,
    /// Name, as stored.
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    pub r#type: String,
    /// The value (decrypted if asked and allowed). Wiped on drop.
    pub value: Zeroizing<String>,
    /// Version number.
    pub version: i64,
    /// The selector the caller used (`:3`, `:label`), if any.
    pub selector: Option<String>,
    /// Set for parameters that reference Secrets Manager.
    pub source_result: Option<String>,
    /// Last change, epoch seconds.
    pub last_modified_date: Option<f64>,
    /// `text`, `aws:ec2:image`...
    pub data_type: Option<String>,
}

impl fmt::Debug for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parameter")
            .field("arn", &self.arn)
            .field("name", &self.name)
            .field("type", &self.r#type)
            .field(
                "value",
                &format_args!("<redacted {} bytes>", self.value.len()),
            )
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Parameter {
    /// Bytes this parameter takes as an element of a `Parameters` list on
    /// the wire: what the bound on a parameter tree counts.
    pub fn wire_size(&self) -> usize {
        pages::json_size(&self.wire())
    }

    fn wire(&self) -> ParameterWire<'_> {
        ParameterWire {
            arn: &self.arn,
            data_type: self.data_type.as_deref(),
            last_modified_date: self.last_modified_date,
            name: &self.name,
            selector: self.selector.as_deref(),
            source_result: self.source_result.as_deref(),
            r#type: &self.r#type,
            value: &self.value,
            version: self.version,
        }
    }
}

/// One upstream answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// From Secrets Manager.
    Secret(SecretValue),
    /// From Parameter Store.
    Parameter(Parameter),
    /// Every parameter under a path (`GetParametersByPath`, all pages).
    Parameters(Vec<Parameter>),
}

/// What a cached body holds, so it is read back the way it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    Secret,
    Parameter,
    Parameters,
}

/// A cached value: which body it is and the JSON body, serialized once.
///
/// The body is [`Bytes`] over a buffer zeroized when the last reference to
/// it goes, whether that is the cache (eviction, replacement, shutdown) or
/// an HTTP response still being written. Handing it to a response is a
/// reference count, not an allocation ([`Cached::body`]).
///
/// Nothing else is kept: the ARN, name and version are in the body, and a
/// copy of each beside it cost three allocations per entry that nothing
/// read (about 260 KiB of RSS with 1,000 secrets cached; issue 14).
pub struct Cached {
    shape: Shape,
    /// The body, and the page it lives in if packed ([`pages`]).
    body: pages::Body,
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("shape", &self.shape)
            .field(
                "json",
                &format_args!("<redacted {} bytes>", self.body.bytes.len()),
            )
            .finish()
    }
}

impl Cached {
    /// Serialize `record` into its wire body. The record (and its plain
    /// value) is dropped, and so wiped, on return.
    pub fn from_record(record: Record) -> Self {
        // Written once, straight into its page (`pages`): no copies.
        let (shape, body) = match &record {
            Record::Secret(s) => {
                let (secret_string, secret_binary) = match &s.payload {
                    Payload::String(v) => (Some(v.as_str()), None),
                    Payload::Binary(b) => (None, Some(b.as_slice())),
                };
                let wire = SecretWire {
                    arn: &s.arn,
                    name: &s.name,
                    version_id: &s.version_id,
                    secret_string,
                    secret_binary,
                    version_stages: &s.version_stages,
                    created_date: s.created_date,
                };
                (Shape::Secret, pages::body_of(&wire))
            }
            Record::Parameter(p) => {
                let wire = ParameterEnvelope {
                    parameter: p.wire(),
                };
                (Shape::Parameter, pages::body_of(&wire))
            }
            Record::Parameters(list) => {
                // Borrowed views: the values are not copied to build the list.
                let wire = ParametersWire {
                    parameters: list.iter().map(Parameter::wire).collect(),
                };
                (Shape::Parameters, pages::body_of(&wire))
            }
        };
        Cached { shape, body }
    }

    /// The wire body, as the service would have answered.
    pub fn json(&self) -> &[u8] {
        &self.body.bytes
    }

    /// The wire body as [`Bytes`] sharing this value's buffer (no copy).
    pub fn body(&self) -> Bytes {
        self.body.bytes.clone()
    }

    /// Whether this body keeps a mostly dead page alive: its neighbours
    /// were all replaced or dropped ([`pages`]). The cache repacks it.
    pub(crate) fn sparse(&self) -> bool {
        self.body.sparse()
    }

    /// The same value with its body written again into the page being
    /// filled, so the page this one pins can go.
    pub(crate) fn repacked(&self) -> Cached {
        Cached {
            shape: self.shape,
            body: self.body.repacked(),
        }
    }

    /// Bytes this entry holds, for the cache's byte bound.
    pub fn size(&self) -> usize {
        self.body.bytes.len()
    }

    /// The value as text: `SecretString`, or `SecretBinary` decoded if it
    /// is UTF-8, or the parameter's `Value`. Decoded straight from the
    /// cached body into a wiped buffer ([`unescape`]).
    pub fn text(&self) -> Result<Zeroizing<String>, Error> {
        match self.shape {
            Shape::Secret => {
                let f: SecretFields = parse(&self.body.bytes)?;
                match (f.secret_string, f.secret_binary) {
                    (Some(s), _) => string_of(s),
                    (None, Some(b64)) => {
                        let bytes = decode_binary(&string_of(b64)?)?;
                        let text = std::str::from_utf8(&bytes)
                            .map_err(|_| invalid("the binary secret is not UTF-8 text"))?;
                        Ok(Zeroizing::new(text.to_owned()))
                    }
                    (None, None) => Err(invalid("the secret has no value")),
                }
            }
            Shape::Parameter => {
                string_of(parse::<ParameterFields>(&self.body.bytes)?.parameter.value)
            }
            Shape::Parameters => Err(invalid("a parameter tree has no single value")),
        }
    }

    /// The service this value came from.
    pub fn kind(&self) -> Kind {
        match self.shape {
            Shape::Secret => Kind::Secret,
            Shape::Parameter | Shape::Parameters => Kind::Parameter,
        }
    }

    /// The value's `Name` and `ARN`, as its body names them (a secret or a
    /// single parameter; nothing for a tree): what a write to the service
    /// may name it by.
    pub fn identity(&self) -> (Option<String>, Option<String>) {
        #[derive(Deserialize)]
        struct Names {
            #[serde(rename = "Name")]
            name: Option<String>,
            #[serde(rename = "ARN")]
            arn: Option<String>,
        }
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(rename = "Parameter")]
            parameter: Names,
        }
        let names = match self.shape {
            Shape::Secret => serde_json::from_slice::<Names>(&self.body.bytes).ok(),
            Shape::Parameter => serde_json::from_slice::<Envelope>(&self.body.bytes)
                .ok()
                .map(|e| e.parameter),
            Shape::Parameters => None,
        };
        names.map_or((None, None), |n| (n.name, n.arn))
    }

    /// A secret's `VersionId`, as its body holds it.
    pub fn version_id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "VersionId")]
            version_id: Option<String>,
        }
        match self.shape {
            Shape::Secret => serde_json::from_slice::<Version>(&self.body.bytes)
                .ok()
                .and_then(|v| v.version_id)
                .filter(|v| !v.is_empty()),
            _ => None,
        }
    }

    /// A parameter's `Parameter` object alone, as `GetParameters` lists it:
    /// the cached `GetParameter` body without its envelope, borrowed (no
    /// copy). `None` for anything but a single parameter.
    pub fn parameter_json(&self) -> Option<&[u8]> {
        if self.shape != Shape::Parameter {
            return None;
        }
        self.body
            .bytes
            .strip_prefix(PARAMETER_ENVELOPE)?
            .strip_suffix(b"}")
    }

    /// Several fields of a secret whose value is a JSON object, parsed once,
    /// as plain strings in the order asked (see [`Cached::field`]).
    pub fn fields(&self, names: &[&str]) -> Result<Vec<Zeroizing<String>>, Error> {
        object_fields(&self.text()?, names)
    }

    /// One field of a secret whose value is a JSON object, as JSON text
    /// (a string field comes back quoted, as in the object).
    ///
    /// The object is parsed with its values borrowed from the (wiped) text,
    /// so the field is copied once, into the wiped result, and no other
    /// copy of any field is made.
    pub fn field_json(&self, field: &str) -> Result<Zeroizing<String>, Error> {
        let text = self.text()?;
        let object: BTreeMap<String, &RawValue> =
            serde_json::from_str(&text).map_err(|_| invalid("the value is not a JSON object"))?;
        let value = object.get(field).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("the value has no key {field:?}"),
            )
        })?;
        Ok(Zeroizing::new(value.get().to_owned()))
    }

    /// One field of a JSON-object value, as a plain string (string fields
    /// unquoted, other JSON values as their JSON text).
    pub fn field(&self, field: &str) -> Result<Zeroizing<String>, Error> {
        plain(&self.field_json(field)?)
    }
}

/// Fields `names` of the JSON object `text`, parsed once: the values are
/// borrowed from `text` and each is decoded straight into its own wiped
/// buffer, so no other copy is made.
pub(crate) fn object_fields(text: &str, names: &[&str]) -> Result<Vec<Zeroizing<String>>, Error> {
    let object: BTreeMap<String, &RawValue> =
        serde_json::from_str(text).map_err(|_| invalid("the value is not a JSON object"))?;
    names
        .iter()
        .map(|name| {
            let value = object.get(*name).ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("the value has no key {name:?}"),
                )
            })?;
            plain(value.get())
        })
        .collect()
}

/// A field's JSON text as a plain string: a string unquoted and unescaped,
/// any other JSON value as its text.
fn plain(json: &str) -> Result<Zeroizing<String>, Error> {
    if json.starts_with('"') {
        return unescape(json).ok_or_else(|| invalid("the field is not a string"));
    }
    Ok(Zeroizing::new(json.to_owned()))
}

/// A JSON string value of a cached body, decoded into a wiped buffer.
fn string_of(raw: &RawValue) -> Result<Zeroizing<String>, Error> {
    unescape(raw.get()).ok_or_else(|| Error::new(ErrorKind::Other, "cached body is malformed"))
}

fn invalid(msg: &str) -> Error {
    Error::new(ErrorKind::InvalidRequest, msg.to_owned())
}

fn parse<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(json)
        .map_err(|_| Error::new(ErrorKind::Other, "cached body is malformed"))
}

/// `buf` as [`Bytes`] that wipe it when the last reference goes: for
/// bodies holding values, which hyper may still be writing after the cache
/// has let go of them.
pub fn wiped_bytes(buf: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(Wiped(buf))
}

/// Owner handed to `Bytes::from_owner`: its drop is the wipe.
struct Wiped(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn secret(payload: Payload) -> Record {
        Record::Secret(SecretValue {
            arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/key-AbCdEf".into(),
            name: "app/key".into(),
            version_id: "v1".into(),
            payload,
            version_stages: vec!["AWSCURRENT".into()],
            created_date: Some(1_700_000_000.5),
        })
    }

    #[test]
    fn wire_body_is_what_serde_writes_whether_packed_or_not() {
        let text = "quote\" newline\n ünï \u{1} ".repeat(200);
        let binary = vec![0xFF; 4097];
        for (secret_string, secret_binary) in
            [(Some(text.as_str()), None), (None, Some(&binary[..]))]
        {
            let wire = SecretWire {
                arn: "arn",
                name: "name",
                version_id: "v1",
                secret_string,
                secret_binary,
                version_stages: &[],
                created_date: None,
            };
            let body = pages::body_of(&wire).bytes;
            assert_eq!(&body[..], &serde_json::to_vec(&wire).unwrap()[..]);
        }
    }

    #[test]
    fn secret_string_wire_shape() {
        let c = Cached::from_record(secret(Payload::String(Zeroizing::new(
            r#"{"apikey":"s3cr3t","n":1}"#.into(),
        ))));
        let v: serde_json::Value = serde_json::from_slice(c.json()).unwrap();
        assert_eq!(v["Name"], "app/key");
        assert_eq!(v["VersionId"], "v1");
        assert_eq!(v["VersionStages"][0], "AWSCURRENT");
        assert_eq!(v["CreatedDate"], 1_700_000_000.5);
        assert!(v.get("SecretBinary").is_none());
        assert_eq!(&*c.field("apikey").unwrap(), "s3cr3t");
        assert_eq!(&*c.field_json("apikey").unwrap(), "\"s3cr3t\"");
        assert_eq!(&*c.field("n").unwrap(), "1");
        assert_eq!(c.field("missing").unwrap_err().kind(), ErrorKind::NotFound);
        let (name, arn) = c.identity();
        assert_eq!(name.as_deref(), Some("app/key"));
        assert!(arn.unwrap().ends_with(":secret:app/key-AbCdEf"));
    }

    #[test]
    fn several_fields_from_one_parse() {
        let c = Cached::from_record(secret(Payload::String(Zeroizing::new(
            r#"{"user":"u\u00e9","password":"p\"w","port":5432,"esc\u0061pe":"k"}"#.into(),
        ))));
        let got = c.fields(&["password", "user", "port", "escape"]).unwrap();
        let got: Vec<&str> = got.iter().map(|f| f.as_str()).collect();
        assert_eq!(got, ["p\"w", "u\u{e9}", "5432", "k"]);
        assert_eq!(
            c.fields(&["user", "nope"]).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(c.fields(&[]).unwrap().is_empty());
    }

    #[test]
    fn binary_secret_is_base64() {
        let c = Cached::from_record(secret(Payload::Binary(Zeroizing::new(b"hi\xff".to_vec()))));
        let v: serde_json::Value = serde_json::from_slice(c.json()).unwrap();
        assert_eq!(v["SecretBinary"], "aGn/");
        assert!(v.get("SecretString").is_none());
        assert_eq!(c.text().unwrap_err().kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn debug_never_prints_values() {
        let r = secret(Payload::String(Zeroizing::new("hunter2".into())));
        assert!(!format!("{r:?}").contains("hunter2"));
        let c = Arc::new(Cached::from_record(r));
        assert!(!format!("{c:?}").contains("hunter2"));
        let body = c.body();
        assert!(std::str::from_utf8(&body).unwrap().contains("hunter2"));
    }

    #[test]
    fn parameter_wire_shape() {
        let c = Cached::from_record(Record::Parameter(Parameter {
            arn: "arn:aws:ssm:us-east-1:1:parameter/a".into(),
            name: "/a".into(),
            r#type: "SecureString".into(),
            value: Zeroizing::new("pw".into()),
            version: 2,
            selector: Some(":2".into()),
            source_result: None,
            last_modified_date: Some(1.0),
            data_type: Some("text".into()),
        }));
        let v: serde_json::Value = serde_json::from_slice(c.json()).unwrap();
        assert_eq!(v["Parameter"]["Value"], "pw");
        assert_eq!(v["Parameter"]["Version"], 2);
        assert_eq!(v["Parameter"]["Selector"], ":2");
        assert_eq!(&*c.text().unwrap(), "pw");
        assert!(!format!("{c:?}").contains("pw\""));
        let inner: serde_json::Value = serde_json::from_slice(c.parameter_json().unwrap()).unwrap();
        assert_eq!(inner, v["Parameter"]);
    }

    #[test]
    fn a_tree_is_one_body_of_every_parameter() {
        let p = |name: &str, value: &str| Parameter {
            arn: format!("arn:aws:ssm:us-east-1:1:parameter{name}"),
            name: name.into(),
            r#type: "String".into(),
            value: Zeroizing::new(value.into()),
            version: 1,
            selector: None,
            source_result: None,
            last_modified_date: None,
            data_type: Some("text".into()),
        };
        let list = vec![p("/app/a", "1"), p("/app/b", "two\"")];
        let expected = TREE_FRAME + list.iter().map(|p| p.wire_size() + 1).sum::<usize>() - 1;
        let c = Cached::from_record(Record::Parameters(list));
        assert_eq!(
            c.json().len(),
            expected,
            "wire_size counts the body exactly"
        );
        let v: serde_json::Value = serde_json::from_slice(c.json()).unwrap();
        assert_eq!(v["Parameters"][1]["Value"], "two\"");
        assert_eq!(v["Parameters"][0]["Name"], "/app/a");
        assert_eq!(c.kind(), Kind::Parameter);
        assert!(c.parameter_json().is_none());
        assert_eq!(c.text().unwrap_err().kind(), ErrorKind::InvalidRequest);
        let empty = Cached::from_record(Record::Parameters(Vec::new()));
        assert_eq!(empty.json(), br#"{"Parameters":[]}"#);
    }
}
