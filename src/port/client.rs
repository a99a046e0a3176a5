//! Sending requests to Port and reading its answers.
//!
//! One `reqwest::Client` is shared by every call (connection reuse, HTTP keep-alive), with a
//! connect timeout and a total timeout so a stuck Port never holds a tool call past what hosts
//! wait for. Success bodies are passed through untouched: Port publishes no 2xx schemas, so we
//! do not pretend to know them.

use std::{sync::Arc, time::Duration};

use reqwest::{
    Url,
    header::{self, HeaderMap},
};
use serde_json::Value;

use super::{
    auth::{Auth, Bearer},
    error::{ApiFailure, PortError},
    request::{Method, PortRequest},
};
use crate::config::PortSettings;

/// `User-Agent` sent to Port, so Port can tell our traffic apart.
pub const USER_AGENT: &str = concat!("port-integrations-mcp/", env!("CARGO_PKG_VERSION"));

/// A successful answer from Port.
#[derive(Debug, Clone)]
pub struct PortResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// The body exactly as Port sent it.
    pub text: String,
    /// The body parsed (`Value::Null` when Port sent an empty body).
    pub json: Value,
    /// The `x-trace-id` header.
    pub trace_id: Option<String>,
}

/// Raw answer before interpretation.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) trace_id: Option<String>,
    pub(crate) retry_after: Option<u64>,
}

/// Client for Port's Integrations API. Cheap to clone.
#[derive(Clone)]
pub struct PortClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
    timeout: Duration,
}

impl std::fmt::Debug for PortClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortClient")
            .field("base", &self.inner.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Installs the process-wide TLS crypto provider (ring) once; reqwest is built without its own.
pub fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl PortClient {
    /// Builds the client from validated settings.
    pub fn new(settings: &PortSettings) -> Result<Self, PortError> {
        install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| PortError::Unreachable {
                origin: settings.base_url.to_string(),
                detail: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(PortClient {
            inner: Arc::new(Inner {
                http,
                base: settings.base_url.clone(),
                auth: Auth::new(&settings.credentials)?,
                timeout: settings.timeout,
            }),
        })
    }

    /// The API origin this client calls.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The full URL of a request.
    pub fn url_for(&self, segments: &[String], query: &[(&'static str, String)]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("v1").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// Sends a request with the configured credentials. A 401 with client credentials fetches a
    /// new token and retries once (Port did not act on a request it could not authenticate).
    pub async fn send(&self, request: &PortRequest) -> Result<PortResponse, PortError> {
        let auth = &self.inner.auth;
        let bearer = auth.bearer(self).await?;
        let raw = self.send_once(request, &bearer).await?;
        let raw = if raw.status == 401 && auth.can_refresh() {
            tracing::info!("Port answered 401; refreshing the access token and retrying once");
            let fresh = auth.refresh(self, &bearer).await?;
            self.send_once(request, &fresh).await?
        } else {
            raw
        };
        interpret(raw)
    }

    async fn send_once(
        &self,
        request: &PortRequest,
        bearer: &Bearer,
    ) -> Result<RawResponse, PortError> {
        let url = self.url_for(&request.segments, &request.query);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self
            .inner
            .http
            .request(method, url)
            .header(header::AUTHORIZATION, bearer.0.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &request.body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        tracing::debug!(method = request.method.as_str(), path = ?request.segments, "calling Port");
        self.execute(builder).await
    }

    /// `POST /v1/auth/access_token`; used by [`Auth`] only.
    pub(crate) async fn post_token(&self, body: &Value) -> Result<RawResponse, PortError> {
        let url = self.url_for(&["auth".into(), "access_token".into()], &[]);
        let builder = self
            .inner
            .http
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default());
        self.execute(builder).await
    }

    async fn execute(&self, builder: reqwest::RequestBuilder) -> Result<RawResponse, PortError> {
        let origin = self.inner.base.origin().ascii_serialization();
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                PortError::Timeout {
                    after: self.inner.timeout,
                }
            } else {
                PortError::Unreachable {
                    origin: origin.clone(),
                    detail: error_chain(&e.without_url()),
                }
            }
        };
        let response = builder.send().await.map_err(map_err)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(map_err)?.to_vec();
        Ok(RawResponse {
            status,
            body,
            trace_id: header_str(&headers, "x-trace-id"),
            retry_after: retry_after(&headers),
        })
    }
}

/// Turns a raw answer into a success or a [`PortError`].
fn interpret(raw: RawResponse) -> Result<PortResponse, PortError> {
    let RawResponse {
        status,
        body,
        trace_id,
        retry_after,
    } = raw;
    let parsed: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body)
    };
    let success = (200..300).contains(&status);
    match parsed {
        Ok(json) if success && json.get("ok") != Some(&Value::Bool(false)) => {
            let text = String::from_utf8(body).unwrap_or_default();
            Ok(PortResponse {
                status,
                text,
                json,
                trace_id,
            })
        }
        Ok(json) => {
            let body = (!json.is_null()).then_some(json);
            let mut failure = ApiFailure::from_body(status, body);
            failure.trace_id = trace_id;
            failure.retry_after = retry_after;
            Err(PortError::Api(Box::new(failure)))
        }
        Err(e) if success => Err(PortError::InvalidBody {
            status,
            detail: e.to_string(),
        }),
        Err(_) => {
            // An error page from a proxy or load balancer: keep a short excerpt as the message.
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            Err(PortError::Api(Box::new(ApiFailure {
                status,
                message: Some(excerpt.trim().to_string()).filter(|m| !m.is_empty()),
                trace_id,
                retry_after,
                ..Default::default()
            })))
        }
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Seconds until Port accepts calls again: `Retry-After` (seconds), else `x-ratelimit-reset`,
/// which Port documents as epoch seconds but its own clients also read as a delta: a value
/// above 10 000 is taken as an epoch, anything smaller as a delta (as Ocean does).
fn retry_after(headers: &HeaderMap) -> Option<u64> {
    if let Some(secs) = header_str(headers, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(secs);
    }
    let reset = header_str(headers, "x-ratelimit-reset")?
        .parse::<f64>()
        .ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    if reset > 10_000.0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Some((reset - now).max(0.0).ceil() as u64)
    } else {
        Some(reset.ceil() as u64)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_reads_delta_and_epoch() {
        assert_eq!(retry_after(&headers(&[("retry-after", "7")])), Some(7));
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "12")])),
            Some(12)
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let epoch = (now + 20).to_string();
        let got = retry_after(&headers(&[("x-ratelimit-reset", &epoch)])).unwrap();
        assert!((19..=21).contains(&got), "{got}");
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "soon")])),
            None
        );
    }

    #[test]
    fn ok_false_on_200_is_a_failure() {
        let raw = RawResponse {
            status: 200,
            body: br#"{"ok":false,"error":"invalid_request","message":"bad"}"#.to_vec(),
            trace_id: Some("t1".into()),
            retry_after: None,
        };
        let Err(PortError::Api(f)) = interpret(raw) else {
            panic!("expected an API failure")
        };
        assert_eq!(
            (f.status, f.code.as_deref()),
            (200, Some("invalid_request"))
        );
        assert_eq!(f.trace_id.as_deref(), Some("t1"));
    }

    #[test]
    fn success_keeps_the_body_verbatim() {
        let body = br#"{ "ok": true,  "integrations": [] }"#.to_vec();
        let raw = RawResponse {
            status: 200,
            body: body.clone(),
            trace_id: None,
            retry_after: None,
        };
        let r = interpret(raw).unwrap();
        assert_eq!(r.text.as_bytes(), &body[..]);
        assert_eq!(r.json["integrations"], serde_json::json!([]));
    }
}
