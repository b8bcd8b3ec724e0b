//! Apps detected on one device: `GET /beta/deviceManagement/managedDevices/
//! {id}/detectedApps`. Per-device detected apps exist only in Graph beta
//! (v1.0 lists them tenant-wide); the response is a `value` envelope that
//! may continue by `@odata.nextLink`.

use mdmhub_sdk::prelude::*;

use crate::{collection_page, graph};

/// One page of the apps on `device`.
pub fn list(ctx: &Context, device: &str, cursor: Option<String>) -> Result<Page, ConnectorError> {
    let url = format!(
        "{}/beta/deviceManagement/managedDevices/{}/detectedApps",
        graph(ctx)?,
        segment(device)?
    );
    let resp = collection_page(cursor, || url)?;
    let items = resp.items("/value")?;
    Ok(page::from_items(
        items.iter().map(|a| app(device, a)),
        resp.next(),
    ))
}

fn app(device: &str, item: &Item) -> Result<Entity, Unmappable> {
    let v = &item.value;
    let s = |p: &str| lenient::string(v, p);
    // A detected app's id names one (name, version) across the tenant, so
    // it is unique within a device too.
    let remote_id = s("/id").ok_or("detected app without `id`")?;
    let name = s("/displayName").ok_or_else(|| Unmappable {
        remote_id: Some(remote_id.clone()),
        message: "detected app without a name".into(),
    })?;
    let extra = lenient::extras(
        v,
        &[
            ("platform", "/platform"),
            // Not `deviceCount`: it changes with other devices.
            ("size_bytes", "/sizeInByte"),
        ],
    );
    Ok(Entity::App(App {
        remote_id,
        device_remote_id: device.into(),
        name,
        version: s("/version"),
        identifier: None,
        publisher: s("/publisher"),
        remote_data: item.raw.to_owned(),
        extra,
    }))
}
