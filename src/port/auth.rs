//! Credentials: a fixed access token, or client credentials exchanged for a cached one.
//!
//! Port tokens live about three hours (`expiresIn` ≈ 10800 s). The cached token is dropped a
//! little before it expires, and after a 401 the first caller fetches a new one while the
//! others wait on the same lock and reuse it, so a burst of expired calls costs one exchange.

use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::error::{ApiFailure, PortError};
use crate::config::{Credentials, Secret};

/// Refresh this long before Port says the token expires (capped at a tenth of its lifetime).
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);

/// The longest `expiresIn` believed. Port's tokens last 3 hours; a larger number (up to
/// u64::MAX seconds, which would overflow the clock) is not a reason to keep a token longer.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The `Authorization` header value to send, marked sensitive so no log or debug print shows it.
#[derive(Clone)]
pub(crate) struct Bearer(pub(crate) HeaderValue);

impl Bearer {
    fn from_token(token: &str) -> Result<Self, PortError> {
        let text = if token.starts_with("Bearer ") {
            token.to_string()
        } else {
            format!("Bearer {token}")
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| PortError::Unreachable {
            origin: "(local)".into(),
            detail: "the Port token contains characters that cannot be sent in a header".into(),
        })?;
        value.set_sensitive(true);
        Ok(Bearer(value))
    }

    /// The token itself, to mask it in whatever Port sends back.
    pub(crate) fn token(&self) -> &str {
        let text = self.0.to_str().unwrap_or("");
        text.strip_prefix("Bearer ").unwrap_or(text)
    }
}

pub(crate) struct Cached {
    bearer: Bearer,
    refresh_at: Instant,
}

/// The server's way of authenticating to Port.
pub(crate) enum Auth {
    None,
    /// Each call brings its caller's own Port token (multi-tenant HTTP hosting).
    Passthrough,
    Static(Bearer),
    Exchange {
        client_id: Secret,
        client_secret: Secret,
        cache: Mutex<Option<Cached>>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

impl Auth {
    pub(crate) fn new(credentials: &Credentials) -> Result<Self, PortError> {
        Ok(match credentials {
            Credentials::None => Auth::None,
            Credentials::Passthrough => Auth::Passthrough,
            Credentials::Token(token) => Auth::Static(Bearer::from_token(token.expose())?),
            Credentials::ClientCredentials {
                client_id,
                client_secret,
            } => Auth::Exchange {
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                cache: Mutex::new(None),
            },
        })
    }

    /// Whether a 401 can be cured by fetching a new token.
    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self, Auth::Exchange { .. })
    }

    /// The header to send, exchanging credentials first when no fresh token is cached.
    pub(crate) async fn bearer(
        &self,
        client: &super::PortClient,
        caller_token: Option<&Secret>,
        deadline: Instant,
    ) -> Result<Bearer, PortError> {
        match self {
            Auth::None => Err(PortError::NoCredentials),
            Auth::Passthrough => match caller_token {
                Some(token) => Bearer::from_token(token.expose()),
                None => Err(PortError::NoCallerToken),
            },
            Auth::Static(b) => Ok(b.clone()),
            Auth::Exchange { cache, .. } => {
                let mut guard = cache.lock().await;
                if let Some(c) = guard.as_ref().filter(|c| Instant::now() < c.refresh_at) {
                    return Ok(c.bearer.clone());
                }
                // A cached token that expired is being replaced: a failure is a refresh failure.
                let fresh = self.exchange(client, deadline, guard.is_some()).await?;
                let bearer = fresh.bearer.clone();
                *guard = Some(fresh);
                Ok(bearer)
            }
        }
    }

    /// After Port refused `rejected` with 401: fetch a new token unless another caller already did.
    pub(crate) async fn refresh(
        &self,
        client: &super::PortClient,
        rejected: &Bearer,
        deadline: Instant,
    ) -> Result<Bearer, PortError> {
        let Auth::Exchange { cache, .. } = self else {
            return Ok(rejected.clone());
        };
        let mut guard = cache.lock().await;
        if let Some(c) = guard.as_ref()
            && c.bearer.0 != rejected.0
            && Instant::now() < c.refresh_at
        {
            return Ok(c.bearer.clone());
        }
        let fresh = self.exchange(client, deadline, true).await?;
        let bearer = fresh.bearer.clone();
        *guard = Some(fresh);
        Ok(bearer)
    }

    /// One exchange, counted in the metrics; `refreshing` when it replaces a token.
    async fn exchange(
        &self,
        client: &super::PortClient,
        deadline: Instant,
        refreshing: bool,
    ) -> Result<Cached, PortError> {
        let outcome = self.exchange_once(client, deadline).await;
        if let Some(m) = client.telemetry().metrics() {
            use crate::telemetry::metrics::Exchange;
            let ended = match &outcome {
                Ok(_) => Exchange::Ok,
                Err(PortError::TokenExchange(_)) => Exchange::Refused,
                Err(PortError::InvalidBody { .. }) => Exchange::Invalid,
                Err(_) => Exchange::Unreachable,
            };
            m.token_exchange(ended, refreshing);
        }
        outcome
    }

    async fn exchange_once(
        &self,
        client: &super::PortClient,
        deadline: Instant,
    ) -> Result<Cached, PortError> {
        let Auth::Exchange {
            client_id,
            client_secret,
            ..
        } = self
        else {
            return Err(PortError::NoCredentials);
        };
        let body = serde_json::json!({
            "clientId": client_id.expose(),
            "clientSecret": client_secret.expose(),
        });
        // The token endpoint's answer may quote the request, secret included.
        let redact = client.redactor(&[]);
        let response = client.post_token(&body, deadline, &redact).await?;
        let status = response.status;
        let mut parsed: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
        if !(200..300).contains(&status) {
            if let Some(json) = parsed.as_mut() {
                redact.json(json);
            }
            let mut failure = ApiFailure::from_body(status, parsed);
            failure.trace_id = response.trace_id;
            // The token endpoint's body is not echoed: it could one day carry the token.
            failure.body = None;
            return Err(PortError::TokenExchange(Box::new(failure)));
        }
        let token: TokenResponse = parsed
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| PortError::InvalidBody {
                status,
                detail: "the access-token response has no `accessToken`".into(),
            })?;
        let lifetime =
            Duration::from_secs(token.expires_in.unwrap_or(10_800)).min(MAX_TOKEN_LIFETIME);
        let margin = EXPIRY_MARGIN.min(lifetime / 10);
        let now = Instant::now();
        Ok(Cached {
            bearer: Bearer::from_token(&token.access_token)?,
            // Saturating: a clock that cannot add the lifetime refreshes on the next call.
            refresh_at: now
                .checked_add(lifetime.saturating_sub(margin))
                .unwrap_or(now),
        })
    }
}
