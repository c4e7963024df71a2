//! What an id, version, label or field name may be. Shared by the request
//! parsers and the configuration (`SIDEKEY_PREFETCH`), and by nothing else.

/// Longest id accepted (a full secret ARN is at most 2048 characters).
pub(crate) const MAX_ID_LEN: usize = 2048;

/// Non-empty, bounded, no control characters. The reason names no value.
pub(crate) fn check(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("longer than {MAX_ID_LEN} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}
