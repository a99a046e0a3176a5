//! Asking the person before an integration is deleted.
//!
//! A delete cannot be undone, and a model can pick the wrong identifier. Where the client can
//! show a form (elicitation), the integration is fetched first so the question names its title
//! and type, and only an explicit "yes" deletes it. Two protocol eras ask differently: up to
//! 2025-11-25 the server sends an `elicitation/create` request mid-call; from 2026-07-28 it
//! answers with an input-required result and the client repeats the call with the answer
//! (SEP-2322). Where the client cannot elicit, the tool's destructive hint leaves the decision
//! to the host's own approval prompt.

use rmcp::{
    RoleServer,
    model::{
        CallToolResponse, ElicitRequest, ElicitRequestParams, ElicitResult, ElicitationAction,
        ElicitationSchema, InputRequest, InputRequests, InputRequiredResult, InputResponses,
        ProtocolVersion,
    },
    service::{ElicitationError, RequestContext},
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{PortTools, args::DeleteArgs, result};
use crate::port::PortRequest;

/// The key of the confirmation in an input-required round trip.
const KEY: &str = "confirm_delete";

/// The form shown to the person.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Confirm {
    /// Check to delete the integration.
    pub confirm: bool,
}

rmcp::elicit_safe!(Confirm);

/// What the delete tool should do next.
pub enum Decision {
    /// Send the DELETE.
    Proceed,
    /// Answer with this instead (a question, a refusal, or a failure to look it up).
    Respond(CallToolResponse),
}

/// Decides whether the delete may go ahead, asking the person where the client allows it.
pub async fn confirm_delete(
    tools: &PortTools,
    args: &DeleteArgs,
    responses: Option<InputResponses>,
    ctx: &RequestContext<RoleServer>,
) -> Decision {
    let can_elicit = ctx
        .client_capabilities()
        .is_some_and(|c| c.elicitation.is_some());
    if !can_elicit {
        return Decision::Proceed;
    }
    let modern = ctx
        .protocol_version()
        .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
    if modern {
        if let Some(answer) = responses.as_ref().and_then(|r| r.get(KEY)) {
            let answer = serde_json::from_value::<ElicitResult>(answer.clone()).ok();
            return decide(&args.identifier, answer);
        }
        let question = match describe(tools, args, ctx).await {
            Ok(q) => q,
            Err(failure) => return Decision::Respond(failure.into()),
        };
        let schema = match ElicitationSchema::from_type::<Confirm>() {
            Ok(s) => s,
            Err(_) => return Decision::Proceed,
        };
        let mut requests = InputRequests::new();
        requests.insert(
            KEY.into(),
            InputRequest::Elicitation(ElicitRequest::new(
                ElicitRequestParams::FormElicitationParams {
                    meta: None,
                    message: question,
                    requested_schema: schema,
                },
            )),
        );
        return Decision::Respond(InputRequiredResult::from_input_requests(requests).into());
    }
    let question = match describe(tools, args, ctx).await {
        Ok(q) => q,
        Err(failure) => return Decision::Respond(failure.into()),
    };
    let id = &args.identifier;
    let refuse = |answer: &str| Decision::Respond(result::not_confirmed(id, answer).into());
    match ctx.peer.elicit::<Confirm>(question).await {
        Ok(Some(Confirm { confirm: true })) => Decision::Proceed,
        Ok(_) | Err(ElicitationError::UserDeclined) => refuse("declined"),
        Err(ElicitationError::UserCancelled) => refuse("cancelled"),
        // The session cannot carry the question (e.g. stateless HTTP): the host's own approval
        // of a destructive tool is what stands.
        Err(ElicitationError::CapabilityNotSupported) => Decision::Proceed,
        Err(e) => {
            tracing::warn!(error = %e, "asking for delete confirmation failed");
            refuse("could not be asked to confirm")
        }
    }
}

fn decide(identifier: &str, answer: Option<ElicitResult>) -> Decision {
    let refuse = |a: &str| Decision::Respond(result::not_confirmed(identifier, a).into());
    match answer {
        Some(ElicitResult {
            action: ElicitationAction::Accept,
            content: Some(content),
            ..
        }) if content.get("confirm") == Some(&serde_json::Value::Bool(true)) => Decision::Proceed,
        Some(ElicitResult {
            action: ElicitationAction::Cancel,
            ..
        }) => refuse("cancelled"),
        _ => refuse("declined"),
    }
}

/// Fetches the integration so the question names what would be deleted. A failure (e.g. 404:
/// nothing to delete) is returned as the tool's answer.
async fn describe(
    tools: &PortTools,
    args: &DeleteArgs,
    ctx: &RequestContext<RoleServer>,
) -> Result<String, rmcp::model::CallToolResult> {
    let lookup = tools
        .send(&PortRequest::get(&["integration", &args.identifier]), ctx)
        .await;
    if lookup.is_error == Some(true) {
        return Err(lookup);
    }
    let integration = lookup
        .structured_content
        .as_ref()
        .and_then(|b| b.get("integration"))
        .cloned()
        .unwrap_or_default();
    let field = |k: &str| {
        integration
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_string()
    };
    Ok(format!(
        "Delete the Port integration \"{}\" ({}, type {})? Port removes its record and this \
         cannot be undone; an exporter that is still running is not stopped.",
        field("title"),
        args.identifier,
        field("installationAppType"),
    ))
}
