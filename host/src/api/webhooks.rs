//! `/v1/webhooks`: a workspace's subscriptions (the signing secret is shown
//! once, when made) and each one's deliveries. Events are delivered by the
//! dispatcher of `serve` (`crate::webhooks::deliver`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::params::{self, Body, Id, Params};
use super::problem::{Common, Kind, Problem};
use super::schema::ListPage;
use crate::store::webhooks::{DeliveryRow, SubscriptionRow};
use crate::store::{new_id, now};
use crate::webhooks::{EVENT_TYPES, deliver, signing};

/// A subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    /// Id.
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// Your note.
    pub description: Option<String>,
    /// Whether events are delivered to it.
    pub enabled: bool,
    /// Why it was disabled (by you, or by a 410 Gone answer).
    pub disabled_reason: Option<String>,
    /// Created (RFC 3339 UTC).
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// The signing secret (`whsec_...`): only in the answer that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<SubscriptionRow> for Webhook {
    fn from(s: SubscriptionRow) -> Self {
        Self {
            enabled: s.disabled_at.is_none(),
            id: s.id,
            url: s.url,
            events: s.events,
            description: s.description,
            disabled_reason: s.disabled_reason,
            created_at: s.created_at,
            updated_at: s.updated_at,
            secret: None,
        }
    }
}

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// An `https://` URL (plain `http://` and private addresses only when
    /// the server runs with `--allow-private-webhooks`).
    pub url: String,
    /// Event types (default: all of them): `device.created`,
    /// `device.updated`, `device.removed`, `device.compliance_changed`,
    /// `sync.completed`, `sync.failed`, `action.completed`.
    pub events: Option<Vec<String>>,
    /// A note.
    pub description: Option<String>,
}

/// Changes to a subscription; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    /// A new URL.
    pub url: Option<String>,
    /// New event types.
    pub events: Option<Vec<String>>,
    /// A new note.
    pub description: Option<String>,
    /// Stop (`false`) or resume (`true`) deliveries.
    pub enabled: Option<bool>,
}

/// One event's delivery to a subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// The event id (the `webhook-id` header; the same on every attempt).
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// When the event happened.
    pub created_at: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<String>,
    /// The receiver's status code in the last attempt.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<DeliveryRow> for Delivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            event_id: d.event_id,
            event_type: d.event_type,
            created_at: d.created_at,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error,
        }
    }
}

/// Paging of `GET /v1/webhooks/{id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(Kind::InvalidWebhook, detail)
}

/// Known, deduplicated event types in the order given (all when absent).
fn event_types(given: Option<Vec<String>>) -> Result<Vec<String>, Problem> {
    let Some(given) = given else {
        return Ok(EVENT_TYPES.iter().map(|s| s.to_string()).collect());
    };
    if given.is_empty() {
        return Err(invalid(
            "`events` is empty; leave it out to receive every event",
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for t in given {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(invalid(format!(
                "unknown event type `{t}`; known: {}",
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn checked_url(state: &AppState, url: &str) -> Result<String, Problem> {
    deliver::check_url(url, state.webhooks_private())
        .map(|u| u.to_string())
        .map_err(|e| invalid(e.to_string()))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<SubscriptionRow, Problem> {
    state
        .store()
        .subscription_in(&caller.workspace_id, id)
        .await?
        .ok_or_else(|| Problem::new(Kind::NotFound, format!("no webhook `{id}`")))
}

/// List the workspace's webhook subscriptions.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every subscription", body = ListPage<Webhook>), Common))]
async fn list_webhooks(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ListPage<Webhook>>, Problem> {
    let rows = state.store().subscriptions_in(&caller.workspace_id).await?;
    let result: Vec<Webhook> = rows.into_iter().map(Webhook::from).collect();
    Ok(Json(ListPage {
        result_count: result.len(),
        result,
        next_cursor: None,
    }))
}

/// Subscribe a URL to events. The answer holds the signing secret, the
/// only time it is shown: verify each delivery's `webhook-signature` with
/// it (Standard Webhooks, HMAC-SHA256).
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses(
        (status = 201, description = "Subscribed; `secret` is shown this once", body = Webhook),
        (status = 422, description = "A bad URL or event type", body = Problem, content_type = "application/problem+json"),
        Common))]
async fn create_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewWebhook>,
) -> Result<
    (
        StatusCode,
        [(header::HeaderName, HeaderValue); 1],
        Json<Webhook>,
    ),
    Problem,
> {
    let url = checked_url(&state, &new.url)?;
    let events = event_types(new.events)?;
    let id = new_id("whk");
    let secret = signing::new_secret();
    let at = now();
    let row = SubscriptionRow {
        sealed_secret: signing::seal(&state.accounts().key, &id, &secret),
        id,
        workspace_id: caller.workspace_id.clone(),
        url,
        events,
        description: new.description,
        created_at: at.clone(),
        updated_at: at,
        disabled_at: None,
        disabled_reason: None,
    };
    state.store().insert_subscription(&row).await?;
    tracing::info!(webhook = %row.id, workspace = %caller.workspace_id, "webhook subscription added");
    let location = HeaderValue::from_str(&format!("/v1/webhooks/{}", row.id))
        .map_err(|e| Problem::internal(&e))?;
    let mut shown = Webhook::from(row);
    shown.secret = Some(secret.expose().to_owned());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(shown),
    ))
}

/// Read one webhook subscription.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 200, description = "The subscription", body = Webhook), Common))]
async fn get_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<Webhook>, Problem> {
    Ok(Json(find(&state, &caller, &id).await?.into()))
}

/// Change a subscription's URL, events or note, or stop or resume it.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookChange,
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "Changed", body = Webhook),
        (status = 422, description = "A bad URL or event type", body = Problem, content_type = "application/problem+json"),
        Common))]
async fn update_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
    Body(change): Body<WebhookChange>,
) -> Result<Json<Webhook>, Problem> {
    let mut row = find(&state, &caller, &id).await?;
    if let Some(url) = change.url {
        row.url = checked_url(&state, &url)?;
    }
    if change.events.is_some() {
        row.events = event_types(change.events)?;
    }
    if change.description.is_some() {
        row.description = change.description;
    }
    let at = now();
    match change.enabled {
        Some(true) => (row.disabled_at, row.disabled_reason) = (None, None),
        Some(false) if row.disabled_at.is_none() => {
            row.disabled_at = Some(at.clone());
            row.disabled_reason = Some("disabled through the API".into());
        }
        _ => {}
    }
    row.updated_at = at;
    state.store().update_subscription(&row).await?;
    Ok(Json(row.into()))
}

/// Delete a subscription; its undelivered events are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted"), Common))]
async fn delete_webhook(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<StatusCode, Problem> {
    if !state
        .store()
        .delete_subscription_in(&caller.workspace_id, &id)
        .await?
    {
        return Err(Problem::new(Kind::NotFound, format!("no webhook `{id}`")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest event first: what was sent, how
/// often, and how the receiver answered.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", params(
        ("id" = String, Path, description = "Subscription id"), DeliveryParams),
    responses((status = 200, description = "A page of deliveries", body = ListPage<Delivery>), Common))]
async fn list_deliveries(
    caller: Caller,
    State(state): State<AppState>,
    Id(id): Id,
    Params(q): Params<DeliveryParams>,
) -> Result<Json<ListPage<Delivery>>, Problem> {
    let sub = find(&state, &caller, &id).await?;
    let limit = params::limit(q.limit)?;
    let mut rows = state
        .store()
        .deliveries_of(&sub.id, q.cursor.as_deref(), limit + 1)
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|d| d.event_id.clone())
    } else {
        None
    };
    let result: Vec<Delivery> = rows.into_iter().map(Delivery::from).collect();
    Ok(Json(ListPage {
        result_count: result.len(),
        result,
        next_cursor,
    }))
}

/// The webhook routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(list_deliveries))
}
