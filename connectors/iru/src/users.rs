//! Directory users: `GET /api/v1/users`, cursor paging by the absolute
//! `next` link (which may point at the web host), followed as given.

use mdmhub_sdk::prelude::*;

use crate::api;

/// One page of users; the cursor is the vendor's `next` URL.
pub fn list(ctx: &Context, cursor: Option<String>) -> Result<Page, ConnectorError> {
    let first = format!("{}/api/v1/users", api(ctx)?);
    let resp = Request::get(NextUrlCursor::url(cursor, || first))
        .paging(NextUrlCursor::paging("/next"))
        .send_ok()?;
    let results = resp.items("/results")?;
    Ok(page::from_items(results.iter().map(user), resp.next()))
}

/// One user.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let resp = Request::get(format!("{}/api/v1/users/{}", api(ctx)?, segment(id)?)).send_ok()?;
    user(&resp.item()?).map_err(|u| invalid_data(u.message))
}

fn user(item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let s = |p: &str| lenient::string(v, p);
    let remote_id = s("/id").ok_or("user without `id`")?;
    let archived = lenient::boolean(v, "/archived");
    let is_active = match (lenient::boolean(v, "/active"), archived) {
        (_, Some(true)) => Some(false),
        (active, _) => active,
    };
    let extra = lenient::extras(
        v,
        &[
            ("integration_type", "/integration/type"),
            ("integration_name", "/integration/name"),
            ("device_count", "/device_count"),
            ("deprecated_user_id", "/deprecated_user_id"),
            ("archived", "/archived"),
        ],
    );
    Ok(Entity::User(User {
        remote_id,
        email: s("/email"),
        name: s("/name"),
        username: None,
        department: s("/department"),
        job_title: s("/job_title"),
        is_active,
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
