//! One row per tool: its name, argument type, hints, toolsets and REST route.
//!
//! Every surface that offers a tool reads it from here rather than keeping its own list: the
//! MCP router takes each tool's title, annotations and input schema from its row, toolset
//! selection and read-only mode read the toolsets and hints, the lean path forwards the tools
//! marked `lean`, and the REST adapter and its OpenAPI document are generated from the routes.
//! Adding a tool means adding its handler (the `#[tool]` function, which owns its description)
//! and its row; a test fails when the two disagree.

use std::{future::Future, pin::Pin, sync::Arc};

use rmcp::model::{CallToolResult, JsonObject, ToolAnnotations};

use super::{
    PortTools, Refusal,
    args::{
        DeleteArgs, GetArgs, ListArgs, LogsArgs, MetadataArgs, ToolArgs, UpdateArgs,
        UpdateConfigArgs,
    },
    schema::input_schema,
};
use crate::{
    config::Toolset,
    mapping::Finding,
    port::{CallContext, PortRequest},
};

/// What the host is told about a tool's behaviour (MCP tool annotations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// Reads only; offered in read-only mode.
    pub read_only: bool,
    /// May destroy data (the host should ask before calling it).
    pub destructive: bool,
    /// Calling it again with the same arguments changes nothing more.
    pub idempotent: bool,
    /// Reaches outside this server (Port).
    pub open_world: bool,
}

/// A tool that reads Port.
const READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// A tool that changes Port, repeatably.
const WRITE: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// The future of [`PortTools::prepare`] for one argument type.
pub type Prepared<'a> =
    Pin<Box<dyn Future<Output = Result<(PortRequest, Vec<Finding>), Refusal>> + Send + 'a>>;

/// Turns a tool's raw arguments into the one Port request they stand for.
pub type PrepareFn = for<'a> fn(&'a PortTools, &'a JsonObject) -> Prepared<'a>;

fn prepare_as<'a, T: ToolArgs>(tools: &'a PortTools, raw: &'a JsonObject) -> Prepared<'a> {
    Box::pin(tools.prepare::<T>(raw))
}

/// The future of a tool's whole work, run outside MCP.
pub type Ran<'a> = Pin<Box<dyn Future<Output = CallToolResult> + Send + 'a>>;

/// Runs a tool that is more than one Port request (it resolves ids, follows a resync, reshapes
/// Port's answer) with the caller's call context, for the REST adapter. Cancelling means
/// dropping the future.
pub type RunFn = for<'a> fn(&'a PortTools, &'a JsonObject, &'a CallContext) -> Ran<'a>;

/// How the REST adapter serves a tool.
#[derive(Debug, Clone, Copy)]
pub struct RestRoute {
    /// HTTP method, lower-case as OpenAPI writes it.
    pub method: &'static str,
    /// Path after the prefix, with `{identifier}` where the tool takes one.
    pub path: &'static str,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
}

/// One tool.
pub struct ToolSpec {
    /// The tool's name, as hosts see it.
    pub name: &'static str,
    /// Its human-readable title.
    pub title: &'static str,
    /// The toolsets that offer it.
    pub toolsets: &'static [Toolset],
    /// Its annotations.
    pub hints: Hints,
    /// Its input schema (generated from its argument type).
    pub schema: fn() -> Arc<JsonObject>,
    /// When the tool is one Port request: how its arguments become that request. The REST
    /// adapter forwards these.
    pub prepare: Option<PrepareFn>,
    /// When the tool is more than one request: its whole work, for the REST adapter.
    pub run: Option<RunFn>,
    /// Whether an MCP call is nothing but that request, so the lean path may answer it (delete
    /// is one request, but asks for confirmation first).
    pub lean: bool,
    /// Its REST route, if it has one.
    pub rest: Option<RestRoute>,
}

impl ToolSpec {
    /// The MCP annotations of these hints.
    pub fn annotations(&self) -> ToolAnnotations {
        ToolAnnotations::with_title(self.title)
            .read_only(self.hints.read_only)
            .destructive(self.hints.destructive)
            .idempotent(self.hints.idempotent)
            .open_world(self.hints.open_world)
    }

    /// Whether the tool changes Port (not offered in read-only mode).
    pub fn writes(&self) -> bool {
        !self.hints.read_only
    }
}

const INTEGRATIONS: &[Toolset] = &[Toolset::Integrations];

/// Every tool the server can offer.
pub const CATALOG: &[ToolSpec] = &[
    ToolSpec {
        name: "get-all-integrations",
        title: "List integrations",
        toolsets: INTEGRATIONS,
        hints: READ,
        schema: input_schema::<ListArgs>,
        prepare: Some(prepare_as::<ListArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration",
            summary: "List integrations",
        }),
    },
    ToolSpec {
        name: "get-all-integrations-meta-data",
        title: "List integrations (metadata only)",
        toolsets: INTEGRATIONS,
        hints: READ,
        schema: input_schema::<MetadataArgs>,
        prepare: Some(prepare_as::<MetadataArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/metadata",
            summary: "List integrations (metadata only)",
        }),
    },
    ToolSpec {
        name: "get-integration",
        title: "Get an integration",
        toolsets: INTEGRATIONS,
        hints: READ,
        schema: input_schema::<GetArgs>,
        prepare: Some(prepare_as::<GetArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/{identifier}",
            summary: "Get an integration",
        }),
    },
    ToolSpec {
        name: "update-integration",
        title: "Update an integration",
        toolsets: INTEGRATIONS,
        hints: WRITE,
        schema: input_schema::<UpdateArgs>,
        prepare: Some(prepare_as::<UpdateArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "patch",
            path: "/integration/{identifier}",
            summary: "Update an integration (PATCH, passed through as sent)",
        }),
    },
    ToolSpec {
        name: "delete-integration",
        title: "Delete an integration",
        toolsets: INTEGRATIONS,
        hints: Hints {
            destructive: true,
            ..WRITE
        },
        schema: input_schema::<DeleteArgs>,
        prepare: Some(prepare_as::<DeleteArgs>),
        run: None,
        lean: false,
        rest: Some(RestRoute {
            method: "delete",
            path: "/integration/{identifier}",
            summary: "Delete an integration",
        }),
    },
    ToolSpec {
        name: "update-integration-s-config",
        title: "Replace an integration's config (mapping)",
        toolsets: INTEGRATIONS,
        hints: WRITE,
        schema: input_schema::<UpdateConfigArgs>,
        prepare: Some(prepare_as::<UpdateConfigArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "patch",
            path: "/integration/{identifier}/config",
            summary: "Replace an integration's config (mapping)",
        }),
    },
    ToolSpec {
        name: "get-integration-s-event-logs",
        title: "Read an integration's event logs",
        toolsets: INTEGRATIONS,
        hints: READ,
        schema: input_schema::<LogsArgs>,
        prepare: Some(prepare_as::<LogsArgs>),
        run: None,
        lean: true,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/{identifier}/logs",
            summary: "Read an integration's event logs",
        }),
    },
    ToolSpec {
        name: "preview-integration-mapping",
        title: "Preview a mapping on sample items",
        toolsets: &[Toolset::Mapping],
        hints: Hints {
            open_world: false,
            ..READ
        },
        schema: input_schema::<super::PreviewArgs>,
        prepare: None,
        run: None,
        lean: false,
        rest: None,
    },
    ToolSpec {
        name: "resync-integration",
        title: "Resync an integration and wait for the result",
        // In `mapping` since before the `sync` toolset existed; kept there for compatibility.
        toolsets: &[Toolset::Mapping, Toolset::Sync],
        hints: Hints {
            idempotent: false,
            ..WRITE
        },
        schema: input_schema::<super::resync::ResyncArgs>,
        prepare: None,
        run: Some(super::resync::run_plain),
        lean: false,
        rest: Some(RestRoute {
            method: "post",
            path: "/integration/{identifier}/resync",
            summary: "Trigger a resync (POST /resync) and follow it to its end, with per-kind counts",
        }),
    },
    ToolSpec {
        name: "get-integration-sync-status",
        title: "Get an integration's sync status per kind",
        toolsets: &[Toolset::Sync],
        hints: READ,
        schema: input_schema::<super::sync::SyncStatusArgs>,
        prepare: None,
        run: Some(super::sync::run_sync_status),
        lean: false,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/{identifier}/sync-status",
            summary: "Sync status per kind (the latest run, or one resyncId)",
        }),
    },
    ToolSpec {
        name: "get-integration-sync-history",
        title: "List an integration's recent sync runs",
        toolsets: &[Toolset::Sync],
        hints: READ,
        schema: input_schema::<super::sync::SyncHistoryArgs>,
        prepare: None,
        run: Some(super::sync::run_sync_history),
        lean: false,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/{identifier}/sync-history",
            summary: "Recent sync runs, newest first",
        }),
    },
    ToolSpec {
        name: "restore-integration-mapping",
        title: "Restore an integration's last working mapping",
        toolsets: &[Toolset::Sync],
        hints: Hints {
            idempotent: false,
            ..WRITE
        },
        schema: input_schema::<super::resync::ResyncArgs>,
        prepare: None,
        run: Some(super::resync::run_restore),
        lean: false,
        rest: Some(RestRoute {
            method: "post",
            path: "/integration/{identifier}/restore",
            summary: "Restore the last mapping that synced successfully, then follow the resync",
        }),
    },
    ToolSpec {
        name: "get-integration-kind-examples",
        title: "Get raw data examples per kind",
        toolsets: &[Toolset::Sync],
        hints: READ,
        schema: input_schema::<super::sync::KindExamplesArgs>,
        prepare: None,
        run: Some(super::sync::run_kind_examples),
        lean: false,
        rest: Some(RestRoute {
            method: "get",
            path: "/integration/{identifier}/kinds",
            summary: "Raw data examples per kind",
        }),
    },
];

/// The row of the tool named `name`.
pub fn spec(name: &str) -> Option<&'static ToolSpec> {
    CATALOG.iter().find(|s| s.name == name)
}

/// Whether the tool named `name` changes Port. An unknown name counts as one: refusing what is
/// not known is the safe side of read-only mode.
pub fn writes(name: &str) -> bool {
    spec(name).is_none_or(ToolSpec::writes)
}

/// The tools that change Port.
pub fn write_tools() -> impl Iterator<Item = &'static str> {
    CATALOG.iter().filter(|s| s.writes()).map(|s| s.name)
}

/// Whether a tool's REST route takes a request body (its arguments have a `body`).
pub fn takes_body(spec: &ToolSpec) -> bool {
    (spec.schema)()
        .get("properties")
        .and_then(|p| p.get("body"))
        .is_some()
}

/// Metrics whose tool label may name any tool of the catalog (and no other).
pub fn metrics() -> crate::telemetry::metrics::Metrics {
    crate::telemetry::metrics::Metrics::new(CATALOG.iter().map(|spec| spec.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every handler has a row and every row a handler: the two cannot drift apart.
    #[test]
    fn the_catalog_and_the_handlers_name_the_same_tools() {
        let all = [Toolset::Integrations, Toolset::Mapping, Toolset::Sync];
        let router = PortTools::full_router(&all);
        let mut handlers: Vec<String> = router
            .list_all()
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        handlers.sort();
        let mut rows: Vec<String> = CATALOG.iter().map(|s| s.name.to_string()).collect();
        rows.sort();
        rows.dedup();
        assert_eq!(handlers, rows);
        assert_eq!(rows.len(), CATALOG.len(), "a name has two rows");
        for tool in router.list_all() {
            let row = spec(&tool.name).unwrap();
            assert_eq!(tool.annotations, Some(row.annotations()), "{}", row.name);
            assert_eq!(tool.title.as_deref(), Some(row.title));
            assert_eq!(tool.input_schema, (row.schema)());
        }
    }

    #[test]
    fn unknown_tools_count_as_writes() {
        assert!(writes("no-such-tool"));
        assert!(!writes("get-integration"));
        assert!(writes("delete-integration"));
        assert_eq!(
            write_tools().collect::<Vec<_>>(),
            [
                "update-integration",
                "delete-integration",
                "update-integration-s-config",
                "resync-integration",
                "restore-integration-mapping"
            ]
        );
    }
}
