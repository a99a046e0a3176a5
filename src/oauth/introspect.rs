//! RFC 7662 token introspection, for identity providers that issue opaque access tokens: the
//! issuer says whether a token is active, for whom, with which scopes and audience.
//!
//! The endpoint is called with this server's own client credentials (HTTP Basic), within the
//! `--oauth-timeout-secs` deadline, and at most [`MAX_CONCURRENT`] at once, so a flood of
//! made-up tokens queues here instead of at the identity provider.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{AuthError, Caller, Claims, read_json};
use crate::config::{Introspection, OAuthSettings};

/// Introspection requests in flight at once.
const MAX_CONCURRENT: usize = 16;
/// Longest an introspection answer is relied on.
pub const REMEMBER_FOR: Duration = Duration::from_secs(60);
/// Largest introspection answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Calls one introspection endpoint.
pub struct Introspector {
    endpoint: Introspection,
    http: std::sync::Arc<super::IssuerHttp>,
    timeout: Duration,
    audience: String,
    issuers: Vec<String>,
    slots: Semaphore,
}

/// The fields of an introspection answer this server reads.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    active: bool,
    #[serde(default)]
    aud: Option<serde_json::Value>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(flatten)]
    claims: Claims,
}

impl Introspector {
    /// An introspector for `endpoint`.
    pub fn new(
        endpoint: Introspection,
        http: std::sync::Arc<super::IssuerHttp>,
        settings: &OAuthSettings,
    ) -> Self {
        Introspector {
            endpoint,
            http,
            timeout: settings.timeout,
            audience: settings.audience.clone(),
            issuers: settings.issuers.clone(),
            slots: Semaphore::new(MAX_CONCURRENT),
        }
    }

    /// Asks the endpoint about `token`: the claims of an active token issued for this server,
    /// or why not. The caller maps the claims to a [`Caller`] (`Verifier::caller`).
    pub(super) async fn introspect(
        &self,
        token: &str,
        caller: impl FnOnce(Claims) -> Caller,
    ) -> Result<(Caller, Option<Instant>), AuthError> {
        let unavailable = |why: String| {
            AuthError::Unavailable(format!(
                "cannot introspect the token at {}: {why}",
                self.endpoint.url
            ))
        };
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let answer = tokio::time::timeout(self.timeout, async {
            let _slot = self
                .slots
                .acquire()
                .await
                .map_err(|_| "the introspection queue is closed".to_string())?;
            let response = self
                .http
                .get()?
                .post(self.endpoint.url.clone())
                .basic_auth(
                    self.endpoint.client_id.expose(),
                    Some(self.endpoint.client_secret.expose()),
                )
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form)
                .send()
                .await
                .map_err(|e| super::without_url(&e))?;
            read_json::<Answer>(response, MAX_ANSWER_BYTES, "the introspection endpoint").await
        })
        .await
        .map_err(|_| {
            unavailable(format!(
                "no answer within {}s (--oauth-timeout-secs)",
                self.timeout.as_secs()
            ))
        })?
        .map_err(unavailable)?;
        if !answer.active {
            return Err(AuthError::Invalid(
                "the authorization server says the token is not active (expired, revoked or \
                 unknown)"
                    .into(),
            ));
        }
        if let Some(iss) = &answer.iss
            && !self.issuers.iter().any(|i| i == iss)
        {
            return Err(AuthError::Invalid(format!(
                "the token was issued by {}, which is not an accepted issuer (--oauth-issuer)",
                super::shown(iss)
            )));
        }
        let audiences: Vec<&str> = match &answer.aud {
            Some(serde_json::Value::String(a)) => vec![a.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&self.audience.as_str()) {
            return Err(AuthError::Invalid(format!(
                "the token's audience (aud) does not include this server ({})",
                self.audience
            )));
        }
        let expires = answer.claims.exp.and_then(super::instant_of_unix);
        if answer.claims.exp.is_some() && expires.is_none() {
            return Err(AuthError::Invalid("the token has expired".into()));
        }
        // Remembered for a minute at most: unlike a JWT, an opaque token can be revoked, and
        // only the endpoint knows.
        let minute = Instant::now().checked_add(REMEMBER_FOR);
        let expires = match (expires, minute) {
            (Some(e), Some(m)) => Some(e.min(m)),
            (e, m) => e.or(m),
        };
        Ok((caller(answer.claims), expires))
    }
}
