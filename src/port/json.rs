//! What counts as a valid JSON answer from Port, decided in one place.
//!
//! The answer of a forwarding call reaches the client two ways: parsed into a tree by
//! serde_json (rmcp's path), or passed on as Port's own bytes (the lean path and REST). Both
//! must refuse the same bodies, or a body one path refuses would reach clients verbatim by the
//! other: invalid UTF-8, nesting deeper than serde_json's recursion limit (which strict clients
//! share), lone UTF-16 surrogate escapes (`"\ud800"`), which strict parsers reject, and numbers
//! that overflow a 64-bit float (`1e400`). Syntax itself is checked by serde_json where the body
//! is read (`client::interpret`).

/// Nesting levels serde_json accepts: its recursion limit is 128, and the 128th level is the
/// one it refuses.
pub const MAX_DEPTH: usize = 127;

/// Why a body is not JSON a strict client would accept; the text names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonProblem {
    /// Bytes that are not UTF-8.
    #[error("it is not valid UTF-8 (invalid byte sequence at byte {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// Arrays or objects nested too deeply.
    #[error(
        "it nests arrays or objects deeper than {MAX_DEPTH} levels (at byte {at}), which strict \
         JSON parsers refuse"
    )]
    TooDeep {
        /// Offset of the bracket that went one level too deep.
        at: usize,
    },
    /// A number too large for a 64-bit float (`1e400`), which serde_json refuses.
    #[error(
        "it has a number at byte {at} too large for a 64-bit float, which strict JSON parsers \
         refuse"
    )]
    NumberOutOfRange {
        /// Offset of the number.
        at: usize,
    },
    /// A `\uD800`–`\uDFFF` escape without its pair.
    #[error("it has a lone UTF-16 surrogate escape at byte {at}, which strict JSON parsers refuse")]
    LoneSurrogate {
        /// Offset of the backslash of the escape.
        at: usize,
    },
}

/// Checks UTF-8, depth and surrogate escapes of a body, in one pass and without building
/// anything. It assumes nothing about the syntax: on a body that is not JSON at all it may pass,
/// and serde_json then says why the body is refused.
pub fn check(body: &[u8]) -> Result<&str, JsonProblem> {
    let text = std::str::from_utf8(body).map_err(|e| JsonProblem::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    check_text(text)?;
    Ok(text)
}

/// [`check`] for a body already known to be UTF-8 (a `String`), so it is not validated twice.
///
/// Most of a large answer's bytes sit inside strings, so strings are skipped with `memchr`
/// (to the next quote or backslash) rather than byte by byte, and a number is parsed only when
/// it could overflow a 64-bit float: with an exponent, or more than 300 characters long.
pub fn check_text(text: &str) -> Result<(), JsonProblem> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonProblem::TooDeep { at: i });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'"' => i = skip_string(bytes, i + 1)?,
            b'-' | b'0'..=b'9' => {
                let literal = &bytes[i..];
                let len = literal
                    .iter()
                    .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(literal.len());
                let literal = &text[i..i + len];
                let could_overflow = len > 300 || literal.bytes().any(|b| matches!(b, b'e' | b'E'));
                if could_overflow && literal.parse::<f64>().is_ok_and(|n| n.is_infinite()) {
                    return Err(JsonProblem::NumberOutOfRange { at: i });
                }
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn skip_string(bytes: &[u8], mut i: usize) -> Result<usize, JsonProblem> {
    while let Some(n) = memchr::memchr2(b'"', b'\\', &bytes[i.min(bytes.len())..]) {
        i += n;
        if bytes[i] == b'"' {
            return Ok(i);
        }
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let at = i;
        let unit = hex4(bytes, i + 2);
        i += 6;
        match unit {
            Some(0xD800..=0xDBFF) => {
                let low = (bytes.get(i) == Some(&b'\\') && bytes.get(i + 1) == Some(&b'u'))
                    .then(|| hex4(bytes, i + 2))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(JsonProblem::LoneSurrogate { at });
                }
                i += 6;
            }
            Some(0xDC00..=0xDFFF) => return Err(JsonProblem::LoneSurrogate { at }),
            _ => {}
        }
    }
    Ok(bytes.len())
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = bytes.get(at..at.checked_add(4)?)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check and serde_json's own parser agree on every case.
    fn agree(body: &[u8]) -> bool {
        let strict = serde_json::from_slice::<serde_json::Value>(body).is_ok();
        let syntax = serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
        let ours = check(body).is_ok() && syntax;
        assert_eq!(ours, strict, "{:?}", String::from_utf8_lossy(body));
        ours
    }

    fn nested(levels: usize, open: &str, close: &str) -> String {
        format!("{}1{}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        assert!(agree(nested(MAX_DEPTH, "[", "]").as_bytes()));
        assert!(!agree(nested(MAX_DEPTH + 1, "[", "]").as_bytes()));
        assert!(!agree(nested(100_000, "[", "]").as_bytes()));
        let objects = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert!(!agree(objects.as_bytes()));
        assert_eq!(
            check(nested(200, "[", "]").as_bytes()),
            Err(JsonProblem::TooDeep { at: MAX_DEPTH })
        );
        // Brackets inside strings are text, not nesting.
        let in_string = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(agree(in_string.as_bytes()));
    }

    #[test]
    fn surrogates_match_serde_json() {
        for (body, ok) in [
            (r#"{"a":"\ud83d\ude00"}"#, true),
            (r#"{"a":"\ud800"}"#, false),
            (r#"{"a":"\ud800x"}"#, false),
            (r#"{"a":"\udc00"}"#, false),
            (r#"{"a":"\ud800\u0041"}"#, false),
            (r#"{"a":"\ud800\n"}"#, false),
            (r#"{"a":"\\ud800"}"#, true),
            (r#"{"\ud800":1}"#, false),
            (r#"{"a":"\u00e9\"\\"}"#, true),
        ] {
            assert_eq!(agree(body.as_bytes()), ok, "{body}");
        }
        assert_eq!(
            check(br#"{"a":"\ud800"}"#),
            Err(JsonProblem::LoneSurrogate { at: 6 })
        );
    }

    #[test]
    fn numbers_match_serde_json() {
        for (body, ok) in [
            ("[1e400]", false),
            ("[-1e400]", false),
            ("[1e308]", true),
            ("[1e-400]", true),
            ("[0e999999]", true),
            ("[123456789012345678901234567890]", true),
            ("{\"a\":-0.5E+3}", true),
        ] {
            assert_eq!(agree(body.as_bytes()), ok, "{body}");
        }
        let long = format!("[{}]", "9".repeat(400));
        assert!(!agree(long.as_bytes()));
    }

    /// Random JSON-like texts: the check plus a syntax-only parse accepts exactly what
    /// serde_json's full parse accepts.
    #[test]
    fn agrees_with_serde_json_on_random_texts() {
        const PIECES: &[&str] = &[
            "[", "]", "{", "}", "\"", "\\", ",", ":", "1", "-", "e400", ".5", "\\u", "d800",
            "dc00", "0041", "a", " ", "\"k\":", "\u{e9}", "true", "null",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = (next() % 12) as usize;
            let text: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            accepted += usize::from(agree(text.as_bytes()));
        }
        // The comparison is not only between two refusals.
        assert!(accepted > 500, "{accepted}");
    }

    #[test]
    fn utf8_is_required() {
        assert_eq!(
            check(b"{\"a\":\"\xff\"}"),
            Err(JsonProblem::NotUtf8 { at: 6 })
        );
        assert!(!agree(b"{\"a\":\"\xc3\"}"));
        assert!(agree("{\"a\":\"é\"}".as_bytes()));
    }
}
