//! `/v1/accounts`: the workspace's accounts (never their secrets), and
//! starting a sync by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::params::{Body, Id};
use super::problem::{Common, Kind, Problem};
use super::runs::Run;
use super::schema::ListPage;
use crate::account::Secret;
use crate::accounts::{AccountError, AccountInput};
use crate::store::accounts::AccountRow;
use crate::store::runs::RunRow;
use crate::store::{StoreError, now};
use crate::sync::SyncError;

/// How long `POST .../sync` waits to name the run it started.
const START_WAIT: Duration = Duration::from_secs(5);

/// An account, without its secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    /// mdmhub's id.
    pub id: String,
    /// Name, unique in the workspace.
    pub name: String,
    /// Connector id.
    pub connector: String,
    /// Non-secret config (subdomain, region, tenant, ...).
    pub config: BTreeMap<String, String>,
    /// Endpoint overrides (`[HOST=]URL`).
    pub endpoints: Vec<String>,
    /// Rate override (`N/s|m|h`).
    pub rate_limit: Option<String>,
    /// Seconds between scheduled syncs.
    pub sync_interval_secs: i64,
    /// When the scheduler next syncs it.
    pub next_sync_at: String,
    /// Whether a sync holds its lease now.
    pub syncing: bool,
    /// Its newest sync run.
    pub last_run: Option<Run>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

/// Whether a sync holds the account's lease now.
fn syncing(a: &AccountRow) -> bool {
    a.lease_holder.is_some()
        && a.lease_expires_at
            .as_deref()
            .is_some_and(|until| until > now().as_str())
}

async fn view(state: &AppState, a: AccountRow) -> Result<Account, Problem> {
    let last_run = state.store().runs(&a.id, 1).await?.into_iter().next();
    Ok(Account {
        syncing: syncing(&a),
        last_run: last_run.map(Run::from),
        id: a.id,
        name: a.name,
        connector: a.connector,
        config: a.config,
        endpoints: a.endpoints,
        rate_limit: a.rate_limit,
        sync_interval_secs: a.sync_interval_secs,
        next_sync_at: a.next_sync_at,
        created_at: a.created_at,
        updated_at: a.updated_at,
    })
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<AccountRow, Problem> {
    state
        .store()
        .find_account_in(&caller.workspace_id, id)
        .await?
        .ok_or_else(|| Problem::not_found("account", id))
}

/// List the workspace's accounts, by name (all on one page).
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, description = "The accounts", body = ListPage<Account>), Common))]
async fn list_accounts(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ListPage<Account>>, Problem> {
    let mut result = Vec::new();
    for a in state.store().accounts_in(&caller.workspace_id).await? {
        result.push(view(&state, a).await?);
    }
    Ok(Json(ListPage {
        result_count: result.len(),
        result,
        next_cursor: None,
    }))
}

/// One account by id or name.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Account id or name")),
    responses((status = 200, description = "The account", body = Account), Common))]
async fn get_account(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<Account>, Problem> {
    let a = find(&state, &caller, &id).await?;
    Ok(Json(view(&state, a).await?))
}

/// Seconds, or a duration such as `6h`, `1d`, `30m`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Interval {
    /// Seconds.
    Seconds(i64),
    /// A number and a unit (s, m, h, d).
    Text(String),
}

/// A new account: `check()` runs with these settings before it is saved.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// A name unique in the workspace.
    pub name: String,
    /// The connector id (see `/v1/connectors`).
    pub connector: String,
    /// Non-secret config (subdomain, region, tenant, ...).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Secrets (API token, client secret): sealed, never returned.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// Endpoint overrides (`[HOST=]URL`).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Rate override (`N/s|m|h`).
    pub rate_limit: Option<String>,
    /// Time between scheduled syncs (default 24 h; at least a minute).
    pub interval: Option<Interval>,
}

impl NewAccount {
    fn input(self) -> Result<AccountInput, Problem> {
        let interval_secs = match self.interval {
            None => None,
            Some(Interval::Seconds(s)) if s >= 60 => Some(s),
            Some(Interval::Seconds(s)) => {
                return Err(Problem::new(
                    Kind::InvalidAccount,
                    format!("interval {s} s: at least one minute"),
                ));
            }
            Some(Interval::Text(t)) => Some(
                crate::cli::inputs::interval(&t)
                    .map_err(|e| Problem::new(Kind::InvalidAccount, e))?,
            ),
        };
        Ok(AccountInput {
            config: self.config,
            secrets: self
                .secrets
                .into_iter()
                .map(|(k, v)| (k, Secret::new(v)))
                .collect(),
            endpoints: self.endpoints,
            rate_limit: self.rate_limit,
            interval_secs,
        })
    }
}

/// The problem for an account that was not saved.
fn refused(e: AccountError) -> Problem {
    match e {
        AccountError::CheckFailed {
            class,
            message,
            hint,
        } => {
            let mut p = Problem::new(
                Kind::AccountCheckFailed,
                format!("{class}: {message}; nothing was saved"),
            )
            .with_hint(hint);
            p.extra.class = Some(class.to_lowercase().replace(' ', "_"));
            p
        }
        AccountError::UnknownConnector(_) | AccountError::Config(_) => {
            Problem::new(Kind::InvalidAccount, e.to_string())
        }
        AccountError::Store(StoreError::Conflict(m)) => Problem::new(Kind::Conflict, m),
        AccountError::Store(s) => s.into(),
        AccountError::Secrets(s) => Problem::internal(&s),
    }
}

/// Add an account to the workspace: the connector's `check()` runs first,
/// and nothing is saved when it fails. Secrets are write-only.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses(
        (status = 201, description = "Checked and saved", body = Account),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid settings, or the check failed (`class` says how)", body = Problem, content_type = "application/problem+json"),
        Common))]
async fn create_account(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewAccount>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, HeaderValue); 1],
        Json<Account>,
    ),
    Problem,
> {
    if !new.endpoints.is_empty() && !state.api_endpoints() {
        return Err(Problem::new(
            Kind::InvalidAccount,
            "`endpoints` may reach private addresses, so only the operator sets them \
             (`mdmhub accounts add --endpoint`, or `mdmhub serve --allow-api-endpoints`)",
        ));
    }
    let (name, connector) = (new.name.clone(), new.connector.clone());
    let row = state
        .accounts()
        .add_in(&caller.workspace_id, &name, &connector, new.input()?)
        .await
        .map_err(refused)?;
    tracing::info!(account = %row.name, connector = %row.connector, workspace = %caller.workspace_id, "account added through the API");
    let location = HeaderValue::from_str(&format!("/v1/accounts/{}", row.id))
        .map_err(|e| Problem::internal(&e))?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view(&state, row).await?),
    ))
}

/// What `POST /v1/accounts/{id}/sync` started.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStarted {
    /// The account.
    pub account_id: String,
    /// The run, once it exists (a resumed run keeps its id); `null` if it
    /// had not started within a few seconds: see `/v1/sync-runs?account=`.
    pub run: Option<Run>,
}

/// Start syncing an account in the background (resuming its interrupted
/// run, if any).
#[utoipa::path(post, path = "/v1/accounts/{id}/sync", tag = "accounts",
    params(("id" = String, Path, description = "Account id or name")),
    responses(
        (status = 202, description = "The sync started", body = SyncStarted),
        (status = 409, description = "The account is already syncing", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The server is shutting down", body = Problem, content_type = "application/problem+json"),
        Common))]
async fn sync_account(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<(StatusCode, Json<SyncStarted>), Problem> {
    let account = find(&state, &caller, &id).await?;
    if syncing(&account) {
        return Err(running(&account.name));
    }
    let asked = now();
    let mut done = state.start_sync(account.clone())?;
    let deadline = tokio::time::Instant::now() + START_WAIT;
    let run = loop {
        tokio::select! {
            finished = &mut done => match finished {
                Ok(Ok(run)) => break Some(run),
                Ok(Err(SyncError::AlreadyRunning { .. } | SyncError::LeaseLost(_))) => {
                    return Err(running(&account.name));
                }
                // A run that failed after it started is reported as that
                // run; a failure before it is the problem.
                Ok(Err(e)) => match failed_since(&state, &account.id, &asked).await? {
                    Some(run) => break Some(run),
                    None => return Err(Problem::new(Kind::SyncFailed, e.to_string())),
                },
                Err(_) => return Err(Problem::new(Kind::SyncFailed, "the sync task ended without an answer")),
            },
            _ = tokio::time::sleep(Duration::from_millis(25)) => {
                if let Some(run) = started_run(&state, &caller, &account.id).await? {
                    break Some(run);
                }
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
            }
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(SyncStarted {
            account_id: account.id,
            run: run.map(Run::from),
        }),
    ))
}

/// The run that the account's current lease holder is running, if any.
async fn started_run(
    state: &AppState,
    caller: &Caller,
    account_id: &str,
) -> Result<Option<RunRow>, Problem> {
    let Some(account) = state
        .store()
        .find_account_in(&caller.workspace_id, account_id)
        .await?
    else {
        return Ok(None);
    };
    let run = state.store().unfinished_run(account_id).await?;
    Ok(run.filter(|r| r.holder.is_some() && r.holder == account.lease_holder))
}

/// The account's newest run if it failed after `asked` (the one just started).
async fn failed_since(
    state: &AppState,
    account_id: &str,
    asked: &str,
) -> Result<Option<RunRow>, Problem> {
    let newest = state.store().runs(account_id, 1).await?.into_iter().next();
    Ok(newest
        .filter(|r| r.status == "failed" && r.finished_at.as_deref().is_some_and(|f| f >= asked)))
}

fn running(name: &str) -> Problem {
    Problem::new(
        Kind::SyncRunning,
        format!("account `{name}` is already syncing; see /v1/sync-runs?account={name}"),
    )
}

/// The account routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account))
        .routes(routes!(sync_account))
}
