//! The tools as a plain REST surface, for scripts, CI jobs and services that speak HTTP but not
//! MCP: every tool with a route in the catalog (`tools::catalog`), routes and OpenAPI alike.
//!
//! Nothing here is a second implementation: each route turns its path, query and body into the
//! arguments object the matching MCP tool takes, then goes through the same checks
//! (`tools::args`), the same client (budget, retries, bounded concurrency, credentials) and the
//! same read-only rules. Port's answers pass through with their status; our own refusals use
//! Port's error shape `{ok:false, error, message}`. The routes exist twice: under the
//! capability's doubled prefix (`/v1/v1/integration...`) and under Port's own (`/v1/integration...`).

use std::sync::Arc;

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{Path, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodFilter, MethodRouter, get, on},
};
use rmcp::model::JsonObject;
use serde_json::{Map, Value, json};

use crate::{
    config::{HttpSettings, Secret},
    oauth::Caller,
    port::{CallContext, PortError},
    tools::{
        PortTools, Refusal, audit,
        catalog::{self, CATALOG, RestRoute, ToolSpec},
        read_only_header,
    },
    transport::http::{allowed_hosts, allowed_origins},
};

/// The two path prefixes the routes are served under.
pub const PREFIXES: [&str; 2] = ["/v1/v1", "/v1"];

/// Accepted `Host` names and browser origins.
type AllowList = (Arc<Vec<String>>, Arc<Vec<String>>);

#[derive(Clone)]
struct RestState {
    tools: PortTools,
    offered: Arc<Vec<String>>,
}

/// The REST app: the catalog's routes under both prefixes, and `/openapi.json`.
pub fn router(tools: PortTools, settings: &HttpSettings) -> Router {
    let gate = super::http::gate(settings, &tools);
    router_gated(tools, settings, gate)
}

/// [`router`], behind `gate` (with OAuth on; shared with the MCP listener).
pub fn router_gated(
    tools: PortTools,
    settings: &HttpSettings,
    gate: Option<Arc<super::oauth::Gate>>,
) -> Router {
    let state = RestState {
        offered: Arc::new(tools.tool_names()),
        tools,
    };
    let mut app = Router::new();
    for prefix in PREFIXES {
        // Several tools share a path (GET, PATCH and DELETE of one integration).
        let mut paths: Vec<(&str, MethodRouter<RestState>)> = Vec::new();
        for spec in CATALOG {
            let Some(route) = &spec.rest else { continue };
            let filter = match route.method {
                "get" => MethodFilter::GET,
                "patch" => MethodFilter::PATCH,
                "delete" => MethodFilter::DELETE,
                _ => MethodFilter::POST,
            };
            // Generated once per route: schemars is not free, and a route's schema never changes.
            let shape = Arc::new(RouteShape {
                spec,
                schema: (spec.schema)(),
                takes_body: catalog::takes_body(spec),
            });
            let handler = move |State(s): State<RestState>,
                                Path(params): Path<Vec<(String, String)>>,
                                RawQuery(q): RawQuery,
                                h: HeaderMap,
                                caller: Option<Extension<Caller>>,
                                admission: Option<Extension<audit::Admission>>,
                                body: Bytes| {
                let shape = shape.clone();
                async move {
                    let caller = caller.map(|Extension(c)| c);
                    let meta = audit::CallMeta {
                        caller: caller.as_ref(),
                        admission: audit::Admission::of(
                            caller.is_some(),
                            admission.map(|Extension(a)| a),
                        ),
                        transport: audit::Transport::Rest,
                        ..Default::default()
                    };
                    operation(&s, &shape, params, q.as_deref(), &h, meta, &body).await
                }
            };
            match paths.iter_mut().find(|(p, _)| *p == route.path) {
                Some((_, methods)) => *methods = std::mem::take(methods).on(filter, handler),
                None => paths.push((route.path, on(filter, handler))),
            }
        }
        for (path, methods) in paths {
            app = app.route(&format!("{prefix}{path}"), methods);
        }
    }
    let mut app = app.with_state(state);
    if let Some(token) = &settings.auth_token {
        app = app.layer(middleware::from_fn_with_state(
            Arc::new(token.clone()),
            require_token,
        ));
    }
    if let Some(gate) = gate {
        app = app.layer(middleware::from_fn_with_state(
            gate,
            super::oauth::guard_rest,
        ));
    }
    let openapi = Arc::new(openapi());
    let hosts = Arc::new(allowed_hosts(settings));
    let origins = Arc::new(allowed_origins(settings));
    app.route(
        "/openapi.json",
        get(move || {
            let doc = openapi.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
    .layer(middleware::from_fn_with_state(
        (hosts, origins),
        check_host_and_origin,
    ))
    .layer(middleware::from_fn_with_state(
        settings.max_request_bytes,
        too_large_as_json,
    ))
    .layer(axum::extract::DefaultBodyLimit::max(
        settings.max_request_bytes,
    ))
}

/// axum refuses a body over the limit with a plain-text 413 ("Failed to buffer the request
/// body"); this surface answers in its documented JSON shape, naming the setting.
async fn too_large_as_json(State(max): State<usize>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    // Port's own 413 passes through as JSON, and stays as it is.
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| !v.as_bytes().starts_with(b"application/json"));
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE || !plain {
        return response;
    }
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!(
            "the request body is larger than {max} bytes (--max-request-bytes / \
             PORT_MCP_MAX_REQUEST_BYTES); nothing was sent to Port"
        ),
    )
}

/// A refusal in Port's error shape.
fn refuse(status: StatusCode, error: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"ok": false, "error": error, "message": message.into()})),
    )
        .into_response()
}

async fn require_token(
    State(token): State<Arc<Secret>>,
    mut request: Request,
    next: Next,
) -> Response {
    if crate::transport::http::bearer_matches(request.headers(), &token) {
        request
            .extensions_mut()
            .insert(audit::Admission::StaticToken);
        return next.run(request).await;
    }
    let mut response = refuse(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "send Authorization: Bearer <token> with this server's inbound token",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"port-integrations-mcp\""),
    );
    response
}

/// The same DNS-rebinding rules as `/mcp`: a loopback (or allowed) `Host`, and a localhost (or
/// allowed) browser `Origin` when one is sent.
async fn check_host_and_origin(
    State((hosts, origins)): State<AllowList>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, &hosts) {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Host header is not allowed",
        );
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, &origins) {
            return refuse(StatusCode::FORBIDDEN, "forbidden", "Origin is not allowed");
        }
    }
    next.run(request).await
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let Ok(url) = reqwest::Url::parse(origin) else {
        return false;
    };
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default();
    allowed.iter().any(|a| {
        let (base, any_port) = match a.strip_suffix(":*") {
            Some(b) => (b, true),
            None => (a.as_str(), false),
        };
        let Ok(allowed) = reqwest::Url::parse(base) else {
            return false;
        };
        allowed.scheme() == url.scheme()
            && allowed
                .host_str()
                .is_some_and(|h| h.eq_ignore_ascii_case(host))
            && (any_port || allowed.port_or_known_default() == port)
    })
}

/// Query values typed by the tool's own input schema: booleans, integers and repeated keys
/// (arrays) become what the tool expects; anything else stays a string for the tool to judge.
fn query_args(schema: &JsonObject, query: Option<&str>) -> JsonObject {
    let props = schema.get("properties").and_then(Value::as_object);
    let mut out = Map::new();
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    for (key, value) in pairs {
        let kind = props
            .and_then(|p| p.get(key.as_ref()))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("string");
        let typed = match kind {
            "boolean" => match value.as_ref() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => Value::String(other.to_string()),
            },
            "integer" => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(value.to_string())),
            _ => Value::String(value.to_string()),
        };
        if kind == "array" {
            if let Value::Array(items) = out
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()))
            {
                items.push(typed);
            }
        } else {
            out.insert(key.to_string(), typed);
        }
    }
    out
}

/// A JSON body, where empty means no body.
fn body_arg(body: &Bytes) -> Result<Option<Value>, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("the body is not JSON: {e}"),
        ))
    })
}

/// What a route needs of its tool's input schema, worked out once when the router is built.
struct RouteShape {
    spec: &'static ToolSpec,
    /// The tool's input schema: it types the query values.
    schema: Arc<JsonObject>,
    /// Whether the tool takes a `body` argument (else a request body is refused).
    takes_body: bool,
}

/// One route: its path, query and body become the tool's arguments object.
async fn operation(
    state: &RestState,
    shape: &RouteShape,
    params: Vec<(String, String)>,
    query: Option<&str>,
    headers: &HeaderMap,
    meta: audit::CallMeta<'_>,
    body: &Bytes,
) -> Response {
    let spec = shape.spec;
    let mut raw = query_args(&shape.schema, query);
    for (name, value) in params {
        raw.insert(name, Value::String(value));
    }
    if shape.takes_body {
        match body_arg(body) {
            Ok(Some(b)) => {
                raw.insert("body".into(), b);
            }
            Ok(None) => {}
            Err(r) => return *r,
        }
    } else if !body.iter().all(u8::is_ascii_whitespace) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "`{}` takes no request body; its arguments go in the path and query. Nothing was \
                 sent to Port.",
                spec.name
            ),
        );
    }
    let identifier = audit::identifier(Some(&raw)).map(str::to_owned);
    let outcome = |r: &Response| match r.status() {
        s if s.is_success() => audit::Outcome::Ok,
        StatusCode::FORBIDDEN => audit::Outcome::Refused,
        _ => audit::Outcome::Error,
    };
    // REST has no `_meta`, no session and no JSON-RPC id: only the HTTP trace context.
    let meta = audit::CallMeta {
        args_digest: audit::digest(spec.name, Some(&raw)),
        trace: crate::telemetry::traces::CallInfo {
            transport: Some(meta.transport.network()),
            headers: crate::telemetry::traces::Carrier::of_headers(headers),
            ..Default::default()
        },
        ..meta
    };
    let work = run(state, spec, headers, raw);
    audit::observe(
        state.tools.client().telemetry(),
        &meta,
        spec.name,
        identifier.as_deref(),
        work,
        outcome,
    )
    .await
}

/// Runs one operation through the tools' checks and the shared client.
async fn run(
    state: &RestState,
    spec: &'static ToolSpec,
    headers: &HeaderMap,
    raw: JsonObject,
) -> Response {
    let tool = spec.name;
    if !state.offered.iter().any(|t| t == tool) || (read_only_header(headers) && spec.writes()) {
        return refuse(
            StatusCode::FORBIDDEN,
            "read_only",
            format!(
                "`{tool}` is not available: the server or this request is in read-only mode, or the tool is not enabled"
            ),
        );
    }
    if state.tools.draining().is_cancelled() {
        let mut r = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down; retry in a moment",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let prepare = match (spec.prepare, spec.run) {
        (Some(prepare), _) => prepare,
        (None, Some(run)) => return run_whole(state, run, headers, &raw).await,
        (None, None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("`{tool}` has no REST route"),
            );
        }
    };
    let request = match prepare(&state.tools, &raw).await {
        Ok((request, _)) => request,
        Err(Refusal::Busy(message)) => {
            let mut r = refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{message}. Nothing was sent to Port."),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(Refusal::InvalidArgument(e)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!(
                    "invalid argument `{}`: {}. Nothing was sent to Port.",
                    e.argument, e.message
                ),
            );
        }
        Err(Refusal::Mapping(findings)) => {
            let refused: Vec<_> = findings.iter().filter(|f| f.outcome == "refused").collect();
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "ok": false,
                    "error": "invalid_mapping",
                    "message": format!(
                        "{} jq expression(s) in the mapping would be refused by Port's integration framework; nothing was sent to Port",
                        refused.len()
                    ),
                    "findings": refused,
                })),
            )
                .into_response();
        }
    };
    let _in_flight = state.tools.calls().token();
    let call = CallContext {
        // Port's bytes are passed on as they are: no JSON tree is needed.
        text_only: true,
        ..state.tools.call_context(Some(headers))
    };
    match state.tools.client().send_with(&request, &call).await {
        Ok(response) => {
            let mut r = (
                StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK),
                response.text,
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            trace_header(&mut r, response.trace_id.as_deref());
            r
        }
        Err(e) => port_error(&e),
    }
}

/// A tool that is more than one Port request: its result's structured content, with a status
/// that says how it went (Port's own status when Port refused).
async fn run_whole(
    state: &RestState,
    run: catalog::RunFn,
    headers: &HeaderMap,
    raw: &JsonObject,
) -> Response {
    let _in_flight = state.tools.calls().token();
    let call = state.tools.call_context(Some(headers));
    let result = tokio::select! {
        result = run(&state.tools, raw, &call) => result,
        _ = state.tools.ended().cancelled() => crate::tools::result::ended_by_shutdown(),
    };
    let body = result.structured_content.clone().unwrap_or_else(|| {
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        json!({"message": text.join("\n")})
    });
    if result.is_error != Some(true) {
        let mut body = body;
        if let Value::Object(map) = &mut body {
            map.entry("ok").or_insert(Value::Bool(true));
        }
        return (StatusCode::OK, Json(body)).into_response();
    }
    let status = match body.get("error").and_then(Value::as_str) {
        _ if body
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| (400..600).contains(&s)) =>
        {
            body.get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY)
        }
        Some("invalid_argument" | "invalid_mapping") => StatusCode::BAD_REQUEST,
        Some("unknown_resync_id" | "unknown_kind") => StatusCode::NOT_FOUND,
        Some("busy" | "jq_limit" | "shutting_down") => StatusCode::SERVICE_UNAVAILABLE,
        Some("timeout") => StatusCode::GATEWAY_TIMEOUT,
        Some("no_caller_token") => StatusCode::UNAUTHORIZED,
        Some("no_credentials") => StatusCode::SERVICE_UNAVAILABLE,
        // A run that ended failed or aborted: the request itself was served.
        _ if body.get("error").is_none() => StatusCode::OK,
        _ => StatusCode::BAD_GATEWAY,
    };
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.entry("ok").or_insert(Value::Bool(false));
    }
    (status, Json(body)).into_response()
}

fn trace_header(response: &mut Response, trace: Option<&str>) {
    if let Some(v) = trace.and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert("x-trace-id", v);
    }
}

fn retry_after(response: &mut Response, secs: u64) {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

/// Port's failures with Port's status and body; our own in Port's shape.
fn port_error(error: &PortError) -> Response {
    match error {
        PortError::Api(f) => {
            let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = f
                .body
                .clone()
                .unwrap_or_else(|| json!({"ok": false, "error": f.code, "message": f.message}));
            let mut r = (status, Json(body)).into_response();
            trace_header(&mut r, f.trace_id.as_deref());
            if let Some(secs) = f.retry_after {
                retry_after(&mut r, secs);
            }
            r
        }
        PortError::TokenExchange(f) => refuse(
            StatusCode::BAD_GATEWAY,
            "port_credentials_refused",
            format!(
                "Port refused this server's client credentials (HTTP {})",
                f.status
            ),
        ),
        PortError::NoCredentials => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_credentials",
            error.to_string(),
        ),
        PortError::NoCallerToken => refuse(
            StatusCode::UNAUTHORIZED,
            "no_caller_token",
            error.to_string(),
        ),
        PortError::Busy { .. } => {
            let mut r = refuse(StatusCode::SERVICE_UNAVAILABLE, "busy", error.to_string());
            retry_after(&mut r, 1);
            r
        }
        PortError::Timeout { .. } => {
            refuse(StatusCode::GATEWAY_TIMEOUT, "timeout", error.to_string())
        }
        PortError::Unreachable { .. }
        | PortError::ConnectionLost { .. }
        | PortError::Redirected { .. }
        | PortError::InvalidBody { .. }
        | PortError::ResponseTooLarge { .. } => {
            refuse(StatusCode::BAD_GATEWAY, "bad_gateway", error.to_string())
        }
    }
}

/// The tools with a REST route, and their routes.
pub fn routes() -> impl Iterator<Item = (&'static ToolSpec, &'static RestRoute)> {
    CATALOG
        .iter()
        .filter_map(|spec| spec.rest.as_ref().map(|route| (spec, route)))
}

/// The OpenAPI document of this surface, generated from the tools' own argument types: query
/// parameters from their input schemas, request bodies from their `body` schemas.
pub fn openapi() -> Value {
    let error = json!({"description": "Port's error, or this server's refusal", "content": {"application/json": {"schema": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}, "message": {"type": "string"}}
    }}}});
    let mut paths = Map::new();
    for prefix in PREFIXES {
        for (spec, op) in routes() {
            let schema = Value::Object((spec.schema)().as_ref().clone());
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut parameters = Vec::new();
            let mut request_body = None;
            if let Some(props) = schema["properties"].as_object() {
                for (name, prop) in props {
                    if name == "identifier" {
                        parameters
                            .push(json!({"name": "identifier", "in": "path", "required": true,
                            "description": prop["description"], "schema": {"type": "string"}}));
                    } else if name == "body" {
                        request_body = Some(json!({"required": required.contains(&"body"),
                            "content": {"application/json": {"schema": prop}}}));
                    } else {
                        let mut p = json!({"name": name, "in": "query", "required": false,
                            "description": prop["description"], "schema": prop});
                        if prop["type"] == "array" {
                            p["style"] = json!("form");
                            p["explode"] = json!(true);
                        }
                        parameters.push(p);
                    }
                }
            }
            let mut operation = json!({
                "operationId": format!("{}{}", spec.name, if prefix == "/v1" { "" } else { "-capability" }),
                "summary": op.summary,
                "parameters": parameters,
                "responses": {
                    "200": {"description": if spec.prepare.is_some() { "Port's answer, passed through" } else { "The tool's result (its structuredContent, with ok)" }, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "400": error, "401": error, "403": error, "404": error, "422": error, "429": error, "502": error, "503": error, "504": error
                }
            });
            if let Some(body) = request_body {
                operation["requestBody"] = body;
            }
            // Whether the operation is one Port request passed through, or a tool's whole work.
            operation["x-forwards"] = json!(spec.prepare.is_some());
            let path = format!("{prefix}{}", op.path);
            let entry = paths
                .entry(path)
                .or_insert_with(|| Value::Object(Map::new()));
            entry[op.method] = operation;
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "port-integrations-mcp REST surface",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Port's Integrations API through this server's checks, retries and credentials."
        },
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{
        args::{ListArgs, LogsArgs},
        schema::input_schema,
    };
    use crate::transport::http::{DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_ORIGINS};

    #[test]
    fn hosts_and_origins() {
        let hosts: Vec<String> = DEFAULT_ALLOWED_HOSTS
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert!(host_allowed("localhost:8080", &hosts));
        assert!(host_allowed("127.0.0.1", &hosts));
        assert!(host_allowed("[::1]:8080", &hosts));
        assert!(!host_allowed("evil.example:8080", &hosts));
        let origins: Vec<String> = DEFAULT_ALLOWED_ORIGINS
            .iter()
            .map(|h| h.to_string())
            .collect();
        assert!(origin_allowed("http://localhost:3000", &origins));
        assert!(origin_allowed("https://127.0.0.1", &origins));
        assert!(!origin_allowed("http://evil.example", &origins));
        assert!(!origin_allowed("null", &origins));
        let exact = vec!["https://portal.example.com:443".to_string()];
        assert!(origin_allowed("https://portal.example.com", &exact));
        assert!(!origin_allowed("https://portal.example.com:8443", &exact));
    }

    #[test]
    fn budget_and_gateway_failures_map_to_statuses() {
        let busy = port_error(&PortError::Busy {
            waited: std::time::Duration::from_secs(30),
        });
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let timeout = port_error(&PortError::Timeout {
            after: std::time::Duration::from_secs(30),
        });
        assert_eq!(timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            port_error(&PortError::NoCallerToken).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            port_error(&PortError::NoCredentials).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn query_values_take_the_tools_types() {
        let q = query_args(
            &input_schema::<LogsArgs>(),
            Some("limit=5&levels=ERROR&levels=FATAL&direction=up"),
        );
        assert_eq!(
            Value::Object(q),
            json!({"limit": 5, "levels": ["ERROR", "FATAL"], "direction": "up"})
        );
        let q = query_args(
            &input_schema::<ListArgs>(),
            Some("actionsProcessingEnabled=true"),
        );
        assert_eq!(Value::Object(q), json!({"actionsProcessingEnabled": true}));
    }
}
