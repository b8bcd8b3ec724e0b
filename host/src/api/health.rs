//! `/healthz` (the process answers) and `/readyz` (the database answers
//! and has every migration this build knows).

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::{Kind, Problem};
use crate::store::Store;

/// A health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "The process answers", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database is reachable and migrated.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json")))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    match missing_migrations(state.store()).await {
        Ok(missing) if missing.is_empty() => Ok(Json(Health { status: "ready" })),
        Ok(missing) => Err(Problem::new(
            Kind::NotReady,
            format!("migrations not applied: {missing:?}"),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(Problem::new(Kind::NotReady, "the database does not answer"))
        }
    }
}

/// The versions of this build's migrations the database has not applied.
async fn missing_migrations(store: &Store) -> Result<Vec<i64>, sqlx::Error> {
    let applied: HashSet<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(store.pool())
        .await?
        .into_iter()
        .collect();
    Ok(sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect())
}

/// The health routes (no key needed).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
