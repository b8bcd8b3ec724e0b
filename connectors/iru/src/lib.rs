//! The Iru (formerly Kandji) connector: devices (offset paging over a bare
//! array, details merged on `get`), directory users (cursor `next` links),
//! installed apps per device, blueprints as organizations, and device
//! actions. Vendor facts: `shared/vendors/iru.md`.

mod actions;
mod apps;
mod blueprints;
mod describe;
mod devices;
mod users;

use mdmhub_sdk::prelude::*;

/// The Iru connector.
pub struct Iru;

/// Iru's hard cap on `limit`, for every paged endpoint.
pub(crate) const MAX_PAGE: u32 = 300;

/// The API origin: `https://{subdomain}.api[.eu].kandji.io`.
pub(crate) fn api(ctx: &Context) -> Result<&str, ConnectorError> {
    ctx.origin(describe::API_ORIGIN)
}

impl Connector for Iru {
    fn describe() -> ConnectorInfo {
        describe::info()
    }

    fn check(ctx: &Context) -> Result<(), ConnectorError> {
        // The cheapest read that needs the device permission every sync uses.
        Request::get(format!("{}/api/v1/devices", api(ctx)?))
            .query("limit", 1)
            .send_ok()?;
        Ok(())
    }

    fn list(
        ctx: &Context,
        kind: ResourceKind,
        cursor: Option<String>,
        options: ListOptions,
    ) -> Result<Page, ConnectorError> {
        let size = options.page_size.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        match kind {
            ResourceKind::Devices => devices::list(ctx, cursor.as_deref(), size),
            ResourceKind::Users => users::list(ctx, cursor),
            ResourceKind::Apps => apps::list(ctx, &page::parent_id(options)?),
            ResourceKind::Organizations => blueprints::list(ctx, cursor, size),
        }
    }

    fn get(ctx: &Context, kind: ResourceKind, id: String) -> Result<Entity, ConnectorError> {
        match kind {
            ResourceKind::Devices => devices::get(ctx, &id),
            ResourceKind::Users => users::get(ctx, &id),
            ResourceKind::Organizations => blueprints::get(ctx, &id),
            ResourceKind::Apps => Err(ConnectorError::Unsupported(
                "Iru has no single-app read; list apps per device".into(),
            )),
        }
    }

    fn action(
        ctx: &Context,
        device_id: String,
        request: ActionRequest,
    ) -> Result<ActionOutcome, ConnectorError> {
        actions::run(ctx, &device_id, request)
    }
}

mdmhub_sdk::export_connector!(Iru);
