//! Settings: every flag, its environment fallback, and the one place they are validated.
//!
//! The command line is parsed into [`Cli`] by clap, then [`PortArgs::port_settings`] turns the loose
//! strings into a checked [`PortSettings`] once, at start-up. Nothing downstream re-reads the
//! environment: the Port client is built from these settings only (Port's old Python server built
//! its client before flags were applied and every call failed; see port-mcp-server#75).

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum, builder::BoolishValueParser};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

/// Largest number of seconds any duration setting takes (a day). Durations are added to
/// `Instant`s, which panic on overflow: a setting of u64::MAX seconds would bring down the
/// first call, so it is refused at start instead.
pub const MAX_SECS: u64 = 86_400;
/// Most requests to Port in flight at once (tokio's semaphore panics beyond 2^61 permits; far
/// fewer would already be a storm of 429s).
pub const MAX_IN_FLIGHT: u64 = 4_096;
/// Most attempts per call.
pub const MAX_ATTEMPTS: i64 = 100;
/// Largest byte-size setting (1 GiB): buffers are sized from these.
pub const MAX_BYTES: u64 = 1 << 30;
/// Most client connections or MCP sessions allowed at once (far beyond what one process
/// should hold; the connection cap is lowered further to fit the descriptor limit).
pub const MAX_CONNECTIONS: u64 = 1_000_000;

/// Command line of `port-integrations-mcp`.
#[derive(Debug, Parser)]
#[command(
    name = "port-integrations-mcp",
    version,
    about = "MCP server for Port's Integrations API: list, inspect, update, resync and delete Port integrations.",
    long_about = None,
    after_help = "Credentials (environment only, so they never show in `ps`):\n  \
        PORT_API_KEY         a Port access token, sent as `Authorization: Bearer <token>`\n  \
        PORT_CLIENT_ID       with PORT_CLIENT_SECRET: exchanged for a token, cached and refreshed\n  \
        PORT_CLIENT_SECRET   see PORT_CLIENT_ID\n\
        With none of them (and no --sandbox), the tools are listed and each call explains what to set."
)]
pub struct Cli {
    /// How to serve.
    #[command(subcommand)]
    pub command: Command,

    /// Settings that reach Port.
    #[command(flatten)]
    pub port: PortArgs,

    /// Which tools are offered.
    #[command(flatten)]
    pub tools: ToolSelection,

    /// Bounds on jq work: mapping checks, previews, `check-mapping`.
    #[command(flatten)]
    pub mapping: crate::mapping::MappingLimits,

    /// Prometheus metrics: on or off, and where they are served.
    #[command(flatten)]
    pub metrics: MetricsArgs,

    /// OpenTelemetry traces (the standard `OTEL_*` environment).
    #[command(flatten)]
    pub traces: TraceArgs,

    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `port_integrations_mcp=debug`).
    /// Logs always go to stderr.
    #[arg(
        long,
        env = "PORT_MCP_LOG",
        default_value = "info,rmcp=warn",
        global = true
    )]
    pub log_level: String,

    /// The audit trail of write calls, and the log format.
    #[command(flatten)]
    pub audit: AuditArgs,
}

/// Where the audit trail goes, and how logs are written.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// Append the audit trail (one JSON line per call of a tool that changes Port) to this
    /// file instead of stderr: each line is fsynced before its call answers. Created with mode
    /// 0600 if missing; must be a regular file.
    #[arg(long = "audit-log", env = "PORT_MCP_AUDIT_LOG", global = true)]
    pub audit_log: Option<std::path::PathBuf>,

    /// Log format on stderr: `text`, or `json` (one JSON object per line, audit lines included).
    #[arg(
        long = "log-format",
        env = "PORT_MCP_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Validated audit settings.
#[derive(Debug, Clone, Default)]
pub struct AuditSettings {
    /// The audit log file, if the trail goes to one.
    pub log: Option<std::path::PathBuf>,
}

impl AuditArgs {
    /// The audit settings. clap already refuses an empty path; the file itself is opened (and
    /// refused with a clear error) when the server starts.
    pub fn settings(&self) -> AuditSettings {
        AuditSettings {
            log: self.audit_log.clone(),
        }
    }
}

/// The transports and helper servers this binary can run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over stdin/stdout (logs on stderr only).
    Stdio(StdioArgs),
    /// Serve MCP over streamable HTTP at `/mcp`; `GET /healthz` answers 200 without touching Port.
    Http(Box<HttpArgs>),
    /// Serve the built-in in-memory Port organization as a plain HTTP API (demos, interop, benchmarks).
    SandboxApi(SandboxApiArgs),
    /// Check the jq expressions of mapping configs (YAML or JSON: a whole integration config,
    /// or a bare `resources` list) offline, as Port's integration framework would compile them.
    /// Exit code 1 when anything is refused.
    CheckMapping(CheckMappingArgs),
    /// Internal: runs one mapping preview (job on stdin, result on stdout) for the server,
    /// under the limits the server set on this process.
    #[command(name = "__jq-worker", hide = true)]
    JqWorker,
}

/// Options of the `http` command.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Address to listen on. Keep it on loopback unless a reverse proxy with its own access
    /// control sits in front: the server acts with its Port credentials for anyone who reaches it.
    #[arg(long, env = "PORT_MCP_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: SocketAddr,

    /// Extra `Host` header values to accept (besides localhost, 127.0.0.1 and ::1), for reverse
    /// proxies with a public name. Repeat the flag or separate with commas.
    #[arg(
        long = "allowed-host",
        env = "PORT_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Extra browser `Origin` values to accept (besides http(s)://localhost:*, 127.0.0.1:* and
    /// [::1]:*), e.g. `https://portal.example.com:443`. Any other Origin gets 403.
    #[arg(
        long = "allowed-origin",
        env = "PORT_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Serve without sessions and answer with plain JSON, so replicas need no session affinity.
    #[arg(long, env = "PORT_MCP_STATELESS", value_parser = BoolishValueParser::new())]
    pub stateless: bool,

    /// File holding the bearer token that MCP clients must send (`Authorization: Bearer
    /// <token>`) on `/mcp`. Required to listen on a non-loopback address with server-held
    /// Port credentials. Alternatively set PORT_MCP_AUTH_TOKEN to the token itself.
    #[arg(
        long,
        env = "PORT_MCP_AUTH_TOKEN_FILE",
        conflicts_with = "token_passthrough"
    )]
    pub auth_token_file: Option<std::path::PathBuf>,

    /// The inbound bearer token itself (environment only; prefer --auth-token-file).
    #[arg(
        long = "auth-token",
        env = "PORT_MCP_AUTH_TOKEN",
        hide = true,
        hide_env_values = true,
        conflicts_with = "token_passthrough"
    )]
    pub auth_token: Option<Secret>,

    /// Hold no Port credentials: forward each request's own `Authorization: Bearer <Port
    /// token>` to Port, which validates it (multi-tenant hosting).
    #[arg(long, env = "PORT_MCP_TOKEN_PASSTHROUGH", value_parser = BoolishValueParser::new())]
    pub token_passthrough: bool,

    /// Largest MCP request body accepted, in bytes; larger requests get 413 before parsing.
    #[arg(long, env = "PORT_MCP_MAX_REQUEST_BYTES", default_value_t = 2 * 1024 * 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(..=MAX_BYTES))]
    pub max_request_bytes: usize,

    /// On SIGTERM or Ctrl-C, how long in-flight calls may take to finish, in seconds; calls
    /// still running then are ended (their connections closed), and the process exits.
    #[arg(long, env = "PORT_MCP_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub shutdown_grace_secs: u64,

    /// Longest a client may take to send a request's headers, in seconds; also how long an idle
    /// keep-alive connection is kept. Slow or silent connections are closed after it, so they
    /// cannot hold connection slots (slowloris).
    #[arg(long, env = "PORT_MCP_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub header_timeout_secs: u64,

    /// Longest a client may take to send a request's body, in seconds, counted from its first
    /// read; a stalled or endless upload then gets 408 and its connection is closed.
    #[arg(long, env = "PORT_MCP_BODY_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub body_timeout_secs: u64,

    /// Client connections open at once, MCP and REST listeners together. Beyond it a new
    /// connection gets 503 and is closed, so connections cannot exhaust the process's file
    /// descriptors (the cap is also lowered to fit the descriptor limit).
    #[arg(long, env = "PORT_MCP_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CONNECTIONS))]
    pub max_connections: usize,

    /// MCP sessions open at once (stateful mode). Beyond it an `initialize` gets 503 with
    /// Retry-After; each session costs memory until it ends or expires.
    #[arg(long, env = "PORT_MCP_MAX_SESSIONS", default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_CONNECTIONS))]
    pub max_sessions: usize,

    /// A session with no request for this long is closed, in seconds (its client starts a new
    /// one on the 404 that follows, as MCP requires). Abandoned sessions are freed by it.
    #[arg(long, env = "PORT_MCP_SESSION_IDLE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    pub session_idle_secs: u64,

    /// Also serve the tools as plain REST (`/v1/v1/integration...` and
    /// `/v1/integration...`, plus `/openapi.json`) on this address, e.g. `127.0.0.1:8080`.
    /// Off unless given. Same checks, credentials, inbound token and read-only rules as MCP.
    #[arg(long, env = "PORT_REST_LISTEN")]
    pub rest_listen: Option<SocketAddr>,

    /// Inbound OAuth 2.1 (the MCP authorization spec): the server as a resource server.
    #[command(flatten)]
    pub oauth: OAuthArgs,
}

/// Inbound OAuth: who may call, proven by an access token an authorization server issued for
/// this server. Off unless `--oauth-issuer` is given.
#[derive(Debug, Clone, Args)]
pub struct OAuthArgs {
    /// Authorization server(s) whose access tokens are accepted (their issuer identifier, compared
    /// exactly with the token's `iss`), e.g. `https://tenant.auth0.com/`. Repeatable or
    /// comma-separated. Turns the HTTP server into an OAuth 2.1 resource server.
    #[arg(
        long = "oauth-issuer",
        env = "PORT_MCP_OAUTH_ISSUER",
        value_delimiter = ','
    )]
    pub oauth_issuers: Vec<String>,

    /// This server's canonical MCP URL, e.g. `https://mcp.example.com/mcp`: the `resource` of its
    /// protected-resource metadata and the audience tokens must carry. Required with an issuer.
    #[arg(long = "public-url", env = "PORT_MCP_PUBLIC_URL")]
    pub oauth_public_url: Option<String>,

    /// The audience (`aud`) tokens must contain, when the identity provider cannot use the public
    /// URL (e.g. Microsoft Entra ID, whose v2 tokens carry the API's client ID). Default: the
    /// public URL.
    #[arg(long = "oauth-audience", env = "PORT_MCP_OAUTH_AUDIENCE")]
    pub oauth_audience: Option<String>,

    /// The scope that lists and calls the read-only tools.
    #[arg(long = "oauth-read-scope", env = "PORT_MCP_OAUTH_READ_SCOPE")]
    pub oauth_read_scope: Option<String>,

    /// The scope that adds the tools that change Port (it implies the read scope).
    #[arg(long = "oauth-write-scope", env = "PORT_MCP_OAUTH_WRITE_SCOPE")]
    pub oauth_write_scope: Option<String>,

    /// RFC 7662 introspection endpoint, for opaque (non-JWT) access tokens. Authenticates with
    /// PORT_MCP_OAUTH_CLIENT_ID and PORT_MCP_OAUTH_CLIENT_SECRET (HTTP Basic).
    #[arg(
        long = "oauth-introspection-url",
        env = "PORT_MCP_OAUTH_INTROSPECTION_URL"
    )]
    pub oauth_introspection_url: Option<String>,

    /// Client ID for introspection (environment only).
    #[arg(
        long = "oauth-client-id",
        env = "PORT_MCP_OAUTH_CLIENT_ID",
        hide = true,
        hide_env_values = true
    )]
    pub oauth_client_id: Option<Secret>,

    /// Client secret for introspection (environment only).
    #[arg(
        long = "oauth-client-secret",
        env = "PORT_MCP_OAUTH_CLIENT_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub oauth_client_secret: Option<Secret>,

    /// Clock skew tolerated on a token's `exp` and `nbf`, in seconds.
    #[arg(long = "oauth-leeway-secs", env = "PORT_MCP_OAUTH_LEEWAY_SECS", value_parser = clap::value_parser!(u64).range(..=300))]
    pub oauth_leeway_secs: Option<u64>,

    /// Least time between two fetches of one issuer's keys, in seconds: a token signed with an
    /// unknown key (`kid`) triggers at most one refresh per interval, so a flood of forged tokens
    /// cannot hammer the issuer.
    #[arg(long = "oauth-key-refresh-secs", env = "PORT_MCP_OAUTH_KEY_REFRESH_SECS", value_parser = clap::value_parser!(u64).range(..=3600))]
    pub oauth_key_refresh_secs: Option<u64>,

    /// Longest bearer token accepted, in bytes; a longer one is refused (400) before any work.
    #[arg(long = "oauth-max-token-bytes", env = "PORT_MCP_OAUTH_MAX_TOKEN_BYTES", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(256..=65_536))]
    pub oauth_max_token_bytes: Option<usize>,

    /// Deadline for fetching an issuer's keys (discovery and JWKS together), or for one
    /// introspection, in seconds.
    #[arg(long = "oauth-timeout-secs", env = "PORT_MCP_OAUTH_TIMEOUT_SECS", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub oauth_timeout_secs: Option<u64>,
}

/// Default scope names (`--oauth-read-scope`, `--oauth-write-scope`).
pub const DEFAULT_READ_SCOPE: &str = "port-integrations:read";
/// See [`DEFAULT_READ_SCOPE`].
pub const DEFAULT_WRITE_SCOPE: &str = "port-integrations:write";

/// Validated inbound OAuth settings.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// Accepted issuers, exactly as their tokens' `iss`.
    pub issuers: Vec<String>,
    /// This server's canonical MCP URL, parsed (for the metadata URL's origin and path).
    pub public_url: Url,
    /// The same URL exactly as given (trimmed): the `resource` of the metadata. `Url` would
    /// add a `/` to a URL without a path, and clients ask for tokens with the URL as given.
    pub resource: String,
    /// The audience tokens must contain.
    pub audience: String,
    /// Scope of the read-only tools.
    pub read_scope: String,
    /// Scope of the write tools (implies read).
    pub write_scope: String,
    /// Introspection of opaque tokens, if configured.
    pub introspection: Option<Introspection>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two key fetches from one issuer.
    pub key_refresh: Duration,
    /// Deadline of each fetch from an issuer (discovery and keys together; one introspection).
    pub timeout: Duration,
    /// Longest bearer token accepted, in bytes.
    pub max_token_bytes: usize,
}

/// RFC 7662 introspection endpoint and the client that may call it.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The endpoint.
    pub url: Url,
    /// Client ID.
    pub client_id: Secret,
    /// Client secret.
    pub client_secret: Secret,
}

impl OAuthSettings {
    /// Settings with every default, for tests and embedding: `public_url` must parse.
    pub fn new(issuers: Vec<String>, public_url: &str) -> Result<Self, ConfigError> {
        let parsed = oauth_url("--public-url", public_url)?;
        let resource = public_url.trim().to_string();
        Ok(OAuthSettings {
            issuers,
            audience: resource.clone(),
            resource,
            public_url: parsed,
            read_scope: DEFAULT_READ_SCOPE.into(),
            write_scope: DEFAULT_WRITE_SCOPE.into(),
            introspection: None,
            leeway: Duration::from_secs(30),
            key_refresh: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            max_token_bytes: 16 * 1024,
        })
    }
}

/// Whether `url` is https, or http to a loopback host (a local identity provider in
/// development): the rule for every URL of the OAuth side, configured or discovered.
pub fn https_or_loopback(url: &Url) -> bool {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    url.scheme() == "https" || (url.scheme() == "http" && loopback)
}

/// An https URL, or http to a loopback host, with a host and no fragment or user info.
fn oauth_url(flag: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let refuse = |reason: &str| ConfigError::OAuth {
        flag,
        reason: format!("`{raw}` {reason}"),
    };
    let url = Url::parse(raw.trim()).map_err(|e| refuse(&format!("is not a URL: {e}")))?;
    if !https_or_loopback(&url) {
        return Err(refuse("must be https (http only to a loopback host)"));
    }
    if url.host().is_none()
        || url.fragment().is_some()
        || url.password().is_some()
        || !url.username().is_empty()
    {
        return Err(refuse("must have a host, and no fragment or user info"));
    }
    Ok(url)
}

impl OAuthArgs {
    /// The checked OAuth settings, `None` when no issuer is given; refuses any other OAuth
    /// option without an issuer, and an issuer combined with another inbound mode.
    fn settings(
        &self,
        static_token: bool,
        passthrough: bool,
    ) -> Result<Option<OAuthSettings>, ConfigError> {
        let issuers: Vec<String> = self
            .oauth_issuers
            .iter()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect();
        if issuers.is_empty() {
            let stray = [
                (
                    "--public-url / PORT_MCP_PUBLIC_URL",
                    self.oauth_public_url.is_some(),
                ),
                (
                    "--oauth-audience / PORT_MCP_OAUTH_AUDIENCE",
                    self.oauth_audience.is_some(),
                ),
                (
                    "--oauth-read-scope / PORT_MCP_OAUTH_READ_SCOPE",
                    self.oauth_read_scope.is_some(),
                ),
                (
                    "--oauth-write-scope / PORT_MCP_OAUTH_WRITE_SCOPE",
                    self.oauth_write_scope.is_some(),
                ),
                (
                    "--oauth-introspection-url / PORT_MCP_OAUTH_INTROSPECTION_URL",
                    self.oauth_introspection_url.is_some(),
                ),
                ("PORT_MCP_OAUTH_CLIENT_ID", self.oauth_client_id.is_some()),
                (
                    "PORT_MCP_OAUTH_CLIENT_SECRET",
                    self.oauth_client_secret.is_some(),
                ),
                (
                    "--oauth-leeway-secs / PORT_MCP_OAUTH_LEEWAY_SECS",
                    self.oauth_leeway_secs.is_some(),
                ),
                (
                    "--oauth-key-refresh-secs / PORT_MCP_OAUTH_KEY_REFRESH_SECS",
                    self.oauth_key_refresh_secs.is_some(),
                ),
                (
                    "--oauth-timeout-secs / PORT_MCP_OAUTH_TIMEOUT_SECS",
                    self.oauth_timeout_secs.is_some(),
                ),
                (
                    "--oauth-max-token-bytes / PORT_MCP_OAUTH_MAX_TOKEN_BYTES",
                    self.oauth_max_token_bytes.is_some(),
                ),
            ];
            if let Some((flag, _)) = stray.iter().find(|(_, set)| *set) {
                return Err(ConfigError::OAuth {
                    flag,
                    reason: "is only used with --oauth-issuer / PORT_MCP_OAUTH_ISSUER; set an issuer or remove it".into(),
                });
            }
            return Ok(None);
        }
        if static_token {
            return Err(ConfigError::OAuth {
                flag: "--oauth-issuer",
                reason: "cannot be combined with the static inbound token (--auth-token-file / PORT_MCP_AUTH_TOKEN): choose one way for clients to authenticate".into(),
            });
        }
        if passthrough {
            return Err(ConfigError::OAuth {
                flag: "--oauth-issuer",
                reason: "cannot be combined with --token-passthrough: an OAuth resource server must not pass its clients' tokens on to Port (MCP authorization spec)".into(),
            });
        }
        for issuer in &issuers {
            oauth_url("--oauth-issuer", issuer)?;
            if issuer.len() > 2048 {
                return Err(ConfigError::OAuth {
                    flag: "--oauth-issuer",
                    reason: "is longer than 2048 characters".into(),
                });
            }
        }
        let Some(public_url) = &self.oauth_public_url else {
            return Err(ConfigError::OAuth {
                flag: "--public-url / PORT_MCP_PUBLIC_URL",
                reason: "is required with --oauth-issuer: it is the resource clients ask tokens for, e.g. https://mcp.example.com/mcp".into(),
            });
        };
        let mut settings = OAuthSettings::new(issuers, public_url)?;
        if let Some(audience) = &self.oauth_audience {
            let audience = audience.trim();
            if audience.is_empty() {
                return Err(ConfigError::OAuth {
                    flag: "--oauth-audience / PORT_MCP_OAUTH_AUDIENCE",
                    reason: "is empty".into(),
                });
            }
            settings.audience = audience.to_string();
        }
        for (scope, flag, target) in [
            (
                &self.oauth_read_scope,
                "--oauth-read-scope / PORT_MCP_OAUTH_READ_SCOPE",
                &mut settings.read_scope,
            ),
            (
                &self.oauth_write_scope,
                "--oauth-write-scope / PORT_MCP_OAUTH_WRITE_SCOPE",
                &mut settings.write_scope,
            ),
        ] {
            if let Some(scope) = scope {
                // RFC 6749 scope-token: printable ASCII without space, `"` or `\`.
                let ok = !scope.is_empty()
                    && scope.bytes().all(|b| {
                        b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
                    });
                if !ok {
                    return Err(ConfigError::OAuth {
                        flag,
                        reason: format!(
                            "`{scope}` is not a scope name (printable ASCII, no spaces, quotes or backslashes)"
                        ),
                    });
                }
                *target = scope.clone();
            }
        }
        if settings.read_scope == settings.write_scope {
            return Err(ConfigError::OAuth {
                flag: "--oauth-write-scope / PORT_MCP_OAUTH_WRITE_SCOPE",
                reason: "must differ from the read scope".into(),
            });
        }
        settings.introspection = match (
            &self.oauth_introspection_url,
            &self.oauth_client_id,
            &self.oauth_client_secret,
        ) {
            (None, None, None) => None,
            (Some(url), Some(id), Some(secret))
                if !id.expose().trim().is_empty() && !secret.expose().trim().is_empty() =>
            {
                Some(Introspection {
                    url: oauth_url("--oauth-introspection-url", url)?,
                    client_id: Secret::new(id.expose().trim()),
                    client_secret: Secret::new(secret.expose().trim()),
                })
            }
            (None, _, _) => {
                return Err(ConfigError::OAuth {
                    flag: "PORT_MCP_OAUTH_CLIENT_ID / PORT_MCP_OAUTH_CLIENT_SECRET",
                    reason: "are only used with --oauth-introspection-url".into(),
                });
            }
            (Some(_), _, _) => {
                return Err(ConfigError::OAuth { flag: "--oauth-introspection-url", reason: "needs PORT_MCP_OAUTH_CLIENT_ID and PORT_MCP_OAUTH_CLIENT_SECRET (both set, not empty) to authenticate to the introspection endpoint".into() });
            }
        };
        if let Some(secs) = self.oauth_leeway_secs {
            settings.leeway = Duration::from_secs(secs);
        }
        if let Some(secs) = self.oauth_key_refresh_secs {
            settings.key_refresh = Duration::from_secs(secs);
        }
        if let Some(secs) = self.oauth_timeout_secs {
            settings.timeout = Duration::from_secs(secs);
        }
        if let Some(bytes) = self.oauth_max_token_bytes {
            settings.max_token_bytes = bytes;
        }
        Ok(Some(settings))
    }
}

/// Validated settings of the `http` command.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Extra accepted `Host` values.
    pub allowed_hosts: Vec<String>,
    /// Extra accepted `Origin` values.
    pub allowed_origins: Vec<String>,
    /// No sessions, JSON answers.
    pub stateless: bool,
    /// The bearer token MCP clients must present on `/mcp`, if any.
    pub auth_token: Option<Secret>,
    /// Forward each caller's own Port token instead of holding credentials.
    pub token_passthrough: bool,
    /// Largest MCP request body accepted.
    pub max_request_bytes: usize,
    /// How long in-flight calls may take to finish on shutdown.
    pub shutdown_grace: Duration,
    /// Where to serve the REST surface, if anywhere.
    pub rest_listen: Option<SocketAddr>,
    /// Longest wait for a request's headers, and longest idle keep-alive.
    pub header_timeout: Duration,
    /// Longest wait for a request's whole body.
    pub body_timeout: Duration,
    /// Client connections open at once (both listeners).
    pub max_connections: usize,
    /// MCP sessions open at once.
    pub max_sessions: usize,
    /// How long an idle MCP session is kept.
    pub session_idle: Duration,
    /// Inbound OAuth (the server as an OAuth 2.1 resource server), if configured.
    pub oauth: Option<OAuthSettings>,
    /// Where `/metrics` is served instead of on this app (`--metrics-listen`), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

impl HttpSettings {
    /// Loopback-only settings with every default, for tests and embedding.
    pub fn local(listen: SocketAddr) -> Self {
        HttpSettings {
            listen,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            stateless: false,
            auth_token: None,
            token_passthrough: false,
            max_request_bytes: 2 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            rest_listen: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_sessions: 1000,
            session_idle: Duration::from_secs(120),
            oauth: None,
            metrics_listen: None,
        }
    }
}

impl HttpArgs {
    /// Checks the HTTP options once: reads the inbound token, and refuses to expose server-held
    /// credentials on a non-loopback address without one.
    pub fn settings(&self) -> Result<HttpSettings, ConfigError> {
        let auth_token = match (&self.auth_token_file, &self.auth_token) {
            (Some(path), _) => {
                let shown = path.display().to_string();
                let text =
                    std::fs::read_to_string(path).map_err(|e| ConfigError::AuthTokenFile {
                        path: shown.clone(),
                        reason: e.to_string(),
                    })?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(ConfigError::AuthTokenFile {
                        path: shown,
                        reason: "it is empty".into(),
                    });
                }
                Some(Secret::new(token))
            }
            (None, Some(token)) if token.expose().trim().is_empty() => {
                return Err(ConfigError::EmptySecret {
                    name: "PORT_MCP_AUTH_TOKEN",
                });
            }
            (None, Some(token)) => Some(Secret::new(token.expose().trim())),
            (None, None) => None,
        };
        if self.header_timeout_secs == 0
            || self.body_timeout_secs == 0
            || self.session_idle_secs == 0
            || self.max_connections == 0
            || self.max_sessions == 0
            || self.max_request_bytes == 0
        {
            return Err(ConfigError::ZeroHttpLimit);
        }
        let oauth = self
            .oauth
            .settings(auth_token.is_some(), self.token_passthrough)?;
        for addr in std::iter::once(self.listen).chain(self.rest_listen) {
            if !addr.ip().is_loopback()
                && auth_token.is_none()
                && !self.token_passthrough
                && oauth.is_none()
            {
                return Err(ConfigError::ExposedWithoutToken { addr });
            }
        }
        Ok(HttpSettings {
            listen: self.listen,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
            stateless: self.stateless,
            auth_token,
            token_passthrough: self.token_passthrough,
            max_request_bytes: self.max_request_bytes,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            rest_listen: self.rest_listen,
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            max_connections: self.max_connections,
            max_sessions: self.max_sessions,
            session_idle: Duration::from_secs(self.session_idle_secs),
            oauth,
            // Set from the global `--metrics-listen` by `run`.
            metrics_listen: None,
        })
    }
}

/// Options of the `stdio` command.
#[derive(Debug, Clone, Args)]
pub struct StdioArgs {
    /// Largest message accepted, in bytes (one line); a longer line is answered with an error
    /// and skipped without being held in memory. The same setting as HTTP's body limit.
    #[arg(long, env = "PORT_MCP_MAX_REQUEST_BYTES", default_value_t = 2 * 1024 * 1024, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(..=MAX_BYTES))]
    pub max_request_bytes: usize,

    /// On SIGTERM or Ctrl-C (or the end of stdin), how long calls in flight may take to finish,
    /// in seconds; calls still running then are ended, and the process exits.
    #[arg(long, env = "PORT_MCP_SHUTDOWN_GRACE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub shutdown_grace_secs: u64,
}

impl StdioArgs {
    /// Checks the stdio options once.
    pub fn settings(&self) -> Result<StdioSettings, ConfigError> {
        if self.max_request_bytes == 0 {
            return Err(ConfigError::ZeroHttpLimit);
        }
        Ok(StdioSettings {
            max_request_bytes: self.max_request_bytes,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
        })
    }
}

/// Validated settings of the `stdio` command.
#[derive(Debug, Clone)]
pub struct StdioSettings {
    /// Longest line accepted, in bytes.
    pub max_request_bytes: usize,
    /// How long calls in flight may take to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for StdioSettings {
    /// What the command line gives with no flags.
    fn default() -> Self {
        StdioSettings {
            max_request_bytes: 2 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Prometheus metrics (issue 13): `GET /metrics` on the HTTP app, or on a listener of its own.
#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// Keep Prometheus metrics and serve them at `GET /metrics` (`false` turns them off).
    #[arg(
        long = "metrics",
        value_name = "BOOL",
        env = "PORT_MCP_METRICS",
        default_value = "true",
        global = true,
        value_parser = BoolishValueParser::new(),
        action = clap::ArgAction::Set
    )]
    pub enabled: bool,

    /// Serve `/metrics` on this address instead of the MCP listener (http mode), or at all
    /// (stdio mode): the usual choice behind a public ingress.
    #[arg(long, env = "PORT_MCP_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for MetricsArgs {
    fn default() -> Self {
        MetricsArgs {
            enabled: true,
            metrics_listen: None,
        }
    }
}

/// Validated metrics settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether metrics are kept at all.
    pub enabled: bool,
    /// The listener of their own, if any.
    pub listen: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Checks the metrics options once: a listener for metrics that are off is a mistake.
    pub fn settings(&self) -> Result<MetricsSettings, ConfigError> {
        if !self.enabled && self.metrics_listen.is_some() {
            return Err(ConfigError::MetricsListenWithoutMetrics);
        }
        Ok(MetricsSettings {
            enabled: self.enabled,
            listen: self.metrics_listen,
        })
    }
}

/// How `check-mapping` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// One line per problem: file, resource index, kind, field path, message.
    Text,
    /// One JSON document with every finding.
    Json,
}

/// Options of the `check-mapping` command.
#[derive(Debug, Clone, Args)]
pub struct CheckMappingArgs {
    /// Mapping files to check (YAML or JSON).
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReportFormat,
}

/// Options of the `sandbox-api` command.
#[derive(Debug, Clone, Args)]
pub struct SandboxApiArgs {
    /// Address to listen on.
    #[arg(long, env = "PORT_SANDBOX_LISTEN", default_value = "127.0.0.1:9091")]
    pub listen: SocketAddr,
}

/// Port's two regions and their API origins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lower")]
pub enum Region {
    /// Europe: `https://api.port.io`.
    Eu,
    /// United States: `https://api.us.port.io`.
    Us,
}

impl Region {
    /// The API origin of the region.
    pub fn base_url(self) -> &'static str {
        match self {
            Region::Eu => "https://api.port.io",
            Region::Us => "https://api.us.port.io",
        }
    }
}

/// Groups of tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toolset {
    /// The seven tools of Port's Integrations API (the default).
    Integrations,
    /// Mapping work: preview-integration-mapping (run a mapping on sample items locally) and
    /// resync-integration (trigger a resync and follow it to its end).
    Mapping,
    /// Sync work: resync-integration, get-integration-sync-status,
    /// get-integration-sync-history, restore-integration-mapping and
    /// get-integration-kind-examples.
    Sync,
}

/// Which tools the server offers.
#[derive(Debug, Clone, Args)]
pub struct ToolSelection {
    /// Tool groups to offer, comma-separated: `integrations` (the seven tools; the default),
    /// `mapping` (preview-integration-mapping, resync-integration) and `sync`
    /// (resync-integration, get-integration-sync-status, get-integration-sync-history,
    /// restore-integration-mapping, get-integration-kind-examples).
    #[arg(
        long,
        env = "PORT_TOOLSETS",
        value_enum,
        value_delimiter = ',',
        global = true
    )]
    pub toolsets: Vec<Toolset>,

    /// Longest a resync-integration call may follow a resync, in seconds (caps its
    /// `timeoutSeconds`).
    #[arg(
        long,
        env = "PORT_MAX_RESYNC_WAIT_SECS",
        default_value_t = 300,
        global = true,
        value_parser = clap::value_parser!(u64).range(..=MAX_SECS)
    )]
    pub max_resync_wait_secs: u64,

    /// Most MCP tasks running at once (resync-integration and restore-integration-mapping run
    /// as tasks for clients that declare the tasks capability); beyond it a call is refused
    /// with a busy error. A task is dropped once it outlives the longest resync wait by two
    /// minutes.
    #[arg(
        long,
        env = "PORT_MCP_MAX_TASKS",
        default_value_t = crate::tools::tasks::DEFAULT_MAX_TASKS,
        global = true,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=crate::tools::tasks::MAX_MAX_TASKS as u64)
    )]
    pub max_tasks: usize,

    /// Offer only the read-only tools: update-integration, update-integration-s-config,
    /// delete-integration, resync-integration and restore-integration-mapping are neither
    /// listed nor callable. Over HTTP a request header
    /// `x-read-only-mode: 1` does the same for that request.
    #[arg(long, env = "PORT_READ_ONLY", global = true, value_parser = BoolishValueParser::new())]
    pub read_only: bool,

    /// Offer only these tools (comma-separated names). An unknown name stops the start.
    #[arg(
        long = "tools",
        env = "PORT_TOOLS",
        value_delimiter = ',',
        global = true
    )]
    pub tools: Vec<String>,

    /// Do not check the jq expressions of a mapping before sending an update (an escape
    /// hatch, should the local check ever refuse an expression Port accepts).
    #[arg(
        long,
        env = "PORT_NO_MAPPING_VALIDATION",
        global = true,
        value_parser = BoolishValueParser::new()
    )]
    pub no_mapping_validation: bool,
}

impl Default for ToolSelection {
    /// What the command line gives with no flags.
    fn default() -> Self {
        ToolSelection {
            toolsets: Vec::new(),
            max_resync_wait_secs: 300,
            max_tasks: crate::tools::tasks::DEFAULT_MAX_TASKS,
            read_only: false,
            tools: Vec::new(),
            no_mapping_validation: false,
        }
    }
}

/// Raw settings for reaching Port, as given on the command line or in the environment.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Port region whose API to call (`eu` or `us`, case-insensitive).
    #[arg(
        long,
        env = "PORT_REGION",
        default_value = "eu",
        ignore_case = true,
        global = true
    )]
    pub region: Region,

    /// Full override of the Port API origin (e.g. a proxy); a trailing `/` or `/v1` is tolerated.
    #[arg(long, env = "PORT_BASE_URL", global = true)]
    pub base_url: Option<String>,

    /// Serve against a built-in in-memory Port organization seeded with a few integrations,
    /// so every tool can be tried without a Port account. Nothing leaves the machine.
    #[arg(long, env = "PORT_SANDBOX", global = true, value_parser = BoolishValueParser::new())]
    pub sandbox: bool,

    /// Total time allowed for one request to Port, in seconds.
    #[arg(long, env = "PORT_TIMEOUT_SECS", default_value_t = 30, global = true, value_parser = clap::value_parser!(u64).range(..=MAX_SECS))]
    pub timeout_secs: u64,

    /// Total time one tool call may take, retries and queueing included, in seconds. Keep it
    /// below the 60 s MCP hosts wait: a wait that would overrun it is not slept through.
    #[arg(
        long,
        env = "PORT_CALL_BUDGET_SECS",
        default_value_t = 30,
        global = true,
        value_parser = clap::value_parser!(u64).range(..=MAX_SECS)
    )]
    pub budget_secs: u64,

    /// Requests to Port in flight at once; further calls queue within their budget, so a burst
    /// of agent calls does not become a storm of 429s.
    #[arg(long, env = "PORT_MAX_IN_FLIGHT", default_value_t = 8, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(..=MAX_IN_FLIGHT))]
    pub max_in_flight: usize,

    /// Largest answer accepted from Port, in bytes.
    #[arg(long, env = "PORT_MAX_RESPONSE_BYTES", default_value_t = 32 * 1024 * 1024, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(..=MAX_BYTES))]
    pub max_response_bytes: usize,

    /// Attempts per call, the first included. Reads and deletes are retried on 408/429/502/503/504
    /// and connection failures; updates only on 429 or when the connection was never made.
    #[arg(long, env = "PORT_MAX_ATTEMPTS", default_value_t = 4, global = true, value_parser = clap::value_parser!(u32).range(..=MAX_ATTEMPTS))]
    pub max_attempts: u32,

    /// Answers from Port up to this size (bytes) are returned both as text and as
    /// structuredContent; larger ones as text only (the same JSON), which keeps a large answer
    /// from costing many times its size in memory.
    #[arg(long, env = "PORT_MAX_STRUCTURED_BYTES", default_value_t = 512 * 1024, global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(..=MAX_BYTES))]
    pub max_structured_bytes: usize,

    /// Least time (milliseconds) a call must have left of its budget to send a request to Port
    /// (first or retry). A call that waited behind --max-in-flight until less is left gets the
    /// busy error and sends nothing: a request started with milliseconds to spare would time out
    /// in flight, and Port could still apply an update the caller was told had failed. Never
    /// more than half a call's own budget is required.
    #[arg(
        long,
        env = "PORT_MIN_REQUEST_BUDGET_MS",
        default_value_t = 2000,
        global = true
    )]
    pub min_request_budget_ms: u64,

    /// A Port access token; prefer the environment variable, so it never shows in `ps`. Sent as
    /// `Authorization: Bearer <token>`; kept as is if it already starts with `Bearer `.
    #[arg(
        long = "api-key",
        env = "PORT_API_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,

    /// Port client ID (prefer the environment variable), exchanged with the client secret for an access token.
    #[arg(
        long = "client-id",
        env = "PORT_CLIENT_ID",
        hide = true,
        hide_env_values = true
    )]
    pub client_id: Option<Secret>,

    /// Port client secret (prefer the environment variable, so it never shows in `ps`).
    #[arg(
        long = "client-secret",
        env = "PORT_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub client_secret: Option<Secret>,
}

/// A secret string (API key, client secret, access token) that never prints itself.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The secret itself; call only where it is put on the wire.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// How the server proves itself to Port.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// Nothing configured: tools are listed, calls answer with a tool error naming the variables.
    None,
    /// A pre-issued access token (cannot be refreshed).
    Token(Secret),
    /// No server credentials: each HTTP request's own `Authorization: Bearer <Port token>` is
    /// forwarded (`--token-passthrough`).
    Passthrough,
    /// Client credentials, exchanged for a short-lived token and refreshed as needed.
    ClientCredentials {
        /// `clientId`.
        client_id: Secret,
        /// `clientSecret`.
        client_secret: Secret,
    },
}

/// Validated settings for the Port client.
#[derive(Debug, Clone)]
pub struct PortSettings {
    /// API origin without a trailing `/` or `/v1`, e.g. `https://api.port.io`.
    pub base_url: Url,
    /// Credentials to present.
    pub credentials: Credentials,
    /// Total time for one request to Port.
    pub timeout: Duration,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Total time one tool call may take, retries and queueing included.
    pub budget: Duration,
    /// Requests to Port in flight at once; further calls queue within their budget.
    pub max_in_flight: usize,
    /// Largest Port answer accepted, in bytes.
    pub max_response_bytes: usize,
    /// Attempts per call, the first included (retries apply only where safe).
    pub max_attempts: u32,
    /// Answers larger than this are passed on as text only, without structuredContent.
    pub max_structured_bytes: usize,
    /// Least budget a call must have left to send a request (capped at half its budget).
    pub min_request_budget: Duration,
}

/// A setting that cannot be used, found at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The base URL does not parse or is not http(s).
    #[error("PORT_BASE_URL / --base-url `{value}` is not a usable http(s) URL: {reason}")]
    BaseUrl {
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Only half of a client-credentials pair was given.
    #[error("PORT_CLIENT_ID and PORT_CLIENT_SECRET must be set together (only {present} is set)")]
    HalfCredentials {
        /// The variable that is set.
        present: &'static str,
    },
    /// A credential is set but empty.
    #[error("{name} is set but empty")]
    EmptySecret {
        /// The variable.
        name: &'static str,
    },
    /// A zero timeout.
    #[error(
        "--timeout-secs and --budget-secs (PORT_TIMEOUT_SECS, PORT_CALL_BUDGET_SECS) must be at least 1"
    )]
    ZeroTimeout,
    /// `--metrics-listen` with metrics off.
    #[error(
        "--metrics-listen / PORT_MCP_METRICS_LISTEN is set but metrics are off \
         (--metrics false / PORT_MCP_METRICS=false)"
    )]
    MetricsListenWithoutMetrics,
    /// A zero limit.
    #[error("--max-in-flight, --max-attempts and --max-response-bytes must be at least 1")]
    ZeroLimit,
    /// `--tools` names a tool that does not exist.
    #[error("--tools / PORT_TOOLS names unknown tool `{name}`; the tools are: {known}")]
    UnknownTool {
        /// The unknown name.
        name: String,
        /// The valid names.
        known: String,
    },
    /// A non-loopback listen address without an inbound token.
    #[error(
        "refusing to listen on {addr} without an inbound token: anyone who reaches it would act \
         with this server's Port credentials. Set --oauth-issuer and --public-url (OAuth, for \
         teams), --auth-token-file or PORT_MCP_AUTH_TOKEN, use --token-passthrough, or listen on \
         a loopback address"
    )]
    ExposedWithoutToken {
        /// The listen address.
        addr: SocketAddr,
    },
    /// An inbound OAuth setting that cannot be used.
    #[error("{flag} {reason}")]
    OAuth {
        /// The flag (and variable) at fault.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The inbound token file could not be read or is empty.
    #[error("cannot use the inbound token file {path}: {reason}")]
    AuthTokenFile {
        /// The path given.
        path: String,
        /// Why.
        reason: String,
    },
    /// A zero connection or session limit or timeout.
    #[error(
        "--header-timeout-secs, --body-timeout-secs, --session-idle-secs, --max-connections, \
         --max-sessions and --max-request-bytes must be at least 1"
    )]
    ZeroHttpLimit,
    /// Passthrough with server credentials makes no sense.
    #[error(
        "--token-passthrough holds no Port credentials: unset PORT_API_KEY, PORT_CLIENT_ID and PORT_CLIENT_SECRET, or drop --token-passthrough"
    )]
    PassthroughWithCredentials,
    /// An OpenTelemetry setting that cannot be used.
    #[error("{var}: {reason}")]
    Tracing {
        /// The variable (and flag) at fault.
        var: &'static str,
        /// Why (never the value of a header, which may hold an API key).
        reason: String,
    },
}

impl PortArgs {
    /// Checks the raw settings once and produces what the Port client needs.
    ///
    /// Client credentials win over `PORT_API_KEY` when both are set, because they can be refreshed.
    pub fn port_settings(&self) -> Result<PortSettings, ConfigError> {
        let base_url = match &self.base_url {
            Some(raw) => normalize_base_url(raw)?,
            None => normalize_base_url(self.region.base_url())?,
        };
        if self.timeout_secs == 0 || self.budget_secs == 0 {
            return Err(ConfigError::ZeroTimeout);
        }
        if self.max_in_flight == 0 || self.max_attempts == 0 || self.max_response_bytes == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        let non_empty = |secret: &Option<Secret>, name: &'static str| match secret {
            Some(s) if s.expose().trim().is_empty() => Err(ConfigError::EmptySecret { name }),
            other => Ok(other.clone()),
        };
        let api_key = non_empty(&self.api_key, "PORT_API_KEY")?;
        let client_id = non_empty(&self.client_id, "PORT_CLIENT_ID")?;
        let client_secret = non_empty(&self.client_secret, "PORT_CLIENT_SECRET")?;
        let credentials = match (client_id, client_secret, api_key) {
            (Some(client_id), Some(client_secret), _) => Credentials::ClientCredentials {
                client_id,
                client_secret,
            },
            (Some(_), None, _) => {
                return Err(ConfigError::HalfCredentials {
                    present: "PORT_CLIENT_ID",
                });
            }
            (None, Some(_), _) => {
                return Err(ConfigError::HalfCredentials {
                    present: "PORT_CLIENT_SECRET",
                });
            }
            (None, None, Some(token)) => Credentials::Token(token),
            (None, None, None) => Credentials::None,
        };
        Ok(PortSettings {
            base_url,
            credentials,
            timeout: Duration::from_secs(self.timeout_secs),
            connect_timeout: Duration::from_secs(self.timeout_secs.min(5)),
            budget: Duration::from_secs(self.budget_secs),
            max_in_flight: self.max_in_flight,
            max_response_bytes: self.max_response_bytes,
            max_attempts: self.max_attempts,
            max_structured_bytes: self.max_structured_bytes,
            min_request_budget: Duration::from_millis(self.min_request_budget_ms),
        })
    }
}

/// Parses an API origin, tolerating a trailing `/` or `/v1` (Port's own tools disagree on it).
pub fn normalize_base_url(raw: &str) -> Result<Url, ConfigError> {
    let refuse = |reason: &str| ConfigError::BaseUrl {
        // A proxy URL may carry a password; the error is printed.
        value: crate::port::redact::raw_url_for_display(raw),
        reason: reason.to_string(),
    };
    let mut trimmed = raw.trim().trim_end_matches('/');
    if let Some(stripped) = trimmed.strip_suffix("/v1") {
        trimmed = stripped.trim_end_matches('/');
    }
    let url = Url::parse(trimmed).map_err(|e| refuse(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(refuse("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(refuse("it must not carry a query or fragment"));
    }
    Ok(url)
}

// OpenTelemetry traces (issue 13): the standard `OTEL_*` environment, read here once.

/// Most spans that may wait for export (`OTEL_BSP_MAX_QUEUE_SIZE`): the SDK allocates its
/// queue up front, a slot per span, so a huge value would cost memory before any span exists.
pub const MAX_TRACE_QUEUE: usize = 65_536;

/// The service name spans carry unless `OTEL_SERVICE_NAME` (or `service.name` in
/// `OTEL_RESOURCE_ATTRIBUTES`) says otherwise.
pub const DEFAULT_SERVICE_NAME: &str = "port-integrations-mcp";

/// OpenTelemetry trace export, configured as every OpenTelemetry SDK is: by the standard
/// environment variables (each also a flag). Nothing is exported unless an endpoint is set.
#[derive(Debug, Clone, Default, Args)]
pub struct TraceArgs {
    /// OTLP/HTTP endpoint; spans go to `<endpoint>/v1/traces` (e.g. `http://collector:4318`).
    #[arg(
        long = "otel-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        global = true
    )]
    pub endpoint: Option<String>,
    /// The traces endpoint, used as given (wins over OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(
        long = "otel-traces-endpoint",
        env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        global = true
    )]
    pub traces_endpoint: Option<String>,
    /// OTLP protocol: only `http/protobuf` (this build has no gRPC exporter).
    #[arg(
        long = "otel-protocol",
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        global = true
    )]
    pub protocol: Option<String>,
    /// The traces protocol (wins over OTEL_EXPORTER_OTLP_PROTOCOL).
    #[arg(
        long = "otel-traces-protocol",
        env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        global = true
    )]
    pub traces_protocol: Option<String>,
    /// Export compression: only `none` (this build sends OTLP uncompressed).
    #[arg(
        long = "otel-compression",
        env = "OTEL_EXPORTER_OTLP_COMPRESSION",
        global = true
    )]
    pub compression: Option<String>,
    /// The traces compression (wins over OTEL_EXPORTER_OTLP_COMPRESSION).
    #[arg(
        long = "otel-traces-compression",
        env = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        global = true
    )]
    pub traces_compression: Option<String>,
    /// Headers sent with every export, `key=value,key2=value2` (values percent-encoded); may
    /// hold an API key, so never shown (environment only, like every secret).
    #[arg(
        long = "otel-headers",
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        global = true,
        hide = true,
        hide_env_values = true
    )]
    pub headers: Option<Secret>,
    /// Headers for trace exports (added to, and winning over, OTEL_EXPORTER_OTLP_HEADERS;
    /// environment only).
    #[arg(
        long = "otel-traces-headers",
        env = "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        global = true,
        hide = true,
        hide_env_values = true
    )]
    pub traces_headers: Option<Secret>,
    /// Time limit of one export, retries included, in milliseconds (default 10000).
    #[arg(
        long = "otel-timeout",
        env = "OTEL_EXPORTER_OTLP_TIMEOUT",
        global = true
    )]
    pub timeout: Option<String>,
    /// Time limit of one trace export (wins over OTEL_EXPORTER_OTLP_TIMEOUT).
    #[arg(
        long = "otel-traces-timeout",
        env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        global = true
    )]
    pub traces_timeout: Option<String>,
    /// `service.name` of the spans (default `port-integrations-mcp`).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME", global = true)]
    pub service_name: Option<String>,
    /// More resource attributes, `key=value,key2=value2` (values percent-encoded).
    #[arg(
        long = "otel-resource-attributes",
        env = "OTEL_RESOURCE_ATTRIBUTES",
        global = true
    )]
    pub resource_attributes: Option<String>,
    /// Sampler: always_on, always_off, traceidratio, parentbased_always_on (default),
    /// parentbased_always_off, parentbased_traceidratio.
    #[arg(
        long = "otel-traces-sampler",
        env = "OTEL_TRACES_SAMPLER",
        global = true
    )]
    pub sampler: Option<String>,
    /// The ratio of the `traceidratio` samplers, 0 to 1 (default 1).
    #[arg(
        long = "otel-traces-sampler-arg",
        env = "OTEL_TRACES_SAMPLER_ARG",
        global = true
    )]
    pub sampler_arg: Option<String>,
    /// `true` turns tracing off whatever else is set.
    #[arg(long = "otel-sdk-disabled", env = "OTEL_SDK_DISABLED", global = true)]
    pub sdk_disabled: Option<String>,
    /// Most finished spans waiting for export; beyond it new spans are dropped and counted
    /// (default 2048, at most 65536).
    #[arg(
        long = "otel-bsp-max-queue-size",
        env = "OTEL_BSP_MAX_QUEUE_SIZE",
        global = true
    )]
    pub bsp_max_queue_size: Option<String>,
    /// Most spans per export (default 512, at most the queue size).
    #[arg(
        long = "otel-bsp-max-export-batch-size",
        env = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
        global = true
    )]
    pub bsp_max_export_batch_size: Option<String>,
    /// Milliseconds between exports (default 5000).
    #[arg(
        long = "otel-bsp-schedule-delay",
        env = "OTEL_BSP_SCHEDULE_DELAY",
        global = true
    )]
    pub bsp_schedule_delay: Option<String>,
}

/// Validated trace export settings.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// Where spans are POSTed (OTLP/HTTP, protobuf); never holds credentials.
    pub endpoint: Url,
    /// Headers sent with each export (API keys: secrets).
    pub headers: Vec<(String, Secret)>,
    /// Time limit of one export request.
    pub timeout: Duration,
    /// `service.name`.
    pub service_name: String,
    /// Further resource attributes.
    pub resource: Vec<(String, String)>,
    /// Which traces are recorded.
    pub sampler: TraceSampler,
    /// Most finished spans waiting for export.
    pub max_queue_size: usize,
    /// Most spans per export.
    pub max_export_batch_size: usize,
    /// Time between exports.
    pub schedule_delay: Duration,
}

/// `OTEL_TRACES_SAMPLER` (+ `_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceSampler {
    /// Follow the caller's sampling decision when there is a parent (`parentbased_*`).
    pub parent_based: bool,
    /// The decision for a trace this server starts.
    pub root: RootSampler,
}

/// How a new trace is sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RootSampler {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This fraction of trace ids (0 to 1).
    Ratio(f64),
}

impl TraceArgs {
    /// The trace export settings, or `None` when nothing is to be exported (no endpoint, or
    /// `OTEL_SDK_DISABLED=true`). Every value is checked here, once.
    pub fn settings(&self) -> Result<Option<TraceSettings>, ConfigError> {
        // The OTel specification reads an empty variable as an unset one.
        fn set(v: &Option<String>) -> Option<&str> {
            v.as_deref().map(str::trim).filter(|v| !v.is_empty())
        }
        let refuse = |var: &'static str, reason: String| ConfigError::Tracing { var, reason };
        match set(&self.sdk_disabled)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("true") => return Ok(None),
            None | Some("false") => {}
            Some(_) => return Err(refuse("OTEL_SDK_DISABLED", "must be true or false".into())),
        }
        let endpoint = match (set(&self.traces_endpoint), set(&self.endpoint)) {
            (Some(url), _) => trace_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, false)?,
            (None, Some(url)) => trace_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", url, true)?,
            (None, None) => return Ok(None),
        };
        // A value this build cannot honour stops the start: the traces variable wins over
        // the general one, and the refusal names whichever was read.
        let only = |traces: (&'static str, &Option<String>),
                    general: (&'static str, &Option<String>),
                    allowed: &str,
                    why: &str| {
            let (var, value) = match set(traces.1) {
                Some(v) => (traces.0, Some(v)),
                None => (general.0, set(general.1)),
            };
            match value {
                Some(v) if v != allowed => Err(refuse(
                    var,
                    format!(
                        "`{}` is not supported: {why}",
                        v.chars().take(40).collect::<String>()
                    ),
                )),
                _ => Ok(()),
            }
        };
        only(
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", &self.traces_protocol),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", &self.protocol),
            "http/protobuf",
            "this server exports OTLP over HTTP with protobuf only (`http/protobuf`; no gRPC). \
             Point the endpoint at the collector's OTLP/HTTP port (usually 4318)",
        )?;
        only(
            (
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                &self.traces_compression,
            ),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", &self.compression),
            "none",
            "this server sends OTLP uncompressed (`none`); unset the variable",
        )?;
        let mut headers: Vec<(String, Secret)> = Vec::new();
        for (var, raw) in [
            ("OTEL_EXPORTER_OTLP_HEADERS", &self.headers),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", &self.traces_headers),
        ] {
            let Some(raw) = raw else { continue };
            for (key, value) in key_values(var, raw.expose())? {
                let key = key.to_ascii_lowercase();
                if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
                    return Err(refuse(var, format!("`{key}` is not a valid header name")));
                }
                if reqwest::header::HeaderValue::from_str(&value).is_err() {
                    // The value may be an API key: only its name is shown.
                    return Err(refuse(
                        var,
                        format!("the value of header `{key}` is not a valid header value"),
                    ));
                }
                headers.retain(|(k, _)| *k != key);
                headers.push((key, Secret::new(value)));
            }
        }
        let timeout = match set(&self.traces_timeout) {
            Some(t) => millis("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", t)?,
            None => match set(&self.timeout) {
                Some(t) => millis("OTEL_EXPORTER_OTLP_TIMEOUT", t)?,
                None => Duration::from_secs(10),
            },
        };
        let mut resource = match set(&self.resource_attributes) {
            Some(raw) => key_values("OTEL_RESOURCE_ATTRIBUTES", raw)?,
            None => Vec::new(),
        };
        let from_resource = resource
            .iter()
            .position(|(k, _)| k == "service.name")
            .map(|i| resource.remove(i).1);
        let service_name = set(&self.service_name)
            .map(str::to_string)
            .or(from_resource)
            .unwrap_or_else(|| DEFAULT_SERVICE_NAME.to_string());
        let ratio = || -> Result<f64, ConfigError> {
            let Some(arg) = set(&self.sampler_arg) else {
                return Ok(1.0);
            };
            match arg.parse::<f64>() {
                Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                _ => Err(refuse(
                    "OTEL_TRACES_SAMPLER_ARG",
                    "must be a number from 0 to 1 (the fraction of traces recorded)".into(),
                )),
            }
        };
        let sampler = match set(&self.sampler).map(str::to_ascii_lowercase).as_deref() {
            None | Some("parentbased_always_on") => (true, RootSampler::AlwaysOn),
            Some("always_on") => (false, RootSampler::AlwaysOn),
            Some("always_off") => (false, RootSampler::AlwaysOff),
            Some("traceidratio") => (false, RootSampler::Ratio(ratio()?)),
            Some("parentbased_always_off") => (true, RootSampler::AlwaysOff),
            Some("parentbased_traceidratio") => (true, RootSampler::Ratio(ratio()?)),
            Some(other) => {
                return Err(refuse(
                    "OTEL_TRACES_SAMPLER",
                    format!(
                        "`{}` is not supported; use always_on, always_off, traceidratio, \
                         parentbased_always_on, parentbased_always_off or \
                         parentbased_traceidratio",
                        other.chars().take(40).collect::<String>()
                    ),
                ));
            }
        };
        let count = |var: &'static str, raw: Option<&str>, default: usize, max: usize| {
            let Some(raw) = raw else { return Ok(default) };
            match raw.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(refuse(
                    var,
                    format!("must be a whole number from 1 to {max}"),
                )),
            }
        };
        let max_queue_size = count(
            "OTEL_BSP_MAX_QUEUE_SIZE",
            set(&self.bsp_max_queue_size),
            2048,
            MAX_TRACE_QUEUE,
        )?;
        let max_export_batch_size = count(
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
            set(&self.bsp_max_export_batch_size),
            512.min(max_queue_size),
            max_queue_size,
        )?;
        let schedule_delay = match set(&self.bsp_schedule_delay) {
            Some(t) => millis("OTEL_BSP_SCHEDULE_DELAY", t)?,
            None => Duration::from_secs(5),
        };
        Ok(Some(TraceSettings {
            endpoint,
            headers,
            timeout,
            service_name,
            resource,
            sampler: TraceSampler {
                parent_based: sampler.0,
                root: sampler.1,
            },
            max_queue_size,
            max_export_batch_size,
            schedule_delay,
        }))
    }
}

/// The URL spans are POSTed to: `raw` as given, or with `v1/traces` appended (`base`).
fn trace_endpoint(var: &'static str, raw: &str, base: bool) -> Result<Url, ConfigError> {
    let refuse = |reason: &str| ConfigError::Tracing {
        var,
        reason: reason.to_string(),
    };
    let mut url = Url::parse(raw).map_err(|e| refuse(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refuse("must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // The URL is logged at start; an API key belongs in OTEL_EXPORTER_OTLP_HEADERS.
        return Err(refuse(
            "must not hold credentials; put them in OTEL_EXPORTER_OTLP_HEADERS",
        ));
    }
    if base {
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{path}/v1/traces"));
    }
    Ok(url)
}

/// A duration in milliseconds, 1 ms to a day.
fn millis(var: &'static str, raw: &str) -> Result<Duration, ConfigError> {
    match raw.parse::<u64>() {
        Ok(ms) if (1..=MAX_SECS * 1000).contains(&ms) => Ok(Duration::from_millis(ms)),
        _ => Err(ConfigError::Tracing {
            var,
            reason: format!(
                "must be a whole number of milliseconds from 1 to {}",
                MAX_SECS * 1000
            ),
        }),
    }
}

/// `key=value,key2=value2`, the W3C Baggage form the OTel variables use (percent-encoded
/// values). Errors never quote a value (header values may be API keys).
fn key_values(var: &'static str, raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let refuse = |reason: String| ConfigError::Tracing { var, reason };
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(text.trim())
            .decode_utf8()
            .map(|t| t.into_owned())
    };
    let mut out = Vec::new();
    for (n, member) in raw.split(',').enumerate() {
        if member.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return Err(refuse(format!("entry {} has no `=`", n + 1)));
        };
        let key = decode(key)
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| refuse(format!("entry {} has no usable key", n + 1)))?;
        // Only the key is named: with `secret`, the value may be an API key.
        let value = decode(value).map_err(|_| {
            refuse(format!(
                "the value of `{key}` is not UTF-8 once percent-decoded"
            ))
        })?;
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> PortArgs {
        PortArgs {
            region: Region::Eu,
            base_url: None,
            sandbox: false,
            timeout_secs: 30,
            budget_secs: 30,
            max_in_flight: 8,
            max_response_bytes: 1 << 20,
            max_attempts: 4,
            max_structured_bytes: 512 * 1024,
            min_request_budget_ms: 2000,
            api_key: None,
            client_id: None,
            client_secret: None,
        }
    }

    #[test]
    fn regions_map_to_their_origins() {
        let mut a = args();
        assert_eq!(
            a.port_settings().unwrap().base_url.as_str(),
            "https://api.port.io/"
        );
        a.region = Region::Us;
        assert_eq!(
            a.port_settings().unwrap().base_url.as_str(),
            "https://api.us.port.io/"
        );
    }

    #[test]
    fn base_url_tolerates_slash_and_v1() {
        for raw in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080/v1/",
        ] {
            assert_eq!(
                normalize_base_url(raw).unwrap().as_str(),
                "http://127.0.0.1:8080/",
                "{raw}"
            );
        }
        assert_eq!(
            normalize_base_url("https://proxy.example.com/port/v1")
                .unwrap()
                .as_str(),
            "https://proxy.example.com/port"
        );
        assert!(matches!(
            normalize_base_url("ftp://x"),
            Err(ConfigError::BaseUrl { .. })
        ));
        assert!(normalize_base_url("not a url").is_err());
    }

    #[test]
    fn credentials_precedence_and_pairs() {
        let mut a = args();
        assert!(matches!(
            a.port_settings().unwrap().credentials,
            Credentials::None
        ));
        a.api_key = Some(Secret::new("tok"));
        assert!(matches!(
            a.port_settings().unwrap().credentials,
            Credentials::Token(_)
        ));
        a.client_id = Some(Secret::new("id"));
        assert_eq!(
            a.port_settings().unwrap_err(),
            ConfigError::HalfCredentials {
                present: "PORT_CLIENT_ID"
            }
        );
        a.client_secret = Some(Secret::new("s"));
        assert!(matches!(
            a.port_settings().unwrap().credentials,
            Credentials::ClientCredentials { .. }
        ));
        a.client_secret = Some(Secret::new(" "));
        assert_eq!(
            a.port_settings().unwrap_err(),
            ConfigError::EmptySecret {
                name: "PORT_CLIENT_SECRET"
            }
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("super-secret-value");
        assert!(!format!("{s:?}").contains("super-secret"));
        let mut a = args();
        a.client_id = Some(Secret::new("id-123"));
        a.client_secret = Some(Secret::new("super-secret-value"));
        let shown = format!("{:?} {:?}", a, a.port_settings().unwrap());
        assert!(
            !shown.contains("super-secret") && !shown.contains("id-123"),
            "{shown}"
        );
    }
}
