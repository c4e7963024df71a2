//! The CloudFront Lambda@Edge event and reply shapes (viewer request).
//!
//! `aws_lambda_events` has no CloudFront module, so these are written from
//! the CloudFront developer guide ("Lambda@Edge event structure"). Every
//! object keeps the fields it does not name in `extra`: a request that is
//! passed through goes back to CloudFront with every field it came with
//! (`origin` on origin-request events, fields CloudFront adds later...),
//! because CloudFront treats a missing field as a change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Headers as CloudFront sends them: lowercase name → the values, each with
/// its original-case `key`.
pub type Headers = BTreeMap<String, Vec<Header>>;

/// The event CloudFront passes to a viewer-request function.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct ViewerRequestEvent {
    /// Always exactly one record.
    #[serde(rename = "Records")]
    pub records: Vec<EventRecord>,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ViewerRequestEvent {
    /// Take the request out of the (single) record.
    pub fn into_request(self) -> Option<Request> {
        self.records.into_iter().next().map(|r| r.cf.request)
    }
}

/// One record of the event.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct EventRecord {
    /// The CloudFront part.
    pub cf: CloudFront,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `Records[0].cf`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct CloudFront {
    /// Which distribution and trigger this is.
    pub config: Config,
    /// The viewer's request.
    pub request: Request,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `cf.config`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// e.g. `d111111abcdef8.cloudfront.net`.
    pub distribution_domain_name: String,
    /// e.g. `EDFDVBD6EXAMPLE`.
    pub distribution_id: String,
    /// `viewer-request`, `origin-request`...
    pub event_type: String,
    /// CloudFront's id of this request (safe to log).
    pub request_id: String,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `cf.request`: what the function returns, unchanged, to let the request
/// go on.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// The viewer's IP address.
    pub client_ip: String,
    /// Request headers.
    pub headers: Headers,
    /// HTTP method.
    pub method: String,
    /// The query string without `?` (may be empty).
    pub querystring: String,
    /// The path.
    pub uri: String,
    /// Present only when the trigger is set to include the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `cf.request.body`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Body {
    /// Whether CloudFront cut the body at its size limit.
    pub input_truncated: bool,
    /// `read-only` or `replace`.
    pub action: String,
    /// `base64` or `text`.
    pub encoding: String,
    /// The body.
    pub data: String,
    /// Fields not named above, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One header value.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Header {
    /// The header name in its original case (optional on output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value.
    pub value: String,
}

/// A response generated at the edge instead of going to the origin.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The status code, as a string (CloudFront's format).
    pub status: String,
    /// The reason phrase.
    pub status_description: String,
    /// Response headers.
    pub headers: Headers,
    /// The body (text).
    pub body: String,
}

impl Response {
    /// A `text/plain`, non-cacheable response. CloudFront caches generated
    /// error responses unless told otherwise, and an outage of the API
    /// should not be served from cache after it is over.
    pub fn text(status: u16, description: &str, body: &str) -> Self {
        let mut headers = Headers::new();
        for (key, value) in [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Cache-Control", "no-store"),
        ] {
            headers.insert(
                key.to_ascii_lowercase(),
                vec![Header {
                    key: Some(key.to_owned()),
                    value: value.to_owned(),
                }],
            );
        }
        Self {
            status: status.to_string(),
            status_description: description.to_owned(),
            headers,
            body: body.to_owned(),
        }
    }
}

/// What a viewer-request function returns: the request (it goes on to the
/// cache and origin) or a response (CloudFront answers the viewer with it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// Let the request through, unchanged.
    Forward(Request),
    /// Answer the viewer now.
    Respond(Response),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The guide's viewer-request example, plus fields we do not model.
    pub(crate) const EVENT: &str = r#"{
      "Records": [{
        "cf": {
          "config": {
            "distributionDomainName": "d111111abcdef8.cloudfront.net",
            "distributionId": "EDFDVBD6EXAMPLE",
            "eventType": "viewer-request",
            "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
            "futureConfigField": 1
          },
          "request": {
            "clientIp": "203.0.113.178",
            "headers": {
              "host": [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}],
              "user-agent": [{"key": "User-Agent", "value": "curl/7.66.0"}],
              "accept": [{"key": "accept", "value": "*/*"}],
              "x-multi": [{"key": "X-Multi", "value": "a"}, {"value": "b"}]
            },
            "method": "GET",
            "querystring": "a=1&b=2",
            "uri": "/",
            "origin": {"custom": {"domainName": "example.org", "port": 443}},
            "futureRequestField": [true, null]
          }
        },
        "eventSource": "aws:cloudfront"
      }],
      "topLevel": "x"
    }"#;

    #[test]
    fn request_round_trips_unchanged() {
        let event: ViewerRequestEvent = serde_json::from_str(EVENT).unwrap();
        assert_eq!(event.records[0].cf.config.event_type, "viewer-request");
        let raw: Value = serde_json::from_str(EVENT).unwrap();
        let back = serde_json::to_value(&event).unwrap();
        assert_eq!(back, raw);
        let request = event.into_request().unwrap();
        assert_eq!(request.headers["x-multi"][1].key, None);
        let out = serde_json::to_value(Reply::Forward(request)).unwrap();
        assert_eq!(out, raw["Records"][0]["cf"]["request"]);
    }

    #[test]
    fn body_round_trips() {
        let raw = serde_json::json!({
            "clientIp": "::1", "headers": {}, "method": "POST", "querystring": "", "uri": "/p",
            "body": {"inputTruncated": false, "action": "read-only", "encoding": "base64", "data": "e30="}
        });
        let req: Request = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(req.body.as_ref().unwrap().data, "e30=");
        assert_eq!(serde_json::to_value(&req).unwrap(), raw);
    }

    #[test]
    fn response_shape() {
        let out =
            serde_json::to_value(Reply::Respond(Response::text(502, "Bad Gateway", "no"))).unwrap();
        assert_eq!(out["status"], "502");
        assert_eq!(out["statusDescription"], "Bad Gateway");
        assert_eq!(out["headers"]["cache-control"][0]["value"], "no-store");
        assert_eq!(out["headers"]["content-type"][0]["key"], "Content-Type");
        assert_eq!(out["body"], "no");
    }
}
