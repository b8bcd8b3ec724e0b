//! Installed apps of one device: `GET /api/v1/devices/{id}/apps`, one
//! unpaged `{"device_id", "apps": [...]}` object.

use mdmhub_sdk::prelude::*;

use crate::api;

/// Every app on `device` (one page).
pub fn list(ctx: &Context, device: &str) -> Result<Page, ConnectorError> {
    let url = format!("{}/api/v1/devices/{}/apps", api(ctx)?, segment(device)?);
    let resp = Request::get(url).send_ok()?;
    let apps = resp.items("/apps")?;
    Ok(page::from_items(apps.iter().map(|a| app(device, a)), None))
}

fn app(device: &str, item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let s = |p: &str| lenient::string(v, p);
    let identifier = s("/bundle_id");
    // `app_id` is Iru's; bundle ids identify apps that lack one.
    let remote_id = s("/app_id")
        .or_else(|| identifier.clone())
        .ok_or("app without `app_id` or `bundle_id`")?;
    let name = s("/app_name")
        .or_else(|| identifier.clone())
        .ok_or_else(|| Unmappable {
            remote_id: Some(remote_id.clone()),
            message: "app without a name".into(),
        })?;
    let extra = lenient::extras(
        v,
        &[
            ("source", "/source"),
            ("path", "/path"),
            ("bundle_size", "/bundle_size"),
        ],
    );
    Ok(Entity::App(App {
        remote_id,
        device_remote_id: device.into(),
        name,
        version: s("/version"),
        identifier,
        publisher: None,
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
