//! `POST /v1/devices/{id}/actions`: runs a device action live through the
//! device's connector for its account. Destructive actions need
//! `"confirm": true`; an `Idempotency-Key` makes a retry run once; every
//! action that reaches the connector is written to the audit log first
//! (parameters with secrets redacted) and finished with its outcome. A
//! sensitive outcome value (a lock PIN) is in this answer only: the audit
//! log and a replay see it redacted.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::idempotency::{self, Claim};
use super::live::{self, Live};
use super::params::{Body, Id};
use super::problem::{Common, Kind, Problem, Vendor};
use crate::contract::{ActionInfo, ActionKind, ActionOutcome, ActionRequest, ConnectorError};
use crate::runtime::CallError;
use crate::store::accounts::AccountRow;
use crate::store::audit::AuditEntry;
use crate::store::{new_id, now};
use crate::webhooks::events::action_finished;

/// What replaces a secret parameter or a sensitive value in anything stored.
pub const REDACTED: &str = "(redacted)";

/// Parameter names (any case, as a part) whose values are never stored:
/// a PIN, a passcode, a password, a token.
const SECRET_PARAMS: &[&str] = &["pin", "pass", "secret", "token"];

/// An action request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// lock, erase, restart, shutdown, unlock-account, retire,
    /// refresh-inventory, or `vendor:NAME` (see `/v1/connectors`).
    pub action: String,
    /// The action's parameters (see the connector's action descriptions).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Must be `true` for destructive actions (erase, retire, ...).
    #[serde(default)]
    pub confirm: bool,
}

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    /// The audit log entry (see `/v1/actions`).
    pub id: String,
    /// mdmhub's device id.
    pub device_id: String,
    /// The action.
    pub action: String,
    /// `accepted` (the vendor queued it) or `completed`.
    pub status: String,
    /// The vendor's command id.
    pub command_id: Option<String>,
    /// The vendor's or connector's message.
    pub message: Option<String>,
    /// Values the action returned (e.g. a lock `pin`).
    pub values: BTreeMap<String, String>,
    /// Which `values` are sensitive: shown in this answer once, stored redacted.
    pub sensitive: Vec<String>,
    /// Whether sensitive values are replaced by `(redacted)` (replays).
    pub redacted: bool,
    /// Whether this is the stored answer to an earlier request with the
    /// same `Idempotency-Key` (the action did not run again).
    pub replayed: bool,
}

impl ActionResult {
    fn new(id: String, device_id: &str, action: &str, o: ActionOutcome) -> Self {
        Self {
            id,
            device_id: device_id.into(),
            action: action.into(),
            status: crate::contract::enum_name(&o.status),
            command_id: o.command_id,
            message: o.message,
            sensitive: o
                .values
                .iter()
                .filter(|v| v.sensitive)
                .map(|v| v.key.clone())
                .collect(),
            values: o.values.into_iter().map(|v| (v.key, v.value)).collect(),
            redacted: false,
            replayed: false,
        }
    }

    /// The answer as stored: sensitive values redacted, and saying so.
    fn stored(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("results serialize");
        for key in &self.sensitive {
            v["values"][key] = Value::String(REDACTED.into());
        }
        v["redacted"] = Value::Bool(!self.sensitive.is_empty());
        v
    }

    fn http_status(&self) -> StatusCode {
        if self.status == "completed" {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        }
    }
}

/// `params` with the values of secret-looking names redacted, at any depth.
pub fn redact_params(params: &Map<String, Value>) -> Map<String, Value> {
    params
        .iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let v = if SECRET_PARAMS.iter().any(|s| lower.contains(s)) {
                Value::String(REDACTED.into())
            } else if let Value::Object(inner) = v {
                Value::Object(redact_params(inner))
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// The device acted on: its account, vendor id and live session.
struct Target {
    device_id: String,
    remote_id: String,
    account: AccountRow,
    live: Live,
}

impl Target {
    async fn find(state: &AppState, caller: &Caller, device_id: &str) -> Result<Self, Problem> {
        let device = super::inventory::device(state, caller, device_id).await?;
        let field = |k: &str| device.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(account_id), Some(remote_id)) = (field("account_id"), field("remote_id")) else {
            return Err(Problem::internal(&format!(
                "device {device_id} has no account"
            )));
        };
        let account = state
            .store()
            .find_account_in(&caller.workspace_id, &account_id)
            .await?
            .ok_or_else(|| Problem::not_found("device", device_id))?;
        let live = state.sessions().get(state.accounts(), &account)?;
        Ok(Self {
            device_id: device_id.into(),
            remote_id,
            account,
            live,
        })
    }

    /// The connector's description of `kind`, if it offers it.
    fn offered(&self, kind: &ActionKind) -> Result<&ActionInfo, Problem> {
        let info = &self.live.0.info;
        let name = kind.name();
        info.actions
            .iter()
            .find(|a| a.kind.name() == name)
            .ok_or_else(|| {
                let offered: Vec<_> = info.actions.iter().map(|a| a.kind.name()).collect();
                Problem::new(
                    Kind::UnknownAction,
                    format!(
                        "connector `{}` offers no action `{name}` (it offers {})",
                        info.id,
                        offered.join(", ")
                    ),
                )
            })
    }
}

/// Run an action on a device, live. Destructive actions need
/// `"confirm": true`. With an `Idempotency-Key` header, a retry answers
/// with the first request's answer (header `Idempotent-Replayed: true`,
/// sensitive values redacted) instead of acting again.
#[utoipa::path(post, path = "/v1/devices/{id}/actions", tag = "actions", request_body = ActionBody,
    params(
        ("id" = String, Path, description = "mdmhub device id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request run once"),
    ),
    responses(
        (status = 200, description = "The vendor reports it done", body = ActionResult),
        (status = 202, description = "The vendor queued it", body = ActionResult),
        (status = 409, description = "A request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown action, confirmation required, refused by the connector or vendor, or the Idempotency-Key was used for another request", body = Problem, content_type = "application/problem+json"),
        Vendor, Common))]
async fn run_action(
    caller: Caller,
    State(state): State<AppState>,
    Id(device_id): Id,
    headers: HeaderMap,
    Body(body): Body<ActionBody>,
) -> Result<Response, Problem> {
    let key = idempotency::key(&headers)?;
    let target = Target::find(&state, &caller, &device_id).await?;
    let kind = match checked(&target, &body) {
        Ok(kind) => kind,
        Err(problem) => return Err(refused(&state, &caller, &target, &body, problem).await),
    };
    let Some(key) = key else {
        return run(&state, &caller, &target, kind, &body)
            .await
            .map(|r| answer(&r))
            .map_err(|(p, _)| p);
    };
    // Keyed so that a short secret parameter (a PIN) cannot be guessed
    // back from the stored fingerprint.
    let request = serde_json::json!([device_id, body.action, body.params, body.confirm]);
    let fingerprint = state
        .accounts()
        .key
        .fingerprint(request.to_string().as_bytes());
    if let Claim::Replay(stored) = idempotency::claim(&state, &caller, &key, &fingerprint).await? {
        return Ok(stored);
    }
    match run(&state, &caller, &target, kind, &body).await {
        Ok(result) => {
            let stored = result.stored();
            idempotency::settle(&state, &caller, &key, Some((result.http_status(), &stored))).await;
            Ok(answer(&result))
        }
        Err((problem, certainly_not_run)) => {
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let stored = serde_json::to_value(&problem).expect("problems serialize");
            let keep = (!certainly_not_run).then_some((status, &stored));
            idempotency::settle(&state, &caller, &key, keep).await;
            Err(problem)
        }
    }
}

/// The action asked for, if the device's connector offers it and a
/// destructive one is confirmed.
fn checked(target: &Target, body: &ActionBody) -> Result<ActionKind, Problem> {
    let kind: ActionKind = body
        .action
        .parse()
        .map_err(|e: String| Problem::new(Kind::UnknownAction, e))?;
    let info = target.offered(&kind)?;
    if info.destructive && !body.confirm {
        return Err(Problem::new(
            Kind::ConfirmationRequired,
            format!(
                "`{}` is destructive ({}); send \"confirm\": true to run it",
                body.action, info.description
            ),
        ));
    }
    Ok(kind)
}

/// Audits a request refused before anything reached the vendor (who tried
/// to erase a device without confirming is worth knowing) and returns its
/// problem.
async fn refused(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    body: &ActionBody,
    problem: Problem,
) -> Problem {
    let mut entry = audit_entry(caller, target, body);
    entry.status = "refused".into();
    entry.error = Some(problem.detail.clone());
    if let Err(e) = state.store().insert_audit(&entry).await {
        tracing::error!(error = %e, "auditing a refused action failed");
    }
    problem
}

/// A new audit entry for `body` on `target`, `running`.
fn audit_entry(caller: &Caller, target: &Target, body: &ActionBody) -> AuditEntry {
    AuditEntry {
        id: new_id("act"),
        workspace_id: caller.workspace_id.clone(),
        key_id: caller.key_id.clone(),
        key_name: String::new(),
        at: now(),
        device_id: target.device_id.clone(),
        account_id: target.account.id.clone(),
        action: body.action.clone(),
        params: Value::Object(redact_params(&body.params)).to_string(),
        status: "running".into(),
        command_id: None,
        error: None,
    }
}

fn answer(result: &ActionResult) -> Response {
    (result.http_status(), Json(result)).into_response()
}

/// Whether a failed call certainly did nothing at the vendor (so a retry
/// with the same key should run again rather than replay the failure).
fn certainly_not_run(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Connector(
            ConnectorError::RateLimited(_)
                | ConnectorError::ConnectionFailed(_)
                | ConnectorError::TlsFailure(_)
        )
    )
}

/// Audits and runs the action; a failure says whether it certainly did nothing.
async fn run(
    state: &AppState,
    caller: &Caller,
    target: &Target,
    kind: ActionKind,
    body: &ActionBody,
) -> Result<ActionResult, (Problem, bool)> {
    let entry = audit_entry(caller, target, body);
    // Written before the vendor is called: no action goes unaudited.
    state
        .store()
        .insert_audit(&entry)
        .await
        .map_err(|e| (Problem::from(e), true))?;
    let request = ActionRequest {
        kind,
        params: Value::Object(body.params.clone()).to_string(),
    };
    let (connector, session) = &target.live;
    let result = live::within(connector.action(session, &target.remote_id, &request)).await;
    let (status, command_id, error) = match &result {
        Ok(o) => (
            crate::contract::enum_name(&o.status),
            o.command_id.clone(),
            None,
        ),
        Err(e) => ("failed".to_owned(), None, Some(e.to_string())),
    };
    tracing::info!(audit = %entry.id, device = %entry.device_id, action = %entry.action, status, "device action");
    if let Err(e) = state
        .store()
        .finish_audit(
            &entry.id,
            &status,
            command_id.as_deref(),
            error.as_deref(),
            action_finished,
        )
        .await
    {
        tracing::error!(audit = %entry.id, error = %e, "recording an action's outcome failed");
    }
    match result {
        Ok(outcome) => Ok(ActionResult::new(
            entry.id,
            &target.device_id,
            &body.action,
            outcome,
        )),
        Err(e) => {
            let not_run = certainly_not_run(&e);
            let limit = live::request_limit(&connector.info.rate_policy, &target.account);
            let what = format!("device {}", target.device_id);
            Err((
                live::problem(e, &target.account.name, &what, limit),
                not_run,
            ))
        }
    }
}

/// The action route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(run_action))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ActionStatus, OutcomeValue};

    #[test]
    fn secrets_are_redacted_from_params_and_stored_answers() {
        let params =
            serde_json::json!({"PIN": "123456", "message": "hi", "inner": {"passcode": "1"}});
        let redacted = redact_params(params.as_object().unwrap());
        assert_eq!(redacted["PIN"], REDACTED);
        assert_eq!(redacted["message"], "hi");
        assert_eq!(redacted["inner"]["passcode"], REDACTED);
        let outcome = ActionOutcome {
            status: ActionStatus::Accepted,
            command_id: Some("c1".into()),
            message: None,
            values: vec![OutcomeValue {
                key: "pin".into(),
                value: "654321".into(),
                sensitive: true,
            }],
        };
        let result = ActionResult::new("act_1".into(), "dev_1", "lock", outcome);
        assert_eq!(result.values["pin"], "654321");
        assert_eq!(result.http_status(), StatusCode::ACCEPTED);
        let stored = result.stored();
        assert!(!stored.to_string().contains("654321"));
        assert_eq!(stored["redacted"], true);
    }
}
