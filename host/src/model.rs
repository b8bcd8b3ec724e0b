//! Normalized records as callers see them in JSON: snake_case fields,
//! lowercase enum values (`laptop`, `macos`), `remote_data` as JSON rather
//! than a string, `extra` as an object. Shared by the CLI and the API.

use serde_json::{Map, Value};

use crate::contract::{ActionOutcome, Entity};

/// Fields whose values are WIT enums, rendered in lowercase.
const ENUM_FIELDS: &[&str] = &["device_type", "platform", "completeness", "kind", "status"];

/// An entity as a JSON object, with `"type"` naming its kind.
pub fn entity_json(e: &Entity) -> Value {
    let (kind, mut out, remote_data) = record_parts(e);
    out.insert("type".into(), kind.into());
    out.insert(
        "remote_data".into(),
        serde_json::from_str(&remote_data).unwrap_or(Value::String(remote_data)),
    );
    Value::Object(out)
}

/// An entity's kind name, its normalized fields without `remote_data`, and
/// `remote_data` as the vendor's text (the store keeps the two apart).
pub fn record_parts(e: &Entity) -> (&'static str, Map<String, Value>, String) {
    let (kind, value) = match e {
        Entity::Device(d) => ("device", serde_json::to_value(d)),
        Entity::User(u) => ("user", serde_json::to_value(u)),
        Entity::App(a) => ("app", serde_json::to_value(a)),
        Entity::Organization(o) => ("organization", serde_json::to_value(o)),
    };
    let Ok(Value::Object(mut fields)) = value else {
        unreachable!("records serialize to objects")
    };
    let remote_data = match fields.remove("remote_data") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    normalize(&mut fields);
    (kind, fields, remote_data)
}

/// [`record_parts`] of an owned entity: `remote_data` is moved out, not
/// copied through a JSON value (a device read carries kilobytes of it).
pub fn into_record_parts(mut e: Entity) -> (&'static str, Map<String, Value>, String) {
    let remote_data = std::mem::take(match &mut e {
        Entity::Device(d) => &mut d.remote_data,
        Entity::User(u) => &mut u.remote_data,
        Entity::App(a) => &mut a.remote_data,
        Entity::Organization(o) => &mut o.remote_data,
    });
    let (kind, fields, _) = record_parts(&e);
    (kind, fields, remote_data)
}

/// An action outcome; sensitive values are included only if `reveal`.
pub fn outcome_json(o: &ActionOutcome, reveal: bool) -> Value {
    let values: Map<String, Value> = o
        .values
        .iter()
        .map(|v| {
            let shown = if v.sensitive && !reveal {
                Value::String("(sensitive, not shown)".into())
            } else {
                Value::String(v.value.clone())
            };
            (v.key.clone(), shown)
        })
        .collect();
    serde_json::json!({
        "status": crate::contract::enum_name(&o.status),
        "command_id": o.command_id,
        "message": o.message,
        "values": values,
    })
}

/// Lower-cases enum values and turns `extra` lists into objects, in place
/// (records are normalized by the hundred thousand in a sync).
fn normalize(fields: &mut Map<String, Value>) {
    for (k, v) in fields.iter_mut() {
        match v {
            Value::Array(items) if k == "extra" => {
                let extra = std::mem::take(items)
                    .into_iter()
                    .filter_map(|mut i| {
                        let value = i.get_mut("value").map(Value::take)?;
                        match i.get_mut("key").map(Value::take)? {
                            Value::String(key) => Some((key, value)),
                            _ => None,
                        }
                    })
                    .collect();
                *v = Value::Object(extra);
            }
            Value::String(s) if ENUM_FIELDS.contains(&k.as_str()) => s.make_ascii_lowercase(),
            Value::Object(inner) => normalize(inner),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::*;

    #[test]
    fn devices_render_like_the_design() {
        let d = Device {
            remote_id: "d1".into(),
            completeness: Completeness::Summary,
            name: Some("Mac".into()),
            serial_number: None,
            udid: None,
            asset_tag: None,
            device_type: Some(DeviceType::Laptop),
            platform: Some(Platform::Macos),
            manufacturer: None,
            model: None,
            model_identifier: None,
            os_version: None,
            os_build: None,
            mac_addresses: vec![],
            ip_address: None,
            processor: None,
            memory_bytes: Some(1),
            storage_bytes: None,
            management_state: None,
            is_compliant: None,
            is_encrypted: None,
            is_supervised: None,
            last_check_in_at: None,
            enrolled_at: None,
            assigned_user: Some(UserRef {
                remote_id: None,
                email: Some("a@b.c".into()),
                name: None,
            }),
            organization_remote_id: None,
            groups: vec![],
            tags: vec![],
            web_url: None,
            remote_data: r#"{"x":1}"#.into(),
            extra: vec![ExtraField {
                key: "k".into(),
                value: "v".into(),
            }],
        };
        let v = entity_json(&Entity::Device(d));
        assert_eq!(v["type"], "device");
        assert_eq!(v["device_type"], "laptop");
        assert_eq!(v["platform"], "macos");
        assert_eq!(v["completeness"], "summary");
        assert_eq!(v["remote_data"]["x"], 1);
        assert_eq!(v["extra"]["k"], "v");
        assert_eq!(v["assigned_user"]["email"], "a@b.c");
        assert_eq!(v["serial_number"], Value::Null);
    }
}
