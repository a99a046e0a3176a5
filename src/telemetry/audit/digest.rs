//! The digest of a write call's arguments, for its audit line: two calls with the same arguments
//! (the same config applied twice, or applied from a file kept in git) can be matched, and a
//! candidate config checked against a line, without the trail holding the config or anything in
//! it.
//!
//! It is the SHA-256 of the arguments object as canonical JSON: compact (no whitespace), the keys
//! of every object sorted by their UTF-8 bytes, strings escaped and numbers written as serde_json
//! writes them. The JSON is streamed into the hash: a 2 MB config is not copied.

use std::{fmt, io::Write};

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// The SHA-256 of a call's arguments (see the module header). Shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ArgsDigest([u8; 32]);

impl ArgsDigest {
    /// The digest of this arguments object.
    pub fn of(arguments: &Map<String, Value>) -> Self {
        let mut hasher = Hasher(Sha256::new());
        // Writing into a hash cannot fail.
        let _ = object(&mut hasher, arguments);
        let mut out = [0u8; 32];
        out.copy_from_slice(&hasher.0.finalize());
        ArgsDigest(out)
    }
}

impl fmt::Display for ArgsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ArgsDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArgsDigest({self})")
    }
}

/// `io::Write` into the hash, so serde_json escapes strings straight into it.
struct Hasher(Sha256);

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Recursive: the depth is that of a parsed document, which serde_json caps (128 levels).
fn value(out: &mut Hasher, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Object(map) => object(out, map),
        Value::Array(items) => {
            out.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                value(out, item)?;
            }
            out.write_all(b"]")
        }
        scalar => serde_json::to_writer(&mut *out, scalar).map_err(std::io::Error::other),
    }
}

fn object(out: &mut Hasher, map: &Map<String, Value>) -> std::io::Result<()> {
    out.write_all(b"{")?;
    let mut first = true;
    let mut member = |out: &mut Hasher, key: &String, v: &Value| -> std::io::Result<()> {
        if !std::mem::take(&mut first) {
            out.write_all(b",")?;
        }
        serde_json::to_writer(&mut *out, key).map_err(std::io::Error::other)?;
        out.write_all(b":")?;
        value(out, v)
    };
    // serde_json's map is already sorted unless a dependency turns on `preserve_order`.
    if map.keys().is_sorted() {
        for (key, v) in map {
            member(out, key, v)?;
        }
    } else {
        let mut sorted: Vec<_> = map.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, v) in sorted {
            member(out, key, v)?;
        }
    }
    out.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(text: &str) -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_canonical_json() {
        let args = serde_json::json!({
            "identifier": "github-ocean",
            "body": {"config": {"resources": [{"kind": "repo", "n": 1.5, "ok": true, "x": null}]}},
            "a\"b\n": "é\u{1}",
        });
        let canonical = "{\"a\\\"b\\n\":\"é\\u0001\",\"body\":{\"config\":{\"resources\":\
            [{\"kind\":\"repo\",\"n\":1.5,\"ok\":true,\"x\":null}]}},\"identifier\":\"github-ocean\"}";
        let Value::Object(map) = args else {
            unreachable!()
        };
        assert_eq!(ArgsDigest::of(&map).to_string(), sha256_hex(canonical));
    }

    #[test]
    fn key_order_does_not_change_the_digest_and_values_do() {
        let mut a = Map::new();
        a.insert("z".into(), Value::from(1));
        a.insert("a".into(), Value::from(2));
        let mut b = Map::new();
        b.insert("a".into(), Value::from(2));
        b.insert("z".into(), Value::from(1));
        assert_eq!(ArgsDigest::of(&a), ArgsDigest::of(&b));
        b.insert("z".into(), Value::from(3));
        assert_ne!(ArgsDigest::of(&a), ArgsDigest::of(&b));
        assert_eq!(ArgsDigest::of(&a).to_string().len(), 64);
    }
}
