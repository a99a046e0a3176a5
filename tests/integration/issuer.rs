//! A real OAuth 2.1 authorization server for the resource-server tests: `tests/oauth/issuer.mjs`
//! (oidc-provider, pinned) started as a child process, one per test so tests stay parallel-safe.
//!
//! Node is found through `PORT_MCP_TEST_NODE`, else `node` on PATH. Its packages are installed
//! once per test run (`npm ci`) when `tests/oauth/node_modules` is missing. Without Node the
//! OAuth tests fail with a message saying so: skipping would let the whole capability go
//! untested without anyone noticing.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    process::{Child, Command},
};

/// The scope of read tools, as the server and the issuer name it.
pub const READ: &str = "port-integrations:read";
/// The scope of write tools.
pub const WRITE: &str = "port-integrations:write";
/// Both scopes, space-separated, as a token request sends them.
pub const READ_WRITE: &str = "port-integrations:read port-integrations:write";

/// Longest wait for the issuer's ready line (key generation is slow on a loaded machine).
const READY_DEADLINE: Duration = Duration::from_secs(30);

fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oauth")
}

/// The Node binary, and the packages installed; fails the test with why not.
fn node() -> PathBuf {
    static PREPARED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PREPARED
        .get_or_init(prepare)
        .clone()
        .unwrap_or_else(|why| panic!("the OAuth tests need Node.js: {why}"))
}

fn prepare() -> Result<PathBuf, String> {
    let node = match std::env::var_os("PORT_MCP_TEST_NODE") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => on_path("node").ok_or(
            "no `node` on PATH and PORT_MCP_TEST_NODE is not set (Node 20 or 22 runs \
             tests/oauth/issuer.mjs)",
        )?,
    };
    let version = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", node.display()))?;
    if !version.status.success() {
        return Err(format!("{} --version failed", node.display()));
    }
    let dir = harness_dir();
    if !dir.join("node_modules/oidc-provider").is_dir() {
        // npm beside the chosen node first (a pinned Node distribution), else the one on PATH.
        let npm = node
            .parent()
            .map(|d| d.join("npm"))
            .filter(|p| p.is_file())
            .or_else(|| on_path("npm"))
            .ok_or("tests/oauth/node_modules is missing and no `npm` was found to install it")?;
        let mut path = node
            .parent()
            .map(PathBuf::from)
            .unwrap_or_default()
            .into_os_string();
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        let out = std::process::Command::new(&npm)
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", npm.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`npm ci` in tests/oauth failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(node)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// One running issuer. Killed when dropped.
pub struct Issuer {
    _child: Child,
    /// The ready line, as printed.
    pub info: Value,
    /// `iss` of its tokens (no trailing slash).
    pub issuer: String,
    admin: String,
    http: reqwest::Client,
    stderr: Arc<Mutex<String>>,
}

impl Issuer {
    /// An issuer accepting exactly these resources (the first is the default audience).
    pub async fn start(resources: &[&str]) -> Self {
        let mut args = Vec::new();
        for r in resources {
            args.extend(["--resource", r]);
        }
        Self::with_args(&args).await
    }

    /// An issuer with these flags (see tests/oauth/README.md).
    pub async fn with_args(args: &[&str]) -> Self {
        port_integrations_mcp::install_crypto_provider();
        let node = node();
        let mut child = Command::new(node)
            .arg(harness_dir().join("issuer.mjs"))
            .args(args)
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tests/oauth/issuer.mjs");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut s = sink.lock().unwrap();
                // Bounded: the issuer's notices only matter for a failure message.
                if s.len() < 64 * 1024 {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = match tokio::time::timeout(READY_DEADLINE, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            other => panic!(
                "issuer.mjs printed no ready line within {READY_DEADLINE:?} ({other:?}); stderr: {}",
                stderr.lock().unwrap()
            ),
        };
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("issuer.mjs ready line is not JSON ({e}): {line}"));
        Issuer {
            _child: child,
            issuer: info["issuer"].as_str().unwrap().to_string(),
            admin: info["admin"].as_str().unwrap().to_string(),
            info,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            stderr,
        }
    }

    /// What the issuer wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The signing key's id at start.
    pub fn kid(&self) -> String {
        self.info["kid"].as_str().unwrap().to_string()
    }

    /// The client id the issuer's tokens name (`sub` and `client_id`).
    pub fn client_id(&self) -> String {
        self.info["client_id"].as_str().unwrap().to_string()
    }

    /// The token endpoint's raw answer to a client_credentials request (`resource` always sent;
    /// `scope` only when given).
    pub async fn token_response(&self, scope: Option<&str>, resource: &str) -> (u16, Value) {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        form.append_pair("resource", resource);
        if let Some(s) = scope {
            form.append_pair("scope", s);
        }
        let r = self
            .http
            .post(self.info["token_endpoint"].as_str().unwrap())
            .basic_auth(
                self.info["client_id"].as_str().unwrap(),
                self.info["client_secret"].as_str(),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// A real access token for `resource` with `scope`, from the token endpoint.
    pub async fn token(&self, scope: &str, resource: &str) -> String {
        let (status, body) = self.token_response(Some(scope), resource).await;
        assert_eq!(status, 200, "token endpoint: {body}");
        assert_eq!(body["scope"], scope, "the issuer granted other scopes");
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn admin(&self, route: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/{route}", self.admin))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(
            status,
            200,
            "/__admin/{route}: {answer}; issuer stderr: {}",
            self.stderr()
        );
        answer
    }

    /// `/__admin/sign`: a token built as `body` says (claims, key, alg, kid, header).
    pub async fn sign(&self, body: Value) -> String {
        self.admin("sign", body).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A new signing key; `keep_old` false drops the old ones from the JWKS. Returns the new kid.
    pub async fn rotate(&self, keep_old: bool) -> String {
        self.admin("rotate", json!({"keep_old": keep_old})).await["kid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Discovery and JWKS answer 503 (`all`: every non-admin route).
    pub async fn down(&self, all: bool) {
        self.admin("down", json!({"all": all})).await;
    }

    pub async fn up(&self) {
        self.admin("up", json!({})).await;
    }

    /// `/__admin/state`.
    pub async fn state(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/state", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Requests the issuer received on `path` (e.g. `/jwks`).
    pub async fn hits(&self, path: &str) -> u64 {
        self.state().await["hits"][path].as_u64().unwrap_or(0)
    }
}

/// The parts of a JWT, decoded (header, payload); the signature is left out.
pub fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = base64_decode(parts.next().unwrap());
    let payload = base64_decode(parts.next().unwrap());
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

/// base64url without padding, the JWT encoding (no crate for it in dev-dependencies).
fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {s}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// The harness itself: a real token from the token endpoint, the admin routes, the counters.
#[tokio::test]
async fn the_test_issuer_issues_jwts_and_counts_requests() {
    let resource = "http://127.0.0.1:9/mcp";
    let issuer = Issuer::start(&[resource, "http://other.invalid/mcp"]).await;
    let token = issuer.token(READ, resource).await;
    let (header, payload) = decode(&token);
    assert_eq!(header["kid"], issuer.kid());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(payload["iss"], issuer.issuer);
    assert_eq!(payload["aud"], resource);
    assert_eq!(payload["scope"], READ);
    assert_eq!(payload["sub"], issuer.client_id());
    assert_eq!(issuer.hits("/token").await, 1);
    assert_eq!(issuer.hits("/jwks").await, 0);

    let signed = issuer
        .sign(json!({"claims": {"sub": "alice@example.com", "exp": 1_000_000_000}}))
        .await;
    let (_, payload) = decode(&signed);
    assert_eq!(
        (payload["sub"].as_str(), payload["exp"].as_u64()),
        (Some("alice@example.com"), Some(1_000_000_000))
    );
    let new_kid = issuer.rotate(false).await;
    assert_ne!(new_kid, issuer.kid());
    assert_eq!(issuer.state().await["kids"], json!([new_kid]));

    issuer.down(false).await;
    let jwks = reqwest::get(issuer.info["jwks_uri"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(jwks.status(), 503);
    issuer.up().await;
    assert_eq!(issuer.hits("/jwks").await, 1);
}

/// The opaque-token path: introspection answers for the introspector client.
#[tokio::test]
async fn the_test_issuer_introspects_opaque_tokens() {
    let jwt_resource = "http://127.0.0.1:9/mcp";
    let opaque = "http://127.0.0.1:10/mcp";
    let issuer =
        Issuer::with_args(&["--resource", jwt_resource, "--opaque-resource", opaque]).await;
    let token = issuer.token(READ, opaque).await;
    assert_eq!(token.split('.').count(), 1, "not opaque: {token}");
    let introspect = |t: String| {
        let info = issuer.info.clone();
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("token", &t)
                .finish();
            reqwest::Client::new()
                .post(info["introspection_endpoint"].as_str().unwrap())
                .basic_auth(
                    info["introspector_id"].as_str().unwrap(),
                    info["introspector_secret"].as_str(),
                )
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let active = introspect(token).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["aud"], opaque);
    assert_eq!(active["scope"], READ);
    assert_eq!(active["sub"], issuer.client_id());
    assert_eq!(active["iss"], issuer.issuer);
    assert_eq!(
        introspect("not-a-token-it-issued".into()).await,
        json!({"active": false})
    );
}
