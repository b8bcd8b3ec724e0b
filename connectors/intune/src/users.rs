//! Entra users: `GET /v1.0/users` (pages of up to 999, continued by
//! `@odata.nextLink`) with a `$select`, since Graph's default user shape
//! leaves out the department and whether the account is enabled.

use mdmhub_sdk::prelude::*;

use crate::{collection_page, graph};

/// Graph's cap on `$top` for users (`1000` is refused with a 400).
const MAX_PAGE: u32 = 999;

/// The user properties mdmhub reads and keeps as `remote-data`.
const SELECT: &str = "id,displayName,mail,userPrincipalName,givenName,surname,department,\
jobTitle,accountEnabled,employeeId,officeLocation,createdDateTime";

/// One page of users.
pub fn list(
    ctx: &Context,
    cursor: Option<String>,
    page_size: Option<u32>,
) -> Result<Page, ConnectorError> {
    let top = page_size.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let graph = graph(ctx)?;
    let resp = collection_page(cursor, || {
        format!("{graph}/v1.0/users?$top={top}&$select={SELECT}")
    })?;
    let items = resp.items("/value")?;
    Ok(page::from_items(items.iter().map(user), resp.next()))
}

/// One user.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let url = format!(
        "{}/v1.0/users/{}?$select={SELECT}",
        graph(ctx)?,
        segment(id)?
    );
    let resp = Request::get(url).send_ok()?;
    user(&resp.item()?).map_err(|u| invalid_data(u.message))
}

fn user(item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let s = |p: &str| lenient::string(v, p);
    let remote_id = s("/id").ok_or("user without `id`")?;
    let upn = s("/userPrincipalName");
    // Devices name their user by e-mail or UPN; the same rule links them.
    let email = s("/mail").or_else(|| upn.clone().filter(|u| u.contains('@')));
    let extra = lenient::extras(
        v,
        &[
            ("given_name", "/givenName"),
            ("surname", "/surname"),
            ("employee_id", "/employeeId"),
            ("office_location", "/officeLocation"),
            ("created_at", "/createdDateTime"),
        ],
    );
    Ok(Entity::User(User {
        remote_id,
        email,
        name: s("/displayName"),
        username: upn,
        department: s("/department"),
        job_title: s("/jobTitle"),
        is_active: lenient::boolean(v, "/accountEnabled"),
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
