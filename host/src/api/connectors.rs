//! `/v1/connectors`: what this server loaded, and the files it rejected
//! with the reason. Connectors are the same for every workspace.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::auth::Caller;
use super::problem::{Common, Problem};
use crate::cli::describe::action_name;
use crate::runtime::Connector as Loaded;

/// A loaded connector.
#[derive(Debug, Serialize, ToSchema)]
pub struct Connector {
    /// Id, as accounts name it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `built-in NAME` or the file it was loaded from.
    pub source: String,
    /// SHA-256 of the component.
    pub sha256: String,
    /// Origin templates it may call.
    pub origins: Vec<String>,
    /// The resources it lists, and how.
    pub resources: Value,
    /// The actions it offers.
    pub actions: Vec<String>,
    /// The config fields an account needs.
    pub config: Value,
}

/// A component file that did not load.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rejected {
    /// The file (or built-in name).
    pub source: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// The loaded connectors (one page) and the rejected files.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorList {
    /// Loaded connectors, by id.
    pub result: Vec<Connector>,
    /// Always `null`: every connector is on this page.
    pub next_cursor: Option<String>,
    /// How many connectors `result` holds.
    pub result_count: usize,
    /// Files that did not load.
    pub rejected: Vec<Rejected>,
}

fn view(c: &Loaded) -> Connector {
    let i = &c.info;
    Connector {
        id: i.id.clone(),
        name: i.name.clone(),
        version: i.version.clone(),
        source: c.source.to_string(),
        sha256: c.sha256.clone(),
        origins: i.origins.clone(),
        resources: json(&i.resources),
        actions: i.actions.iter().map(|a| action_name(&a.kind)).collect(),
        config: json(&i.config),
    }
}

/// A contract value as JSON (they all serialize; `null` otherwise).
fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// List loaded and rejected connectors.
#[utoipa::path(get, path = "/v1/connectors", tag = "connectors",
    responses((status = 200, description = "Loaded and rejected connectors", body = ConnectorList), Common))]
async fn list_connectors(
    _caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ConnectorList>, Problem> {
    let registry = state.registry();
    let result: Vec<Connector> = registry.connectors.values().map(|c| view(c)).collect();
    Ok(Json(ConnectorList {
        result_count: result.len(),
        result,
        next_cursor: None,
        rejected: registry
            .rejected
            .iter()
            .map(|r| Rejected {
                source: r.source.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    }))
}

/// The connector routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_connectors))
}
