//! Turning connector records into what the store keeps: normalized JSON,
//! a device's summary merged with its last detail read, content hashes, and
//! the columns copied out for filtering.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_128;

use crate::contract::Entity;
use crate::model;
use crate::store::records::{AppWrite, Table};

/// Summary fields whose change alone does not warrant a new detail read.
const VOLATILE: &[&str] = &["last_check_in_at", "completeness", "web_url"];

/// A record from a connector, split for storage.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The vendor's id.
    pub remote_id: String,
    /// Normalized fields (no `remote_data`).
    pub fields: Map<String, Value>,
    /// The vendor's JSON text.
    pub remote_data: String,
}

impl Incoming {
    /// Splits a connector's entity.
    pub fn new(e: Entity) -> Self {
        let (_, fields, remote_data) = model::into_record_parts(e);
        let remote_id = fields
            .get("remote_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Self {
            remote_id,
            fields,
            remote_data,
        }
    }
}

/// `summary` with every field it lacks (null, empty list or object) taken
/// from `detail`: a list page never erases what only a detail read knows.
pub fn merge(
    summary: &Map<String, Value>,
    detail: Option<&Map<String, Value>>,
) -> Map<String, Value> {
    let mut out = summary.clone();
    let Some(detail) = detail else {
        return out;
    };
    for (k, dv) in detail {
        let missing = match out.get(k) {
            None | Some(Value::Null) => true,
            Some(Value::Array(a)) => a.is_empty(),
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if missing {
            out.insert(k.clone(), dv.clone());
        } else if let (Some(Value::Object(sv)), Value::Object(dv)) = (out.get_mut(k), dv) {
            // `extra` and `assigned_user`: summary keys win, detail adds.
            for (ik, iv) in dv {
                if sv.get(ik).is_none_or(Value::is_null) {
                    sv.insert(ik.clone(), iv.clone());
                }
            }
        }
    }
    if detail.contains_key("completeness") {
        out.insert("completeness".into(), "full".into());
    }
    out
}

/// Version of what the host makes of a connector's record (`model`'s
/// normalizing, [`merge`], [`projections`]): bumped when that changes, so
/// that stored records are rewritten although their listing is the same.
const NORMALIZATION: u8 = 1;

/// The record's id and a fingerprint of everything the connector said about
/// it: a listing whose fingerprint matches the stored one is unchanged,
/// recognized without normalizing, merging or hashing the record.
/// XXH3-128 (change detection, not integrity) of its postcard encoding
/// (strings as length and bytes: no JSON escaping of `remote-data`).
pub fn fingerprint(e: &Entity) -> (String, String) {
    let bytes = postcard::to_extend(e, vec![NORMALIZATION]).expect("records serialize");
    (
        remote_id(e).to_owned(),
        format!("{:032x}", xxh3_128(&bytes)),
    )
}

/// The vendor's id of an entity, as the connector gave it.
pub fn remote_id(e: &Entity) -> &str {
    match e {
        Entity::Device(d) => &d.remote_id,
        Entity::User(u) => &u.remote_id,
        Entity::App(a) => &a.remote_id,
        Entity::Organization(o) => &o.remote_id,
    }
}

/// Hash of a stored record's content.
pub fn content_hash(record: &str, remote_data: &str) -> String {
    let d = Sha256::new()
        .chain_update(record.as_bytes())
        .chain_update([0])
        .chain_update(remote_data.as_bytes())
        .finalize();
    hex::encode(&d[..16])
}

/// Hash of a device's app list, in the order read.
pub fn apps_hash(apps: &[AppWrite]) -> String {
    let mut h = Sha256::new();
    for a in apps {
        for part in [&a.remote_id, &a.record, &a.remote_data] {
            h.update(part.as_bytes());
            h.update([0]);
        }
    }
    hex::encode(&h.finalize()[..16])
}

/// Hash of the summary fields that matter for a detail re-read.
pub fn summary_hash(summary: &Map<String, Value>) -> String {
    let mut h = Sha256::new();
    for (k, v) in summary {
        if VOLATILE.contains(&k.as_str()) {
            continue;
        }
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.to_string().as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..16])
}

/// The filter columns of `table` from a normalized record.
pub fn projections(table: Table, fields: &Map<String, Value>) -> Vec<Option<String>> {
    // Blank values would match each other (a "" email linking to a "" user).
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let email = |v: Option<&Value>| text(v).map(|e| e.to_lowercase());
    table
        .projections()
        .iter()
        .map(|col| match *col {
            "assigned_user_email" => {
                email(fields.get("assigned_user").and_then(|u| u.get("email")))
            }
            "email" => email(fields.get("email")),
            other => text(fields.get(other)),
        })
        .collect()
}

/// Whether `projections` (of `table`) hold `stored`, the stored values of
/// its [`Table::indexed_projections`] in that order.
pub fn indexed_unchanged(
    table: Table,
    projections: &[Option<String>],
    stored: &[Option<String>],
) -> bool {
    let all = table.projections();
    let indexed = table.indexed_projections();
    indexed.len() == stored.len()
        && indexed.iter().zip(stored).all(|(column, stored)| {
            all.iter()
                .position(|c| c == column)
                .is_some_and(|i| projections.get(i) == Some(stored))
        })
}

/// Parses a stored JSON object.
pub fn parse_object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_summary_never_erases_detail_fields() {
        let summary = obj(
            json!({"name": "Mac", "udid": null, "mac_addresses": [], "completeness": "summary",
            "extra": {"a": "1"}, "assigned_user": {"email": "x@y", "name": null}}),
        );
        let detail = obj(
            json!({"name": "Old", "udid": "U", "mac_addresses": ["m"], "completeness": "full",
            "extra": {"a": "0", "b": "2"}, "assigned_user": {"email": "x@y", "name": "X"}}),
        );
        let m = merge(&summary, Some(&detail));
        assert_eq!(m["name"], "Mac", "the newer summary wins");
        assert_eq!(m["udid"], "U");
        assert_eq!(m["mac_addresses"], json!(["m"]));
        assert_eq!(m["completeness"], "full");
        assert_eq!(m["extra"], json!({"a": "1", "b": "2"}));
        assert_eq!(m["assigned_user"]["name"], "X");
        assert_eq!(merge(&summary, None), summary);
    }

    #[test]
    fn a_fingerprint_changes_with_anything_the_connector_said() {
        use crate::contract::{Organization, OrganizationKind};
        let org = |name: &str, remote_data: &str| {
            Entity::Organization(Organization {
                remote_id: "o1".into(),
                name: name.into(),
                kind: OrganizationKind::Site,
                remote_data: remote_data.into(),
                extra: vec![],
            })
        };
        let (id, a) = fingerprint(&org("HQ", r#"{"id":"o1"}"#));
        assert_eq!(id, "o1");
        assert_eq!(a, fingerprint(&org("HQ", r#"{"id":"o1"}"#)).1);
        assert_ne!(a, fingerprint(&org("HQ2", r#"{"id":"o1"}"#)).1);
        assert_ne!(a, fingerprint(&org("HQ", r#"{"id":"o1","x":1}"#)).1);
        // Field boundaries count: no two records share an encoding.
        assert_ne!(
            fingerprint(&org("HQ", "a")).1,
            fingerprint(&org("HQa", "")).1
        );
    }

    #[test]
    fn check_ins_do_not_change_the_summary_hash() {
        let a = obj(json!({"name": "Mac", "last_check_in_at": "2024-01-01T00:00:00Z"}));
        let b = obj(json!({"name": "Mac", "last_check_in_at": "2024-02-01T00:00:00Z"}));
        let c = obj(json!({"name": "Mac 2", "last_check_in_at": "2024-02-01T00:00:00Z"}));
        assert_eq!(summary_hash(&a), summary_hash(&b));
        assert_ne!(summary_hash(&a), summary_hash(&c));
        assert_ne!(content_hash("{}", "a"), content_hash("{}a", ""));
    }

    #[test]
    fn projections_follow_the_table() {
        let d = obj(
            json!({"name": "Mac", "serial_number": "S", "device_type": "laptop", "platform": "macos",
            "assigned_user": {"email": "Dana@X.io"}, "memory_bytes": 1}),
        );
        let p = projections(Table::Devices, &d);
        assert_eq!(p[0].as_deref(), Some("Mac"));
        assert_eq!(p[5].as_deref(), Some("dana@x.io"));
        assert_eq!(p[6], None);
        let u = projections(Table::Users, &obj(json!({"email": "A@B.c", "name": "A"})));
        assert_eq!(u, [Some("a@b.c".into()), Some("A".into())]);
    }

    #[test]
    fn indexed_projections_are_compared_with_the_stored_ones() {
        let d = obj(json!({"name": "Mac", "serial_number": "S1",
            "assigned_user": {"email": "dana@x.io"}}));
        let p = projections(Table::Devices, &d);
        let stored = |serial: &str, email: Option<&str>| {
            vec![Some(serial.to_owned()), email.map(str::to_owned)]
        };
        assert!(indexed_unchanged(
            Table::Devices,
            &p,
            &stored("S1", Some("dana@x.io"))
        ));
        assert!(!indexed_unchanged(
            Table::Devices,
            &p,
            &stored("S0", Some("dana@x.io"))
        ));
        assert!(!indexed_unchanged(Table::Devices, &p, &stored("S1", None)));
        assert!(
            !indexed_unchanged(Table::Devices, &p, &[]),
            "nothing stored to compare"
        );
    }
}
