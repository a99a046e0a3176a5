//! One request to Port's Integrations API, independent of how it is sent.
//!
//! Tools (and later other front-ends) describe *what* to ask; the client decides *how*. Keeping
//! the path as segments means an identifier such as `a/b?c` is percent-encoded as one segment
//! by the URL library instead of by hand.

use serde_json::Value;

/// HTTP methods the Integrations API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Partial update (on Port, also triggers a resync).
    Patch,
    /// Removal.
    Delete,
    /// An action (a resync, a restore); like PATCH, not safe to repeat blindly.
    Post,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Post => "POST",
        }
    }
}

/// A request to `{base}/v1/...`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortRequest {
    /// Method.
    pub method: Method,
    /// Path segments after `/v1`, unencoded (e.g. `["integration", "my id"]`).
    pub segments: Vec<String>,
    /// Query pairs in order; a key may repeat (arrays are sent as repeated keys).
    pub query: Vec<(&'static str, String)>,
    /// JSON body, for PATCH and POST.
    pub body: Option<Value>,
}

impl PortRequest {
    /// A GET of `/v1/<segments>`.
    pub fn get(segments: &[&str]) -> Self {
        PortRequest {
            method: Method::Get,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    /// A request with another method.
    pub fn with_method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// Adds a query pair when the value is present.
    pub fn query_opt(mut self, key: &'static str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.query.push((key, v.to_string()));
        }
        self
    }

    /// Adds one query pair per element (Port's Fastify parser reads repeated keys as an array).
    pub fn query_each(mut self, key: &'static str, values: &[impl ToString]) -> Self {
        self.query
            .extend(values.iter().map(|v| (key, v.to_string())));
        self
    }

    /// The request's route template, e.g. `/v1/integration/{identifier}/config`: what a span
    /// or metric may name, never the identifier itself (it comes from callers, and one value
    /// per integration would be unbounded).
    pub fn route(&self) -> &'static str {
        let (first, id, last) = match self.segments.as_slice() {
            [first] => (first.as_str(), None, None),
            [first, second] => (first.as_str(), Some(second.as_str()), None),
            [first, _, third] => (first.as_str(), None, Some(third.as_str())),
            _ => ("", None, None),
        };
        match (first, id, last) {
            ("integration", None, None) => "/v1/integration",
            ("integration", Some("metadata"), None) => "/v1/integration/metadata",
            ("integration", Some(_), None) => "/v1/integration/{identifier}",
            ("integration", None, Some("config")) => "/v1/integration/{identifier}/config",
            ("integration", None, Some("logs")) => "/v1/integration/{identifier}/logs",
            ("integration", None, Some("resync")) => "/v1/integration/{identifier}/resync",
            ("integration", None, Some("kinds")) => "/v1/integration/{identifier}/kinds",
            ("integration", None, Some("restore")) => "/v1/integration/{identifier}/restore",
            ("integration", None, Some("syncMetrics")) => {
                "/v1/integration/{identifier}/syncMetrics"
            }
            ("integration", None, Some("syncsMetadata")) => {
                "/v1/integration/{identifier}/syncsMetadata"
            }
            _ => "/v1/other",
        }
    }

    /// Sets the JSON body.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_template_never_the_identifier() {
        let route = |segments: &[&str]| PortRequest::get(segments).route();
        assert_eq!(route(&["integration"]), "/v1/integration");
        assert_eq!(
            route(&["integration", "metadata"]),
            "/v1/integration/metadata"
        );
        assert_eq!(
            route(&["integration", "secret-name"]),
            "/v1/integration/{identifier}"
        );
        assert_eq!(
            route(&["integration", "a/b?c", "config"]),
            "/v1/integration/{identifier}/config"
        );
        assert_eq!(
            route(&["integration", "x", "syncsMetadata"]),
            "/v1/integration/{identifier}/syncsMetadata"
        );
        assert_eq!(route(&["integration", "x", "unknown"]), "/v1/other");
        assert_eq!(route(&["somewhere", "else", "a", "b"]), "/v1/other");
    }
}
