//! Calls to the vendor while a caller waits (`?live=true` reads and device
//! actions): a session per stored account, kept so that every live call of
//! an account shares its rate limits, and connector errors as problems the
//! same for every vendor. The vendor's answers about the account (its
//! credentials refused) are gateway errors, never the caller's 401/403.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderName, HeaderValue, header};

use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::problem::{Kind, Problem};
use crate::account::AccountSession;
use crate::accounts::Accounts;
use crate::contract::{ConnectorError, RatePolicy, ResourceKind};
use crate::http::ratelimit::RateOverride;
use crate::runtime::{CallError, Connector};
use crate::store::accounts::AccountRow;

/// How long a caller waits for a live call. The runtime's own deadline
/// (minutes) suits syncs; a caller behind a proxy gives up within about a
/// minute, so it is told of a timeout before that.
pub const LIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `call` within [`LIVE_TIMEOUT`].
pub async fn within<T>(
    call: impl std::future::Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    tokio::time::timeout(LIVE_TIMEOUT, call)
        .await
        .unwrap_or(Err(CallError::Timeout(LIVE_TIMEOUT)))
}

/// A live account: its connector and session.
pub type Live = (Arc<Connector>, Arc<AccountSession>);

/// Sessions by account id, rebuilt when the account changes.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, (String, Live)>>);

impl Sessions {
    /// The session of `account`, made on first use or after it changed.
    pub fn get(&self, accounts: &Accounts, account: &AccountRow) -> Result<Live, Problem> {
        let mut cache = self.0.lock().expect("never poisoned");
        if let Some((updated_at, live)) = cache.get(&account.id)
            && *updated_at == account.updated_at
        {
            return Ok(live.clone());
        }
        let live = accounts.session(account).map_err(|e| {
            Problem::new(
                Kind::InvalidAccount,
                format!("account `{}` cannot be used: {e}", account.name),
            )
        })?;
        cache.insert(
            account.id.clone(),
            (account.updated_at.clone(), live.clone()),
        );
        Ok(live)
    }
}

/// The stored `device` read again from the vendor: the connector's
/// normalized fields replace the stored ones, `remote_data` is
/// `{"live": <the vendor's JSON>}`, and `live` is true.
pub async fn read_device(
    state: &AppState,
    caller: &Caller,
    mut device: crate::store::query::Json,
) -> Result<crate::store::query::Json, Problem> {
    let field = |k: &str| device.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(id), Some(account_id), Some(remote_id)) =
        (field("id"), field("account_id"), field("remote_id"))
    else {
        return Err(Problem::internal(&"a stored device lacks its ids"));
    };
    let account = state
        .store()
        .find_account_in(&caller.workspace_id, &account_id)
        .await?
        .ok_or_else(|| Problem::not_found("device", &id))?;
    let (connector, session) = state.sessions().get(state.accounts(), &account)?;
    let limit = request_limit(&connector.info.rate_policy, &account);
    let entity = within(connector.get(&session, ResourceKind::Devices, &remote_id))
        .await
        .map_err(|e| problem(e, &account.name, &format!("device {id}"), limit))?;
    let Value::Object(fresh) = crate::model::entity_json(&entity) else {
        return Err(Problem::internal(
            &"a device did not serialize to an object",
        ));
    };
    for (k, v) in fresh {
        match k.as_str() {
            // mdmhub's own fields stay as stored.
            "type" | "id" | "account_id" | "account" | "connector" => {}
            "remote_data" => {
                device.insert(k, serde_json::json!({ "live": v }));
            }
            _ => {
                device.insert(k, v);
            }
        }
    }
    device.insert("live".into(), Value::Bool(true));
    Ok(device)
}

/// The requests per window of the account's tightest rate bucket (the
/// operator's override if set), for `RateLimit-Limit`.
pub fn request_limit(policy: &RatePolicy, account: &AccountRow) -> Option<(u32, u64)> {
    if let Some(o) = account
        .rate_limit
        .as_deref()
        .and_then(|r| r.parse::<RateOverride>().ok())
    {
        return Some((o.requests, o.per.as_secs()));
    }
    policy
        .buckets
        .iter()
        .filter(|b| b.window_ms > 0)
        .min_by(|a, b| {
            let rate =
                |x: &crate::contract::RateBucket| f64::from(x.requests) / f64::from(x.window_ms);
            rate(a).total_cmp(&rate(b))
        })
        .map(|b| (b.requests, u64::from(b.window_ms).div_ceil(1000)))
}

/// 429 for a vendor rate limit: `Retry-After` and the `RateLimit-*`
/// headers (limit of the tightest bucket, nothing remaining, reset when
/// the vendor said to retry).
pub fn rate_limited(account: &str, wait_ms: u64, limit: Option<(u32, u64)>) -> Problem {
    let secs = wait_ms.div_ceil(1000).max(1);
    let mut p = Problem::new(
        Kind::VendorRateLimited,
        format!("the vendor rate-limited account `{account}`; retry after {secs} s"),
    );
    p.extra.retry_after = Some(secs);
    let mut headers = vec![(header::RETRY_AFTER, secs.to_string())];
    if let Some((requests, window)) = limit {
        headers.extend([
            (
                HeaderName::from_static("ratelimit-limit"),
                requests.to_string(),
            ),
            (HeaderName::from_static("ratelimit-remaining"), "0".into()),
            (HeaderName::from_static("ratelimit-reset"), secs.to_string()),
            (
                HeaderName::from_static("ratelimit-policy"),
                format!("{requests};w={window}"),
            ),
        ]);
    }
    p.extra.headers = headers
        .into_iter()
        .map(|(k, v)| (k, HeaderValue::from_str(&v).expect("digits and `;w=`")))
        .collect();
    p
}

/// The problem for a failed live call on `account`'s `what`.
pub fn problem(e: CallError, account: &str, what: &str, limit: Option<(u32, u64)>) -> Problem {
    let c = match e {
        CallError::Connector(c) => c,
        CallError::Timeout(t) => {
            return Problem::new(
                Kind::VendorTimeout,
                format!("the call for {what} took longer than {t:?}"),
            );
        }
        other @ (CallError::Trap(_) | CallError::InvalidOutput(_)) => {
            return Problem::new(Kind::ConnectorFailed, other.to_string())
                .with_hint("the connector has a bug or hit a limit; see the server log");
        }
    };
    let text = crate::runtime::describe_connector_error(&c);
    match c {
        ConnectorError::RateLimited(ms) => rate_limited(account, ms, limit),
        ConnectorError::NotFound(_) => Problem::new(
            Kind::NotFound,
            format!("the vendor has no {what} ({text})"),
        ),
        ConnectorError::Unauthorized(_) | ConnectorError::Forbidden(_) => {
            Problem::new(Kind::VendorCredentialsRefused, text).with_hint(format!(
                "the vendor refused account `{account}`'s stored credentials; update them with `mdmhub accounts update {account}`"
            ))
        }
        ConnectorError::ConnectionFailed(_) | ConnectorError::TlsFailure(_) => {
            Problem::new(Kind::VendorUnreachable, text)
        }
        ConnectorError::ServerError(_) | ConnectorError::InvalidVendorData(_) => {
            Problem::new(Kind::VendorError, text)
        }
        ConnectorError::InvalidConfig(_)
        | ConnectorError::Unsupported(_)
        | ConnectorError::Rejected(_) => Problem::new(Kind::ActionRefused, text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{RateBucket, ServerErrorInfo};

    fn account(rate: Option<&str>) -> AccountRow {
        AccountRow {
            id: "acc".into(),
            workspace_id: "default".into(),
            name: "acme".into(),
            connector: "iru".into(),
            config: Default::default(),
            sealed_secrets: String::new(),
            endpoints: vec![],
            rate_limit: rate.map(Into::into),
            sync_interval_secs: 60,
            next_sync_at: String::new(),
            lease_holder: None,
            lease_expires_at: None,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn limits_come_from_the_tightest_bucket_or_the_override() {
        let bucket = |requests, window_ms| RateBucket {
            requests,
            window_ms,
            methods: vec![],
        };
        let policy = RatePolicy {
            buckets: vec![bucket(10_000, 3_600_000), bucket(100, 20_000)],
            max_concurrent: 4,
        };
        assert_eq!(request_limit(&policy, &account(None)), Some((10_000, 3600)));
        assert_eq!(request_limit(&policy, &account(Some("5/s"))), Some((5, 1)));
    }

    #[test]
    fn vendor_errors_are_gateway_problems_and_rate_limits_say_when() {
        let p = problem(
            CallError::Connector(ConnectorError::RateLimited(1500)),
            "acme",
            "device 1",
            Some((10, 60)),
        );
        assert_eq!(p.status, 429);
        assert_eq!(p.extra.retry_after, Some(2));
        let names: Vec<_> = p.extra.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&"retry-after") && names.contains(&"ratelimit-remaining"));
        let refused = problem(
            CallError::Connector(ConnectorError::Unauthorized("bad token".into())),
            "acme",
            "device 1",
            None,
        );
        assert_eq!(refused.status, 502);
        assert!(refused.kind.ends_with("vendor-credentials-refused"));
        let failed = CallError::Connector(ConnectorError::ServerError(ServerErrorInfo {
            status: 500,
            message: "boom".into(),
        }));
        assert_eq!(problem(failed, "acme", "x", None).status, 502);
        let slow = CallError::Timeout(std::time::Duration::from_secs(1));
        assert_eq!(problem(slow, "acme", "x", None).status, 504);
    }
}
