//! Blueprints, Iru's unit of organization: `GET /api/v1/blueprints` in a
//! `{count, next, previous, results}` envelope, paged by its `next` link.

use mdmhub_sdk::prelude::*;

use crate::api;

/// One page of blueprints.
pub fn list(ctx: &Context, cursor: Option<String>, size: u32) -> Result<Page, ConnectorError> {
    let first = Request::get(format!("{}/api/v1/blueprints", api(ctx)?))
        .query("limit", size)
        .query("offset", 0)
        .full_url();
    let resp = Request::get(NextUrlCursor::url(cursor, || first))
        .paging(NextUrlCursor::paging("/next"))
        .send_ok()?;
    let results = resp.items("/results")?;
    Ok(page::from_items(results.iter().map(blueprint), resp.next()))
}

/// One blueprint.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let resp =
        Request::get(format!("{}/api/v1/blueprints/{}", api(ctx)?, segment(id)?)).send_ok()?;
    blueprint(&resp.item()?).map_err(|u| invalid_data(u.message))
}

fn blueprint(item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let remote_id = lenient::string(v, "/id").ok_or("blueprint without `id`")?;
    let name = lenient::string(v, "/name").unwrap_or_else(|| remote_id.clone());
    let extra = lenient::extras(
        v,
        &[
            ("type", "/type"),
            ("description", "/description"),
            ("computers_count", "/computers_count"),
        ],
    );
    Ok(Entity::Organization(Organization {
        remote_id,
        name,
        kind: OrganizationKind::Blueprint,
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
