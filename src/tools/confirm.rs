//! Asking the person before an integration is deleted or its mapping restored.
//!
//! A delete cannot be undone, a restore replaces the mapping someone may have just written,
//! and a model can pick the wrong identifier. Where the client can show a form (elicitation),
//! the integration is fetched first so the question names its title and type (and, for a
//! restore, the kinds of the mapping before and after), and only an explicit "yes" goes ahead.
//! Two protocol eras ask differently: up to 2025-11-25 the server sends an
//! `elicitation/create` request mid-call; from 2026-07-28 it answers with an input-required
//! result and the client repeats the call with the answer (SEP-2322). Where the client cannot
//! elicit, the tool's hints leave the decision to the host's own approval prompt.

use std::future::Future;

use rmcp::{
    RoleServer,
    model::{
        CallToolResponse, CallToolResult, ElicitRequest, ElicitRequestParams, ElicitResult,
        ElicitationAction, ElicitationSchema, InputRequest, InputRequests, InputRequiredResult,
        InputResponses, ProtocolVersion,
    },
    service::{ElicitationError, RequestContext},
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{PortTools, args::DeleteArgs, result};
use crate::port::PortRequest;

/// The form shown before a delete.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Confirm {
    /// Check to delete the integration.
    pub confirm: bool,
}

rmcp::elicit_safe!(Confirm);

/// The form shown before a restore.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ConfirmRestore {
    /// Check to restore the integration's mapping to the one of its last successful resync.
    pub confirm: bool,
}

rmcp::elicit_safe!(ConfirmRestore);

/// What is being confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `delete-integration`.
    Delete,
    /// `restore-integration-mapping`.
    Restore,
}

impl Action {
    /// The key of the confirmation in an input-required round trip.
    fn key(self) -> &'static str {
        match self {
            Action::Delete => "confirm_delete",
            Action::Restore => "confirm_restore",
        }
    }

    fn schema(self) -> Option<ElicitationSchema> {
        match self {
            Action::Delete => ElicitationSchema::from_type::<Confirm>().ok(),
            Action::Restore => ElicitationSchema::from_type::<ConfirmRestore>().ok(),
        }
    }

    fn refuse(self, identifier: &str, answer: &str) -> Decision {
        Decision::Respond(
            match self {
                Action::Delete => result::not_confirmed(identifier, answer),
                Action::Restore => result::restore_not_confirmed(identifier, answer),
            }
            .into(),
        )
    }

    async fn elicit(
        self,
        ctx: &RequestContext<RoleServer>,
        question: String,
    ) -> Result<bool, ElicitationError> {
        match self {
            Action::Delete => ctx
                .peer
                .elicit::<Confirm>(question)
                .await
                .map(|a| a.is_some_and(|c| c.confirm)),
            Action::Restore => ctx
                .peer
                .elicit::<ConfirmRestore>(question)
                .await
                .map(|a| a.is_some_and(|c| c.confirm)),
        }
    }
}

/// What the tool should do next.
pub enum Decision {
    /// Go ahead.
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
    confirm(Action::Delete, &args.identifier, responses, ctx, || {
        describe(tools, args, ctx)
    })
    .await
}

/// Decides whether `action` on `identifier` may go ahead, asking the person where the client
/// allows it. `question` looks up what to ask (its failure, e.g. a 404, is the answer); it is
/// called only when there is someone to ask.
pub async fn confirm<Q, F>(
    action: Action,
    identifier: &str,
    responses: Option<InputResponses>,
    ctx: &RequestContext<RoleServer>,
    question: Q,
) -> Decision
where
    Q: FnOnce() -> F,
    F: Future<Output = Result<String, CallToolResult>>,
{
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
        if let Some(answer) = responses.as_ref().and_then(|r| r.get(action.key())) {
            let answer = serde_json::from_value::<ElicitResult>(answer.clone()).ok();
            return decide(action, identifier, answer);
        }
        let question = match question().await {
            Ok(q) => q,
            Err(failure) => return Decision::Respond(failure.into()),
        };
        let Some(schema) = action.schema() else {
            return Decision::Proceed;
        };
        let mut requests = InputRequests::new();
        requests.insert(
            action.key().into(),
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
    let question = match question().await {
        Ok(q) => q,
        Err(failure) => return Decision::Respond(failure.into()),
    };
    match action.elicit(ctx, question).await {
        Ok(true) => Decision::Proceed,
        Ok(false) | Err(ElicitationError::UserDeclined) => action.refuse(identifier, "declined"),
        Err(ElicitationError::UserCancelled) => action.refuse(identifier, "cancelled"),
        // The session cannot carry the question (e.g. stateless HTTP): the host's own approval
        // of the tool is what stands.
        Err(ElicitationError::CapabilityNotSupported) => Decision::Proceed,
        Err(e) => {
            tracing::warn!(error = %e, "asking for confirmation failed");
            action.refuse(identifier, "could not be asked to confirm")
        }
    }
}

fn decide(action: Action, identifier: &str, answer: Option<ElicitResult>) -> Decision {
    match answer {
        Some(ElicitResult {
            action: ElicitationAction::Accept,
            content: Some(content),
            ..
        }) if content.get("confirm") == Some(&serde_json::Value::Bool(true)) => Decision::Proceed,
        Some(ElicitResult {
            action: ElicitationAction::Cancel,
            ..
        }) => action.refuse(identifier, "cancelled"),
        _ => action.refuse(identifier, "declined"),
    }
}

/// Fetches the integration so the question names what would be deleted. A failure (e.g. 404:
/// nothing to delete) is returned as the tool's answer.
async fn describe(
    tools: &PortTools,
    args: &DeleteArgs,
    ctx: &RequestContext<RoleServer>,
) -> Result<String, CallToolResult> {
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
