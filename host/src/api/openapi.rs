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
use super::schema::WebhookEvent;
use crate::webhooks::EVENT_TYPES;

/// The document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "mdmhub",
        description = "One normalized view of the devices in your MDMs. Authenticate with \
            `Authorization: Bearer KEY` (`mdmhub keys create`); errors are RFC 9457 problems."
    ),
    modifiers(&BearerKeys, &OutgoingWebhooks),
    security(("api_key" = [])),
    components(schemas(Problem, WebhookEvent)),
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

/// Describes the events POSTed to subscribers (OpenAPI 3.1 `webhooks`).
struct OutgoingWebhooks;

impl Modify for OutgoingWebhooks {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{OperationBuilder, ParameterBuilder, ParameterIn};
        use utoipa::openapi::request_body::RequestBodyBuilder;
        use utoipa::openapi::{
            ContentBuilder, HttpMethod, PathItem, PathsBuilder, Ref, Required, Response,
        };
        let header = |name: &str, what: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::True)
                .description(Some(what))
                .build()
        };
        let mut paths = PathsBuilder::new();
        for event in EVENT_TYPES {
            let op = OperationBuilder::new()
                .summary(Some(format!("`{event}`, signed per Standard Webhooks")))
                .parameter(header("webhook-id", "The event id; the same on every retry"))
                .parameter(header("webhook-timestamp", "Unix seconds of this attempt"))
                .parameter(header(
                    "webhook-signature",
                    "`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the subscription's secret",
                ))
                .request_body(Some(
                    RequestBodyBuilder::new()
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("WebhookEvent")))
                                .build(),
                        )
                        .build(),
                ))
                .response("2XX", Response::new("Received; anything else is retried, 410 unsubscribes"));
            paths = paths.path(event, PathItem::new(HttpMethod::Post, op));
        }
        doc.webhooks = Some(paths.build());
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
