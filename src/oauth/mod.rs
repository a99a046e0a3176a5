//! Inbound OAuth: who is calling, proven by an access token an authorization server issued for
//! this server (the MCP authorization spec makes an HTTP server that requires authorization an
//! OAuth 2.1 resource server).
//!
//! [`Verifier::verify`] turns a bearer token into a [`Caller`] or says why not. JWTs are checked
//! against the issuer's published keys ([`keys`]); opaque tokens go to the issuer's introspection
//! endpoint when one is configured ([`introspect`]). The HTTP side (challenges, metadata, which
//! routes are open) is `transport/oauth.rs`; the tools only ever see the [`Caller`].
//!
//! Verified tokens are remembered until they expire (at most [`CACHE_FOR`]), keyed by a 128-bit
//! SipHash-1-3 of the token under a random key drawn at start (a PRF: without the key nobody can
//! craft a token that lands on another's entry, and no token is kept). An RSA signature check
//! costs far more than the rest of a call (180 µs against 0.6 µs, `cargo bench`), and one client
//! sends the same token with every request. SipHash rather than SHA-256: as safe for this, and
//! about 15 times fewer instructions where the CPU has no SHA extensions.

pub mod introspect;
pub mod keys;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde::Deserialize;
use siphasher::sip128::SipHasher13;

use crate::config::OAuthSettings;

/// Longest a verified token is remembered (it is also never remembered past its `exp`).
pub const CACHE_FOR: Duration = Duration::from_secs(300);
/// Most tokens remembered at once; beyond it, expired ones are dropped, then the whole cache.
const CACHE_MAX: usize = 10_000;

/// Who is calling, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject (`sub`): the user, or the client for a client-credentials token.
    /// (`Arc`: a caller is cloned into every request it makes.)
    pub subject: Option<Arc<str>>,
    /// The client the token was issued to (`client_id`, or OIDC's `azp`).
    pub client_id: Option<Arc<str>>,
    /// Whether the token carries the read scope (or the write scope, which implies it).
    pub can_read: bool,
    /// Whether the token carries the write scope.
    pub can_write: bool,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The token is not one this server accepts (RFC 6750 `invalid_token`): a 401.
    #[error("{0}")]
    Invalid(String),
    /// The token could not be checked: the issuer's keys or its introspection endpoint are out
    /// of reach (a 503; retry later).
    #[error("{0}")]
    Unavailable(String),
}

/// Checks bearer tokens for one server. Cheap to share (`Arc`).
pub struct Verifier {
    settings: OAuthSettings,
    issuers: Vec<keys::IssuerKeys>,
    introspection: Option<introspect::Introspector>,
    /// A lock readers share: every request reads it, only a new token writes.
    verified: RwLock<HashMap<u128, (Caller, Instant)>>,
    /// Keys the cache (see the module header).
    digest: SipHasher13,
    /// Slots for signature checks (one per core).
    checks: tokio::sync::Semaphore,
}

/// The claims this server reads; everything else in the token is ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    scope: Option<serde_json::Value>,
    #[serde(default)]
    scp: Option<serde_json::Value>,
    #[serde(default)]
    exp: Option<f64>,
}

/// The parts of a JWT's header read before any key is chosen.
#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The one claim read before the signature is checked: which issuer's keys to check it with.
#[derive(Debug, Deserialize)]
struct RawIssuer {
    #[serde(default)]
    iss: Option<serde_json::Value>,
}

impl Verifier {
    /// A verifier for `settings`; fetches nothing yet.
    pub fn new(settings: OAuthSettings) -> Self {
        let http = Arc::new(IssuerHttp {
            timeout: settings.timeout,
            client: std::sync::OnceLock::new(),
        });
        let issuers = settings
            .issuers
            .iter()
            .map(|i| keys::IssuerKeys::new(i.clone(), http.clone(), &settings))
            .collect();
        let introspection = settings
            .introspection
            .clone()
            .map(|i| introspect::Introspector::new(i, http, &settings));
        Verifier {
            settings,
            issuers,
            introspection,
            verified: RwLock::new(HashMap::new()),
            digest: SipHasher13::new_with_key(&random_key()),
            checks: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        }
    }

    /// The settings it checks against.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// The caller this bearer token proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let max = self.settings.max_token_bytes;
        if token.len() > max {
            return Err(AuthError::Invalid(format!(
                "the token is longer than {max} bytes (--oauth-max-token-bytes)"
            )));
        }
        let digest = self.digest.hash(token.as_bytes()).as_u128();
        if let Some(caller) = self.remembered(&digest) {
            return Ok(caller);
        }
        let (caller, expires) = if looks_like_jwt(token) {
            self.verify_jwt(token).await?
        } else if let Some(introspector) = &self.introspection {
            introspector
                .introspect(token, |claims| self.caller(claims))
                .await?
        } else {
            return Err(AuthError::Invalid(
                "the token is not a JWT, and this server has no introspection endpoint for \
                 opaque tokens (--oauth-introspection-url)"
                    .into(),
            ));
        };
        self.remember(digest, &caller, expires);
        Ok(caller)
    }

    /// The caller of a token verified before and not expired since, if it is one: the whole
    /// check for every request of a client after its first.
    pub fn remembered_token(&self, token: &[u8]) -> Option<Caller> {
        self.remembered(&self.digest.hash(token).as_u128())
    }

    /// Loads every issuer's keys that are not loaded yet (for readiness and start-up).
    pub async fn load_keys(&self) {
        for issuer in &self.issuers {
            if !issuer.loaded() {
                let _ = issuer.refresh(false).await;
            }
        }
    }

    /// Whether every issuer's keys are loaded, and each issuer's state, for `/readyz`.
    pub fn readiness(&self) -> (bool, serde_json::Value) {
        let issuers: Vec<serde_json::Value> = self.issuers.iter().map(|i| i.report()).collect();
        let loaded = self.issuers.iter().all(keys::IssuerKeys::loaded);
        (
            loaded,
            serde_json::json!({"keysLoaded": loaded, "issuers": issuers}),
        )
    }

    fn remembered(&self, digest: &u128) -> Option<Caller> {
        let cache = self.verified.read().ok()?;
        let (caller, until) = cache.get(digest)?;
        (Instant::now() < *until).then(|| caller.clone())
    }

    fn remember(&self, digest: u128, caller: &Caller, expires: Option<Instant>) {
        let now = Instant::now();
        let until = expires.map_or(now + CACHE_FOR, |e| e.min(now + CACHE_FOR));
        if until <= now {
            return;
        }
        if let Ok(mut cache) = self.verified.write() {
            if cache.len() >= CACHE_MAX {
                cache.retain(|_, (_, u)| *u > now);
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(digest, (caller.clone(), until));
        }
    }

    async fn verify_jwt(&self, token: &str) -> Result<(Caller, Option<Instant>), AuthError> {
        let header = raw_header(token)?;
        let alg = accepted_algorithm(&header.alg)?;
        let issuer = self.issuer_of(token)?;
        let key = issuer.key_for(header.kid.as_deref(), alg).await?;
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.leeway = self.settings.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[&self.settings.audience]);
        validation.set_issuer(&[issuer.issuer()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = self
            .check_signature(token, key, validation)
            .await?
            .map_err(|e| AuthError::Invalid(self.describe(e.kind(), issuer.issuer())))?;
        // A token that expired within the leeway is accepted, but not remembered.
        let expires = claims
            .exp
            .and_then(instant_of_unix)
            .unwrap_or_else(Instant::now);
        Ok((self.caller(claims), Some(expires)))
    }

    /// The signature and claim checks, on a blocking thread: an RSA check is CPU work (up to
    /// milliseconds for an 8192-bit key), and forged tokens cost it too. At most
    /// [`Verifier::checks`] run at once; a caller waits for a slot within the timeout.
    async fn check_signature(
        &self,
        token: &str,
        key: jsonwebtoken::DecodingKey,
        validation: Validation,
    ) -> Result<jsonwebtoken::errors::Result<Claims>, AuthError> {
        let busy = || {
            AuthError::Unavailable(
                "too many tokens are being checked at once; retry in a moment".into(),
            )
        };
        let _slot = tokio::time::timeout(self.settings.timeout, self.checks.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let token = token.to_string();
        tokio::task::spawn_blocking(move || {
            jsonwebtoken::decode::<Claims>(&token, &key, &validation).map(|data| data.claims)
        })
        .await
        .map_err(|_| busy())
    }

    /// The configured issuer named by the token's (not yet verified) `iss`: only that issuer's
    /// keys may check it, and the signature check that follows also checks `iss`.
    fn issuer_of(&self, token: &str) -> Result<&keys::IssuerKeys, AuthError> {
        let raw: RawIssuer = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|_| AuthError::Invalid("the token's claims are not a JSON object".into()))?;
        let Some(serde_json::Value::String(iss)) = raw.iss else {
            return Err(AuthError::Invalid("the token has no `iss` claim".into()));
        };
        self.issuers
            .iter()
            .find(|i| i.issuer() == iss)
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the token was issued by {}, which is not an accepted issuer (--oauth-issuer)",
                    shown(&iss)
                ))
            })
    }

    fn describe(&self, kind: &ErrorKind, issuer: &str) -> String {
        match kind {
            ErrorKind::ExpiredSignature => "the token has expired".into(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
            ErrorKind::InvalidAudience => format!(
                "the token's audience (aud) does not include this server ({}); ask for a token \
                 with resource={}",
                self.settings.audience, self.settings.resource
            ),
            ErrorKind::InvalidIssuer => format!("the token's issuer is not {issuer}"),
            ErrorKind::InvalidSignature => {
                "the token's signature does not match the issuer's key".into()
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the token has no `{claim}` claim")
            }
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                "the token's algorithm does not match the issuer's key".into()
            }
            ErrorKind::Json(_) | ErrorKind::Utf8(_) | ErrorKind::Base64(_) => {
                "the token is not a well-formed JWT".into()
            }
            _ => "the token could not be verified".into(),
        }
    }

    /// The caller a verified set of claims describes.
    fn caller(&self, claims: Claims) -> Caller {
        let scopes = scopes(claims.scope.as_ref()).chain(scopes(claims.scp.as_ref()));
        let (mut read, mut write) = (false, false);
        for scope in scopes {
            read |= scope_matches(&self.settings.read_scope, scope);
            write |= scope_matches(&self.settings.write_scope, scope);
        }
        Caller {
            subject: claims.sub.map(|s| bounded(&s).into()),
            client_id: claims.client_id.or(claims.azp).map(|s| bounded(&s).into()),
            can_read: read || write,
            can_write: write,
        }
    }
}

/// Whether a token's scope is the configured one. Microsoft Entra ID has clients ask for
/// `api://<app>/port-integrations.read` but puts only `port-integrations.read` in `scp`, so a
/// configured scope with a `/` also matches its last segment.
fn scope_matches(configured: &str, claimed: &str) -> bool {
    configured == claimed
        || configured.rsplit_once('/').is_some_and(|(prefix, last)| {
            !prefix.is_empty() && !claimed.is_empty() && last == claimed
        })
}

/// 16 random bytes from the operating system; should it fail, two `RandomState`s (which the OS
/// seeds too) stand in.
fn random_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    if getrandom::fill(&mut key).is_err() {
        use std::hash::BuildHasher;
        let a = std::collections::hash_map::RandomState::new().hash_one(0u8);
        let b = std::collections::hash_map::RandomState::new().hash_one(1u8);
        key[..8].copy_from_slice(&a.to_le_bytes());
        key[8..].copy_from_slice(&b.to_le_bytes());
    }
    key
}

/// The scopes in a `scope` (space-separated string) or `scp` (string or array) claim.
fn scopes(value: Option<&serde_json::Value>) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        Some(serde_json::Value::String(s)) => Box::new(s.split_ascii_whitespace()),
        Some(serde_json::Value::Array(items)) => {
            Box::new(items.iter().filter_map(serde_json::Value::as_str))
        }
        _ => Box::new(std::iter::empty()),
    }
}

/// An identity claim as logs carry it: at most 256 characters.
fn bounded(s: &str) -> String {
    s.chars().take(256).collect()
}

/// An outside string shown in an error: at most 128 characters, Debug-quoted.
fn shown(s: &str) -> String {
    format!("{:?}", s.chars().take(128).collect::<String>())
}

/// Three base64url segments: a JWS in compact form.
fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn raw_header(token: &str) -> Result<RawHeader, AuthError> {
    use base64::Engine as _;
    let malformed =
        || AuthError::Invalid("the token's header is not a well-formed JWT header".into());
    let first = token.split('.').next().ok_or_else(malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(first.trim_end_matches('='))
        .map_err(|_| malformed())?;
    serde_json::from_slice(&bytes).map_err(|_| malformed())
}

/// The algorithm of a token's header, if this server would ever accept it: asymmetric
/// signatures only. `none` is no signature at all, and HMAC with the issuer's public key as the
/// secret is the classic key-confusion forgery; neither is ever accepted.
fn accepted_algorithm(alg: &str) -> Result<Algorithm, AuthError> {
    match alg {
        "RS256" => Ok(Algorithm::RS256),
        "RS384" => Ok(Algorithm::RS384),
        "RS512" => Ok(Algorithm::RS512),
        "PS256" => Ok(Algorithm::PS256),
        "PS384" => Ok(Algorithm::PS384),
        "PS512" => Ok(Algorithm::PS512),
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        a if a.eq_ignore_ascii_case("none") => Err(AuthError::Invalid(
            "the token is unsigned (alg none), which is never accepted".into(),
        )),
        a if a.starts_with("HS") => Err(AuthError::Invalid(
            "the token is HMAC-signed (a shared secret), which is never accepted: tokens must be \
             signed with the issuer's private key"
                .into(),
        )),
        other => Err(AuthError::Invalid(format!(
            "the token's algorithm {} is not supported",
            shown(other)
        ))),
    }
}

/// The instant of a Unix time (`exp`), if it is in the future; outside numbers saturate.
fn instant_of_unix(secs: f64) -> Option<Instant> {
    if !secs.is_finite() {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let left = secs - now;
    if left <= 0.0 {
        return None;
    }
    Instant::now().checked_add(Duration::from_secs_f64(left.min(CACHE_FOR.as_secs_f64())))
}

/// The HTTP client for issuers, built on first use (loading root certificates costs start-up
/// time): no redirects (a discovery document or key set that moves is a misconfiguration to
/// fix, not to follow), a deadline on everything.
pub struct IssuerHttp {
    timeout: Duration,
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl IssuerHttp {
    fn get(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                crate::port::install_crypto_provider();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .timeout(self.timeout)
                    .connect_timeout(self.timeout)
                    .user_agent(crate::port::USER_AGENT)
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client for issuers: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Reads an answer of at most `max` bytes, as JSON.
async fn read_json<T: serde::de::DeserializeOwned>(
    mut response: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<T, String> {
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{what} answered HTTP {}", status.as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{what}: {}", without_url(&e)))?
    {
        if body.len().saturating_add(chunk.len()) > max {
            return Err(format!("{what} is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{what} is not the JSON expected: {e}"))
}

/// A reqwest error's message without the URL (it is named by the caller anyway).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        assert!(accepted_algorithm("RS256").is_ok());
        assert!(accepted_algorithm("ES256").is_ok());
        for refused in ["none", "NONE", "HS256", "HS512", "RS1", ""] {
            assert!(accepted_algorithm(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn scopes_come_from_scope_and_scp() {
        let s = serde_json::json!("a  b\tc");
        assert_eq!(scopes(Some(&s)).collect::<Vec<_>>(), ["a", "b", "c"]);
        let a = serde_json::json!(["x", 1, "y"]);
        assert_eq!(scopes(Some(&a)).collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(scopes(Some(&serde_json::json!(5))).count(), 0);
    }

    #[test]
    fn entra_short_scopes_match_their_full_names() {
        assert!(scope_matches(
            "port-integrations:read",
            "port-integrations:read"
        ));
        assert!(scope_matches(
            "api://abc/port-integrations.read",
            "port-integrations.read"
        ));
        assert!(!scope_matches(
            "api://abc/port-integrations.read",
            "port-integrations.write"
        ));
        assert!(!scope_matches("port-integrations:read", "read"));
        assert!(!scope_matches("/read", "read"));
        assert!(!scope_matches("api://abc/", ""));
    }

    #[test]
    fn outside_expiry_times_saturate() {
        for secs in [f64::NAN, f64::INFINITY, -1e300, 0.0] {
            assert!(instant_of_unix(secs).is_none(), "{secs}");
        }
        assert!(instant_of_unix(1e300).is_some());
    }
}
