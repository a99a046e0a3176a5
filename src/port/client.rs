//! Sending requests to Port and reading its answers.
//!
//! One `reqwest::Client` is shared by every call (connection reuse, HTTP keep-alive), with a
//! connect timeout and a total timeout so a stuck Port never holds a tool call past what hosts
//! wait for. Success bodies are passed through as Port wrote them: Port publishes no 2xx
//! schemas, so we do not pretend to know them. But nothing from an answer is trusted: bodies
//! must be JSON a strict client accepts ([`json::check`]), credentials are masked in all of it
//! ([`Redactor`]), redirects are refused rather than followed (they would carry the token, or
//! the client secret, elsewhere), and waits Port asks for are capped.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{
    Url,
    header::{self, HeaderMap},
};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::{
    auth::{Auth, Bearer},
    error::{ApiFailure, PortError},
    json,
    redact::{Redactor, raw_url_for_display, url_for_display},
    request::{Method, PortRequest},
    retry::{Attempt, RetryPolicy, jitter},
};
use crate::config::{Credentials, PortSettings, Secret};
use crate::telemetry::Telemetry;

/// The longest wait Port can ask for that we report: `Retry-After` and `x-ratelimit-reset` come
/// from outside, and a value such as `1e300` must neither overflow a clock nor mean "forever".
pub(crate) const MAX_RETRY_AFTER_SECS: u64 = 24 * 3600;

/// Answers larger than this are checked and parsed on a blocking thread.
const BLOCKING_CHECK_BYTES: usize = 256 * 1024;

/// Port's trace ids are short; a longer one is cut, so a hostile header cannot fill a result.
const MAX_TRACE_ID_CHARS: usize = 200;

/// `User-Agent` sent to Port, so Port can tell our traffic apart.
pub const USER_AGENT: &str = concat!("port-integrations-mcp/", env!("CARGO_PKG_VERSION"));

/// A successful answer from Port.
#[derive(Debug, Clone)]
pub struct PortResponse {
    /// HTTP status (2xx).
    pub status: u16,
    /// The body exactly as Port sent it.
    pub text: String,
    /// The body parsed (`Value::Null` when Port sent an empty body); `None` when the body was
    /// larger than `max_structured_bytes`, or the call asked for text only.
    pub json: Option<Value>,
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

/// How one tool call may use Port.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// When the call must be over (default: now + the configured budget).
    pub deadline: Option<Instant>,
    /// The caller's own Port token, in token-passthrough mode.
    pub caller_token: Option<Secret>,
    /// Check the answer without parsing it into a JSON tree (`PortResponse::json` is `None`):
    /// for callers that pass Port's bytes on as they are.
    pub text_only: bool,
}

/// The outcome of the most recent call to Port, for readiness reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastCall {
    /// When it ended, seconds since the Unix epoch.
    pub at_unix: u64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Port's HTTP status, when it answered.
    pub status: Option<u16>,
}

/// Client for Port's Integrations API. Cheap to clone.
#[derive(Clone)]
pub struct PortClient {
    inner: Arc<Inner>,
    /// The server's metrics, traces and audit trail; the tools and transports reach it here.
    telemetry: Telemetry,
}

struct Inner {
    /// Built on the first call: loading the system's root certificates costs start-up time and
    /// memory that a server which is only listed (or idle) never needs.
    http: std::sync::OnceLock<reqwest::Client>,
    connect_timeout: Duration,
    base: Url,
    /// Port's host, as each request's span names it (shared, not copied per span).
    host: Option<Arc<str>>,
    auth: Auth,
    timeout: Duration,
    budget: Duration,
    min_request_budget: Duration,
    slots: Semaphore,
    max_response_bytes: usize,
    max_structured_bytes: usize,
    retry: RetryPolicy,
    last_call: Mutex<Option<LastCall>>,
    /// The configured credentials, masked in everything read from an answer.
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for PortClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortClient")
            .field("base", &url_for_display(&self.inner.base))
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
        let secrets = match &settings.credentials {
            Credentials::Token(token) => vec![token.clone()],
            Credentials::ClientCredentials { client_secret, .. } => vec![client_secret.clone()],
            Credentials::None | Credentials::Passthrough => Vec::new(),
        };
        Ok(PortClient {
            inner: Arc::new(Inner {
                http: std::sync::OnceLock::new(),
                connect_timeout: settings.connect_timeout,
                base: settings.base_url.clone(),
                host: settings.base_url.host_str().map(Arc::from),
                auth: Auth::new(&settings.credentials)?,
                timeout: settings.timeout,
                budget: settings.budget,
                min_request_budget: settings.min_request_budget,
                slots: Semaphore::new(settings.max_in_flight.max(1)),
                max_response_bytes: settings.max_response_bytes,
                max_structured_bytes: settings.max_structured_bytes,
                retry: RetryPolicy {
                    max_attempts: settings.max_attempts.max(1),
                    ..RetryPolicy::default()
                },
                last_call: Mutex::new(None),
                secrets,
            }),
            telemetry: Telemetry::default(),
        })
    }

    /// The same client reporting into `telemetry`.
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// The server's telemetry.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The shared HTTP client, built on first use.
    fn http(&self) -> Result<&reqwest::Client, (Attempt, PortError)> {
        if let Some(client) = self.inner.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.inner.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            // A redirect would re-send the request, its token (or, on the token route, the
            // client secret) to wherever the answer points: none is followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                (
                    Attempt::TransportFailed,
                    PortError::Unreachable {
                        origin: url_for_display(&self.inner.base),
                        detail: format!("cannot build the HTTP client: {e}"),
                    },
                )
            })?;
        Ok(self.inner.http.get_or_init(|| client))
    }

    /// Whether calls can authenticate without a caller-supplied token.
    pub fn has_credentials(&self) -> bool {
        !matches!(self.inner.auth, Auth::None | Auth::Passthrough)
    }

    /// Whether each call must bring its caller's Port token.
    pub fn is_passthrough(&self) -> bool {
        matches!(self.inner.auth, Auth::Passthrough)
    }

    /// The most recent call's outcome, if any call was made.
    pub fn last_call(&self) -> Option<LastCall> {
        self.inner
            .last_call
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn record(&self, outcome: &Result<PortResponse, PortError>) {
        let status = match outcome {
            Ok(r) => Some(r.status),
            Err(PortError::Api(f)) | Err(PortError::TokenExchange(f)) => Some(f.status),
            Err(_) => None,
        };
        let at_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        *self
            .inner
            .last_call
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(LastCall {
            at_unix,
            ok: outcome.is_ok(),
            status,
        });
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

    /// Masks the configured credentials and `also` (the token a call was sent with).
    pub(crate) fn redactor(&self, also: &[&str]) -> Redactor {
        let mut redactor = Redactor::new(self.inner.secrets.iter().map(Secret::expose));
        for secret in also {
            redactor = redactor.with(secret);
        }
        redactor
    }

    /// Answers up to this size also come back as structuredContent (`--max-structured-bytes`).
    pub fn max_structured_bytes(&self) -> usize {
        self.inner.max_structured_bytes
    }

    /// Sends a request with the configured credentials and the default budget.
    pub async fn send(&self, request: &PortRequest) -> Result<PortResponse, PortError> {
        self.send_with(request, &CallContext::default()).await
    }

    /// Sends a request within the call's budget: waits for one of the bounded slots, retries
    /// what [`RetryPolicy`] allows while the budget lasts, and refreshes an expired token once.
    pub async fn send_with(
        &self,
        request: &PortRequest,
        call: &CallContext,
    ) -> Result<PortResponse, PortError> {
        let queued = Instant::now();
        let deadline = call
            .deadline
            .unwrap_or_else(|| far(queued, self.inner.budget));
        // What a request needs at least; never more than half the call's own budget, so a
        // call given a short budget on purpose still runs.
        let needed = self
            .inner
            .min_request_budget
            .min(deadline.saturating_duration_since(queued) / 2);
        let metrics = self.telemetry.metrics();
        let slot = tokio::time::timeout_at(deadline.into(), self.inner.slots.acquire()).await;
        if let Some(m) = metrics {
            m.port_queue_wait(queued.elapsed().as_secs_f64());
        }
        let _slot = match slot {
            Ok(Ok(permit)) if deadline.saturating_duration_since(Instant::now()) >= needed => {
                permit
            }
            // No slot in time, or one so late that the request would run out of time in
            // flight: then Port might still act on it (a PATCH) after the caller was told it
            // failed. Nothing is sent.
            _ => {
                if let Some(m) = metrics {
                    m.busy(crate::telemetry::metrics::Busy::PortSlots);
                }
                return Err(PortError::Busy {
                    waited: queued.elapsed(),
                });
            }
        };
        let _in_flight = metrics.map(|m| m.port_in_flight());
        let policy = &self.inner.retry;
        let mut attempt = 1;
        let mut sent = 0;
        loop {
            let (outcome, kind, requested) = self.attempt(request, call, deadline, &mut sent).await;
            let retry = kind.is_some_and(|k| RetryPolicy::retryable(request.method, k))
                && attempt < policy.max_attempts;
            if outcome.is_ok() || !retry {
                self.record(&outcome);
                return outcome;
            }
            let wait = policy.delay(attempt, requested, jitter());
            let next_start = Instant::now().checked_add(wait);
            let next_end = next_start.and_then(|start| start.checked_add(needed));
            if next_end.is_none_or(|end| end >= deadline) {
                // Sleeping would overrun the budget: hand the failure (and its wait) to the model.
                tracing::info!(
                    wait_ms = wait.as_millis() as u64,
                    "not retrying: the wait would overrun the call budget"
                );
                self.record(&outcome);
                return outcome;
            }
            tracing::info!(
                method = request.method.as_str(),
                attempt,
                wait_ms = wait.as_millis() as u64,
                "retrying a failed call to Port"
            );
            if let (Some(m), Some(kind)) = (metrics, kind) {
                m.port_retry(kind.cause());
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One attempt, with one token refresh after a 401. Also says how it failed (for the retry
    /// decision) and how long Port asked us to wait.
    async fn attempt(
        &self,
        request: &PortRequest,
        call: &CallContext,
        deadline: Instant,
        sent: &mut u32,
    ) -> (
        Result<PortResponse, PortError>,
        Option<Attempt>,
        Option<Duration>,
    ) {
        let auth = &self.inner.auth;
        let bearer = match auth
            .bearer(self, call.caller_token.as_ref(), deadline)
            .await
        {
            Ok(b) => b,
            // The request itself was never sent, so a transport failure here is safe to retry.
            Err(e) => {
                let kind = matches!(
                    e,
                    PortError::Unreachable { .. }
                        | PortError::ConnectionLost { .. }
                        | PortError::Timeout { .. }
                )
                .then_some(Attempt::ConnectFailed);
                return (Err(e), kind, None);
            }
        };
        let redact = self.redactor(&[bearer.token(), caller_token(call)]);
        *sent = sent.saturating_add(1);
        let raw = match self
            .send_once(request, &bearer, deadline, &redact, *sent - 1)
            .await
        {
            Ok(raw) => raw,
            Err((kind, e)) => return (Err(e), Some(kind), None),
        };
        let (raw, redact) = if raw.status == 401 && auth.can_refresh() {
            tracing::info!("Port answered 401; refreshing the access token and retrying once");
            let fresh = match auth.refresh(self, &bearer, deadline).await {
                Ok(b) => b,
                Err(e) => return (Err(e), None, None),
            };
            let redact = redact.with(fresh.token());
            *sent = sent.saturating_add(1);
            match self
                .send_once(request, &fresh, deadline, &redact, *sent - 1)
                .await
            {
                Ok(raw) => (raw, redact),
                Err((kind, e)) => return (Err(e), Some(kind), None),
            }
        } else {
            (raw, redact)
        };
        let kind = Attempt::Status(raw.status);
        let requested = raw.retry_after.map(Duration::from_secs);
        let tree_limit = if call.text_only {
            0
        } else {
            self.inner.max_structured_bytes
        };
        let status = raw.status;
        let outcome = if raw.body.len() <= BLOCKING_CHECK_BYTES {
            interpret(raw, tree_limit, &redact)
        } else {
            // Checking and parsing megabytes takes milliseconds of CPU: not on a runtime worker,
            // where it would hold up every other call and probe.
            tokio::task::spawn_blocking(move || interpret(raw, tree_limit, &redact))
                .await
                .unwrap_or_else(|e| {
                    Err(PortError::InvalidBody {
                        status,
                        detail: format!("the answer could not be checked: {e}"),
                    })
                })
        };
        (outcome, Some(kind), requested)
    }

    /// Sends the request once (`resend_count`: how many times it was sent before, for its span).
    async fn send_once(
        &self,
        request: &PortRequest,
        bearer: &Bearer,
        deadline: Instant,
        redact: &Redactor,
        resend_count: u32,
    ) -> Result<RawResponse, (Attempt, PortError)> {
        let url = self.url_for(&request.segments, &request.query);
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .http()?
            .request(method, url)
            .header(header::AUTHORIZATION, bearer.0.clone())
            .header(header::ACCEPT, "application/json");
        if let Some(body) = &request.body {
            builder = builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        // A span per request sent, as a child of the call's; only then is `traceparent` sent
        // (with tracing off, Port gets no trace context: the caller's is not passed on blindly).
        let span = self.telemetry.traces().and_then(|t| {
            let port = self.inner.base.port_or_known_default();
            let server = self.inner.host.clone().zip(port);
            t.start_port_request(
                request.method.as_str(),
                request.route(),
                resend_count,
                server,
            )
        });
        if let Some(span) = &span {
            for (name, value) in span.headers() {
                builder = builder.header(name, value);
            }
        }
        tracing::debug!(method = request.method.as_str(), path = ?request.segments, "calling Port");
        let route = (request.method.as_str(), request.route());
        let answer = self.execute(builder, route, deadline, redact).await;
        // Answered, possibly refused before its body was read (a redirect, an oversized body).
        if let Some(status) = answered(&answer) {
            let trace_id = answer.as_ref().ok().and_then(|raw| raw.trace_id.as_deref());
            super::trace::record(status, trace_id, request.method != Method::Get);
        }
        if let Some(span) = span {
            match &answer {
                Ok(raw) => {
                    let failed = (raw.status >= 400).then(|| raw.status.to_string());
                    span.end(Some(raw.status), raw.trace_id.as_deref(), failed.as_deref());
                }
                Err((_, e)) => span.end(None, None, Some(error_type(e))),
            }
        }
        answer
    }

    /// `POST /v1/auth/access_token`; used by [`Auth`] only.
    pub(crate) async fn post_token(
        &self,
        body: &Value,
        deadline: Instant,
        redact: &Redactor,
    ) -> Result<RawResponse, PortError> {
        let url = self.url_for(&["auth".into(), "access_token".into()], &[]);
        let builder = self
            .http()
            .map_err(|(_, e)| e)?
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default());
        let route = ("POST", super::request::TOKEN_ROUTE);
        self.execute(builder, route, deadline, redact)
            .await
            .map_err(|(_, e)| e)
    }

    /// Sends one request and reads its answer within the deadline; `route` (method, route
    /// template) names it in the metrics, which time every request here.
    async fn execute(
        &self,
        builder: reqwest::RequestBuilder,
        route: (&'static str, &'static str),
        deadline: Instant,
        redact: &Redactor,
    ) -> Result<RawResponse, (Attempt, PortError)> {
        let started = Instant::now();
        let answer = self.execute_untimed(builder, deadline, redact).await;
        if let Some(m) = self.telemetry.metrics() {
            let (status, seconds) = (answered(&answer), started.elapsed().as_secs_f64());
            m.port_request(route.0, route.1, status, seconds);
        }
        answer
    }

    async fn execute_untimed(
        &self,
        builder: reqwest::RequestBuilder,
        deadline: Instant,
        redact: &Redactor,
    ) -> Result<RawResponse, (Attempt, PortError)> {
        let limit = self
            .inner
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        let timeout = || PortError::Timeout { after: limit };
        if limit.is_zero() {
            return Err((Attempt::ConnectFailed, timeout()));
        }
        let origin = self.inner.base.origin().ascii_serialization();
        let map_err = |e: reqwest::Error| {
            let kind = if e.is_connect() {
                Attempt::ConnectFailed
            } else {
                Attempt::TransportFailed
            };
            let timed_out = e.is_timeout();
            let detail = || redact.text(&error_chain(&e.without_url()));
            let error = if timed_out {
                timeout()
            } else if kind == Attempt::ConnectFailed {
                PortError::Unreachable {
                    origin: origin.clone(),
                    detail: detail(),
                }
            } else {
                PortError::ConnectionLost {
                    origin: origin.clone(),
                    detail: detail(),
                }
            };
            (kind, error)
        };
        let work = async {
            let mut response = builder.send().await.map_err(map_err)?;
            let status = response.status().as_u16();
            let headers = std::mem::take(response.headers_mut());
            if (300..400).contains(&status) {
                let location = header_str(&headers, "location").map(|l| {
                    let shown = raw_url_for_display(&redact.text(&l));
                    // The path and query may carry anything; the origin says where it pointed.
                    let shown = shown.split(['?', '#']).next().unwrap_or_default();
                    shown.chars().take(MAX_TRACE_ID_CHARS).collect::<String>()
                });
                return Err((
                    Attempt::Status(status),
                    PortError::Redirected { status, location },
                ));
            }
            let cap = self.inner.max_response_bytes;
            let too_large = || {
                (
                    Attempt::Status(status),
                    PortError::ResponseTooLarge { limit: cap },
                )
            };
            let expected = response.content_length().unwrap_or(0) as usize;
            if expected > cap {
                return Err(too_large());
            }
            let mut body = Vec::with_capacity(expected);
            while let Some(chunk) = response.chunk().await.map_err(map_err)? {
                if body.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(RawResponse {
                status,
                body,
                trace_id: header_str(&headers, "x-trace-id")
                    .map(|t| redact.text(&t.chars().take(MAX_TRACE_ID_CHARS).collect::<String>())),
                retry_after: retry_after(&headers, status),
            })
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => result,
            Err(_) => Err((Attempt::TransportFailed, timeout())),
        }
    }
}

/// Just the `ok` flag of a large body: serde checks the whole document's syntax but builds
/// nothing for the fields it skips, so a 2 MB answer costs no JSON tree.
#[derive(serde::Deserialize)]
struct OkFlag {
    ok: Option<bool>,
}

/// Turns a raw answer into a success or a [`PortError`]. Bodies up to `tree_limit` bytes are
/// parsed into a JSON value (for structuredContent); larger successful bodies are only checked,
/// and passed on as text. Both kinds pass the same [`json::check`], so whether a body is
/// accepted does not depend on the path that reads it. Every text taken from the answer is
/// `redact`ed here, before anything else sees it.
fn interpret(
    raw: RawResponse,
    tree_limit: usize,
    redact: &Redactor,
) -> Result<PortResponse, PortError> {
    let RawResponse {
        status,
        body,
        trace_id,
        retry_after,
    } = raw;
    if !(200..300).contains(&status) {
        return Err(failure(status, &body, trace_id, retry_after, redact));
    }
    let invalid = |detail: String| PortError::InvalidBody { status, detail };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(PortResponse {
            status,
            text: String::from_utf8(body).unwrap_or_default(),
            json: Some(Value::Null),
            trace_id,
        });
    }
    let mut text = String::from_utf8(body).map_err(|e| {
        invalid(
            json::JsonProblem::NotUtf8 {
                at: e.utf8_error().valid_up_to(),
            }
            .to_string(),
        )
    })?;
    json::check_text(&text).map_err(|p| invalid(p.to_string()))?;
    if redact.finds(&text) {
        text = redact.text(&text);
        json::check_text(&text).map_err(|p| invalid(p.to_string()))?;
    }
    if text.len() > tree_limit {
        match serde_json::from_str::<OkFlag>(&text) {
            Ok(OkFlag { ok: Some(false) }) => {}
            Ok(_) => {
                return Ok(PortResponse {
                    status,
                    text,
                    json: None,
                    trace_id,
                });
            }
            // Not an object, or not JSON: the full parse below tells which.
            Err(_) => {}
        }
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(json) if json.get("ok") != Some(&Value::Bool(false)) => Ok(PortResponse {
            status,
            text,
            json: Some(json),
            trace_id,
        }),
        Ok(mut json) => {
            redact.json(&mut json);
            let mut failure = ApiFailure::from_body(status, Some(json));
            failure.trace_id = trace_id;
            failure.retry_after = retry_after;
            Err(PortError::Api(Box::new(failure)))
        }
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// A non-2xx answer as an [`ApiFailure`], with Port's JSON error body, or a short excerpt of an
/// error page from a proxy or load balancer.
fn failure(
    status: u16,
    body: &[u8],
    trace_id: Option<String>,
    retry_after: Option<u64>,
    redact: &Redactor,
) -> PortError {
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        Some(Value::Null)
    } else {
        serde_json::from_slice::<Value>(body).ok()
    };
    let mut failure = match parsed {
        Some(mut json) => {
            redact.json(&mut json);
            ApiFailure::from_body(status, (!json.is_null()).then_some(json))
        }
        None => {
            // Redacted whole before it is cut, so no part of a secret survives at the cut.
            let page = redact.text(&String::from_utf8_lossy(body));
            let excerpt: String = page.chars().take(200).collect();
            ApiFailure {
                status,
                message: Some(excerpt.trim().to_string()).filter(|m| !m.is_empty()),
                ..Default::default()
            }
        }
    };
    failure.trace_id = trace_id;
    failure.retry_after = retry_after;
    PortError::Api(Box::new(failure))
}

/// Port's status on one attempt, if it answered (for metrics and the audit line).
fn answered(answer: &Result<RawResponse, (Attempt, PortError)>) -> Option<u16> {
    match answer {
        Ok(raw) => Some(raw.status),
        Err((Attempt::Status(status), _)) => Some(*status),
        Err(_) => None,
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Seconds until Port accepts calls again, when it said so. `Retry-After` (seconds) always
/// counts. `x-ratelimit-reset` comes on every answer of Port's, as the end of the current rate
/// window: it is a wait only on a 429, or when `x-ratelimit-remaining` says the window is used
/// up. Port documents it as epoch seconds, but its own clients also read it as a delta: a value
/// above 10 000 is taken as an epoch, anything smaller as a delta (as Ocean does). Outside
/// numbers are capped at [`MAX_RETRY_AFTER_SECS`].
fn retry_after(headers: &HeaderMap, status: u16) -> Option<u64> {
    if let Some(secs) = header_str(headers, "retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(secs.min(MAX_RETRY_AFTER_SECS));
    }
    let window_used_up = header_str(headers, "x-ratelimit-remaining")
        .and_then(|v| v.parse::<f64>().ok())
        .is_some_and(|r| r <= 0.0);
    if status != 429 && !window_used_up {
        return None;
    }
    let reset = header_str(headers, "x-ratelimit-reset")?
        .parse::<f64>()
        .ok()?;
    if !reset.is_finite() || reset < 0.0 {
        return None;
    }
    let secs = if reset > 10_000.0 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        (reset - now).max(0.0).ceil()
    } else {
        reset.ceil()
    };
    // `as` saturates; the cap keeps the wait a real one.
    Some((secs.min(MAX_RETRY_AFTER_SECS as f64)) as u64)
}

/// `start + budget`, or a day from `start` when that overflows the clock.
fn far(start: Instant, budget: Duration) -> Instant {
    start
        .checked_add(budget)
        .or_else(|| start.checked_add(Duration::from_secs(24 * 3600)))
        .unwrap_or(start)
}

/// The `error.type` of a request to Port that got no usable answer (OpenTelemetry HTTP
/// conventions: the status code when there was one, else what went wrong).
fn error_type(e: &PortError) -> &'static str {
    match e {
        PortError::Timeout { .. } => "timeout",
        PortError::Unreachable { .. } => "connect_failed",
        PortError::ConnectionLost { .. } => "connection_lost",
        PortError::Redirected { .. } => "redirected",
        PortError::ResponseTooLarge { .. } => "response_too_large",
        _ => "_OTHER",
    }
}

fn caller_token(call: &CallContext) -> &str {
    call.caller_token.as_ref().map(Secret::expose).unwrap_or("")
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

    fn interpret_plain(raw: RawResponse, tree_limit: usize) -> Result<PortResponse, PortError> {
        interpret(raw, tree_limit, &Redactor::default())
    }

    #[test]
    fn retry_after_reads_delta_and_epoch() {
        assert_eq!(retry_after(&headers(&[("retry-after", "7")]), 503), Some(7));
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "12")]), 429),
            Some(12)
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let epoch = (now + 20).to_string();
        let got = retry_after(&headers(&[("x-ratelimit-reset", &epoch)]), 429).unwrap();
        assert!((19..=21).contains(&got), "{got}");
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "soon")]), 429),
            None
        );
    }

    #[test]
    fn ratelimit_reset_is_a_wait_only_when_the_window_is_used_up() {
        // Port sends the window's reset on every answer: it says nothing about a 404 or a 503.
        for status in [200, 404, 422, 500, 503] {
            let h = headers(&[
                ("x-ratelimit-reset", "59"),
                ("x-ratelimit-remaining", "998"),
            ]);
            assert_eq!(retry_after(&h, status), None, "{status}");
        }
        let used_up = headers(&[("x-ratelimit-reset", "59"), ("x-ratelimit-remaining", "0")]);
        assert_eq!(retry_after(&used_up, 503), Some(59));
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "59")]), 429),
            Some(59)
        );
    }

    #[test]
    fn absurd_waits_are_capped() {
        for (name, value) in [
            ("retry-after", "18446744073709551615"),
            ("x-ratelimit-reset", "1e300"),
            ("x-ratelimit-reset", "1e19"),
        ] {
            let got = retry_after(&headers(&[(name, value)]), 429);
            assert_eq!(got, Some(MAX_RETRY_AFTER_SECS), "{name}: {value}");
        }
        assert_eq!(
            retry_after(&headers(&[("x-ratelimit-reset", "inf")]), 429),
            None
        );
        let start = Instant::now();
        assert!(far(start, Duration::MAX) > start);
    }

    #[test]
    fn ok_false_on_200_is_a_failure() {
        let raw = RawResponse {
            status: 200,
            body: br#"{"ok":false,"error":"invalid_request","message":"bad"}"#.to_vec(),
            trace_id: Some("t1".into()),
            retry_after: None,
        };
        let Err(PortError::Api(f)) = interpret(raw, usize::MAX, &Redactor::default()) else {
            panic!("expected an API failure")
        };
        assert_eq!(
            (f.status, f.code.as_deref()),
            (200, Some("invalid_request"))
        );
        assert_eq!(f.trace_id.as_deref(), Some("t1"));
    }

    #[test]
    fn large_bodies_skip_the_tree_but_not_the_checks() {
        let raw = |body: &str| RawResponse {
            status: 200,
            body: body.as_bytes().to_vec(),
            trace_id: None,
            retry_after: None,
        };
        let ok = interpret_plain(raw(r#"{"ok":true,"integrations":[1,2,3]}"#), 8).unwrap();
        assert_eq!(ok.json, None);
        assert_eq!(ok.text, r#"{"ok":true,"integrations":[1,2,3]}"#);
        let failed = interpret_plain(raw(r#"{"ok":false,"error":"bad","message":"no"}"#), 8);
        assert!(matches!(failed, Err(PortError::Api(f)) if f.code.as_deref() == Some("bad")));
        let broken = interpret_plain(raw(r#"{"ok":true,"integrations":[1,2"#), 8);
        assert!(matches!(broken, Err(PortError::InvalidBody { .. })));
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
        let r = interpret(raw, usize::MAX, &Redactor::default()).unwrap();
        assert_eq!(r.text.as_bytes(), &body[..]);
        assert_eq!(r.json.unwrap()["integrations"], serde_json::json!([]));
    }
}
