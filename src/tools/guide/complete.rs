//! `completion/complete` for the prompts' and templates' arguments.
//!
//! - `type` of `port://default-mappings/{type}` and `kind` of `fix-integration-mapping`: from
//!   the embedded default mappings (no Port call).
//! - `identifier` of both prompts and of `port://integrations/{identifier}`: the organization's
//!   integration identifiers, from one GET /v1/integration/metadata (the call
//!   get-all-integrations-meta-data makes, so only when that tool is offered), with the caller's
//!   call context. Completion is a hint while typing: when Port fails, the answer is an empty
//!   list (the failure is logged), not an error in the host's input box.
//!
//! Every answer is the values starting with what was typed, sorted, at most 100
//! (`total` and `hasMore` tell when there are more).

use rmcp::{
    ErrorData, RoleServer,
    model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference},
    service::RequestContext,
};

use super::{
    Offer, check_text, corpus,
    prompts::{FIX_MAPPING, TROUBLESHOOT},
    resources::{DEFAULT_MAPPING_TEMPLATE, INTEGRATION_TEMPLATE},
    shown,
};
use crate::{
    port::{CallContext, PortRequest},
    tools::PortTools,
};

/// What an argument completes from.
enum Source {
    Types,
    Kinds,
    Identifiers,
}

/// Answers one completion request.
pub async fn complete(
    tools: &PortTools,
    request: &CompleteRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<CompleteResult, ErrorData> {
    let offer = Offer::for_request(tools, ctx);
    let argument = request.argument.name.as_str();
    let source = match &request.r#ref {
        Reference::Prompt(prompt) => {
            let name = prompt.name.as_str();
            if !(name == TROUBLESHOOT || name == FIX_MAPPING) || !offer.integration_readable() {
                return Err(ErrorData::invalid_params(
                    format!("no prompt `{}` to complete", shown(name)),
                    None,
                ));
            }
            match argument {
                "identifier" => Source::Identifiers,
                "kind" if name == FIX_MAPPING => Source::Kinds,
                _ => return Err(no_argument(argument)),
            }
        }
        Reference::Resource(template) => match template.uri.as_str() {
            DEFAULT_MAPPING_TEMPLATE if argument == "type" => Source::Types,
            INTEGRATION_TEMPLATE if offer.integration_readable() && argument == "identifier" => {
                Source::Identifiers
            }
            DEFAULT_MAPPING_TEMPLATE | INTEGRATION_TEMPLATE if offer.integration_readable() => {
                return Err(no_argument(argument));
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no resource template `{}` to complete", shown(other)),
                    None,
                ));
            }
        },
        _ => return Ok(CompleteResult::default()),
    };
    let typed = request.argument.value.as_str();
    if check_text(typed).is_err() {
        return Ok(CompleteResult::default());
    }
    let candidates: Vec<String> = match source {
        Source::Types => corpus::types().map(str::to_string).collect(),
        Source::Kinds => corpus::kinds().iter().cloned().collect(),
        // Only through a route the server offers: an allow-list without
        // get-all-integrations-meta-data gets no suggestions rather than an unexpected call.
        Source::Identifiers if offer.reads("get-all-integrations-meta-data") => {
            identifiers(tools, ctx).await
        }
        Source::Identifiers => Vec::new(),
    };
    Ok(CompleteResult::new(matching(candidates, typed)))
}

fn no_argument(argument: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("no argument `{}` to complete here", shown(argument)),
        None,
    )
}

/// The candidates starting with `typed`, sorted and deduplicated, at most
/// [`CompletionInfo::MAX_VALUES`].
pub fn matching(candidates: Vec<String>, typed: &str) -> CompletionInfo {
    let mut values: Vec<String> = candidates
        .into_iter()
        .filter(|c| c.starts_with(typed))
        .collect();
    values.sort();
    values.dedup();
    let total = values.len();
    values.truncate(CompletionInfo::MAX_VALUES);
    // Cannot fail: the values were just cut to the maximum.
    CompletionInfo::with_pagination(
        values,
        Some(u32::try_from(total).unwrap_or(u32::MAX)),
        total > CompletionInfo::MAX_VALUES,
    )
    .unwrap_or_default()
}

/// The organization's integration identifiers (empty when Port fails or the call is cancelled).
async fn identifiers(tools: &PortTools, ctx: &RequestContext<RoleServer>) -> Vec<String> {
    if tools.draining().is_cancelled() {
        return Vec::new();
    }
    let _in_flight = tools.calls().token();
    let call: CallContext = tools.call_context(super::http_headers(ctx));
    let request = PortRequest::get(&["integration", "metadata"]);
    let outcome = tokio::select! {
        _ = ctx.ct.cancelled() => return Vec::new(),
        _ = tools.ended().cancelled() => return Vec::new(),
        outcome = tools.client().send_with(&request, &call) => outcome,
    };
    let body = match outcome {
        Ok(response) => response.json,
        Err(e) => {
            tracing::warn!(error = %e, "completing integration identifiers: Port call failed");
            return Vec::new();
        }
    };
    body.as_ref()
        .and_then(|b| b["integrations"].as_array())
        .map(|list| {
            list.iter()
                .filter_map(|i| {
                    i["identifier"]
                        .as_str()
                        .or_else(|| i["installationId"].as_str())
                })
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}
