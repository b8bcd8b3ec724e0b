//! `GET /v1/actions`: the workspace's audit log of device actions, newest
//! first, keyset-paged. Entries never hold secrets: parameters were
//! redacted before they were written, and outcome values are not kept.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::params::{self, Params};
use super::problem::{Common, Problem};
use super::schema::ListPage;
use crate::store::audit::AuditEntry;

/// One action in the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecord {
    /// Id (the `id` of the action's answer).
    pub id: String,
    /// The API key that asked, by name.
    pub key_name: String,
    /// When it ran (RFC 3339 UTC).
    pub at: String,
    /// mdmhub's device id.
    pub device_id: String,
    /// The device's account.
    pub account_id: String,
    /// The action.
    pub action: String,
    /// Its parameters, secrets redacted.
    #[schema(value_type = Object)]
    pub params: Value,
    /// `running`, `accepted`, `completed`, `failed`, or `refused` (before
    /// reaching the vendor: unknown, or destructive and not confirmed).
    pub status: String,
    /// The vendor's command id.
    pub command_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl From<AuditEntry> for AuditRecord {
    fn from(e: AuditEntry) -> Self {
        Self {
            params: serde_json::from_str(&e.params).unwrap_or(Value::String(e.params)),
            id: e.id,
            key_name: e.key_name,
            at: e.at,
            device_id: e.device_id,
            account_id: e.account_id,
            action: e.action,
            status: e.status,
            command_id: e.command_id,
            error: e.error,
        }
    }
}

/// Filters of `GET /v1/actions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only actions on this device (mdmhub id).
    device: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List the workspace's device actions, newest first.
#[utoipa::path(get, path = "/v1/actions", tag = "actions", params(AuditParams),
    responses((status = 200, description = "A page of actions", body = ListPage<AuditRecord>), Common))]
async fn list_actions(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<AuditParams>,
) -> Result<Json<ListPage<AuditRecord>>, Problem> {
    let limit = params::limit(q.limit)?;
    let after = q.cursor.as_deref().map(params::position).transpose()?;
    let mut rows = state
        .store()
        .audit_in(
            &caller.workspace_id,
            q.device.as_deref(),
            after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())),
            limit + 1,
        )
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|e| params::cursor(&e.at, &e.id))
    } else {
        None
    };
    let result: Vec<AuditRecord> = rows.into_iter().map(AuditRecord::from).collect();
    Ok(Json(ListPage {
        result_count: result.len(),
        result,
        next_cursor,
    }))
}

/// The audit log route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_actions))
}
