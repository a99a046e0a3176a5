//! Keeping credentials out of whatever Port (or anything posing as it) sends back.
//!
//! Port's error texts, proxy error pages and even trace ids come from outside, and can quote
//! the request: a token endpoint echoing `{"clientSecret": ...}`, a 502 page quoting
//! `Authorization: Bearer <token>`. Everything read from an answer passes through a
//! [`Redactor`] at ingestion, before it becomes an error, a tool result or a log line, so no
//! later code has to remember to. URLs shown anywhere lose their userinfo ([`url_for_display`]).

use serde_json::Value;

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// The secrets of one call: the configured credentials and the token it was sent with.
#[derive(Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Redacts these secrets (empty and very short ones are ignored: masking every `a` in a
    /// message would hide the message, and a one-character secret hides nothing).
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(str::trim)
            .filter(|s| s.len() >= 4)
            .map(str::to_string)
            .collect();
        // Longest first, so a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// Also redacts `secret`.
    pub fn with(mut self, secret: &str) -> Self {
        let secret = secret.trim();
        if secret.len() >= 4 && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_string());
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        self
    }

    /// Whether `text` holds a secret.
    pub fn finds(&self, text: &str) -> bool {
        // memmem's SIMD search: every success body is searched once per secret.
        self.secrets
            .iter()
            .any(|s| memchr::memmem::find(text.as_bytes(), s.as_bytes()).is_some())
    }

    /// `text` with every secret replaced by [`REDACTED`].
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }

    /// The same, in place, without a copy when there is nothing to hide.
    pub fn string(&self, text: &mut String) {
        if self.finds(text) {
            *text = self.text(text);
        }
    }

    /// Every string (and object key) of a JSON value, redacted in place.
    pub fn json(&self, value: &mut Value) {
        if self.secrets.is_empty() {
            return;
        }
        // An explicit stack: the value came from outside, and its depth is its author's choice.
        let mut stack = vec![value];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) => self.string(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    if map.keys().any(|k| self.finds(k)) {
                        let old = std::mem::take(map);
                        for (k, v) in old {
                            map.insert(self.text(&k), v);
                        }
                    }
                    stack.extend(map.values_mut());
                }
                _ => {}
            }
        }
    }
}

/// A URL as it may be shown in logs, errors and reports: a password or user name in it (a
/// proxy's `http://user:pass@proxy/`) is replaced by [`REDACTED`].
pub fn url_for_display(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
        .to_string()
        .replacen("://", &format!("://{REDACTED}@"), 1)
}

/// The same for text that may not even parse as a URL (a refused setting), kept as written
/// otherwise: anything between `://` and the last `@` before the path is hidden.
pub fn raw_url_for_display(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_string();
    };
    let rest = &raw[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}{REDACTED}{}", &raw[..scheme_end + 3], &rest[at..]),
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_secret_in_text_and_json() {
        let r = Redactor::new(["s3cret-value", "", "ab"]).with("tok-123456");
        assert_eq!(
            r.text("a s3cret-value, Bearer tok-123456, s3cret-value"),
            format!("a {REDACTED}, Bearer {REDACTED}, {REDACTED}")
        );
        // Two-letter "secrets" are ignored.
        assert_eq!(r.text("ab"), "ab");
        let mut v =
            json!({"clientSecret": "s3cret-value", "nested": [[{"tok-123456": "x"}]], "n": 1});
        r.json(&mut v);
        assert_eq!(
            v,
            json!({"clientSecret": REDACTED, "nested": [[{REDACTED: "x"}]], "n": 1})
        );
    }

    #[test]
    fn userinfo_is_hidden() {
        let url = url::Url::parse("http://user:pa55@proxy.example:8080/base").unwrap();
        let shown = url_for_display(&url);
        assert!(
            !shown.contains("pa55") && !shown.contains("user"),
            "{shown}"
        );
        assert_eq!(shown, format!("http://{REDACTED}@proxy.example:8080/base"));
        assert_eq!(
            raw_url_for_display("http://u:pa55@host:notaport/x"),
            format!("http://{REDACTED}@host:notaport/x")
        );
        assert_eq!(
            url_for_display(&url::Url::parse("https://api.port.io").unwrap()),
            "https://api.port.io/"
        );
    }
}
