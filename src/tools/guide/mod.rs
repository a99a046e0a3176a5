//! The guided workflow: MCP prompts that walk an agent through troubleshooting and fixing an
//! integration, resources that give it the integration and Port's default mapping to start
//! from, and completion of their arguments.
//!
//! Tools act; this module only tells the agent which tools to use, in which order, and gives it
//! the data to reason on. It follows the same rules as the tools: a prompt names only the tools
//! the server offers to the request at hand ([`Offer`]), and the integration resource goes
//! through the same Port client, checks and call context as `get-integration`.
//!
//! The `ServerHandler` methods in `tools/mod.rs` delegate here, one function each.

pub mod complete;
pub mod corpus;
pub mod prompts;
pub mod resources;

use std::collections::BTreeSet;

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
        ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ReadResourceRequestParams, ReadResourceResponse,
    },
    service::RequestContext,
};

use super::PortTools;

/// Longest prompt argument, resource URI segment or completion value accepted, in bytes.
/// Integration identifiers and kinds are short; this bounds the work and the text built from
/// them.
pub const MAX_ARGUMENT_BYTES: usize = 256;

/// What one request may use: the tools the server offers, and whether the request asked for
/// read-only mode (over HTTP, the `x-read-only-mode` header).
#[derive(Debug, Clone)]
pub struct Offer {
    tools: BTreeSet<String>,
    read_only: bool,
}

impl Offer {
    /// These tools, in this mode.
    pub fn new<I, S>(tools: I, read_only: bool) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Offer {
            tools: tools.into_iter().map(Into::into).collect(),
            read_only,
        }
    }

    /// What `tools` offers to the request behind `ctx`.
    pub fn for_request(tools: &PortTools, ctx: &RequestContext<RoleServer>) -> Self {
        let read_only = http_headers(ctx).is_some_and(super::read_only_header);
        Offer::new(tools.tool_names(), read_only)
    }

    /// Whether the request may call `tool` to read.
    pub fn reads(&self, tool: &str) -> bool {
        self.tools.contains(tool)
    }

    /// Whether the request may call `tool` to change Port: offered, and not in read-only mode.
    pub fn writes(&self, tool: &str) -> bool {
        !self.read_only && self.tools.contains(tool)
    }

    /// Whether the request asked for read-only mode.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the integration itself can be read (`get-integration`): the prompts and the
    /// `port://integrations/{identifier}` resource exist only then, as every fix starts from
    /// the integration's current config.
    pub fn integration_readable(&self) -> bool {
        self.reads("get-integration")
    }
}

/// The HTTP request's headers, when there is one (not on stdio).
fn http_headers(ctx: &RequestContext<RoleServer>) -> Option<&axum::http::HeaderMap> {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .map(|p| &p.headers)
}

/// Text from outside as an error message shows it: cut, with control characters replaced, so a
/// hostile name cannot flood or forge the message.
fn shown(text: &str) -> String {
    text.chars()
        .take(MAX_ARGUMENT_BYTES)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Why a text from outside (a prompt argument, a URI segment) is refused: the first control
/// character, or its size.
fn check_text(value: &str) -> Result<(), String> {
    if value.len() > MAX_ARGUMENT_BYTES {
        return Err(format!(
            "is {} bytes long; at most {MAX_ARGUMENT_BYTES} are accepted",
            value.len()
        ));
    }
    if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(format!(
            "contains the control character U+{:04X} at byte {at}",
            c as u32
        ));
    }
    Ok(())
}

/// `prompts/list`.
pub fn list_prompts(
    tools: &PortTools,
    ctx: &RequestContext<RoleServer>,
) -> Result<ListPromptsResult, ErrorData> {
    Ok(ListPromptsResult::with_all_items(prompts::list(
        &Offer::for_request(tools, ctx),
    )))
}

/// `prompts/get`.
pub fn get_prompt(
    tools: &PortTools,
    request: &GetPromptRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<GetPromptResponse, ErrorData> {
    prompts::render(
        &request.name,
        request.arguments.as_ref(),
        &Offer::for_request(tools, ctx),
    )
    .map(GetPromptResponse::from)
}

/// `resources/list`: the default mappings (no Port call).
pub fn list_resources() -> Result<ListResourcesResult, ErrorData> {
    Ok(ListResourcesResult::with_all_items(resources::list()))
}

/// `resources/templates/list`.
pub fn list_resource_templates(
    tools: &PortTools,
    ctx: &RequestContext<RoleServer>,
) -> Result<ListResourceTemplatesResult, ErrorData> {
    Ok(ListResourceTemplatesResult::with_all_items(
        resources::templates(&Offer::for_request(tools, ctx)),
    ))
}

/// `resources/read`.
pub async fn read_resource(
    tools: &PortTools,
    request: &ReadResourceRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<ReadResourceResponse, ErrorData> {
    resources::read(tools, &request.uri, ctx)
        .await
        .map(ReadResourceResponse::from)
}

/// `completion/complete`.
pub async fn complete(
    tools: &PortTools,
    request: &CompleteRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> Result<CompleteResult, ErrorData> {
    complete::complete(tools, request, ctx).await
}
