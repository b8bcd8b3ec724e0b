//! Devices: `GET /api/v1/devices` (a bare array, `limit` <= 300 + `offset`,
//! stable `ordering=device_id`), and on `get` the same object merged with
//! `/details` (model identifier, MAC, UDID, FileVault, memory, processor).

use mdmhub_sdk::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::api;

/// One page of device summaries at the cursor's offset.
pub fn list(ctx: &Context, cursor: Option<&str>, size: u32) -> Result<Page, ConnectorError> {
    let offset = OffsetCursor::parse(cursor)?;
    let resp = Request::get(format!("{}/api/v1/devices", api(ctx)?))
        .query("ordering", "device_id")
        // Iru caps `limit` at 300 and `size` never exceeds it.
        .paging(OffsetCursor::paging_until_short(offset, size, ""))
        .send_ok()?;
    let items = resp.items_as::<Summary>("")?;
    let records = items.into_iter().map(|item| {
        let item = item?;
        let mut d = map_summary(&item.value)?;
        d.remote_data = item.raw.to_owned();
        Ok(Entity::Device(d))
    });
    Ok(page::from_items(records, resp.next()))
}

/// One device with its details.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let base = format!("{}/api/v1/devices/{}", api(ctx)?, segment(id)?);
    let device = Request::get(&base).send_ok()?;
    let device = device.item_as::<Summary>()?;
    let details = Request::get(format!("{base}/details")).send_ok()?;
    let details = details.item()?;
    let mut d = map_summary(&device.value).map_err(|u| invalid_data(u.message))?;
    merge_details(&mut d, &details.value);
    // The summary object with its details under `details`.
    d.remote_data = device
        .with_member("details", details.raw)
        .ok_or_else(|| invalid_data("a device that is not a JSON object"))?;
    Ok(Entity::Device(d))
}

/// The fields of a device summary the mapping reads, borrowed from the page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Summary<'a> {
    #[serde(borrow)]
    device_id: Text<'a>,
    #[serde(borrow)]
    device_name: Text<'a>,
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(borrow)]
    serial_number: Text<'a>,
    #[serde(borrow)]
    platform: Text<'a>,
    #[serde(borrow)]
    os_version: Text<'a>,
    #[serde(borrow)]
    supplemental_build_version: Text<'a>,
    #[serde(borrow)]
    supplemental_os_version_extra: Text<'a>,
    #[serde(borrow)]
    last_check_in: Text<'a>,
    #[serde(borrow)]
    first_enrollment: Text<'a>,
    #[serde(borrow)]
    last_enrollment: Text<'a>,
    #[serde(borrow)]
    user: Object<UserSummary<'a>>,
    #[serde(borrow)]
    asset_tag: Text<'a>,
    #[serde(borrow)]
    blueprint_id: Text<'a>,
    #[serde(borrow)]
    blueprint_name: Text<'a>,
    #[serde(borrow)]
    agent_version: Text<'a>,
    agent_installed: Flag,
    mdm_enabled: Flag,
    is_missing: Flag,
    is_removed: Flag,
    #[serde(borrow)]
    lost_mode_status: Text<'a>,
    #[serde(borrow)]
    tags: List<Text<'a>>,
}

/// `user` in a summary (`""` when unassigned).
#[derive(Deserialize, Default)]
#[serde(default)]
struct UserSummary<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    email: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
}

/// The normalized summary of a list item (or `GET /devices/{id}`).
fn map_summary(v: &Summary) -> Result<Device, Unmappable> {
    let remote_id = v.device_id.get().ok_or("device without `device_id`")?;
    let model = v.model.get();
    let platform = v.platform.as_str().map(platform);
    let device_type = model
        .as_deref()
        .and_then(apple::device_type)
        .or_else(|| platform.and_then(platform_device_type));
    let extra = [
        ("agent_version", v.agent_version.get()),
        (
            "agent_installed",
            v.agent_installed.get().map(|b| b.to_string()),
        ),
        ("mdm_enabled", v.mdm_enabled.get().map(|b| b.to_string())),
        ("is_missing", v.is_missing.get().map(|b| b.to_string())),
        ("lost_mode_status", v.lost_mode_status.get()),
        ("blueprint_name", v.blueprint_name.get()),
        ("os_version_extra", v.supplemental_os_version_extra.get()),
        ("first_enrolled_at", v.first_enrollment.timestamp()),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        value.map(|value| ExtraField {
            key: key.into(),
            value,
        })
    })
    .collect();
    Ok(Device {
        completeness: Completeness::Summary,
        name: v.device_name.get(),
        serial_number: v.serial_number.get(),
        udid: None,
        asset_tag: v.asset_tag.get(),
        device_type,
        platform,
        manufacturer: Some("Apple".into()),
        model,
        model_identifier: None,
        os_version: v.os_version.get(),
        os_build: v.supplemental_build_version.get(),
        mac_addresses: vec![],
        ip_address: None,
        processor: None,
        memory_bytes: None,
        storage_bytes: None,
        management_state: Some(management_state(v).into()),
        is_compliant: None,
        is_encrypted: None,
        is_supervised: None,
        last_check_in_at: v.last_check_in.timestamp(),
        enrolled_at: v.last_enrollment.timestamp(),
        assigned_user: v
            .user
            .get()
            .and_then(|u| user_ref(u.id.get(), u.email.get(), u.name.get())),
        organization_remote_id: v.blueprint_id.get(),
        groups: v.blueprint_name.get().into_iter().collect(),
        tags: v.tags.iter().filter_map(Text::get).collect(),
        web_url: None,              // the host fills it from the deep-link template
        remote_data: String::new(), // set by the caller, from the vendor's text
        extra,
        remote_id,
    })
}

/// Adds what only `/details` knows.
fn merge_details(d: &mut Device, details: &Value) {
    let hw = |p: &str| lenient::string(details, &format!("/hardware_overview{p}"));
    d.completeness = Completeness::Full;
    d.model_identifier = hw("/model_identifier");
    // iPad and Apple TV report `uuid` where Macs and iPhones say `udid`.
    d.udid = hw("/udid").or_else(|| hw("/uuid"));
    d.processor = hw("/processor_name");
    d.memory_bytes = hw("/memory").as_deref().and_then(lenient::human_bytes);
    d.serial_number = d.serial_number.take().or_else(|| hw("/serial_number"));
    d.device_type = d
        .device_type
        .or_else(|| d.model_identifier.as_deref().and_then(apple::device_type));
    d.mac_addresses = lenient::string(details, "/network/mac_address")
        .as_deref()
        .and_then(lenient::mac_address)
        .into_iter()
        .collect();
    d.ip_address = lenient::string(details, "/network/ip_address");
    d.is_encrypted = lenient::boolean(details, "/filevault/filevault_enabled");
    d.is_supervised = lenient::boolean(details, "/mdm/supervised");
    // Volumes of one APFS container each report the container's capacity.
    d.storage_bytes = details
        .get("volumes")
        .and_then(Value::as_array)
        .and_then(|vols| {
            vols.iter()
                .filter_map(|v| lenient::string(v, "/capacity"))
                .filter_map(|c| lenient::human_bytes(&c))
                .max()
        });
    d.assigned_user = d.assigned_user.take().or_else(|| {
        let u = |p: &str| lenient::string(details, &format!("/general/assigned_user{p}"));
        user_ref(u("/id"), u("/email"), u("/name"))
    });
    if let Some(last_user) = lenient::string(details, "/general/last_user") {
        d.extra.push(ExtraField {
            key: "last_user".into(),
            value: last_user,
        });
    }
}

/// Iru's `platform` values.
fn platform(p: &str) -> Platform {
    match p.to_ascii_lowercase().as_str() {
        "mac" => Platform::Macos,
        "iphone" => Platform::Ios,
        "ipad" => Platform::Ipados,
        "appletv" => Platform::Tvos,
        "vision" | "visionpro" | "applevision" => Platform::Visionos,
        _ => Platform::Other,
    }
}

/// The form factor a platform implies when the model says nothing.
fn platform_device_type(p: Platform) -> Option<DeviceType> {
    match p {
        Platform::Ios => Some(DeviceType::Phone),
        Platform::Ipados => Some(DeviceType::Tablet),
        Platform::Tvos => Some(DeviceType::Tv),
        _ => None,
    }
}

fn management_state(v: &Summary) -> &'static str {
    if v.is_removed.get() == Some(true) {
        "removed"
    } else if v
        .lost_mode_status
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("enabled"))
    {
        "lost"
    } else if v.mdm_enabled.get() == Some(false) {
        "unmanaged"
    } else {
        "managed"
    }
}

/// A user reference, if any of its parts is known.
fn user_ref(
    remote_id: Option<String>,
    email: Option<String>,
    name: Option<String>,
) -> Option<UserRef> {
    (remote_id.is_some() || email.is_some() || name.is_some()).then_some(UserRef {
        remote_id,
        email,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list_item() -> Value {
        json!({
            "device_id": "03f81208-2b6a-4a77-81f5-cf1633bcfb95",
            "device_name": "Dana's MacBook Air",
            "model": "MacBook Air (M2, 2022)",
            "serial_number": "C02FK1ABCD12",
            "platform": "Mac",
            "os_version": "14.4.1",
            "supplemental_build_version": "23E224",
            "supplemental_os_version_extra": "",
            "last_check_in": "2024-07-23T14:11:37.150080Z",
            "user": {"email": "dana@example.com", "name": "Dana Lee", "id": "5344c996", "is_archived": false},
            "asset_tag": "",
            "blueprint_id": "ab102b9d",
            "mdm_enabled": true,
            "agent_installed": true,
            "is_missing": false,
            "is_removed": false,
            "agent_version": "4.5.9 (5160)",
            "first_enrollment": "2024-01-26 16:15:36.087016+00:00",
            "last_enrollment": "2024-05-13 20:09:27.374451+00:00",
            "blueprint_name": "Engineering",
            "lost_mode_status": "",
            "tags": ["eng", ""]
        })
    }

    #[test]
    fn summary_absorbs_quirks() {
        let text = list_item().to_string();
        let d = map_summary(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(d.asset_tag, None, "\"\" is unknown");
        assert_eq!(
            d.enrolled_at.as_deref(),
            Some("2024-05-13T20:09:27.374451Z")
        );
        assert_eq!(
            d.last_check_in_at.as_deref(),
            Some("2024-07-23T14:11:37.15008Z")
        );
        assert_eq!(d.device_type, Some(DeviceType::Laptop));
        assert_eq!(d.platform, Some(Platform::Macos));
        assert_eq!(
            d.assigned_user.unwrap().email.as_deref(),
            Some("dana@example.com")
        );
        assert_eq!(d.tags, ["eng"]);
        assert_eq!(d.management_state.as_deref(), Some("managed"));
        assert!(!d.extra.iter().any(|e| e.key == "os_version_extra"));
    }

    #[test]
    fn unassigned_ipad_and_details() {
        let mut item = list_item();
        item["user"] = json!("");
        item["platform"] = json!("iPad");
        item["model"] = json!("");
        let text = item.to_string();
        let mut d = map_summary(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(d.assigned_user, None);
        assert_eq!(d.device_type, Some(DeviceType::Tablet));
        merge_details(
            &mut d,
            &json!({
                "general": {"assigned_user": ""},
                "mdm": {"supervised": "True"},
                "filevault": {"filevault_enabled": null},
                "hardware_overview": {"uuid": "u-1", "memory": "", "model_identifier": "iPad11,6"},
                "network": {},
                "volumes": [{"capacity": "64 GB"}, {"capacity": "bogus"}]
            }),
        );
        assert_eq!(d.completeness, Completeness::Full);
        assert_eq!(d.udid.as_deref(), Some("u-1"));
        assert_eq!(d.is_supervised, Some(true));
        assert_eq!(d.is_encrypted, None);
        assert_eq!(d.memory_bytes, None);
        assert_eq!(d.storage_bytes, Some(64 << 30));
        assert!(d.mac_addresses.is_empty());
    }

    #[test]
    fn a_device_without_id_is_unmappable() {
        assert!(map_summary(&serde_json::from_str(r#"{"device_name": "x"}"#).unwrap()).is_err());
    }
}
