//! Bearer API keys: every `/v1` request names its key, and the key's
//! workspace bounds everything the request can see. Keys are checked
//! against the database at most every `store::keys::GRANT_TTL` per key
//! (a revocation by another process takes effect within it).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::problem::{Kind, Problem};

/// The authenticated caller: the workspace its key belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's workspace id; every query is scoped to it.
    pub workspace_id: String,
    /// The key's id (the audit log names the key).
    pub key_id: String,
}

/// The key in an `Authorization: Bearer KEY` header.
fn bearer(parts: &Parts) -> Result<&str, Problem> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| Problem::new(Kind::Unauthorized, "send `Authorization: Bearer KEY`"))?;
    let value = value
        .to_str()
        .map_err(|_| Problem::new(Kind::Unauthorized, "the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") && !key.trim().is_empty() => {
            Ok(key.trim())
        }
        _ => Err(Problem::new(
            Kind::Unauthorized,
            "the Authorization header must be `Bearer KEY`",
        )),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let key = bearer(parts)?;
        let grant = state
            .store()
            .authenticate(key)
            .await?
            .ok_or_else(|| Problem::new(Kind::Unauthorized, "unknown or revoked API key"))?;
        // Bookkeeping only, once a minute: the answer does not wait for it.
        if state.store().key_use_due(&grant.key_id) {
            let store = state.store().clone();
            let key_id = grant.key_id.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_key(&key_id).await {
                    tracing::warn!(error = %e, "recording an API key's use failed");
                }
            });
        }
        Ok(Caller {
            workspace_id: grant.workspace_id,
            key_id: grant.key_id,
        })
    }
}
