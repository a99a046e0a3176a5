//! The resources: one integration as Port returns it (`port://integrations/{identifier}`), and
//! Port's default mapping per Ocean integration type (`port://default-mappings/{type}`).
//!
//! - The integration resource exists only when `get-integration` is offered, and reads exactly
//!   what that tool reads (GET /v1/integration/{identifier}, same client, checks and call
//!   context, so token passthrough works the same). Its identifier comes from a URI, so it is
//!   percent-decoded once and refused when it could name anything but one path segment.
//! - The default mappings are local and read-only: always offered, whatever the toolsets.
//! - `resources/list` lists only the default mappings (cheap, no Port call): listing the
//!   integrations would cost a Port call on every host's start-up, and fail without
//!   credentials. The integrations are reached through the template.

use percent_encoding::percent_decode_str;
use rmcp::{
    ErrorData, RoleServer,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
    service::RequestContext,
};
use serde_json::json;

use super::{Offer, check_text, corpus, shown};
use crate::{
    port::{CallContext, PortError, PortRequest},
    tools::PortTools,
};

/// URI prefix of the integration resources.
pub const INTEGRATIONS: &str = "port://integrations/";
/// URI prefix of the default mappings.
pub const DEFAULT_MAPPINGS: &str = "port://default-mappings/";
/// The integration resource template.
pub const INTEGRATION_TEMPLATE: &str = "port://integrations/{identifier}";
/// The default mapping resource template.
pub const DEFAULT_MAPPING_TEMPLATE: &str = "port://default-mappings/{type}";

/// The resource templates this request may read.
pub fn templates(offer: &Offer) -> Vec<ResourceTemplate> {
    let mut templates = Vec::new();
    if offer.integration_readable() {
        templates.push(
            ResourceTemplate::new(INTEGRATION_TEMPLATE, "integration")
                .with_title("Port integration")
                .with_description(
                    "One integration as Port returns it from GET /v1/integration/{identifier}, \
                     Port's answer as is ({\"ok\": true, \"integration\": {...}}, the same as \
                     get-integration): its config (the mapping), type (installationAppType), \
                     version and resyncState. {identifier} is the integration's identifier, as \
                     get-all-integrations lists it. Needs the moderator or admin role.",
                )
                .with_mime_type("application/json"),
        );
    }
    templates.push(
        ResourceTemplate::new(DEFAULT_MAPPING_TEMPLATE, "default-mapping")
            .with_title("Port's default mapping for an Ocean integration type")
            .with_description(format!(
                "The mapping (port-app-config.yml) Port ships with an Ocean integration type, as \
                 YAML, byte for byte from port-labs/ocean: a starting point when fixing or \
                 writing a mapping. {{type}} is the integration type, e.g. github, gitlab-v2, \
                 jira, pagerduty; an integration's installationAppType also works, including \
                 the `<type>{}` form (github-ocean is github). {} types are embedded; \
                 completion lists them.",
                corpus::OCEAN_SUFFIX,
                corpus::DEFAULT_MAPPINGS.len()
            ))
            .with_mime_type("application/yaml"),
    );
    templates
}

/// The concrete resources: every default mapping.
pub fn list() -> Vec<Resource> {
    corpus::DEFAULT_MAPPINGS
        .iter()
        .map(|(name, text)| {
            Resource::new(format!("{DEFAULT_MAPPINGS}{name}"), *name)
                .with_title(format!("Port's default mapping for {name}"))
                .with_mime_type("application/yaml")
                .with_size(text.len() as u64)
        })
        .collect()
}

/// Reads the resource at `uri`.
pub async fn read(
    tools: &PortTools,
    uri: &str,
    ctx: &RequestContext<RoleServer>,
) -> Result<ReadResourceResult, ErrorData> {
    if let Some(segment) = uri.strip_prefix(DEFAULT_MAPPINGS) {
        let wanted = decode_segment(uri, segment, "type")?;
        return match corpus::lookup(&wanted) {
            Some((_, text)) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type("application/yaml"),
            ])),
            None => Err(unknown_type(uri, &wanted)),
        };
    }
    if let Some(segment) = uri.strip_prefix(INTEGRATIONS) {
        if !Offer::for_request(tools, ctx).integration_readable() {
            return Err(not_offered(uri));
        }
        let identifier = decode_segment(uri, segment, "identifier")?;
        super::super::args::check_identifier(&identifier)
            .map_err(|e| invalid_uri(uri, &format!("identifier {}", e.message)))?;
        return read_integration(tools, uri, &identifier, ctx).await;
    }
    Err(ErrorData::resource_not_found(
        format!(
            "no resource `{}`: this server serves {INTEGRATION_TEMPLATE} and \
             {DEFAULT_MAPPING_TEMPLATE}",
            shown(uri)
        ),
        Some(json!({"uri": shown(uri)})),
    ))
}

/// The URI segment after a template's prefix, percent-decoded once. Refused: a query or
/// fragment, anything that would be another path segment once decoded (`/`, `\`, `?`, `#`),
/// invalid UTF-8, control characters, and overlong values.
fn decode_segment(uri: &str, segment: &str, name: &str) -> Result<String, ErrorData> {
    if let Some(c) = segment.chars().find(|c| matches!(c, '/' | '?' | '#')) {
        return Err(invalid_uri(
            uri,
            &format!("has `{c}` after the {name}; the URI is exactly the template with one {name}"),
        ));
    }
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| invalid_uri(uri, &format!("the {name} is not UTF-8 once decoded")))?;
    check_text(&decoded).map_err(|m| invalid_uri(uri, &format!("the {name} {m}")))?;
    if let Some(c) = decoded
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '?' | '#'))
    {
        return Err(invalid_uri(
            uri,
            &format!("the {name} contains `{c}` once decoded; no {name} does"),
        ));
    }
    if decoded.trim().is_empty() {
        return Err(invalid_uri(uri, &format!("the {name} is empty")));
    }
    Ok(decoded.into_owned())
}

fn invalid_uri(uri: &str, message: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!(
            "invalid argument `uri` ({}): {message}. Nothing was sent to Port.",
            shown(uri)
        ),
        Some(json!({"argument": "uri", "message": message})),
    )
}

fn not_offered(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!(
            "no resource `{}`: this server does not offer get-integration, so it does not \
             serve {INTEGRATION_TEMPLATE} either",
            shown(uri)
        ),
        Some(json!({"uri": shown(uri)})),
    )
}

fn unknown_type(uri: &str, wanted: &str) -> ErrorData {
    let close = corpus::close_matches(wanted);
    let hint = if close.is_empty() {
        "complete the {type} argument, or list the resources, to see the types there are".into()
    } else {
        format!("close matches: {}", close.join(", "))
    };
    ErrorData::resource_not_found(
        format!(
            "no default mapping for integration type {}: {hint}",
            serde_json::Value::from(wanted)
        ),
        Some(json!({"uri": shown(uri), "type": wanted, "closeMatches": close})),
    )
}

/// GET /v1/integration/{identifier}, as get-integration sends it; Port's body is the content.
async fn read_integration(
    tools: &PortTools,
    uri: &str,
    identifier: &str,
    ctx: &RequestContext<RoleServer>,
) -> Result<ReadResourceResult, ErrorData> {
    if tools.draining().is_cancelled() {
        return Err(ErrorData::internal_error(
            "the server is shutting down and takes no new requests; nothing was sent to Port",
            None,
        ));
    }
    let _in_flight = tools.calls().token();
    let call = CallContext {
        text_only: true,
        ..tools.call_context(super::http_headers(ctx))
    };
    let request = PortRequest::get(&["integration", identifier]);
    let outcome = tokio::select! {
        _ = ctx.ct.cancelled() => {
            return Err(ErrorData::internal_error("cancelled by the client; the request to Port was abandoned", None));
        }
        _ = tools.ended().cancelled() => {
            return Err(ErrorData::internal_error("the server shut down before Port answered", None));
        }
        outcome = tools.client().send_with(&request, &call) => outcome,
    };
    match outcome {
        Ok(response) => Ok(ReadResourceResult::new(vec![
            ResourceContents::text(response.text, uri).with_mime_type("application/json"),
        ])),
        Err(PortError::Api(failure)) if failure.status == 404 => {
            Err(ErrorData::resource_not_found(
                format!(
                    "no integration {} in Port: {}",
                    serde_json::Value::from(identifier),
                    failure
                        .message
                        .as_deref()
                        .unwrap_or("Port answered HTTP 404")
                ),
                Some(json!({
                    "uri": uri,
                    "status": 404,
                    "error": failure.code,
                    "message": failure.message,
                    "traceId": failure.trace_id,
                })),
            ))
        }
        Err(e) => {
            tracing::warn!(error = %e, "reading an integration resource failed");
            let (text, details) = super::super::result::describe(&e);
            Err(ErrorData::internal_error(text, Some(details)))
        }
    }
}
