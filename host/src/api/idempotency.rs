//! `Idempotency-Key`: a retried request runs once. The first request with
//! a key claims it in the caller's workspace; its answer is stored (with
//! sensitive values already redacted by the caller of [`settle`]) and a
//! retry with the same key and body gets that answer back, marked as a
//! replay. The same key with another body is refused.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::problem::{Kind, MEDIA_TYPE, Problem};
use crate::store::audit::Reservation;

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The answer header telling a replay apart.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// A claim whose request has not answered for this long belongs to a
/// process that died; a retry may take it over. (Longer than a call may run.)
const ABANDONED_AFTER: Duration = Duration::from_secs(15 * 60);

/// The caller's key, if the request has one: 1 to 255 visible ASCII characters.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(
            Kind::InvalidParameter,
            "Idempotency-Key: use 1 to 255 visible ASCII characters (a UUID is usual)",
        ));
    }
    Ok(Some(key.to_owned()))
}

/// What claiming a key gave.
pub enum Claim {
    /// The key is this request's: run it, then [`settle`].
    Fresh,
    /// The stored answer to the first request with this key.
    Replay(Response),
}

/// Claims `key` for the request with fingerprint `request`.
pub async fn claim(
    state: &AppState,
    caller: &Caller,
    key: &str,
    request: &str,
) -> Result<Claim, Problem> {
    let reserved = state
        .store()
        .reserve_idempotency_key(&caller.workspace_id, key, request, ABANDONED_AFTER)
        .await?;
    let reused = || {
        Problem::new(
            Kind::IdempotencyKeyReused,
            format!(
                "Idempotency-Key `{key}` was used with a different request; use a new key for a new request"
            ),
        )
    };
    match reserved {
        Reservation::Fresh => Ok(Claim::Fresh),
        Reservation::Running { request_hash } if request_hash != request => Err(reused()),
        Reservation::Running { .. } => Err(Problem::new(
            Kind::IdempotencyKeyInUse,
            format!(
                "a request with Idempotency-Key `{key}` is still running; retry in a few seconds"
            ),
        )),
        Reservation::Answered { request_hash, .. } if request_hash != request => Err(reused()),
        Reservation::Answered {
            status, response, ..
        } => Ok(Claim::Replay(replay(status, &response))),
    }
}

/// Stores the answer (`body`, already redacted) to the request that
/// claimed `key`; or frees the key when the request certainly did nothing,
/// so that a retry runs. Failures are logged: the caller has its answer.
pub async fn settle(
    state: &AppState,
    caller: &Caller,
    key: &str,
    answer: Option<(StatusCode, &Value)>,
) {
    let ws = &caller.workspace_id;
    let stored = match answer {
        Some((status, body)) => {
            state
                .store()
                .answer_idempotency_key(ws, key, status.as_u16(), &body.to_string())
                .await
        }
        None => state.store().release_idempotency_key(ws, key).await,
    };
    if let Err(e) = stored {
        tracing::error!(error = %e, "storing an idempotent answer failed; a retry with the same key may run again");
    }
}

/// The stored answer, marked as a replay.
fn replay(status: u16, stored: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut body: Value = serde_json::from_str(stored).unwrap_or(Value::Null);
    let media = if status.is_success() {
        if let Some(o) = body.as_object_mut() {
            o.insert("replayed".into(), Value::Bool(true));
        }
        "application/json"
    } else {
        MEDIA_TYPE
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_replays_marked() {
        let mut h = HeaderMap::new();
        assert_eq!(key(&h).unwrap(), None);
        h.insert(HEADER, HeaderValue::from_static("a1-b2"));
        assert_eq!(key(&h).unwrap().as_deref(), Some("a1-b2"));
        h.insert(HEADER, HeaderValue::from_static("has space"));
        assert!(key(&h).is_err());
        let r = replay(202, r#"{"status":"accepted","replayed":false}"#);
        assert_eq!(r.status(), 202);
        assert_eq!(r.headers()[REPLAYED], "true");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(
            replay(422, "{}").headers()[header::CONTENT_TYPE],
            MEDIA_TYPE
        );
    }
}
