//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! served at `/openapi.json`.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::problem::Problem;

/// The document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mdmhub",
        description = "One normalized view of the devices in your MDMs. Authenticate with \
            `Authorization: Bearer KEY` (`mdmhub keys create`); errors are RFC 9457 problems."
    ),
    modifiers(&BearerKeys),
    security(("api_key" = [])),
    components(schemas(Problem)),
    tags(
        (name = "inventory", description = "Synced devices, users, apps and organizations"),
        (name = "accounts", description = "MDM accounts and manual syncs"),
        (name = "actions", description = "Device actions, run live, and their audit log"),
        (name = "sync", description = "Sync runs"),
        (name = "webhooks", description = "Signed event deliveries (Standard Webhooks)"),
        (name = "connectors", description = "Loaded connectors"),
        (name = "health", description = "Liveness, readiness, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer key scheme every `/v1` operation uses.
struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The rendered document, shared by every request.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
async fn openapi_json(Extension(doc): Extension<Document>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// The document's route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(openapi_json))
}
