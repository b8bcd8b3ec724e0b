//! The Microsoft Intune connector, through Microsoft Graph: managed devices
//! (server-driven `@odata.nextLink` paging, single-device reads with the
//! `$select` that detail-only fields need), Entra users, detected apps per
//! device (Graph beta), the tenant as organization, and device actions. The
//! host performs the client-credentials flow; this code never sees a
//! secret or a token. Vendor facts: `shared/vendors/intune.md`.

mod actions;
mod apps;
mod describe;
mod devices;
mod organization;
mod users;

use mdmhub_sdk::prelude::*;

/// The Intune connector.
pub struct Intune;

/// The Graph origin of the account's cloud (`https://graph.microsoft.com`).
pub(crate) fn graph(ctx: &Context) -> Result<&str, ConnectorError> {
    ctx.origin(describe::GRAPH_ORIGIN)
}

/// The first page of a Graph collection at `path` (under `/v1.0` or `/beta`)
/// with `$top`, or the vendor's `@odata.nextLink` when continuing: a next
/// link carries an opaque `$skiptoken` and must be followed verbatim.
pub(crate) fn collection_page(
    cursor: Option<String>,
    first: impl FnOnce() -> String,
) -> Result<Response, ConnectorError> {
    Request::get(NextUrlCursor::url(cursor, first))
        .paging(NextUrlCursor::paging("/@odata.nextLink"))
        .send_ok()
}

impl Connector for Intune {
    fn describe() -> ConnectorInfo {
        describe::info()
    }

    fn check(ctx: &Context) -> Result<(), ConnectorError> {
        // The cheapest read that needs the device permission every sync uses
        // (a token for the wrong tenant or secret fails before it).
        Request::get(format!(
            "{}/v1.0/deviceManagement/managedDevices?$top=1&$select=id",
            graph(ctx)?
        ))
        .send_ok()?;
        Ok(())
    }

    fn list(
        ctx: &Context,
        kind: ResourceKind,
        cursor: Option<String>,
        options: ListOptions,
    ) -> Result<Page, ConnectorError> {
        match kind {
            ResourceKind::Devices => devices::list(ctx, cursor, options.page_size),
            ResourceKind::Users => users::list(ctx, cursor, options.page_size),
            ResourceKind::Apps => apps::list(ctx, &page::parent_id(options)?, cursor),
            ResourceKind::Organizations => organization::list(ctx, cursor),
        }
    }

    fn get(ctx: &Context, kind: ResourceKind, id: String) -> Result<Entity, ConnectorError> {
        match kind {
            ResourceKind::Devices => devices::get(ctx, &id),
            ResourceKind::Users => users::get(ctx, &id),
            ResourceKind::Organizations => organization::get(ctx, &id),
            ResourceKind::Apps => Err(ConnectorError::Unsupported(
                "Intune has no single read of a device's app; list apps per device".into(),
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

mdmhub_sdk::export_connector!(Intune);
