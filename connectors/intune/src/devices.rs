//! Managed devices: `GET /v1.0/deviceManagement/managedDevices` (pages of
//! up to 1,000 in a `value` envelope, continued by `@odata.nextLink`), and
//! on `get` the single-device read with a `$select` of every property,
//! since lists blank `physicalMemoryInBytes`, `ethernetMacAddress`, `udid`
//! and `iccid`.

use mdmhub_sdk::prelude::*;
use serde::Deserialize;

use crate::{collection_page, graph};

/// Graph's cap on `$top` for managed devices (and its default page size).
const MAX_PAGE: u32 = 1_000;

/// Every v1.0 `managedDevice` property: a single read returns detail-only
/// fields only when they are named in `$select`.
const ALL_PROPERTIES: &str = "id,userId,deviceName,managedDeviceOwnerType,deviceActionResults,\
enrolledDateTime,lastSyncDateTime,operatingSystem,complianceState,jailBroken,managementAgent,\
managementState,osVersion,easActivated,easDeviceId,easActivationDateTime,azureADRegistered,\
deviceEnrollmentType,activationLockBypassCode,emailAddress,azureADDeviceId,\
deviceCategoryDisplayName,deviceRegistrationState,isSupervised,\
exchangeLastSuccessfulSyncDateTime,exchangeAccessState,exchangeAccessStateReason,\
remoteAssistanceSessionUrl,remoteAssistanceSessionErrorDetails,isEncrypted,userPrincipalName,\
model,manufacturer,imei,complianceGracePeriodExpirationDateTime,serialNumber,phoneNumber,\
androidSecurityPatchLevel,userDisplayName,configurationManagerClientEnabledFeatures,\
wiFiMacAddress,ethernetMacAddress,deviceHealthAttestationState,subscriberCarrier,meid,\
totalStorageSpaceInBytes,freeStorageSpaceInBytes,managedDeviceName,partnerReportedThreatState,\
requireUserEnrollmentApproval,managementCertificateExpirationDate,iccid,udid,notes,\
physicalMemoryInBytes,enrollmentProfileName";

/// One page of managed devices.
pub fn list(
    ctx: &Context,
    cursor: Option<String>,
    page_size: Option<u32>,
) -> Result<Page, ConnectorError> {
    let top = page_size.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let graph = graph(ctx)?;
    let resp = collection_page(cursor, || {
        format!("{graph}/v1.0/deviceManagement/managedDevices?$top={top}")
    })?;
    let items = resp.items_as::<Managed>("/value")?;
    let records = items.into_iter().map(|item| {
        let item = item?;
        let mut d = map(&item.value, Completeness::Summary)?;
        d.remote_data = item.raw.to_owned();
        Ok(Entity::Device(d))
    });
    Ok(page::from_items(records, resp.next()))
}

/// One device with every property, detail-only ones included.
pub fn get(ctx: &Context, id: &str) -> Result<Entity, ConnectorError> {
    let resp = Request::get(format!(
        "{}/v1.0/deviceManagement/managedDevices/{}?$select={ALL_PROPERTIES}",
        graph(ctx)?,
        segment(id)?
    ))
    .send_ok()?;
    let item = resp.item_as::<Managed>()?;
    let mut d = map(&item.value, Completeness::Full).map_err(|u| invalid_data(u.message))?;
    d.remote_data = item.raw.to_owned();
    Ok(Entity::Device(d))
}

/// The `managedDevice` properties the mapping reads, borrowed from the page.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Managed<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    device_name: Text<'a>,
    #[serde(borrow)]
    managed_device_name: Text<'a>,
    #[serde(borrow)]
    serial_number: Text<'a>,
    #[serde(borrow)]
    udid: Text<'a>,
    #[serde(borrow)]
    operating_system: Text<'a>,
    #[serde(borrow)]
    os_version: Text<'a>,
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(borrow)]
    manufacturer: Text<'a>,
    /// Beta only; read when present.
    #[serde(borrow)]
    chassis_type: Text<'a>,
    #[serde(borrow)]
    compliance_state: Text<'a>,
    #[serde(borrow)]
    management_state: Text<'a>,
    #[serde(borrow)]
    management_agent: Text<'a>,
    #[serde(borrow)]
    managed_device_owner_type: Text<'a>,
    #[serde(borrow)]
    device_enrollment_type: Text<'a>,
    #[serde(borrow)]
    enrollment_profile_name: Text<'a>,
    #[serde(borrow)]
    device_category_display_name: Text<'a>,
    #[serde(borrow, rename = "azureADDeviceId")]
    azure_ad_device_id: Text<'a>,
    #[serde(borrow)]
    jail_broken: Text<'a>,
    is_encrypted: Flag,
    is_supervised: Flag,
    #[serde(borrow)]
    last_sync_date_time: Text<'a>,
    #[serde(borrow)]
    enrolled_date_time: Text<'a>,
    #[serde(borrow)]
    user_id: Text<'a>,
    #[serde(borrow)]
    user_principal_name: Text<'a>,
    #[serde(borrow)]
    email_address: Text<'a>,
    #[serde(borrow)]
    user_display_name: Text<'a>,
    #[serde(borrow)]
    wi_fi_mac_address: Text<'a>,
    #[serde(borrow)]
    ethernet_mac_address: Text<'a>,
    #[serde(borrow)]
    total_storage_space_in_bytes: Text<'a>,
    #[serde(borrow)]
    physical_memory_in_bytes: Text<'a>,
    #[serde(borrow)]
    imei: Text<'a>,
    #[serde(borrow)]
    meid: Text<'a>,
    #[serde(borrow)]
    iccid: Text<'a>,
    #[serde(borrow)]
    phone_number: Text<'a>,
    #[serde(borrow)]
    subscriber_carrier: Text<'a>,
    #[serde(borrow)]
    android_security_patch_level: Text<'a>,
}

/// The normalized device. A list item (`Summary`) leaves the MAC list
/// unknown: lists carry the Wi-Fi MAC but blank the Ethernet one, and a
/// partial list would hide the full one from the last detail read.
fn map(v: &Managed, completeness: Completeness) -> Result<Device, Unmappable> {
    let remote_id = v.id.get().ok_or("managed device without `id`")?;
    let model = v.model.get();
    let platform = v
        .operating_system
        .as_str()
        .map(|os| platform(os, model.as_deref()));
    let (os_version, os_build) = os_version(v.os_version.as_str(), platform);
    let apple = matches!(
        platform,
        Some(Platform::Macos | Platform::Ios | Platform::Ipados | Platform::Tvos)
    );
    let mac_addresses = match completeness {
        Completeness::Summary => vec![],
        Completeness::Full => [&v.wi_fi_mac_address, &v.ethernet_mac_address]
            .into_iter()
            .filter_map(|m| m.as_str().and_then(lenient::mac_address))
            .fold(Vec::new(), |mut all, m| {
                if !all.contains(&m) {
                    all.push(m);
                }
                all
            }),
    };
    Ok(Device {
        completeness,
        name: v.device_name.get().or_else(|| v.managed_device_name.get()),
        serial_number: v.serial_number.get(),
        udid: v.udid.get(),
        asset_tag: None,
        device_type: device_type(v, platform, model.as_deref()),
        platform,
        manufacturer: v.manufacturer.get(),
        model_identifier: None,
        model,
        os_version,
        os_build,
        mac_addresses,
        ip_address: None,
        processor: None,
        memory_bytes: v.physical_memory_in_bytes.unsigned(true),
        storage_bytes: v.total_storage_space_in_bytes.unsigned(true),
        management_state: v.management_state.as_str().and_then(lenient::snake_case),
        is_compliant: v.compliance_state.as_str().and_then(is_compliant),
        is_encrypted: v.is_encrypted.get(),
        // Graph answers `false` for platforms without supervision.
        is_supervised: if apple { v.is_supervised.get() } else { None },
        last_check_in_at: v.last_sync_date_time.timestamp(),
        enrolled_at: v.enrolled_date_time.timestamp(),
        assigned_user: assigned_user(v),
        organization_remote_id: None,
        groups: v
            .device_category_display_name
            .get()
            .filter(|c| !c.eq_ignore_ascii_case("unknown"))
            .into_iter()
            .collect(),
        tags: vec![],
        web_url: None,              // the host fills it from the deep-link template
        remote_data: String::new(), // set by the caller, from the vendor's text
        extra: extra(v),
        remote_id,
    })
}

/// Graph's `operatingSystem` ("Windows", "macOS", "iOS", "iPadOS",
/// "Android", ...). Older tenants report iPads as "iOS": the model tells.
fn platform(os: &str, model: Option<&str>) -> Platform {
    let os = os.to_ascii_lowercase();
    let ipad = model.is_some_and(|m| m.to_ascii_lowercase().starts_with("ipad"));
    match os.as_str() {
        "ipados" => Platform::Ipados,
        "ios" if ipad => Platform::Ipados,
        "ios" => Platform::Ios,
        "macos" | "macmdm" | "mac os" => Platform::Macos,
        "tvos" => Platform::Tvos,
        "visionos" => Platform::Visionos,
        "linux" => Platform::Linux,
        "chromeos" | "chrome os" => Platform::Chromeos,
        o if o.starts_with("windows") => Platform::Windows,
        o if o.starts_with("android") => Platform::Android,
        _ => Platform::Other,
    }
}

/// The form factor: the (beta) chassis type when present, else what the
/// platform and model imply.
fn device_type(v: &Managed, platform: Option<Platform>, model: Option<&str>) -> Option<DeviceType> {
    if let Some(t) = v.chassis_type.as_str().and_then(pc::chassis_device_type) {
        return Some(t);
    }
    let model = model.unwrap_or_default();
    match platform? {
        Platform::Ios => Some(DeviceType::Phone),
        Platform::Ipados => Some(DeviceType::Tablet),
        Platform::Tvos => Some(DeviceType::Tv),
        Platform::Macos => apple::device_type(model),
        Platform::Android => Some(if model.to_ascii_lowercase().contains("tab") {
            DeviceType::Tablet
        } else {
            DeviceType::Phone
        }),
        Platform::Windows | Platform::Linux | Platform::Chromeos => pc::model_device_type(model),
        _ => None,
    }
}

/// The OS version and build: macOS and iOS say `14.5 (23F79)`; Windows
/// folds the build into `10.0.22631.3880`.
fn os_version(raw: Option<&str>, platform: Option<Platform>) -> (Option<String>, Option<String>) {
    let Some(raw) = raw else {
        return (None, None);
    };
    if let Some((version, rest)) = raw.split_once('(') {
        let build = rest.trim_end_matches(')').trim();
        let build = (!build.is_empty()).then(|| build.to_owned());
        return (Some(version.trim().to_owned()), build);
    }
    if platform == Some(Platform::Windows) {
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() == 4 {
            return (Some(raw.to_owned()), Some(parts[2..].join(".")));
        }
    }
    (Some(raw.to_owned()), None)
}

/// `complianceState`: `compliant` or not; `unknown`, `error`, `conflict`
/// and `configManager` (evaluated elsewhere) say nothing.
fn is_compliant(state: &str) -> Option<bool> {
    match state.to_ascii_lowercase().as_str() {
        "compliant" => Some(true),
        // In grace period: not compliant yet, but still allowed access.
        "noncompliant" | "ingraceperiod" => Some(false),
        _ => None,
    }
}

/// The primary user: `emailAddress`, else a UPN that is an address.
fn assigned_user(v: &Managed) -> Option<UserRef> {
    let email = v
        .email_address
        .get()
        .or_else(|| v.user_principal_name.get().filter(|u| u.contains('@')));
    let remote_id = v
        .user_id
        .get()
        .filter(|id| id != "00000000-0000-0000-0000-000000000000");
    let name = v.user_display_name.get();
    (remote_id.is_some() || email.is_some() || name.is_some()).then_some(UserRef {
        remote_id,
        email,
        name,
    })
}

fn extra(v: &Managed) -> Vec<ExtraField> {
    let snake = |t: &Text| t.as_str().and_then(lenient::snake_case);
    let zero_guid = |id: &String| id.chars().all(|c| c == '0' || c == '-');
    [
        ("compliance_state", snake(&v.compliance_state)),
        ("management_agent", snake(&v.management_agent)),
        ("ownership", snake(&v.managed_device_owner_type)),
        ("enrollment_type", snake(&v.device_enrollment_type)),
        ("enrollment_profile", v.enrollment_profile_name.get()),
        (
            "azure_ad_device_id",
            v.azure_ad_device_id.get().filter(|id| !zero_guid(id)),
        ),
        (
            "jail_broken",
            v.jail_broken
                .get()
                .filter(|j| !j.eq_ignore_ascii_case("unknown")),
        ),
        ("user_principal_name", v.user_principal_name.get()),
        ("imei", v.imei.get()),
        ("meid", v.meid.get()),
        ("iccid", v.iccid.get()),
        ("phone_number", v.phone_number.get()),
        ("carrier", v.subscriber_carrier.get()),
        (
            "android_security_patch_level",
            v.android_security_patch_level.get(),
        ),
    ]
    .into_iter()
    .filter_map(|(key, value)| {
        value.map(|value| ExtraField {
            key: key.into(),
            value,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn windows_item() -> serde_json::Value {
        json!({
            "id": "05c7d8a3-6a1e-4b2c-9f3d-2e1a0b9c8d7e",
            "deviceName": "ACME-LT-0042",
            "serialNumber": "7XK2LM3",
            "model": "Latitude 7440",
            "manufacturer": "Dell Inc.",
            "operatingSystem": "Windows",
            "osVersion": "10.0.22631.3880",
            "complianceState": "compliant",
            "isEncrypted": true,
            "isSupervised": false,
            "lastSyncDateTime": "2026-07-23T09:31:49Z",
            "enrolledDateTime": "0001-01-01T00:00:00Z",
            "userPrincipalName": "dana@example.com",
            "userDisplayName": "Dana Lee",
            "emailAddress": "",
            "userId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
            "wiFiMacAddress": "001A2B3C4D5E",
            "ethernetMacAddress": null,
            "physicalMemoryInBytes": 0,
            "totalStorageSpaceInBytes": 510738296832u64,
            "managedDeviceOwnerType": "company",
            "managementState": "retirePending",
            "udid": null,
            "azureADDeviceId": "00000000-0000-0000-0000-000000000000",
            "deviceCategoryDisplayName": "Unknown"
        })
    }

    fn mapped(v: &serde_json::Value, c: Completeness) -> Device {
        let text = v.to_string();
        map(&serde_json::from_str(&text).unwrap(), c).unwrap()
    }

    #[test]
    fn list_item_absorbs_graph_quirks() {
        let d = mapped(&windows_item(), Completeness::Summary);
        assert_eq!(d.platform, Some(Platform::Windows));
        assert_eq!(d.device_type, Some(DeviceType::Laptop));
        assert_eq!(d.os_build.as_deref(), Some("22631.3880"));
        assert_eq!(d.enrolled_at, None, "year 1 is never");
        assert_eq!(d.memory_bytes, None, "0 in lists means not reported");
        assert_eq!(d.storage_bytes, Some(510_738_296_832));
        assert_eq!(d.is_compliant, Some(true));
        assert_eq!(d.is_supervised, None, "supervision is Apple's");
        assert_eq!(d.management_state.as_deref(), Some("retire_pending"));
        assert!(d.mac_addresses.is_empty(), "a list's MACs are partial");
        assert!(d.groups.is_empty());
        let user = d.assigned_user.unwrap();
        assert_eq!(user.email.as_deref(), Some("dana@example.com"));
        assert!(!d.extra.iter().any(|e| e.key == "azure_ad_device_id"));
    }

    #[test]
    fn detail_read_and_apple_devices() {
        let mut v = windows_item();
        v["ethernetMacAddress"] = json!("F4A80D112233");
        v["physicalMemoryInBytes"] = json!(17179869184u64);
        let d = mapped(&v, Completeness::Full);
        assert_eq!(d.mac_addresses, ["00:1a:2b:3c:4d:5e", "f4:a8:0d:11:22:33"]);
        assert_eq!(d.memory_bytes, Some(16 << 30));

        let mut mac = windows_item();
        mac["operatingSystem"] = json!("macOS");
        mac["model"] = json!("MacBook Pro");
        mac["osVersion"] = json!("14.5 (23F79)");
        mac["isSupervised"] = json!(true);
        mac["complianceState"] = json!("inGracePeriod");
        let d = mapped(&mac, Completeness::Summary);
        assert_eq!(d.device_type, Some(DeviceType::Laptop));
        assert_eq!(
            (d.os_version.as_deref(), d.os_build.as_deref()),
            (Some("14.5"), Some("23F79"))
        );
        assert_eq!(d.is_supervised, Some(true));
        assert_eq!(d.is_compliant, Some(false));

        let mut ipad = windows_item();
        ipad["operatingSystem"] = json!("iOS");
        ipad["model"] = json!("iPad Air (5th generation)");
        let d = mapped(&ipad, Completeness::Summary);
        assert_eq!(d.platform, Some(Platform::Ipados));
        assert_eq!(d.device_type, Some(DeviceType::Tablet));
    }

    #[test]
    fn a_device_without_id_is_unmappable() {
        assert!(
            map(
                &serde_json::from_str(r#"{"deviceName": "x"}"#).unwrap(),
                Completeness::Summary
            )
            .is_err()
        );
    }
}
