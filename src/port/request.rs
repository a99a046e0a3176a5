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

    /// Sets the JSON body.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }
}

/// The routes of Port's API this server calls, as templates: what metrics and spans name a
/// request by, so that an identifier never becomes a label value.
const ROUTES_UNDER_IDENTIFIER: [(&str, &str); 7] = [
    ("config", "/v1/integration/{identifier}/config"),
    ("logs", "/v1/integration/{identifier}/logs"),
    ("resync", "/v1/integration/{identifier}/resync"),
    ("kinds", "/v1/integration/{identifier}/kinds"),
    ("syncMetrics", "/v1/integration/{identifier}/syncMetrics"),
    (
        "syncsMetadata",
        "/v1/integration/{identifier}/syncsMetadata",
    ),
    ("restore", "/v1/integration/{identifier}/restore"),
];

/// The template of the token route (`POST /v1/auth/access_token`).
pub const TOKEN_ROUTE: &str = "/v1/auth/access_token";

impl PortRequest {
    /// The route template of this request (`/v1/integration/{identifier}/config`); `other` for
    /// a path of no known shape. Only the fixed segments are ever taken from the path.
    pub fn route(&self) -> &'static str {
        match self.segments.as_slice() {
            [root] if root == "integration" => "/v1/integration",
            [root, meta] if root == "integration" && meta == "metadata" => {
                "/v1/integration/metadata"
            }
            [root, _] if root == "integration" => "/v1/integration/{identifier}",
            [root, _, tail] if root == "integration" => ROUTES_UNDER_IDENTIFIER
                .iter()
                .find(|(segment, _)| segment == tail)
                .map_or("other", |(_, route)| route),
            _ => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates() {
        let route = |s: &[&str]| PortRequest::get(s).route();
        assert_eq!(route(&["integration"]), "/v1/integration");
        assert_eq!(
            route(&["integration", "metadata"]),
            "/v1/integration/metadata"
        );
        assert_eq!(
            route(&["integration", "my-id"]),
            "/v1/integration/{identifier}"
        );
        assert_eq!(
            route(&["integration", "config", "config"]),
            "/v1/integration/{identifier}/config"
        );
        assert_eq!(
            route(&["integration", "x", "syncMetrics"]),
            "/v1/integration/{identifier}/syncMetrics"
        );
        assert_eq!(route(&["integration", "x", "my-id"]), "other");
        assert_eq!(route(&["my-id"]), "other");
        assert_eq!(route(&["integration", "a", "b", "c"]), "other");
        assert_eq!(
            route(&["integration", "a/b?c", "config"]),
            "/v1/integration/{identifier}/config"
        );
        assert_eq!(route(&["somewhere", "else", "a", "b"]), "other");
    }
}
