//! Rendering events. A body is `{"type", "timestamp", "data"}` (the
//! Standard Webhooks payload shape); `data` holds the object as the API
//! shows it: `device` (without `remote_data`), `run`, or `action`.
//!
//! Device events come from comparing each device with what was last
//! announced about it, after its account's sync wrote its changes: a device
//! changed twice in one run is announced once, in its final state, and a
//! sync killed before announcing is announced by the next one.

use serde_json::{Value, json};

use crate::store::audit::AuditEntry;
use crate::store::runs::RunRow;
use crate::store::webhooks::{Announced, NewEvent, Unannounced};
use crate::store::{Store, StoreError};

/// A device was seen for the first time.
pub const DEVICE_CREATED: &str = "device.created";
/// A device's normalized record changed (or it came back after removal).
pub const DEVICE_UPDATED: &str = "device.updated";
/// A device's removal was confirmed.
pub const DEVICE_REMOVED: &str = "device.removed";
/// A device's `is_compliant` changed (sent with `device.updated`).
pub const DEVICE_COMPLIANCE_CHANGED: &str = "device.compliance_changed";
/// A sync run succeeded.
pub const SYNC_COMPLETED: &str = "sync.completed";
/// A sync run failed.
pub const SYNC_FAILED: &str = "sync.failed";
/// A device action ended (whatever its outcome).
pub const ACTION_COMPLETED: &str = "action.completed";

/// Devices announced per transaction.
const ANNOUNCE_BATCH: i64 = 500;

/// A new event id: `msg_`, the time in milliseconds (so ids sort by
/// creation) and 80 random bits.
pub fn event_id() -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let random = rand::random::<u128>() & ((1 << 80) - 1);
    format!("msg_{millis:012x}{random:020x}")
}

/// An event of `event_type` about `data`.
pub fn event(event_type: &'static str, data: Value) -> NewEvent {
    let body = json!({
        "type": event_type,
        "timestamp": crate::store::now(),
        "data": data,
    });
    NewEvent {
        id: event_id(),
        event_type,
        body: body.to_string(),
    }
}

/// `sync.completed` or `sync.failed` for a finished run.
pub fn run_finished(run: &RunRow) -> Vec<NewEvent> {
    let kind = if run.status == "succeeded" {
        SYNC_COMPLETED
    } else {
        SYNC_FAILED
    };
    let mut shown = serde_json::to_value(run).expect("a run serializes");
    if let Some(o) = shown.as_object_mut() {
        o.remove("holder"); // which process ran it is not the caller's business
    }
    vec![event(kind, json!({ "run": shown }))]
}

/// `action.completed` for a finished audit entry, as `GET /v1/actions`
/// shows it.
pub fn action_finished(e: &AuditEntry) -> Vec<NewEvent> {
    let params = serde_json::from_str(&e.params).unwrap_or(Value::String(e.params.clone()));
    let action = json!({
        "id": e.id,
        "key_name": e.key_name,
        "at": e.at,
        "device_id": e.device_id,
        "account_id": e.account_id,
        "action": e.action,
        "params": params,
        "status": e.status,
        "command_id": e.command_id,
        "error": e.error,
    });
    vec![event(ACTION_COMPLETED, json!({ "action": action }))]
}

/// A device's compliance as announced: `true`, `false` or `unknown`.
fn compliance_of(column: Option<&str>) -> &'static str {
    match column {
        Some("true") => "true",
        Some("false") => "false",
        _ => "unknown",
    }
}

fn compliance_value(text: &str) -> Value {
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::Null,
    }
}

/// What to mark on a device and which events announce its change.
pub fn device_change(u: &Unannounced) -> (Announced, Vec<NewEvent>) {
    let compliance = compliance_of(u.is_compliant.as_deref());
    let device = || json!({ "device": u.device });
    let active = u.status == "active";
    let mut events = Vec::new();
    match (u.announced_hash.is_some(), u.announced_status.as_deref()) {
        // Created and removed before anyone heard of it: nothing to say.
        (false, _) if !active => {}
        (false, _) => events.push(event(DEVICE_CREATED, device())),
        (true, Some("active")) if !active => events.push(event(DEVICE_REMOVED, device())),
        (true, _) if active => {
            events.push(event(DEVICE_UPDATED, device()));
            if let Some(previous) = u.announced_compliance.as_deref()
                && previous != compliance
            {
                events.push(event(
                    DEVICE_COMPLIANCE_CHANGED,
                    json!({
                        "device": u.device,
                        "previous": { "is_compliant": compliance_value(previous) },
                    }),
                ));
            }
        }
        // A removed device's stored data changed: no one is told.
        (true, _) => {}
    }
    let id = u
        .device
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let marks = Announced {
        id,
        content_hash: u.content_hash.clone(),
        status: u.status.clone(),
        compliance: compliance.to_owned(),
        previous_hash: u.announced_hash.clone(),
    };
    (marks, events)
}

/// Announces every device of the account whose state differs from its last
/// announcement; when no subscription of `workspace` takes device events,
/// only marks them announced. Returns the devices announced with events.
pub async fn announce_devices(
    store: &Store,
    workspace: &str,
    account_id: &str,
) -> Result<usize, StoreError> {
    if !store.subscribed(workspace, "device.").await? {
        store.announce_silently(account_id).await?;
        return Ok(0);
    }
    let mut after = String::new();
    let mut announced = 0;
    loop {
        let batch = store
            .unannounced_devices(account_id, &after, ANNOUNCE_BATCH)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last
            .device
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let marks: Vec<_> = batch.iter().map(device_change).collect();
        announced += store.announce_devices(workspace, &marks).await?;
    }
    Ok(announced)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unannounced(
        status: &str,
        announced: Option<(&str, &str)>,
        compliance: Option<&str>,
        is_compliant: Value,
    ) -> Unannounced {
        let device = json!({"id": "dev_1", "is_compliant": is_compliant});
        Unannounced {
            device: device.as_object().unwrap().clone(),
            content_hash: "new".into(),
            status: status.into(),
            announced_hash: announced.map(|a| a.0.into()),
            announced_status: announced.map(|a| a.1.into()),
            announced_compliance: compliance.map(str::to_owned),
            is_compliant: is_compliant.as_bool().map(|b| b.to_string()),
        }
    }

    fn types(u: &Unannounced) -> Vec<&'static str> {
        device_change(u).1.iter().map(|e| e.event_type).collect()
    }

    #[test]
    fn device_changes_map_to_events() {
        let created = unannounced("active", None, None, json!(true));
        assert_eq!(types(&created), [DEVICE_CREATED]);
        let (marks, _) = device_change(&created);
        assert_eq!(
            (marks.id.as_str(), marks.compliance.as_str()),
            ("dev_1", "true")
        );
        assert!(types(&unannounced("removed", None, None, json!(true))).is_empty());
        let gone = unannounced(
            "removed",
            Some(("old", "active")),
            Some("true"),
            json!(true),
        );
        assert_eq!(types(&gone), [DEVICE_REMOVED]);
        let same = unannounced("active", Some(("old", "active")), Some("true"), json!(true));
        assert_eq!(types(&same), [DEVICE_UPDATED]);
        let flipped = unannounced(
            "active",
            Some(("old", "active")),
            Some("true"),
            json!(false),
        );
        assert_eq!(types(&flipped), [DEVICE_UPDATED, DEVICE_COMPLIANCE_CHANGED]);
        let body: Value = serde_json::from_str(&device_change(&flipped).1[1].body).unwrap();
        assert_eq!(body["type"], DEVICE_COMPLIANCE_CHANGED);
        assert_eq!(body["data"]["previous"]["is_compliant"], true);
        assert_eq!(body["data"]["device"]["is_compliant"], false);
        // Never announced with a compliance (before migration 0006): no
        // claim about what it was.
        let legacy = unannounced("active", Some(("old", "active")), None, json!(false));
        assert_eq!(types(&legacy), [DEVICE_UPDATED]);
        let back = unannounced(
            "active",
            Some(("old", "removed")),
            Some("true"),
            json!(true),
        );
        assert_eq!(types(&back), [DEVICE_UPDATED]);
    }

    #[test]
    fn event_ids_sort_by_time_and_differ() {
        let a = event_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = event_id();
        assert!(a < b && a.len() == b.len() && a.starts_with("msg_"));
    }
}
