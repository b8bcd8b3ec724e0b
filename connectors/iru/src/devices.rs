//! Devices: `GET /api/v1/devices` (a bare array, `limit` <= 300 + `offset`,
//! stable `ordering=device_id`), and on `get` the same object merged with
//! `/details` (model identifier, MAC, UDID, FileVault, memory, processor).

use mdmhub_sdk::prelude::*;
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
    let items = resp.items("")?;
    Ok(page::from_items(items.iter().map(summary), resp.next()))
}

/// One device with its details.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let base = format!("{}/api/v1/devices/{}", api(ctx)?, segment(id)?);
    let device = Request::get(&base).send_ok()?;
    let device = device.item()?;
    let details: Value = Request::get(format!("{base}/details")).send_ok()?.json()?;
    let mut d = map_summary(&device.value).map_err(|u| invalid_data(u.message))?;
    merge_details(&mut d, &details);
    // The summary object with its details under `details`.
    let mut raw = device.value;
    if let Value::Object(m) = &mut raw {
        m.insert("details".into(), details);
    }
    d.remote_data = serde_json::to_string(&raw).map_err(invalid_data)?;
    Ok(Entity::Device(d))
}

fn summary(item: &Item) -> Result<Entity, Unmappable> {
    let mut d = map_summary(&item.value)?;
    d.remote_data = item.raw.to_owned();
    Ok(Entity::Device(d))
}

/// The normalized summary of a list item (or `GET /devices/{id}`).
fn map_summary(v: &Value) -> Result<Device, Unmappable> {
    let remote_id = lenient::string(v, "/device_id").ok_or("device without `device_id`")?;
    let s = |p: &str| lenient::string(v, p);
    let model = s("/model");
    let platform = s("/platform").as_deref().map(platform);
    let device_type = model
        .as_deref()
        .and_then(apple::device_type)
        .or_else(|| platform.and_then(platform_device_type));
    let mut extra = lenient::extras(
        v,
        &[
            ("agent_version", "/agent_version"),
            ("agent_installed", "/agent_installed"),
            ("mdm_enabled", "/mdm_enabled"),
            ("is_missing", "/is_missing"),
            ("lost_mode_status", "/lost_mode_status"),
            ("blueprint_name", "/blueprint_name"),
            ("os_version_extra", "/supplemental_os_version_extra"),
        ],
    );
    if let Some(first) = lenient::timestamp(v, "/first_enrollment") {
        extra.push(ExtraField {
            key: "first_enrolled_at".into(),
            value: first,
        });
    }
    Ok(Device {
        completeness: Completeness::Summary,
        name: s("/device_name"),
        serial_number: s("/serial_number"),
        udid: None,
        asset_tag: s("/asset_tag"),
        device_type,
        platform,
        manufacturer: Some("Apple".into()),
        model,
        model_identifier: None,
        os_version: s("/os_version"),
        os_build: s("/supplemental_build_version"),
        mac_addresses: vec![],
        ip_address: None,
        processor: None,
        memory_bytes: None,
        storage_bytes: None,
        management_state: Some(management_state(v).into()),
        is_compliant: None,
        is_encrypted: None,
        is_supervised: None,
        last_check_in_at: lenient::timestamp(v, "/last_check_in"),
        enrolled_at: lenient::timestamp(v, "/last_enrollment"),
        assigned_user: user_ref(v.get("user")),
        organization_remote_id: s("/blueprint_id"),
        groups: s("/blueprint_name").into_iter().collect(),
        tags: tags(v.get("tags")),
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
    d.assigned_user = d
        .assigned_user
        .take()
        .or_else(|| user_ref(details.pointer("/general/assigned_user")));
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

fn management_state(v: &Value) -> &'static str {
    if lenient::boolean(v, "/is_removed") == Some(true) {
        "removed"
    } else if lenient::string(v, "/lost_mode_status")
        .is_some_and(|s| s.eq_ignore_ascii_case("enabled"))
    {
        "lost"
    } else if lenient::boolean(v, "/mdm_enabled") == Some(false) {
        "unmanaged"
    } else {
        "managed"
    }
}

/// `user` is an object, or `""` when the device is unassigned.
fn user_ref(v: Option<&Value>) -> Option<UserRef> {
    let v = v.filter(|v| v.is_object())?;
    let r = UserRef {
        remote_id: lenient::string(v, "/id"),
        email: lenient::string(v, "/email"),
        name: lenient::string(v, "/name"),
    };
    (r.remote_id.is_some() || r.email.is_some() || r.name.is_some()).then_some(r)
}

fn tags(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::trim))
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
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
        let d = map_summary(&list_item()).unwrap();
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
        let mut d = map_summary(&item).unwrap();
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
        assert!(map_summary(&json!({"device_name": "x"})).is_err());
    }
}
