//! JSON string literals decoded into wiped buffers.
//!
//! serde_json unescapes a string with escapes through a scratch buffer that
//! it drops without wiping: reading a secret that way would leave a copy in
//! freed memory. [`unescape`] writes only into its output, sized up front
//! (an escape never decodes to more bytes than it takes), so it never
//! reallocates either. Every reader of a value goes through it: the cache's
//! own `text`/`field`, the answers the AWS client reads (crate
//! `sidekey-aws`), and the localhost client (crate `sidekey-client`).

use zeroize::Zeroizing;

/// Decode a JSON string literal (quotes included) into a wiped buffer.
/// `None` if `literal` is not a valid JSON string.
///
/// RFC 8259 §7: only the quotation mark, the reverse solidus and the
/// control characters U+0000–U+001F must be escaped. DEL (U+007F) and the
/// C1 controls (U+0080–U+009F) may stand raw, and serde_json writes them
/// raw: a secret holding one must read back (issue 26: such a secret
/// answered its plain read and failed its `key=` read with a 502).
pub fn unescape(literal: &str) -> Option<Zeroizing<String>> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Zeroizing::new(String::with_capacity(inner.len()));
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            if c == '"' || c < '\u{20}' {
                return None;
            }
            out.push(c);
            continue;
        }
        let decoded = match chars.next()? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&high) {
                    if (chars.next()?, chars.next()?) != ('\\', 'u') {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))?
                } else {
                    char::from_u32(high)?
                }
            }
            _ => return None,
        };
        out.push(decoded);
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    (0..4).try_fold(0u32, |acc, _| Some(acc * 16 + chars.next()?.to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_serde_json_writes() {
        for text in [
            "plain",
            "",
            r#"{"apikey":"k\\"}"#,
            "tab\tnew\nline \u{1F600} é \u{8}\u{c}\r/",
            // DEL and C1 controls: serde_json writes them raw.
            "a\u{7f}b x\u{85}y \u{80}\u{9f}",
            "nul\u{0} unit\u{1f}",
        ] {
            let literal = serde_json::to_string(text).unwrap();
            assert_eq!(unescape(&literal).unwrap().as_str(), text, "{literal}");
        }
        assert_eq!(
            unescape(r#""\ud83d\ude00 \u00e9\/""#).unwrap().as_str(),
            "\u{1F600} é/"
        );
        assert_eq!(
            unescape("\"a\u{7f}\u{85}\"").unwrap().as_str(),
            "a\u{7f}\u{85}"
        );
    }

    #[test]
    fn refuses_what_json_forbids() {
        for bad in [
            r#""unterminated"#,
            r#""bad \x escape""#,
            r#""\ud83d alone""#,
            "7",
            r#""a"b""#,
            "\"raw\nnewline\"",
            "\"raw\u{1}control\"",
        ] {
            assert!(unescape(bad).is_none(), "{bad:?}");
        }
    }
}
