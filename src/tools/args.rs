//! The arguments of the seven tools: their documented shape, their checks, and the Port request
//! each one becomes.
//!
//! Each type serves three purposes at once: its `JsonSchema` derive is the tool's input schema
//! (field doc comments become descriptions), its `Deserialize` derive is the first check, and
//! [`ToolArgs::check`] adds what a type cannot say (ranges, required keys, body size). Bodies are
//! validated through the typed model but forwarded as the caller wrote them, so fields Port
//! accepts and we do not model still reach Port, and an explicit `null` stays `null`.

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::port::{Method, PortRequest};

/// Port refuses request bodies above 1 MiB with 413; we refuse them before sending.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// An argument that cannot be sent to Port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument `{argument}`: {message}")]
pub struct ArgError {
    /// Path of the offending argument, e.g. `levels[1]` or `body.config.resources[0].kind`.
    pub argument: String,
    /// What is wrong with it.
    pub message: String,
}

impl ArgError {
    pub(crate) fn new(argument: impl Into<String>, message: impl Into<String>) -> Self {
        ArgError {
            argument: argument.into(),
            message: message.into(),
        }
    }
}

/// A tool's arguments.
pub trait ToolArgs: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Checks beyond what the type states. `raw` is the arguments object as received.
    fn check(&self, _raw: &JsonObject) -> Result<(), ArgError> {
        Ok(())
    }

    /// The Port request these arguments stand for. `raw` is the arguments object as received.
    fn request(&self, raw: &JsonObject) -> PortRequest;

    /// The mapping config these arguments would send, for the jq check.
    fn mapping_config<'a>(&self, _raw: &'a JsonObject) -> Option<&'a Value> {
        None
    }
}

/// Parses and checks a tool's arguments, naming the offending argument on failure.
pub fn parse<T: ToolArgs>(raw: &JsonObject) -> Result<T, ArgError> {
    let args: T = deserialize(raw)?;
    args.check(raw)?;
    Ok(args)
}

/// Parses arguments into their type (no further checks), naming the offending argument on
/// failure: for tools whose work is more than one request.
pub(crate) fn deserialize<T: DeserializeOwned>(raw: &JsonObject) -> Result<T, ArgError> {
    let value = Value::Object(raw.clone());
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." {
            // Missing or unknown top-level fields: serde's message already names the field.
            let field = field_in_message(&message)
                .unwrap_or("arguments")
                .to_string();
            ArgError::new(field, message)
        } else {
            ArgError::new(path, message)
        }
    })
}

fn field_in_message(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

pub(crate) fn check_identifier(identifier: &str) -> Result<(), ArgError> {
    if identifier.trim().is_empty() {
        return Err(ArgError::new(
            "identifier",
            "must not be empty; call get-all-integrations to list the identifiers",
        ));
    }
    // URL libraries resolve `.` and `..` segments (even percent-encoded ones) instead of sending
    // them, which would turn the call into one on another route; no integration is named so.
    if identifier == "." || identifier == ".." {
        return Err(ArgError::new(
            "identifier",
            format!("`{identifier}` is not an integration identifier"),
        ));
    }
    // URL parsing (WHATWG, as the url crate does) silently drops tab, CR and LF, so `gh-\t1`
    // would reach Port as `gh-1`: another integration. No identifier contains a control
    // character, so refuse them all rather than send anything but what the caller named.
    if let Some((at, c)) = identifier.char_indices().find(|(_, c)| c.is_control()) {
        return Err(ArgError::new(
            "identifier",
            format!(
                "contains the control character U+{:04X} at byte {at}; integration identifiers \
                 never do (it would be dropped on the way to Port, naming another integration)",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn check_body_size(body: &Value) -> Result<(), ArgError> {
    let size = serde_json::to_vec(body).map(|v| v.len()).unwrap_or(0);
    if size > MAX_BODY_BYTES {
        return Err(ArgError::new(
            "body",
            format!(
                "is {size} bytes once encoded; Port accepts at most 1 MiB ({MAX_BODY_BYTES} bytes)"
            ),
        ));
    }
    Ok(())
}

fn integration_path(identifier: &str) -> PortRequest {
    PortRequest::get(&["integration", identifier])
}

/// Arguments of `get-all-integrations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListArgs {
    /// Keep only integrations whose actions processing is enabled (`true`) or disabled (`false`).
    /// Omit to list all integrations.
    #[serde(rename = "actionsProcessingEnabled", default)]
    pub actions_processing_enabled: Option<bool>,
}

impl ToolArgs for ListArgs {
    fn request(&self, _raw: &JsonObject) -> PortRequest {
        PortRequest::get(&["integration"])
            .query_opt("actionsProcessingEnabled", self.actions_processing_enabled)
    }
}

/// Arguments of `get-all-integrations-meta-data` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataArgs {}

impl ToolArgs for MetadataArgs {
    fn request(&self, _raw: &JsonObject) -> PortRequest {
        PortRequest::get(&["integration", "metadata"])
    }
}

/// Which field `identifier` refers to.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum ByField {
    // The integration's identifier (installation ID).
    #[serde(rename = "installationId")]
    InstallationId,
    // The integration's log ingest ID.
    #[serde(rename = "logIngestId")]
    LogIngestId,
}

impl ByField {
    fn as_str(self) -> &'static str {
        match self {
            ByField::InstallationId => "installationId",
            ByField::LogIngestId => "logIngestId",
        }
    }
}

/// Arguments of `get-integration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArgs {
    /// The integration's identifier (its installation ID), as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// Which field `identifier` refers to: `installationId` (Port's default) or `logIngestId`
    /// (then pass the integration's log ingest ID as `identifier`).
    #[serde(rename = "byField", default)]
    pub by_field: Option<ByField>,
    /// Return the integration as a polling exporter would see it.
    #[serde(rename = "isPolling", default)]
    pub is_polling: Option<bool>,
    /// The Ocean framework version to report to Port (as Ocean integrations do); usually omitted.
    #[serde(rename = "oceanCoreVersion", default)]
    pub ocean_core_version: Option<String>,
}

impl ToolArgs for GetArgs {
    fn check(&self, _raw: &JsonObject) -> Result<(), ArgError> {
        check_identifier(&self.identifier)
    }

    fn request(&self, _raw: &JsonObject) -> PortRequest {
        integration_path(&self.identifier)
            .query_opt("byField", self.by_field.map(ByField::as_str))
            .query_opt("isPolling", self.is_polling)
            .query_opt("oceanCoreVersion", self.ocean_core_version.as_deref())
    }
}

/// Where Port sends the integration's changelog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ChangelogType {
    // The Kafka topic connected to the Port organization.
    #[serde(rename = "KAFKA")]
    Kafka,
    // A webhook (`url` required).
    #[serde(rename = "WEBHOOK")]
    Webhook,
}

/// The destination of the integration's changelog. `{}` removes it.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChangelogDestination {
    /// `KAFKA` (the organization's Kafka topic) or `WEBHOOK` (needs `url`).
    #[serde(rename = "type", default)]
    pub kind: Option<ChangelogType>,
    /// The webhook URL (with `type: WEBHOOK`).
    #[serde(default)]
    pub url: Option<String>,
    /// With `WEBHOOK`: deliver through Port's execution agent.
    #[serde(default)]
    pub agent: Option<bool>,
}

/// A resource's selector.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Selector {
    /// A jq expression deciding which raw items of this kind are ingested; `"true"` keeps all.
    /// Integration-specific selector keys may sit beside it.
    #[serde(default)]
    pub query: Option<String>,
}

/// How one raw item becomes Port entities.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EntityMapping {
    /// A mapping object `{identifier, title, blueprint, properties, relations}` whose values are jq
    /// expressions over the raw item (a literal needs jq quotes, e.g. `"\"service\""`), or an
    /// array of such objects to create several entities per item. `identifier` and `blueprint`
    /// are required; `identifier` may also be a search query `{combinator, rules}`.
    #[schemars(schema_with = "mappings_schema")]
    pub mappings: Value,
}

/// The Port side of a resource.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PortMapping {
    /// The entity mapping.
    pub entity: EntityMapping,
    /// Optional jq expression selecting an array inside each raw item; each element is mapped
    /// (as `.item`) instead of the item itself.
    #[serde(rename = "itemsToParse", default)]
    pub items_to_parse: Option<String>,
}

/// One kind of raw item and how it maps into Port.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Resource {
    /// The kind of raw item, as the integration names it (e.g. `repository`, `pull-request`).
    pub kind: String,
    /// Which items of this kind to ingest.
    pub selector: Selector,
    /// How each item becomes a Port entity.
    pub port: PortMapping,
}

/// An integration's configuration (its mapping).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct IntegrationConfig {
    /// Deleting an entity also deletes the entities that depend on it.
    #[serde(rename = "deleteDependentEntities", default)]
    pub delete_dependent_entities: Option<bool>,
    /// A relation to an entity that does not exist creates that entity.
    #[serde(rename = "createMissingRelatedEntities", default)]
    pub create_missing_related_entities: Option<bool>,
    /// The mapping of each kind of raw item into Port entities.
    #[serde(default)]
    pub resources: Option<Vec<Resource>>,
}

/// The fields of an integration that update-integration may change (others are passed through).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct IntegrationPatch {
    /// The integration's title, shown on Port's data-sources page.
    #[serde(default)]
    pub title: Option<String>,
    /// The version of the integration.
    #[serde(default)]
    pub version: Option<String>,
    /// The integrated tool or platform, e.g. `kubernetes`, `pagerduty`.
    #[serde(rename = "installationAppType", default)]
    pub installation_app_type: Option<String>,
    /// The integration's mapping configuration (replaces the current one; also triggers a resync).
    #[serde(default)]
    pub config: Option<IntegrationConfig>,
    /// Where Port sends the integration's changelog.
    #[serde(rename = "changelogDestination", default)]
    pub changelog_destination: Option<ChangelogDestination>,
}

/// Arguments of `update-integration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// The fields to change. Omit it, or pass `{}`, to trigger a resync without changing anything.
    #[serde(default)]
    pub body: Option<IntegrationPatch>,
}

impl ToolArgs for UpdateArgs {
    fn check(&self, raw: &JsonObject) -> Result<(), ArgError> {
        check_identifier(&self.identifier)?;
        if let Some(patch) = &self.body {
            if let Some(config) = &patch.config {
                check_config(config, "body.config")?;
            }
            if let Some(dest) = &patch.changelog_destination
                && dest.kind == Some(ChangelogType::Webhook)
                && dest.url.as_deref().is_none_or(|u| u.trim().is_empty())
            {
                return Err(ArgError::new(
                    "body.changelogDestination.url",
                    "is required when type is WEBHOOK",
                ));
            }
        }
        if let Some(body) = raw.get("body").filter(|b| !b.is_null()) {
            check_body_size(body)?;
        }
        Ok(())
    }

    fn request(&self, raw: &JsonObject) -> PortRequest {
        // An absent or null body still sends `{}`: that is Port's documented resync trigger.
        let body = raw
            .get("body")
            .filter(|b| !b.is_null())
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        integration_path(&self.identifier)
            .with_method(Method::Patch)
            .with_body(body)
    }

    fn mapping_config<'a>(&self, raw: &'a JsonObject) -> Option<&'a Value> {
        raw.get("body")?.get("config").filter(|c| c.is_object())
    }
}

/// Arguments of `delete-integration`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
}

impl ToolArgs for DeleteArgs {
    fn check(&self, _raw: &JsonObject) -> Result<(), ArgError> {
        check_identifier(&self.identifier)
    }

    fn request(&self, _raw: &JsonObject) -> PortRequest {
        integration_path(&self.identifier).with_method(Method::Delete)
    }
}

/// The body of `update-integration-s-config`: exactly `{config}`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = require_config)]
pub struct ConfigBody {
    /// The new configuration (replaces the current one). `null` clears it.
    #[schemars(required)]
    #[serde(default)]
    pub config: Option<IntegrationConfig>,
}

/// `config` is required in the body (null clears it, absence is refused), but as an `Option`
/// with a serde default schemars leaves it out of `required`; hosts and `/openapi.json` must see
/// what the server enforces.
fn require_config(schema: &mut schemars::Schema) {
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("required".into(), serde_json::json!(["config"]));
    }
}

/// Arguments of `update-integration-s-config`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfigArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// `{"config": {...}}`: the integration's whole new configuration, and nothing else.
    pub body: ConfigBody,
}

impl ToolArgs for UpdateConfigArgs {
    fn check(&self, raw: &JsonObject) -> Result<(), ArgError> {
        check_identifier(&self.identifier)?;
        let body = raw.get("body");
        if !body
            .and_then(Value::as_object)
            .is_some_and(|b| b.contains_key("config"))
        {
            return Err(ArgError::new(
                "body.config",
                "is required: the body must be {\"config\": {...}}",
            ));
        }
        if let Some(config) = &self.body.config {
            check_config(config, "body.config")?;
        }
        if let Some(body) = body {
            check_body_size(body)?;
        }
        Ok(())
    }

    fn request(&self, raw: &JsonObject) -> PortRequest {
        let body = raw.get("body").cloned().unwrap_or(Value::Null);
        PortRequest::get(&["integration", &self.identifier, "config"])
            .with_method(Method::Patch)
            .with_body(body)
    }

    fn mapping_config<'a>(&self, raw: &'a JsonObject) -> Option<&'a Value> {
        raw.get("body")?.get("config").filter(|c| c.is_object())
    }
}

/// Log severity.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum Level {
    #[allow(missing_docs)]
    #[serde(rename = "DEBUG")]
    Debug,
    #[allow(missing_docs)]
    #[serde(rename = "INFO")]
    Info,
    #[allow(missing_docs)]
    #[serde(rename = "WARNING")]
    Warning,
    #[allow(missing_docs)]
    #[serde(rename = "ERROR")]
    Error,
    #[allow(missing_docs)]
    #[serde(rename = "FATAL")]
    Fatal,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Fatal => "FATAL",
        }
    }
}

/// ETL phase of a log line.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EtlPhase {
    #[allow(missing_docs)]
    Load,
    #[allow(missing_docs)]
    Extract,
    #[allow(missing_docs)]
    Transform,
}

impl EtlPhase {
    fn as_str(self) -> &'static str {
        match self {
            EtlPhase::Load => "load",
            EtlPhase::Extract => "extract",
            EtlPhase::Transform => "transform",
        }
    }
}

/// Paging direction from the cursor.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[allow(missing_docs)]
    Up,
    #[allow(missing_docs)]
    Down,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// Arguments of `get-integration-s-event-logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// The integration's identifier, as listed by get-all-integrations.
    #[schemars(length(min = 1))]
    pub identifier: String,
    /// How many log lines to return, 0 to 300 (Port's default: 100).
    #[serde(default)]
    #[schemars(range(min = 0, max = 300))]
    pub limit: Option<i64>,
    /// Cursor time, ISO 8601 / RFC 3339 (e.g. `2026-11-23T10:00:00.000Z`): fetch logs before or
    /// after it (see `direction`). To page, pass the `timestamp` and `log_id` of the last log seen.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Cursor log: the identifier of the last log seen, used with `timestamp` to page.
    #[serde(default)]
    pub log_id: Option<String>,
    /// `up` fetches logs before the cursor, `down` after it.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// Only the logs of one event (e.g. one resync run).
    #[serde(default)]
    pub event_id: Option<String>,
    /// Only these severities, e.g. `["ERROR", "FATAL"]` to diagnose a failed resync.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub levels: Option<Vec<Level>>,
    /// Only these ETL phases.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub etl_phases: Option<Vec<EtlPhase>>,
    /// Only these kinds of raw item, e.g. `["pull-request"]` for GitHub or `["issue"]` for Jira.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub kinds: Option<Vec<String>>,
}

impl ToolArgs for LogsArgs {
    fn check(&self, _raw: &JsonObject) -> Result<(), ArgError> {
        check_identifier(&self.identifier)?;
        if let Some(limit) = self.limit
            && !(0..=300).contains(&limit)
        {
            return Err(ArgError::new(
                "limit",
                format!("must be between 0 and 300, got {limit}"),
            ));
        }
        if let Some(ts) = &self.timestamp
            && chrono::DateTime::parse_from_rfc3339(ts).is_err()
        {
            return Err(ArgError::new(
                "timestamp",
                format!("`{ts}` is not an ISO 8601 date-time such as 2026-11-23T10:00:00.000Z"),
            ));
        }
        let empty = |name: &str, len: Option<usize>| match len {
            Some(0) => Err(ArgError::new(
                name,
                "must list at least one value, or be omitted",
            )),
            _ => Ok(()),
        };
        empty("levels", self.levels.as_ref().map(Vec::len))?;
        empty("etl_phases", self.etl_phases.as_ref().map(Vec::len))?;
        empty("kinds", self.kinds.as_ref().map(Vec::len))?;
        if let Some(i) = self
            .kinds
            .iter()
            .flatten()
            .position(|k| k.trim().is_empty())
        {
            return Err(ArgError::new(format!("kinds[{i}]"), "must not be empty"));
        }
        Ok(())
    }

    fn request(&self, _raw: &JsonObject) -> PortRequest {
        let levels: Vec<&str> = self.levels.iter().flatten().map(|l| l.as_str()).collect();
        let phases: Vec<&str> = self
            .etl_phases
            .iter()
            .flatten()
            .map(|p| p.as_str())
            .collect();
        PortRequest::get(&["integration", &self.identifier, "logs"])
            .query_opt("limit", self.limit)
            .query_opt("timestamp", self.timestamp.as_deref())
            .query_opt("log_id", self.log_id.as_deref())
            .query_opt("direction", self.direction.map(Direction::as_str))
            .query_opt("event_id", self.event_id.as_deref())
            .query_each("levels", &levels)
            .query_each("etl_phases", &phases)
            .query_each("kinds", self.kinds.as_deref().unwrap_or_default())
    }
}

/// Checks what the config's types cannot: each mapping is an object with `identifier` and
/// `blueprint`, in both the object and the array form Port accepts.
fn check_config(config: &IntegrationConfig, at: &str) -> Result<(), ArgError> {
    let Some(resources) = &config.resources else {
        return Ok(());
    };
    for (i, resource) in resources.iter().enumerate() {
        let path = format!("{at}.resources[{i}].port.entity.mappings");
        let mappings = &resource.port.entity.mappings;
        let list: Vec<(String, &Value)> = match mappings {
            Value::Object(_) => vec![(path.clone(), mappings)],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(j, m)| (format!("{path}[{j}]"), m))
                .collect(),
            _ => {
                return Err(ArgError::new(
                    path,
                    "must be a mapping object or an array of mapping objects",
                ));
            }
        };
        for (p, m) in list {
            let Some(obj) = m.as_object() else {
                return Err(ArgError::new(p, "must be a mapping object"));
            };
            for key in ["identifier", "blueprint"] {
                if !obj.contains_key(key) {
                    return Err(ArgError::new(
                        format!("{p}.{key}"),
                        format!(
                            "is required (a jq expression{})",
                            if key == "blueprint" {
                                ", e.g. \"\\\"service\\\"\""
                            } else {
                                ", or a search query {combinator, rules}"
                            }
                        ),
                    ));
                }
            }
            match &obj["identifier"] {
                Value::String(_) => {}
                Value::Object(q) if q.contains_key("combinator") && q.contains_key("rules") => {}
                _ => {
                    return Err(ArgError::new(
                        format!("{p}.identifier"),
                        "must be a jq expression (string) or a search query {combinator, rules}",
                    ));
                }
            }
            if !obj["blueprint"].is_string() {
                return Err(ArgError::new(
                    format!("{p}.blueprint"),
                    "must be a jq expression (string)",
                ));
            }
        }
    }
    Ok(())
}

/// `mappings` is an object or an array of objects. Without `oneOf`: `properties` constrains only
/// objects and `items` only arrays, so one schema with both and no `type` says exactly that.
fn mappings_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mapping = generator.subschema_for::<MappingDoc>();
    let mut schema = mapping.clone();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("type");
        obj.insert("items".into(), mapping.to_value());
        obj.insert(
            "description".into(),
            Value::String(
                "A mapping object, or an array of mapping objects (one entity per element).".into(),
            ),
        );
    }
    schema
}

/// One entity mapping: jq expressions evaluated against each raw item.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct MappingDoc {
    /// jq expression for the entity identifier, or a search query object `{combinator, rules}`.
    #[schemars(schema_with = "identifier_schema")]
    identifier: Value,
    /// jq expression for the entity title.
    title: Option<String>,
    /// jq expression naming the target blueprint; a literal needs jq quotes: `"\"service\""`.
    blueprint: String,
    /// Property identifier -> jq expression.
    properties: Option<serde_json::Map<String, Value>>,
    /// Relation identifier -> jq expression (or a search query object).
    relations: Option<serde_json::Map<String, Value>>,
}

/// A string, or a search-query object: `properties` only constrain objects, so no `type` and no
/// `oneOf` are needed.
fn identifier_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A jq expression (string), or a search query {combinator, rules} matching an existing entity.",
        "properties": {
            "combinator": { "type": "string", "enum": ["and", "or"] },
            "rules": { "type": "array", "items": { "type": "object" } }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> JsonObject {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn logs_query_repeats_array_keys_in_order() {
        let raw = obj(json!({
            "identifier": "gh",
            "limit": 5,
            "levels": ["ERROR", "WARNING"],
            "kinds": ["pull-request"],
            "direction": "down"
        }));
        let args: LogsArgs = parse(&raw).unwrap();
        let req = args.request(&raw);
        assert_eq!(req.segments, vec!["integration", "gh", "logs"]);
        assert_eq!(
            req.query,
            vec![
                ("limit", "5".to_string()),
                ("direction", "down".to_string()),
                ("levels", "ERROR".to_string()),
                ("levels", "WARNING".to_string()),
                ("kinds", "pull-request".to_string()),
            ]
        );
    }

    #[test]
    fn errors_name_the_argument() {
        let cases = [
            (json!({"identifier": "x", "limit": 301}), "limit"),
            (
                json!({"identifier": "x", "levels": ["ERROR", "LOUD"]}),
                "levels[1]",
            ),
            (json!({"identifier": "x", "levels": []}), "levels"),
            (
                json!({"identifier": "x", "direction": "sideways"}),
                "direction",
            ),
            (json!({"identifier": " "}), "identifier"),
            (json!({}), "identifier"),
            (json!({"identifier": "x", "colour": "red"}), "colour"),
            (
                json!({"identifier": "x", "timestamp": "yesterday"}),
                "timestamp",
            ),
        ];
        for (raw, argument) in cases {
            let err = parse::<LogsArgs>(&obj(raw.clone())).unwrap_err();
            assert_eq!(err.argument, argument, "{raw} -> {err}");
        }
    }

    #[test]
    fn config_body_must_be_exactly_config() {
        let missing = obj(json!({"identifier": "x", "body": {}}));
        assert_eq!(
            parse::<UpdateConfigArgs>(&missing).unwrap_err().argument,
            "body.config"
        );
        let extra = obj(json!({"identifier": "x", "body": {"config": {}, "title": "t"}}));
        assert_eq!(
            parse::<UpdateConfigArgs>(&extra).unwrap_err().argument,
            "body.title"
        );
        let ok = obj(json!({"identifier": "x", "body": {"config": null}}));
        assert!(parse::<UpdateConfigArgs>(&ok).is_ok());
    }

    #[test]
    fn mappings_need_identifier_and_blueprint() {
        let raw = obj(json!({"identifier": "x", "body": {"config": {"resources": [
            {"kind": "repo", "selector": {"query": "true"}, "port": {"entity": {"mappings": [
                {"identifier": ".id", "blueprint": "\"svc\""},
                {"identifier": ".id"}
            ]}}}
        ]}}}));
        let err = parse::<UpdateConfigArgs>(&raw).unwrap_err();
        assert_eq!(
            err.argument,
            "body.config.resources[0].port.entity.mappings[1].blueprint"
        );
    }

    #[test]
    fn update_without_body_sends_empty_object_and_keeps_unknown_fields() {
        let raw = obj(json!({"identifier": "a/b c"}));
        let args: UpdateArgs = parse(&raw).unwrap();
        assert_eq!(args.request(&raw).body, Some(json!({})));
        let raw = obj(json!({"identifier": "x", "body": {"title": null, "processingMode": "x"}}));
        let args: UpdateArgs = parse(&raw).unwrap();
        assert_eq!(
            args.request(&raw).body,
            Some(json!({"title": null, "processingMode": "x"}))
        );
    }

    #[test]
    fn oversized_body_is_refused() {
        let big = "x".repeat(MAX_BODY_BYTES);
        let raw = obj(json!({"identifier": "x", "body": {"title": big}}));
        assert_eq!(parse::<UpdateArgs>(&raw).unwrap_err().argument, "body");
    }
}
