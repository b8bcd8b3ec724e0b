//! The tenant as the one organization: `GET /v1.0/organization` answers a
//! `value` array holding the tenant the token belongs to.

use mdmhub_sdk::prelude::*;

use crate::graph;

/// The tenant (one page).
pub fn list(ctx: &Context, cursor: Option<String>) -> Result<Page, ConnectorError> {
    if cursor.is_some() {
        return Err(ConnectorError::InvalidConfig(
            "the organization listing has one page".into(),
        ));
    }
    let resp = Request::get(format!("{}/v1.0/organization", graph(ctx)?)).send_ok()?;
    let items = resp.items("/value")?;
    Ok(page::from_items(items.iter().map(tenant), None))
}

/// The tenant, by its id.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let url = format!("{}/v1.0/organization/{}", graph(ctx)?, segment(id)?);
    let resp = Request::get(url).send_ok()?;
    tenant(&resp.item()?).map_err(|u| invalid_data(u.message))
}

fn tenant(item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let remote_id = lenient::string(v, "/id").ok_or("organization without `id`")?;
    let name = lenient::string(v, "/displayName").unwrap_or_else(|| remote_id.clone());
    let mut extra = lenient::extras(
        v,
        &[
            ("country", "/countryLetterCode"),
            ("created_at", "/createdDateTime"),
            ("tenant_type", "/tenantType"),
        ],
    );
    let default_domain = v
        .get("verifiedDomains")
        .and_then(|d| d.as_array())
        .and_then(|ds| {
            ds.iter()
                .find(|d| lenient::boolean(d, "/isDefault") == Some(true))
        })
        .and_then(|d| lenient::string(d, "/name"));
    if let Some(domain) = default_domain {
        extra.push(ExtraField {
            key: "default_domain".into(),
            value: domain,
        });
    }
    Ok(Entity::Organization(Organization {
        remote_id,
        name,
        kind: OrganizationKind::Tenant,
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
