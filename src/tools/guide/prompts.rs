//! The two prompts, `troubleshoot-integration` and `fix-integration-mapping`: numbered steps
//! that name this server's tools and their arguments, for the tools this request may use.
//!
//! Rendering is pure text work from the arguments and the [`Offer`]: it never calls Port. The
//! rules (documented in the prompts' descriptions and the README):
//! - Both prompts exist only when `get-integration` is offered: reading the current config is
//!   the core of every fix. Otherwise they are not listed and `prompts/get` refuses them.
//! - A step whose tool is not offered says what to do instead (`get-integration`'s resyncState
//!   in place of the sync status, asking the user for raw items, ...) and the prompt ends by
//!   naming the missing tools and the toolsets that offer them.
//! - In read-only mode (the server's `--read-only`, an allow-list without the write tools, or
//!   the request's `x-read-only-mode` header) the write steps become "propose the fixed config
//!   as YAML for a person to apply"; nothing in the prompt asks to change Port.

use rmcp::{
    ErrorData,
    model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role},
};
use serde_json::{Value, json};

use super::{Offer, check_text, shown};

/// Name of the prompt that diagnoses and fixes a failed sync.
pub const TROUBLESHOOT: &str = "troubleshoot-integration";
/// Name of the prompt that fixes one kind's mapping.
pub const FIX_MAPPING: &str = "fix-integration-mapping";

/// The toolsets that offer every tool the prompts can name.
pub const ALL_TOOLSETS: &str = "--toolsets integrations,mapping,sync";

/// The prompts this request may use.
pub fn list(offer: &Offer) -> Vec<Prompt> {
    if !offer.integration_readable() {
        return Vec::new();
    }
    let identifier = PromptArgument::new("identifier")
        .with_title("Integration identifier")
        .with_description(
            "The integration's identifier (installation ID), as get-all-integrations lists it.",
        )
        .with_required(true);
    vec![
        Prompt::new(
            TROUBLESHOOT,
            Some(
                "Find out why an integration's last resync failed and fix it: sync status, \
                 ERROR event logs, raw data examples, a fix tested locally on those examples, \
                 a checked config update, a resync and a verification. Names only the tools \
                 this server offers; in read-only mode the fix is proposed as YAML for a person \
                 to apply.",
            ),
            Some(vec![identifier.clone()]),
        )
        .with_title("Troubleshoot an integration"),
        Prompt::new(
            FIX_MAPPING,
            Some(
                "Fix the mapping of one kind of an integration: its resource in the config, \
                 Port's default mapping for the integration type as a starting point \
                 (resource port://default-mappings/{type}), the kind's raw examples, a local \
                 preview, a checked config update, a resync and a verification. Names only the \
                 tools this server offers; in read-only mode the fix is proposed as YAML.",
            ),
            Some(vec![
                identifier,
                PromptArgument::new("kind")
                    .with_title("Kind")
                    .with_description(
                        "The kind whose mapping to fix, as in the config's resources[].kind \
                         (e.g. `issue` for Jira, `repository` for GitHub).",
                    )
                    .with_required(true),
            ]),
        )
        .with_title("Fix one kind's mapping"),
    ]
}

/// The prompt `name` rendered with `arguments` for this request; a protocol error (invalid
/// params, naming the argument) when the prompt is unknown or not offered, or an argument is
/// missing, empty, too long, not text or has a control character.
pub fn render(
    name: &str,
    arguments: Option<&JsonObject>,
    offer: &Offer,
) -> Result<GetPromptResult, ErrorData> {
    let wanted: &[&str] = match name {
        TROUBLESHOOT => &["identifier"],
        FIX_MAPPING => &["identifier", "kind"],
        _ => {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown prompt `{}`; the prompts are {TROUBLESHOOT} and {FIX_MAPPING}",
                    shown(name)
                ),
                None,
            ));
        }
    };
    if !offer.integration_readable() {
        return Err(ErrorData::invalid_params(
            format!(
                "prompt `{}` is not available: this server does not offer get-integration, \
                 which every step starts from (start it with the integrations toolset, e.g. \
                 {ALL_TOOLSETS})",
                shown(name)
            ),
            None,
        ));
    }
    let empty = JsonObject::new();
    let arguments = arguments.unwrap_or(&empty);
    if let Some(unknown) = arguments.keys().find(|k| !wanted.contains(&k.as_str())) {
        return Err(invalid_argument(
            name,
            &shown(unknown),
            &format!(
                "is not an argument of this prompt (it takes {})",
                wanted.join(", ")
            ),
        ));
    }
    let identifier = argument(name, arguments, "identifier")?;
    super::super::args::check_identifier(identifier)
        .map_err(|e| invalid_argument(name, "identifier", &e.message))?;
    let (description, steps) = if name == FIX_MAPPING {
        let kind = argument(name, arguments, "kind")?;
        (
            format!(
                "Fix the mapping of kind {} of integration {}.",
                q(kind),
                q(identifier)
            ),
            fix_mapping(identifier, kind, offer),
        )
    } else {
        (
            format!("Troubleshoot integration {}.", q(identifier)),
            troubleshoot(identifier, offer),
        )
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, steps)])
            .with_description(description),
    )
}

/// A required text argument, checked.
fn argument<'a>(prompt: &str, arguments: &'a JsonObject, name: &str) -> Result<&'a str, ErrorData> {
    let value = match arguments.get(name) {
        None | Some(Value::Null) => {
            return Err(invalid_argument(prompt, name, "is required"));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid_argument(prompt, name, "must be a string")),
    };
    if value.trim().is_empty() {
        return Err(invalid_argument(prompt, name, "must not be empty"));
    }
    check_text(value).map_err(|message| invalid_argument(prompt, name, &message))?;
    Ok(value)
}

fn invalid_argument(prompt: &str, argument: &str, message: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("invalid argument `{argument}` of prompt `{prompt}`: {message}"),
        Some(json!({"prompt": prompt, "argument": argument, "message": message})),
    )
}

/// A value quoted as JSON, so quotes or backslashes in it cannot break the text around it.
fn q(value: &str) -> String {
    Value::from(value).to_string()
}

/// A tool call as the agent should write it: the name and its arguments as a JSON object, in
/// the order given (the identifier first reads best).
fn call(tool: &str, arguments: &[(&str, Value)]) -> String {
    let fields: Vec<String> = arguments
        .iter()
        .map(|(name, value)| format!("{}:{value}", q(name)))
        .collect();
    format!("{tool} {{{}}}", fields.join(","))
}

/// Numbered steps, and what was missing along the way.
struct Steps {
    lines: Vec<String>,
    missing: Vec<&'static str>,
}

impl Steps {
    fn new() -> Self {
        Steps {
            lines: Vec::new(),
            missing: Vec::new(),
        }
    }

    fn step(&mut self, text: String) {
        self.lines.push(format!("{}. {text}", self.lines.len() + 1));
    }

    /// Notes a read tool the server does not offer (write tools in read-only mode are not
    /// "missing": read-only is the point).
    fn lacks(&mut self, offer: &Offer, tool: &'static str) -> bool {
        let lacking = !offer.reads(tool);
        if lacking && !self.missing.contains(&tool) {
            self.missing.push(tool);
        }
        lacking
    }

    fn finish(self, intro: String, offer: &Offer, outro: Vec<String>) -> String {
        let mut text = intro;
        text.push_str("\n\n");
        text.push_str(&self.lines.join("\n"));
        for line in outro {
            text.push_str("\n\n");
            text.push_str(&line);
        }
        let missing: Vec<&str> = self
            .missing
            .iter()
            .copied()
            .filter(|t| !(offer.read_only() && is_write(t)))
            .collect();
        if !missing.is_empty() {
            text.push_str(&format!(
                "\n\nThis server does not offer {} to this request. They are in the mapping and \
                 sync toolsets: to use them, restart the server with {ALL_TOOLSETS}.",
                missing.join(", ")
            ));
        }
        text
    }
}

/// The tools the prompts name that change Port.
fn is_write(tool: &str) -> bool {
    matches!(
        tool,
        "update-integration-s-config" | "resync-integration" | "restore-integration-mapping"
    )
}

/// What the agent is told to do when it may not change Port.
fn propose_yaml(offer: &Offer, changed: &str) -> String {
    let why = if offer.read_only() {
        "this request is read-only (x-read-only-mode)"
    } else {
        "this server does not offer update-integration-s-config (read-only mode or a tool \
         allow-list)"
    };
    format!(
        "Propose the fix, do not apply it: {why}. Give the whole fixed config as YAML \
         (deleteDependentEntities, createMissingRelatedEntities, resources) for a person to \
         apply in Port, and say {changed}."
    )
}

fn troubleshoot(identifier: &str, offer: &Offer) -> String {
    let id = || [("identifier", Value::from(identifier))];
    let mut s = Steps::new();
    let status = !s.lacks(offer, "get-integration-sync-status");
    if status {
        s.step(format!(
            "Status: call {}. Note the state of the last resync, the kinds that failed with \
             their object counts per phase (extracted, transformed, loaded, failed), and the \
             failed run's resyncId.",
            call("get-integration-sync-status", &id())
        ));
    } else {
        s.step(format!(
            "Status: call {} and read integration.resyncState (status, lastResyncStart, \
             lastResyncEnd): whether the last resync failed.",
            call("get-integration", &id())
        ));
    }
    if !s.lacks(offer, "get-integration-s-event-logs") {
        if status {
            s.step(format!(
                "Errors: call {}, with the failed run's resyncId from step 1. Read which \
                 kind and phase failed and why (e.g. an identifier that evaluates to null).",
                call(
                    "get-integration-s-event-logs",
                    &[
                        ("identifier", Value::from(identifier)),
                        ("levels", json!(["ERROR"])),
                        ("event_id", json!("<resyncId of the failed run>")),
                    ]
                )
            ));
        } else {
            s.step(format!(
                "Errors: call {} (newest first: the last run's errors come first). Read which \
                 kind and phase failed and why (e.g. an identifier that evaluates to null).",
                call(
                    "get-integration-s-event-logs",
                    &[
                        ("identifier", Value::from(identifier)),
                        ("levels", json!(["ERROR"])),
                    ]
                )
            ));
        }
    }
    s.step(format!(
        "Current mapping: call {}. integration.config is the mapping to fix (resources[] with \
         kind, selector.query and port.entity.mappings, all jq); keep a copy of it as it is. \
         integration.installationAppType is the integration type: Port's default mapping for \
         it is the resource port://default-mappings/<type>.",
        call("get-integration", &id())
    ));
    examples_step(&mut s, offer, identifier, None);
    preview_step(&mut s, offer, None);
    fix_steps(&mut s, offer, identifier, None);
    let outro = restore_note(&mut s, offer, identifier);
    s.finish(
        format!(
            "Troubleshoot the Port integration {}: find out why its last resync failed, fix it \
             and verify the fix. Work through the steps in order with this server's tools; use \
             each answer in the next step.",
            q(identifier)
        ),
        offer,
        outro,
    )
}

fn fix_mapping(identifier: &str, kind: &str, offer: &Offer) -> String {
    let id = || [("identifier", Value::from(identifier))];
    let mut s = Steps::new();
    s.step(format!(
        "Current mapping: call {}. In integration.config.resources find the resource with kind \
         {} (its selector.query and port.entity.mappings: identifier, title, blueprint, \
         properties, relations, all jq); keep a copy of the whole config as it is. Note \
         integration.installationAppType, the integration type.",
        call("get-integration", &id()),
        q(kind)
    ));
    s.step(format!(
        "Port's default: read the resource port://default-mappings/<installationAppType> (e.g. \
         port://default-mappings/jira): the mapping Port ships for this integration type. If \
         it has a resource of kind {}, use it as a starting point.",
        q(kind)
    ));
    if !s.lacks(offer, "get-integration-s-event-logs") {
        s.step(format!(
            "Errors: call {}. Read why items of this kind failed (e.g. an identifier that \
             evaluates to null).",
            call(
                "get-integration-s-event-logs",
                &[
                    ("identifier", Value::from(identifier)),
                    ("levels", json!(["ERROR"])),
                    ("kinds", json!([kind])),
                ]
            )
        ));
    }
    examples_step(&mut s, offer, identifier, Some(kind));
    preview_step(&mut s, offer, Some(kind));
    fix_steps(&mut s, offer, identifier, Some(kind));
    let outro = restore_note(&mut s, offer, identifier);
    s.finish(
        format!(
            "Fix the mapping of kind {} in the Port integration {}, test it on real raw data, \
             apply it and verify it. Work through the steps in order with this server's tools; \
             use each answer in the next step.",
            q(kind),
            q(identifier)
        ),
        offer,
        outro,
    )
}

fn examples_step(s: &mut Steps, offer: &Offer, identifier: &str, kind: Option<&str>) {
    if !s.lacks(offer, "get-integration-kind-examples") {
        let (arguments, what) = match kind {
            Some(kind) => (
                vec![
                    ("identifier", Value::from(identifier)),
                    ("kind", Value::from(kind)),
                ],
                format!("real raw {} items", q(kind)),
            ),
            None => (
                vec![("identifier", Value::from(identifier))],
                "real raw items per kind (pass \"kind\" for the failing kind only)".into(),
            ),
        };
        s.step(format!(
            "Raw data: call {}: {what}, as Port received them. Compare the fields the failing jq \
             expressions read with the fields the items really have.",
            call("get-integration-kind-examples", &arguments)
        ));
    } else {
        s.step(
            "Raw data: ask the user for two or three raw items of the failing kind, as the \
             source API returns them (this server does not offer get-integration-kind-examples). \
             Compare the fields the failing jq expressions read with the fields the items have."
                .into(),
        );
    }
}

fn preview_step(s: &mut Steps, offer: &Offer, kind: Option<&str>) {
    let kind = kind.map_or_else(|| "<the failing kind>".to_string(), str::to_string);
    if !s.lacks(offer, "preview-integration-mapping") {
        s.step(format!(
            "Test the fix locally: call {}. Repeat until every item \
             gives an entity with a non-null identifier and no expression error. Nothing \
             reaches Port.",
            call(
                "preview-integration-mapping",
                &[
                    ("config", json!("<the fixed config>")),
                    ("kind", Value::from(kind)),
                    ("items", json!("<the raw items>")),
                ]
            )
        ));
    } else {
        s.step(
            "Test the fix: this server does not offer preview-integration-mapping, so check by \
             hand that each changed jq expression gives the value you expect on every raw item \
             (a non-null identifier above all)."
                .into(),
        );
    }
}

fn fix_steps(s: &mut Steps, offer: &Offer, identifier: &str, kind: Option<&str>) {
    let id = || [("identifier", Value::from(identifier))];
    let changed = match kind {
        Some(kind) => format!(
            "that only the resource of kind {} changed, and why",
            q(kind)
        ),
        None => "which resource changed and why".into(),
    };
    let written = offer.writes("update-integration-s-config");
    if written {
        s.step(format!(
            "Apply: call {}. Send the whole config back (every resource, not only the changed \
             one); the server checks every jq expression before anything is sent to Port.",
            call(
                "update-integration-s-config",
                &[
                    ("identifier", Value::from(identifier)),
                    ("body", json!({"config": "<the whole fixed config>"})),
                ]
            )
        ));
    } else {
        s.step(propose_yaml(offer, &changed));
    }
    let kind_text = kind.map_or_else(
        || "the failed kinds".to_string(),
        |k| format!("kind {}", q(k)),
    );
    if written {
        if offer.writes("resync-integration") {
            s.step(format!(
                "Resync: call {} and wait for its answer (the run's final state). Port may \
                 have started a run on the config update already; a new resync aborts it, so \
                 the history can show that one as aborted.",
                call("resync-integration", &id())
            ));
        } else {
            s.lacks(offer, "resync-integration");
            s.step(
                "Resync: Port starts a resync after the config update; this server does not \
                 offer resync-integration to start or follow one, so give it a minute."
                    .into(),
            );
        }
    }
    let after = if written {
        ""
    } else {
        " (once a person has applied the fix and the resync has run)"
    };
    let status = !s.lacks(offer, "get-integration-sync-status");
    let history = !s.lacks(offer, "get-integration-sync-history");
    if status {
        let mut text = format!(
            "Verify{after}: call {} again: {kind_text} should be completed, with loaded above \
             0 and failed 0.",
            call("get-integration-sync-status", &id())
        );
        if history {
            text.push_str(&format!(
                " {} lists the new run (completed) above the failed one.",
                call("get-integration-sync-history", &id())
            ));
        }
        s.step(text);
    } else {
        s.step(format!(
            "Verify{after}: call {} (integration.resyncState.status should be completed) and \
             {} again (no new errors).",
            call("get-integration", &id()),
            call(
                "get-integration-s-event-logs",
                &[
                    ("identifier", Value::from(identifier)),
                    ("levels", json!(["ERROR"])),
                ]
            )
        ));
    }
}

fn restore_note(s: &mut Steps, offer: &Offer, identifier: &str) -> Vec<String> {
    if !offer.writes("update-integration-s-config") {
        return Vec::new();
    }
    if !s.lacks(offer, "restore-integration-mapping") {
        vec![format!(
            "If the fix makes things worse: {} puts back the last config that synced \
             successfully and resyncs with it.",
            call(
                "restore-integration-mapping",
                &[("identifier", Value::from(identifier))]
            )
        )]
    } else {
        vec![
            "If the fix makes things worse, send the copy of the original config back with \
             update-integration-s-config (this server does not offer \
             restore-integration-mapping, which restores the last config that synced)."
                .into(),
        ]
    }
}
