//! One issuer's signing keys: found through discovery, cached, and refreshed when a token names
//! a key we do not have (the issuer rotated), at most once per `--oauth-key-refresh-secs`.
//!
//! The rate limit is what keeps a flood of tokens with made-up `kid`s from turning this server
//! into a load generator against the identity provider. Refreshes are single-flight: callers
//! that arrive while one is under way wait for it (within its deadline) instead of starting
//! their own.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse},
};
use reqwest::Url;
use serde::Deserialize;

use super::{AuthError, read_json, shown};
use crate::config::OAuthSettings;

/// Largest discovery document or key set read (256 KiB; real ones are a few KiB).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Most keys taken from one key set.
const MAX_KEYS: usize = 64;

/// A usable verification key.
struct Key {
    kid: Option<String>,
    /// The algorithms this key may verify (its family, narrowed by its `alg` when it has one).
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<Key>>,
    loaded: bool,
    jwks_uri: Option<Url>,
    last_attempt: Option<Instant>,
    /// Bumped by every finished fetch, so waiters can tell a fetch happened while they waited.
    generation: u64,
    error: Option<String>,
}

/// One issuer's keys.
pub struct IssuerKeys {
    issuer: String,
    http: std::sync::Arc<super::IssuerHttp>,
    timeout: Duration,
    min_refresh: Duration,
    state: RwLock<State>,
    refreshing: tokio::sync::Mutex<()>,
}

/// What a key lookup found.
enum Lookup {
    Found(DecodingKey),
    /// The key exists but is not for this algorithm.
    WrongAlgorithm,
    Missing,
}

impl IssuerKeys {
    /// Keys of `issuer`, fetched on first use.
    pub fn new(
        issuer: String,
        http: std::sync::Arc<super::IssuerHttp>,
        settings: &OAuthSettings,
    ) -> Self {
        IssuerKeys {
            issuer,
            http,
            timeout: settings.timeout,
            min_refresh: settings.key_refresh,
            state: RwLock::new(State::default()),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// The issuer identifier, as tokens carry it in `iss`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether a key set has been loaded.
    pub fn loaded(&self) -> bool {
        self.state.read().map(|s| s.loaded).unwrap_or(false)
    }

    /// This issuer's state, for `/readyz`.
    pub fn report(&self) -> serde_json::Value {
        let Ok(s) = self.state.read() else {
            return serde_json::json!({"issuer": self.issuer, "keysLoaded": false});
        };
        let mut report = serde_json::json!({
            "issuer": self.issuer,
            "keysLoaded": s.loaded,
            "keys": s.keys.len(),
        });
        if let Some(error) = &s.error {
            report["error"] = serde_json::json!(error);
        }
        report
    }

    /// The key that verifies a token with this `kid` and algorithm, refreshing the key set
    /// once (rate-limited) when it is not there.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let mut refreshed = false;
        loop {
            match self.lookup(kid, alg)? {
                Lookup::Found(key) => return Ok(key),
                Lookup::WrongAlgorithm => {
                    return Err(AuthError::Invalid(format!(
                        "the token's algorithm {alg:?} does not match the issuer's key"
                    )));
                }
                Lookup::Missing if refreshed => break,
                Lookup::Missing => {}
            }
            refreshed = true;
            if let Err(e) = self.refresh(true).await
                && !self.loaded()
            {
                return Err(AuthError::Unavailable(e));
            }
        }
        Err(AuthError::Invalid(match kid {
            Some(kid) => format!(
                "the token is signed with a key ({}) that {} does not publish",
                shown(kid),
                self.issuer
            ),
            None => format!(
                "the token names no key (kid), and {} publishes no single key for its algorithm",
                self.issuer
            ),
        }))
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Result<Lookup, AuthError> {
        let keys = self
            .state
            .read()
            .map(|s| s.keys.clone())
            .map_err(|_| AuthError::Unavailable("the key cache is unusable".into()))?;
        let found = match kid {
            Some(kid) => {
                let Some(key) = keys.iter().find(|k| k.kid.as_deref() == Some(kid)) else {
                    return Ok(Lookup::Missing);
                };
                if !key.algorithms.contains(&alg) {
                    return Ok(Lookup::WrongAlgorithm);
                }
                key
            }
            None => {
                let mut fitting = keys.iter().filter(|k| k.algorithms.contains(&alg));
                match (fitting.next(), fitting.next()) {
                    (Some(key), None) => key,
                    _ => return Ok(Lookup::Missing),
                }
            }
        };
        Ok(Lookup::Found(found.key.clone()))
    }

    /// Fetches the key set again, unless another caller just did, or the last attempt was less
    /// than the refresh interval ago (`force` false: only when nothing is loaded yet).
    pub async fn refresh(&self, force: bool) -> Result<(), String> {
        let seen = self.generation();
        let _one_at_a_time = self.refreshing.lock().await;
        {
            let s = self
                .state
                .read()
                .map_err(|_| "the key cache is unusable".to_string())?;
            if s.generation != seen {
                return s.error.clone().map_or(Ok(()), Err);
            }
            if !force && s.loaded {
                return Ok(());
            }
            if let Some(last) = s.last_attempt
                && last.elapsed() < self.min_refresh
            {
                return Err(match &s.error {
                    Some(e) => format!(
                        "{e} (next attempt within {}s, --oauth-key-refresh-secs)",
                        self.min_refresh.as_secs()
                    ),
                    None => "the keys were refreshed moments ago".into(),
                });
            }
        }
        let jwks_uri = self.state.read().ok().and_then(|s| s.jwks_uri.clone());
        let fetched = match tokio::time::timeout(self.timeout, self.fetch(jwks_uri)).await {
            Ok(fetched) => fetched,
            Err(_) => Err(format!(
                "cannot fetch the signing keys of {}: no answer within {}s (--oauth-timeout-secs)",
                self.issuer,
                self.timeout.as_secs()
            )),
        };
        let mut s = self
            .state
            .write()
            .map_err(|_| "the key cache is unusable".to_string())?;
        s.last_attempt = Some(Instant::now());
        s.generation = s.generation.wrapping_add(1);
        match fetched {
            Ok((uri, keys)) => {
                if s.loaded && s.keys.len() != keys.len() {
                    tracing::info!(issuer = %self.issuer, keys = keys.len(), "signing keys refreshed");
                }
                s.keys = Arc::new(keys);
                s.jwks_uri = Some(uri);
                s.loaded = true;
                s.error = None;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "cannot refresh the issuer's keys");
                // Discover again next time: the key set may have moved.
                s.jwks_uri = None;
                s.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn generation(&self) -> u64 {
        self.state.read().map(|s| s.generation).unwrap_or(0)
    }

    async fn fetch(&self, jwks_uri: Option<Url>) -> Result<(Url, Vec<Key>), String> {
        let uri = match jwks_uri {
            Some(uri) => uri,
            None => self.discover().await?,
        };
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<serde_json::Value>,
        }
        let what = format!("the key set of {} ({uri})", self.issuer);
        let response = self
            .http
            .get()?
            .get(uri.clone())
            .send()
            .await
            .map_err(|e| format!("cannot fetch {what}: {}", super::without_url(&e)))?;
        let set: KeySet = read_json(response, MAX_DOCUMENT_BYTES, &what)
            .await
            .map_err(|e| format!("cannot fetch the signing keys: {e}"))?;
        let keys: Vec<Key> = set
            .keys
            .into_iter()
            .take(MAX_KEYS)
            .filter_map(usable)
            .collect();
        if keys.is_empty() {
            return Err(format!(
                "{what} has no usable signing key (RSA, EC P-256/P-384 or Ed25519)"
            ));
        }
        Ok((uri, keys))
    }

    /// The `jwks_uri` of the issuer's metadata: RFC 8414 first, then OpenID Connect discovery
    /// (both well-known placements, as the MCP authorization spec lists them).
    async fn discover(&self) -> Result<Url, String> {
        #[derive(Deserialize)]
        struct Metadata {
            issuer: Option<String>,
            jwks_uri: Option<String>,
        }
        let mut tried = Vec::new();
        for url in discovery_urls(&self.issuer) {
            let outcome = match self.http.get()?.get(url.clone()).send().await {
                Ok(response) => {
                    read_json::<Metadata>(response, MAX_DOCUMENT_BYTES, url.as_str()).await
                }
                Err(e) => Err(format!("{url}: {}", super::without_url(&e))),
            };
            let metadata = match outcome {
                Ok(m) => m,
                Err(e) => {
                    tried.push(e);
                    continue;
                }
            };
            // RFC 8414 §3.3: the document must name the issuer it was fetched for.
            if metadata.issuer.as_deref() != Some(self.issuer.as_str()) {
                return Err(format!(
                    "the metadata at {url} names the issuer {}, not {}; set --oauth-issuer to \
                     exactly the issuer's identifier",
                    shown(metadata.issuer.as_deref().unwrap_or("")),
                    self.issuer
                ));
            }
            let Some(raw) = metadata.jwks_uri else {
                return Err(format!("the metadata at {url} has no jwks_uri"));
            };
            return url_for_keys(&raw).ok_or_else(|| {
                format!("the jwks_uri {} at {url} is not an https URL", shown(&raw))
            });
        }
        Err(format!(
            "cannot fetch the signing keys of {}: discovery failed ({})",
            self.issuer,
            tried.join("; ")
        ))
    }
}

/// Where an issuer's metadata may be: `/.well-known/oauth-authorization-server` inserted before
/// the issuer's path (RFC 8414), then `/.well-known/openid-configuration` inserted (RFC 8414's
/// form for OIDC) and appended (OpenID Connect Discovery).
pub fn discovery_urls(issuer: &str) -> Vec<Url> {
    let Ok(base) = Url::parse(issuer) else {
        return Vec::new();
    };
    let path = base.path().trim_end_matches('/').to_string();
    let at = |suffix: &str| {
        let mut u = base.clone();
        u.set_path(suffix);
        u.set_query(None);
        u
    };
    let mut urls = vec![at(&format!(
        "/.well-known/oauth-authorization-server{path}"
    ))];
    if !path.is_empty() {
        urls.push(at(&format!("/.well-known/openid-configuration{path}")));
    }
    urls.push(at(&format!("{path}/.well-known/openid-configuration")));
    urls
}

/// A key set URL: https, or http to loopback (the same rule as issuers).
fn url_for_keys(raw: &str) -> Option<Url> {
    Url::parse(raw)
        .ok()
        .filter(crate::config::https_or_loopback)
}

/// A key from the set, if it is a signature key of a kind we verify with. Symmetric (`oct`)
/// keys never are: a published HMAC secret would let anyone sign.
fn usable(value: serde_json::Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(value).ok()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        _ => return None,
    };
    let algorithms = match &jwk.common.key_algorithm {
        None => family,
        Some(declared) => {
            let alg = algorithm_of(declared)?;
            if !family.contains(&alg) {
                return None;
            }
            vec![alg]
        }
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id,
        algorithms,
        key,
    })
}

fn algorithm_of(alg: &KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_follows_rfc_8414_then_oidc() {
        let shown = |i: &str| {
            discovery_urls(i)
                .iter()
                .map(|u| u.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            shown("https://id.example.com"),
            [
                "https://id.example.com/.well-known/oauth-authorization-server",
                "https://id.example.com/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            shown("https://id.example.com/realms/acme/"),
            [
                "https://id.example.com/.well-known/oauth-authorization-server/realms/acme",
                "https://id.example.com/.well-known/openid-configuration/realms/acme",
                "https://id.example.com/realms/acme/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_never_used() {
        assert!(usable(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})).is_none());
        assert!(
            usable(serde_json::json!({"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}))
                .is_none()
        );
        assert!(
            usable(serde_json::json!({"kty": "RSA", "alg": "HS256", "n": "AQAB", "e": "AQAB"}))
                .is_none()
        );
        assert!(usable(serde_json::json!({"kty": "weird"})).is_none());
        let rsa = usable(
            serde_json::json!({"kty": "RSA", "alg": "PS256", "n": "AQAB", "e": "AQAB", "kid": "a"}),
        );
        assert_eq!(rsa.map(|k| k.algorithms), Some(vec![Algorithm::PS256]));
    }
}
