//! A plain HTTP client, used the way a function reads the official
//! extension: GET with the token header, JSON out.

use serde_json::Value;

/// A status, content type and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// Body text.
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// GET `url`, with the token header when given.
pub async fn get(url: &str, token: Option<&str>) -> Answer {
    let client = reqwest::Client::new();
    send(&client, url, token).await
}

/// GET `url` through `client` (keep-alive), with the token header when given.
pub async fn send(client: &reqwest::Client, url: &str, token: Option<&str>) -> Answer {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.header("X-Aws-Parameters-Secrets-Token", t);
    }
    let resp = req.send().await.expect("extension answers");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = resp.text().await.unwrap_or_default();
    if status != 200 {
        crate::hygiene::assert_clean(&body, &format!("the {status} answer to {url}"));
    }
    Answer {
        status,
        content_type,
        body,
    }
}

/// Resident set size of a process, in KiB (from /proc).
pub fn rss_kib(pid: u32) -> u64 {
    let [rss] = status_kib(pid, ["VmRSS:"]);
    rss
}

/// The fields of /proc/PID/stat after the command name (which may hold
/// spaces), so index 0 is the state letter (`T` when stopped) and 11 and 12
/// are user and system time in clock ticks. Empty if the process is gone.
pub fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(str::to_owned).collect()
}

/// Fields of `/proc/PID/status` given in KiB (`VmRSS:`, `RssAnon:`, ...),
/// read from one snapshot; 0 for a field that is absent.
pub fn status_kib<const N: usize>(pid: u32, fields: [&str; N]) -> [u64; N] {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    fields.map(|name| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    })
}
