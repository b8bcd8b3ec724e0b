//! Blueprints, Iru's unit of organization: `GET /api/v1/blueprints` in a
//! `{count, next, previous, results}` envelope, paged by its `next` link.

use mdmhub_sdk::prelude::*;
use serde_json::Value;

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
    let body: Value = resp.json()?;
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid_data("/api/v1/blueprints: no `results` array"))?;
    Ok(page::from_items(results.iter().map(blueprint), resp.next()))
}

/// One blueprint.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let v: Value = Request::get(format!("{}/api/v1/blueprints/{}", api(ctx)?, segment(id)?))
        .send_ok()?
        .json()?;
    blueprint(&v).map_err(|u| invalid_data(u.message))
}

fn blueprint(v: &Value) -> Result<Entity, Unmappable> {
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
        remote_data: v.to_string(),
        extra,
    }))
}
