//! The shapes of API answers, for the OpenAPI document. Records are served
//! as the store's normalized JSON (`crate::model`); these types describe
//! that JSON and are never built at run time.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// An event POSTed to a webhook subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEvent {
    /// `device.created`, `device.updated`, `device.removed`,
    /// `device.compliance_changed`, `sync.completed`, `sync.failed` or
    /// `action.completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339 UTC).
    pub timestamp: String,
    /// `device` (device events; `compliance_changed` adds
    /// `previous.is_compliant`), `run` (sync events) or `action`, each as
    /// the API shows it.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage<T> {
    /// The records of this page.
    pub result: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// How many records `result` holds.
    pub result_count: usize,
}

/// Fields every synced record has.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordMeta {
    /// mdmhub's stable id.
    pub id: String,
    /// The account it was synced from.
    pub account_id: String,
    /// That account's name.
    pub account: String,
    /// The connector id.
    pub connector: String,
    /// The vendor's id.
    pub remote_id: String,
    /// When mdmhub last stored a change (RFC 3339 UTC).
    pub updated_at: String,
    /// `active` or `removed` (not on apps).
    pub status: Option<String>,
    /// First synced.
    pub first_seen_at: Option<String>,
    /// Last seen by a sync: when it was last stored, or the start of the
    /// account's last complete sync if that listed it (unchanged) later.
    pub last_seen_at: Option<String>,
    /// When a sync confirmed it gone.
    pub removed_at: Option<String>,
    /// Vendor fields mdmhub does not normalize.
    pub extra: BTreeMap<String, String>,
    /// The vendor's JSON (lists include it only with `include=remote_data`;
    /// for devices `{"summary": ..., "details": ...}`).
    pub remote_data: Option<Value>,
}

/// A device's assigned user as the vendor names it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignedUser {
    /// The vendor's user id.
    pub remote_id: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
}

/// Another record of the same physical device (same serial number).
#[derive(Debug, Serialize, ToSchema)]
pub struct SameAs {
    /// Its mdmhub id.
    pub id: String,
    /// Its account.
    pub account_id: String,
    /// Its vendor id.
    pub remote_id: String,
    /// `active` or `removed`.
    pub status: String,
}

/// A managed device.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    /// Common record fields.
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// Name.
    pub name: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// UDID.
    pub udid: Option<String>,
    /// Asset tag.
    pub asset_tag: Option<String>,
    /// laptop, desktop, tablet, phone, tv, server, virtual, other.
    pub device_type: Option<String>,
    /// macos, ios, ipados, tvos, visionos, windows, android, linux, chromeos, other.
    pub platform: Option<String>,
    /// Manufacturer.
    pub manufacturer: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Model identifier.
    pub model_identifier: Option<String>,
    /// OS version.
    pub os_version: Option<String>,
    /// OS build.
    pub os_build: Option<String>,
    /// MAC addresses.
    pub mac_addresses: Vec<String>,
    /// IP address.
    pub ip_address: Option<String>,
    /// Processor.
    pub processor: Option<String>,
    /// Memory in bytes.
    pub memory_bytes: Option<i64>,
    /// Storage in bytes.
    pub storage_bytes: Option<i64>,
    /// The vendor's management state.
    pub management_state: Option<String>,
    /// Compliant.
    pub is_compliant: Option<bool>,
    /// Disk encrypted.
    pub is_encrypted: Option<bool>,
    /// Supervised.
    pub is_supervised: Option<bool>,
    /// Last check-in.
    pub last_check_in_at: Option<String>,
    /// Enrolled.
    pub enrolled_at: Option<String>,
    /// The vendor's assigned user.
    pub assigned_user: Option<AssignedUser>,
    /// The mdmhub user with the assigned user's email.
    pub user_id: Option<String>,
    /// The vendor's organization id.
    pub organization_remote_id: Option<String>,
    /// The mdmhub organization.
    pub organization_id: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The device in the vendor's console.
    pub web_url: Option<String>,
    /// Single reads only: other records of the same physical device.
    pub same_as: Option<Vec<SameAs>>,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// Common record fields.
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// Email.
    pub email: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Department.
    pub department: Option<String>,
    /// Job title.
    pub job_title: Option<String>,
    /// Active at the vendor.
    pub is_active: Option<bool>,
}

/// An app installed on a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct App {
    /// Common record fields.
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// The device it is installed on (mdmhub id).
    pub device_id: String,
    /// The vendor's device id.
    pub device_remote_id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: Option<String>,
    /// Bundle id or product code.
    pub identifier: Option<String>,
    /// Publisher.
    pub publisher: Option<String>,
}

/// An organization: tenant, site, blueprint, group or location.
#[derive(Debug, Serialize, ToSchema)]
pub struct Organization {
    /// Common record fields.
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// Name.
    pub name: String,
    /// tenant, site, blueprint, group, location.
    pub kind: String,
}
