//! Device actions: `POST /v1.0/deviceManagement/managedDevices/{id}/<action>`
//! answering 204 No Content (the device carries it out later). Params use
//! mdmhub's snake_case names (renamed here) or Graph's own.

use mdmhub_sdk::prelude::*;
use serde_json::{Map, Value};

use crate::{describe::VENDOR_ACTIONS, graph};

/// `wipe`'s parameters: ours, Graph's, and the JSON type Graph expects.
const WIPE_PARAMS: &[(&str, &str, Kind)] = &[
    ("keep_enrollment_data", "keepEnrollmentData", Kind::Bool),
    ("keep_user_data", "keepUserData", Kind::Bool),
    ("mac_os_unlock_code", "macOsUnlockCode", Kind::Text),
    // The name other connectors use for a Mac's erase PIN.
    ("pin", "macOsUnlockCode", Kind::Text),
    ("persist_esim_data_plan", "persistEsimDataPlan", Kind::Bool),
];

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Text,
}

/// Runs `request` on `device_id`.
pub fn run(
    ctx: &Context,
    device_id: &str,
    request: ActionRequest,
) -> Result<ActionOutcome, ConnectorError> {
    let params = action::params(&request)?;
    let (name, body) = match &request.kind {
        ActionKind::Lock => ("remoteLock", no_params("lock", params)?),
        ActionKind::Erase => ("wipe", wipe_params(params)?),
        ActionKind::Restart => ("rebootNow", no_params("restart", params)?),
        ActionKind::Shutdown => ("shutDown", no_params("shutdown", params)?),
        ActionKind::Retire => ("retire", no_params("retire", params)?),
        ActionKind::RefreshInventory => ("syncDevice", no_params("refresh-inventory", params)?),
        ActionKind::UnlockAccount => {
            return Err(ConnectorError::Unsupported(
                "Intune cannot unlock a local account; unlock the user in Entra ID or Active Directory"
                    .into(),
            ));
        }
        ActionKind::Vendor(name) => {
            if !VENDOR_ACTIONS.iter().any(|(n, _, _)| n == name) {
                return Err(ConnectorError::Unsupported(format!(
                    "Intune has no device action `{name}` in mdmhub; known: {}",
                    VENDOR_ACTIONS
                        .iter()
                        .map(|(n, _, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (name.as_str(), params)
        }
    };
    let mut req = Request::post(format!(
        "{}/v1.0/deviceManagement/managedDevices/{}/{name}",
        graph(ctx)?,
        segment(device_id)?
    ));
    if !body.is_empty() {
        req = req.json(&Value::Object(body));
    }
    req.send_ok()?;
    Ok(ActionOutcome::accepted().with_message(format!(
        "Intune queued `{name}`; the device carries it out when it next checks in"
    )))
}

/// Graph's action takes no body: refuse params rather than drop them.
fn no_params(
    action: &str,
    params: Map<String, Value>,
) -> Result<Map<String, Value>, ConnectorError> {
    if let Some(key) = params.keys().next() {
        return Err(ConnectorError::InvalidConfig(format!(
            "Intune's {action} takes no parameters (got `{key}`)"
        )));
    }
    Ok(params)
}

/// `wipe`'s body, renamed and type-checked so that a typo is refused here
/// instead of being ignored by Graph.
fn wipe_params(params: Map<String, Value>) -> Result<Map<String, Value>, ConnectorError> {
    let mut body = Map::new();
    for (key, value) in params {
        let Some((_, theirs, kind)) = WIPE_PARAMS
            .iter()
            .find(|(ours, theirs, _)| *ours == key || *theirs == key)
        else {
            let known: Vec<_> = WIPE_PARAMS.iter().map(|(ours, _, _)| *ours).collect();
            return Err(ConnectorError::InvalidConfig(format!(
                "erase has no parameter `{key}`; known: {}",
                known.join(", ")
            )));
        };
        let fits = match kind {
            Kind::Bool => value.is_boolean(),
            Kind::Text => value.is_string(),
        };
        if !fits {
            let want = match kind {
                Kind::Bool => "true or false",
                Kind::Text => "a string",
            };
            return Err(ConnectorError::InvalidConfig(format!(
                "erase parameter `{key}` must be {want}"
            )));
        }
        body.insert((*theirs).to_owned(), value);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn wipe_params_are_renamed_and_checked() {
        let body = wipe_params(map(json!({"keep_user_data": true, "pin": "123456"}))).unwrap();
        assert_eq!(
            Value::Object(body),
            json!({"keepUserData": true, "macOsUnlockCode": "123456"})
        );
        assert!(wipe_params(map(json!({"keepUserData": "yes"}))).is_err());
        assert!(wipe_params(map(json!({"keep_everything": true}))).is_err());
        assert!(no_params("lock", map(json!({"message": "x"}))).is_err());
    }
}
