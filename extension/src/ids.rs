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
    // The control characters are C0, DEL and C1; only C1 needs decoding.
    let control = match id.is_ascii() {
        true => id.bytes().any(|b| b.is_ascii_control()),
        false => id.chars().any(char::is_control),
    };
    if control {
        return Err("contains control characters".into());
    }
    Ok(())
}
