//! The services' many-value and parameter answers, read off the wire into
//! records: `BatchGetSecretValue`, `GetParameter`, `GetParameters` and a
//! `GetParametersByPath` page. Values are borrowed as JSON text and
//! unescaped into wiped buffers ([`unescape`]), as `GetSecretValue`'s are.

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use super::{error_answer_of, unescape, unreadable_answer, SecretValueAnswer};
use crate::fetch::BatchItem;
use crate::{Error, ErrorKind, Parameter, Record};

/// Whether `id` (a name, a full ARN or an ARN without its 6-character
/// suffix) designates the secret called `name` with ARN `arn`: batch
/// answers name secrets by ARN and name, not by the id asked.
pub(crate) fn designates(id: &str, name: Option<&str>, arn: Option<&str>) -> bool {
    Some(id) == name
        || Some(id) == arn
        || arn.is_some_and(|arn| {
            // A partial ARN lacks the 6-character random suffix "-AbCdEf".
            arn.strip_prefix(id)
                .is_some_and(|rest| rest.len() == 7 && rest.starts_with('-'))
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchAnswer<'a> {
    #[serde(borrow, default)]
    secret_values: Vec<SecretValueAnswer<'a>>,
    #[serde(default)]
    errors: Vec<BatchError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchError {
    secret_id: Option<String>,
    error_code: Option<String>,
    message: Option<String>,
}

/// Read a 2xx `BatchGetSecretValue` answer: an outcome per asked id it
/// names (values by name or ARN, errors by the id asked).
pub fn batch_secret_values_answer(body: &[u8], ids: &[String]) -> Result<Vec<BatchItem>, Error> {
    let out: BatchAnswer = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("BatchGetSecretValue answered malformed JSON"))?;
    let mut items = Vec::with_capacity(ids.len());
    for value in out.secret_values {
        let asked = ids
            .iter()
            .find(|id| designates(id, value.name.as_deref(), value.arn.as_deref()));
        if let Some(id) = asked {
            items.push((id.clone(), value.into_record()));
        }
    }
    for e in out.errors {
        let Some(id) = e.secret_id else { continue };
        let code = e.error_code.unwrap_or_default();
        let message = e.message.unwrap_or_else(|| code.clone());
        items.push((id, Err(error_answer_of(&code, 400, &message))));
    }
    Ok(items)
}

/// A `Parameter` object as the service writes it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParameterAnswer<'a> {
    #[serde(rename = "ARN")]
    arn: Option<String>,
    name: Option<String>,
    r#type: Option<String>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    version: i64,
    selector: Option<String>,
    source_result: Option<String>,
    last_modified_date: Option<f64>,
    data_type: Option<String>,
}

impl ParameterAnswer<'_> {
    fn into_parameter(self) -> Result<Parameter, Error> {
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

#[derive(Deserialize)]
struct OneParameter<'a> {
    #[serde(rename = "Parameter", borrow)]
    parameter: Option<ParameterAnswer<'a>>,
}

/// Read a 2xx `GetParameter` answer.
pub fn parameter_answer(body: &[u8]) -> Result<Record, Error> {
    let out: OneParameter = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParameter answered malformed JSON"))?;
    let p = out
        .parameter
        .ok_or_else(|| unreadable_answer("GetParameter answered no parameter"))?;
    Ok(Record::Parameter(p.into_parameter()?))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManyParameters<'a> {
    #[serde(borrow, default)]
    parameters: Vec<ParameterAnswer<'a>>,
    #[serde(default)]
    invalid_parameters: Vec<String>,
    next_token: Option<String>,
}

/// Read a 2xx `GetParameters` answer: an outcome per asked name it names
/// (found by name or ARN; the invalid ones as not found).
pub fn parameters_answer(body: &[u8], names: &[String]) -> Result<Vec<BatchItem>, Error> {
    let out: ManyParameters = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParameters answered malformed JSON"))?;
    let mut items = Vec::with_capacity(names.len());
    for p in out.parameters {
        let asked = names.iter().find(|n| {
            Some(n.as_str()) == p.name.as_deref() || Some(n.as_str()) == p.arn.as_deref()
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

/// Read a 2xx `GetParametersByPath` page: its parameters and the token of
/// the next page, if any.
pub fn parameters_page(body: &[u8]) -> Result<(Vec<Parameter>, Option<String>), Error> {
    let out: ManyParameters = serde_json::from_slice(body)
        .map_err(|_| unreadable_answer("GetParametersByPath answered malformed JSON"))?;
    let list = out
        .parameters
        .into_iter()
        .map(ParameterAnswer::into_parameter)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((list, out.next_token.filter(|t| !t.is_empty())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    #[test]
    fn ids_designate_by_name_arn_or_partial_arn() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:app/key-AbCdEf";
        assert!(designates("app/key", Some("app/key"), Some(arn)));
        assert!(designates(arn, Some("app/key"), Some(arn)));
        assert!(designates(
            "arn:aws:secretsmanager:us-east-1:1:secret:app/key",
            Some("app/key"),
            Some(arn)
        ));
        assert!(!designates("app/ke", Some("app/key"), Some(arn)));
    }

    #[test]
    fn batch_answers_are_attributed_to_the_ids_asked() {
        let body = br#"{"SecretValues":[{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:a-AbCdEf","Name":"a","VersionId":"v1","SecretString":"x\"y","VersionStages":["AWSCURRENT"],"CreatedDate":1.5}],
            "Errors":[{"SecretId":"b","ErrorCode":"ResourceNotFoundException","Message":"no b"}]}"#;
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let items = batch_secret_values_answer(body, &ids).unwrap();
        assert_eq!(items.len(), 2);
        let Ok(Record::Secret(a)) = &items[0].1 else {
            panic!("a: {:?}", items[0])
        };
        assert_eq!(items[0].0, "a");
        assert!(matches!(&a.payload, Payload::String(s) if s.as_str() == "x\"y"));
        let (id, Err(e)) = &items[1] else {
            panic!("b: {:?}", items[1])
        };
        assert_eq!((id.as_str(), e.kind()), ("b", ErrorKind::NotFound));
        assert!(batch_secret_values_answer(b"{", &ids).is_err());
    }

    #[test]
    fn parameter_answers_read_every_field() {
        let body = br#"{"Parameter":{"ARN":"arn:aws:ssm:us-east-1:1:parameter/p","Name":"/p","Type":"SecureString","Value":"s\u00e9cret","Version":3,"Selector":":3","LastModifiedDate":1.25,"DataType":"text"}}"#;
        let Record::Parameter(p) = parameter_answer(body).unwrap() else {
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
        let e = parameter_answer(b"{}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn parameters_answers_list_found_and_invalid_names() {
        let body = br#"{"Parameters":[{"Name":"/a","Type":"String","Value":"1","Version":1}],"InvalidParameters":["/b"]}"#;
        let names = vec!["/a".to_owned(), "/b".to_owned()];
        let items = parameters_answer(body, &names).unwrap();
        assert_eq!(items[0].0, "/a");
        assert!(items[0].1.is_ok());
        let (name, Err(e)) = &items[1] else {
            panic!("/b: {:?}", items[1])
        };
        assert_eq!((name.as_str(), e.kind()), ("/b", ErrorKind::NotFound));
        let page = br#"{"Parameters":[{"Name":"/a/x","Type":"String","Value":"1","Version":1}],"NextToken":"t2"}"#;
        let (list, next) = parameters_page(page).unwrap();
        assert_eq!((list.len(), next.as_deref()), (1, Some("t2")));
        let (_, last) = parameters_page(br#"{"Parameters":[],"NextToken":""}"#).unwrap();
        assert_eq!(last, None);
    }
}
