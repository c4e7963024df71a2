//! Secret hygiene across the whole suite: every value the harness seeds
//! into moto is remembered here, and every extension/function log (when its
//! environment is torn down) and every error body the clients receive is
//! scanned for all of them. The harness runs the extension at log level
//! debug, so the scan covers the most talkative configuration.

use std::sync::Mutex;

/// Values shorter than this are not scanned for: they would match ordinary
/// words ("old", "new") rather than leaks.
pub const MIN_LEN: usize = 8;

static SEEDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Remember a value seeded upstream, and each string inside it if it is a
/// JSON object (a leaked field is as bad as a leaked whole).
pub fn remember(value: &str) {
    let mut seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    let mut add = |v: &str| {
        if v.len() >= MIN_LEN && !seeded.iter().any(|s| s == v) {
            seeded.push(v.to_owned());
        }
    };
    add(value);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(value) {
        for v in fields.values() {
            if let Some(s) = v.as_str() {
                add(s);
            }
        }
    }
}

/// The seeded values found in `text`, if any.
pub fn leaks(text: &str) -> Vec<String> {
    let seeded = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    seeded
        .iter()
        .filter(|v| text.contains(v.as_str()))
        .cloned()
        .collect()
}

/// Panic if `text` (from `source`) holds a seeded value; the message names
/// how many, not which (the failure output is a log too).
pub fn assert_clean(text: &str, source: &str) {
    let found = leaks(text);
    assert!(
        found.is_empty(),
        "{source} contains {} seeded secret value(s)",
        found.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_whole_values_and_json_fields_but_not_short_words() {
        remember(r#"{"apikey":"hygiene-test-key-123","n":"ab"}"#);
        remember("tiny");
        assert_eq!(
            leaks("token=hygiene-test-key-123"),
            ["hygiene-test-key-123"]
        );
        assert!(leaks("tiny ab new old").is_empty());
        assert!(
            std::panic::catch_unwind(|| assert_clean("x hygiene-test-key-123", "log")).is_err()
        );
    }
}
