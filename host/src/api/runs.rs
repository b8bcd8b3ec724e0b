//! `/v1/sync-runs`: a workspace's sync runs, newest first, and one run
//! with its counts and first errors.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::params::{self, Id, Params};
use super::problem::{Common, Problem};
use super::schema::ListPage;
use crate::store::runs::{RunCounts, RunRow};

/// How many per-record errors a single run read shows.
const ERRORS_SHOWN: i64 = 20;

/// What a run counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counts {
    /// Pages stored.
    pub pages: i64,
    /// Records seen for the first time.
    pub created: i64,
    /// Records whose content changed.
    pub updated: i64,
    /// Records seen again without change.
    pub unchanged: i64,
    /// Records confirmed gone.
    pub removed: i64,
    /// Records or detail reads that failed.
    pub errors: i64,
    /// Detail reads done.
    pub details: i64,
    /// Waits for a rate limit.
    pub rate_limit_waits: i64,
}

impl From<RunCounts> for Counts {
    fn from(c: RunCounts) -> Self {
        Self {
            pages: c.pages,
            created: c.created,
            updated: c.updated,
            unchanged: c.unchanged,
            removed: c.removed,
            errors: c.errors,
            details: c.details,
            rate_limit_waits: c.rate_limit_waits,
        }
    }
}

/// A record a run could not store.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunError {
    /// devices, users, apps, organizations or details.
    pub kind: String,
    /// The vendor's id, when known.
    pub remote_id: Option<String>,
    /// What went wrong.
    pub message: String,
}

/// A sync run.
#[derive(Debug, Serialize, ToSchema)]
pub struct Run {
    /// Run id.
    pub id: String,
    /// The account synced.
    pub account_id: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// `manual`, `schedule`, `api` or `update`.
    pub trigger: String,
    /// The phase it is in, or stopped in.
    pub phase: Option<String>,
    /// Started (RFC 3339 UTC).
    pub started_at: String,
    /// Finished.
    pub finished_at: Option<String>,
    /// Counts so far.
    pub counts: Counts,
    /// Why it failed.
    pub error: Option<String>,
    /// Single reads only: the first records it could not store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_errors: Option<Vec<RunError>>,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Self {
            id: r.id,
            account_id: r.account_id,
            status: r.status,
            trigger: r.trigger,
            phase: r.phase,
            started_at: r.started_at,
            finished_at: r.finished_at,
            counts: r.counts.into(),
            error: r.error,
            record_errors: None,
        }
    }
}

/// Filters of `GET /v1/sync-runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RunParams {
    /// Only runs of this account (name or id).
    account: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A run's keyset position as an opaque cursor.
fn cursor_of(run: &RunRow) -> String {
    params::cursor(&run.started_at, &run.id)
}

/// List sync runs, newest first.
#[utoipa::path(get, path = "/v1/sync-runs", tag = "sync", params(RunParams),
    responses((status = 200, description = "A page of runs", body = ListPage<Run>), Common))]
async fn list_runs(
    caller: Caller,
    State(state): State<AppState>,
    Params(q): Params<RunParams>,
) -> Result<Json<ListPage<Run>>, Problem> {
    let limit = params::limit(q.limit)?;
    let after = q.cursor.as_deref().map(params::position).transpose()?;
    let mut rows = state
        .store()
        .runs_in(
            &caller.workspace_id,
            q.account.as_deref(),
            after.as_ref().map(|(s, i)| (s.as_str(), i.as_str())),
            limit + 1,
        )
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(cursor_of)
    } else {
        None
    };
    let result: Vec<Run> = rows.into_iter().map(Run::from).collect();
    Ok(Json(ListPage {
        result_count: result.len(),
        result,
        next_cursor,
    }))
}

/// One sync run with its first per-record errors.
#[utoipa::path(get, path = "/v1/sync-runs/{id}", tag = "sync",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = Run), Common))]
async fn get_run(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<Run>, Problem> {
    let row = state
        .store()
        .run_in(&caller.workspace_id, &id)
        .await?
        .ok_or_else(|| Problem::not_found("sync run", &id))?;
    let errors = state.store().run_errors(&row.id, ERRORS_SHOWN).await?;
    let mut run = Run::from(row);
    run.record_errors = Some(
        errors
            .into_iter()
            .map(|(kind, remote_id, message)| RunError {
                kind,
                remote_id,
                message,
            })
            .collect(),
    );
    Ok(Json(run))
}

/// The sync run routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_junk() {
        let run = RunRow {
            id: "run_1".into(),
            account_id: "acc".into(),
            status: "running".into(),
            trigger: "api".into(),
            phase: None,
            holder: None,
            started_at: "2024-01-01T00:00:00.000000Z".into(),
            finished_at: None,
            counts: RunCounts::default(),
            error: None,
        };
        let (s, i) = params::position(&cursor_of(&run)).unwrap();
        assert_eq!((s.as_str(), i.as_str()), (run.started_at.as_str(), "run_1"));
        assert!(params::position("!!").is_err());
        assert!(params::position("YWJj").is_err(), "no separator");
    }
}
