//! port-integrations-mcp: an MCP server for the integrations of a Port organization.
//!
//! Data flows one way: [`config`] (settings, validated once) → [`port`] (the Port client) →
//! [`tools`] (the MCP tools, prompts and resources) → [`transport`] (stdio or streamable HTTP).
//! [`sandbox`] is an in-memory Port used by `--sandbox`, the `sandbox-api` command and the
//! tests; [`mapping`] checks and previews jq mappings; [`oauth`] verifies inbound access tokens
//! (the HTTP transport's OAuth 2.1 resource-server mode); [`telemetry`] holds the metrics, traces
//! and audit trail that every layer reports into.

pub mod config;
pub mod mapping;
pub mod oauth;
pub mod port;
pub mod sandbox;
pub mod telemetry;
pub mod tools;
pub mod transport;

use std::net::SocketAddr;

use config::{Cli, Command, Credentials, Secret};
use port::{PortClient, PortError};

pub use port::install_crypto_provider;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A setting is unusable.
    #[error("invalid configuration")]
    Config(#[from] config::ConfigError),
    /// The Port client could not be built.
    #[error("{0}")]
    Port(#[from] PortError),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The metrics address could not be bound.
    #[error("cannot listen on {0} for metrics (--metrics-listen / PORT_MCP_METRICS_LISTEN): {1}")]
    MetricsBind(SocketAddr, std::io::Error),
    /// Serving failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The MCP session failed.
    #[error("MCP error: {0}")]
    Mcp(String),
    /// The audit log could not be opened.
    #[error(transparent)]
    AuditLog(#[from] telemetry::audit::OpenError),
    /// `check-mapping` refused expressions (already reported).
    #[error("{0} jq expression(s) refused")]
    MappingRefused(usize),
    /// `check-mapping` could not read a file.
    #[error("cannot check {path}: {reason}")]
    MappingFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Runs the command the user asked for.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    if let Command::CheckMapping(args) = &cli.command {
        return mapping::report::check_files(args, &cli.mapping).await;
    }
    if let Command::JqWorker = &cli.command {
        // Normally run by `main` before any runtime starts; this keeps `run` complete.
        return match mapping::worker::worker_main() {
            0 => Ok(()),
            code => Err(RunError::Mcp(format!("jq worker failed ({code})"))),
        };
    }
    if let Command::SandboxApi(args) = &cli.command {
        let bound = sandbox::Sandbox::default().serve(args.listen).await?;
        tracing::info!(
            "sandbox Port API on http://{bound} (client id `{}`, secret `{}`)",
            sandbox::SANDBOX_CLIENT_ID,
            sandbox::SANDBOX_CLIENT_SECRET
        );
        transport::shutdown_signal().await;
        return Ok(());
    }
    let mut settings = cli.port.port_settings()?;
    let metrics = cli.metrics.settings()?;
    let traces = cli.traces.settings()?;
    let http = match &cli.command {
        Command::Http(args) => Some(config::HttpSettings {
            metrics_listen: metrics.listen,
            ..args.settings()?
        }),
        _ => None,
    };
    let stdio = match &cli.command {
        Command::Stdio(args) => args.settings()?,
        _ => config::StdioSettings::default(),
    };
    if cli.port.sandbox {
        // Resyncs in the demo organization end after a few seconds, so resync-integration can
        // be tried end to end; they apply the mapping to the kind examples (in the preview
        // worker, under the mapping limits), so a broken mapping fails and a fixed one loads.
        let url = sandbox::Sandbox::default()
            .with_mapping(cli.mapping.clone())
            .with_auto_resync(std::time::Duration::from_secs(3))
            .spawn()
            .await?;
        settings.base_url = config::normalize_base_url(&url)?;
        settings.credentials = Credentials::ClientCredentials {
            client_id: Secret::new(sandbox::SANDBOX_CLIENT_ID),
            client_secret: Secret::new(sandbox::SANDBOX_CLIENT_SECRET),
        };
        tracing::info!(
            "sandbox mode: in-memory Port organization at {url}; nothing leaves this machine"
        );
    }
    if http.as_ref().is_some_and(|h| h.token_passthrough) {
        if !matches!(settings.credentials, Credentials::None) {
            return Err(config::ConfigError::PassthroughWithCredentials.into());
        }
        settings.credentials = Credentials::Passthrough;
    }
    let credentials = match &settings.credentials {
        Credentials::None => "none (tool calls will explain how to set them)",
        Credentials::Passthrough => "each caller's own token (--token-passthrough)",
        Credentials::Token(_) => "access token (PORT_API_KEY)",
        Credentials::ClientCredentials { .. } => {
            "client credentials (PORT_CLIENT_ID/PORT_CLIENT_SECRET)"
        }
    };
    tracing::info!(
        base_url = %port::redact::url_for_display(&settings.base_url),
        credentials,
        "Port client ready"
    );
    // Each part is built from its own settings, validated here at start.
    let traces = traces.as_ref().map(telemetry::traces::start).transpose()?;
    // On stdio without --metrics-listen nobody could scrape them: not kept.
    let metrics_on = metrics.enabled && (http.is_some() || metrics.listen.is_some());
    let telemetry = telemetry::Telemetry::new(telemetry::Parts {
        metrics: metrics_on.then(|| {
            let metrics = tools::catalog::metrics();
            match &traces {
                Some(traces) => metrics.with_span_counts(traces.span_counts()),
                None => metrics,
            }
        }),
        traces,
        audit: telemetry::audit::Sink::new(cli.audit.settings().log.as_deref())?,
    });
    if let Some(addr) = metrics.listen {
        transport::metrics::listen(addr, &telemetry).await?;
    }
    let client = PortClient::new(&settings)?.with_telemetry(telemetry.clone());
    let tools = tools::PortTools::with_selection(client, &cli.tools)?
        .with_mapping_limits(cli.mapping.clone());
    let served = match (&cli.command, http) {
        (Command::Http(_), Some(http)) => transport::http::serve(tools, &http).await,
        _ => transport::stdio::serve(tools, &stdio).await,
    };
    if let Some(traces) = telemetry.traces() {
        traces.shutdown(telemetry::traces::SHUTDOWN_DEADLINE).await;
    }
    served
}
