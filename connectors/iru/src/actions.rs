//! Device actions: `POST /api/v1/devices/{id}/action/{name}` with an
//! optional JSON body, and retire as `DELETE /api/v1/devices/{id}`. Params
//! use mdmhub's snake_case names (renamed here) or Iru's own.

use mdmhub_sdk::prelude::*;
use serde_json::{Map, Value};

use crate::{api, describe::VENDOR_ACTIONS};

/// Runs `request` on `device_id`.
pub fn run(
    ctx: &Context,
    device_id: &str,
    request: ActionRequest,
) -> Result<ActionOutcome, ConnectorError> {
    let device = format!("{}/api/v1/devices/{}", api(ctx)?, segment(device_id)?);
    let params = action::params(&request)?;
    let (name, params): (&str, Map<String, Value>) = match &request.kind {
        ActionKind::Lock => (
            "lock",
            action::rename(
                params,
                &[("message", "Message"), ("phone_number", "PhoneNumber")],
            ),
        ),
        ActionKind::Erase => (
            "erase",
            action::rename(
                params,
                &[
                    ("pin", "PIN"),
                    ("preserve_data_plan", "PreserveDataPlan"),
                    ("disallow_proximity_setup", "DisallowProximitySetup"),
                    ("return_to_service", "ReturnToService"),
                ],
            ),
        ),
        ActionKind::Restart => (
            "restart",
            action::rename(
                params,
                &[
                    ("rebuild_kernel_cache", "RebuildKernelCache"),
                    ("notify_user", "NotifyUser"),
                ],
            ),
        ),
        ActionKind::Shutdown => ("shutdown", params),
        ActionKind::UnlockAccount => {
            let params = action::rename(params, &[("username", "UserName")]);
            if !params.get("UserName").is_some_and(Value::is_string) {
                return Err(ConnectorError::InvalidConfig(
                    "unlock-account needs {\"username\": \"<local macOS account>\"}".into(),
                ));
            }
            ("unlockaccount", params)
        }
        ActionKind::RefreshInventory => ("updateinventory", params),
        ActionKind::Retire => {
            Request::delete(&device).send_ok()?;
            return Ok(ActionOutcome::completed());
        }
        ActionKind::Vendor(name) => {
            let known = VENDOR_ACTIONS.iter().any(|(n, _, _)| n == name);
            if !known {
                return Err(ConnectorError::Unsupported(format!(
                    "Iru has no vendor action `{name}`"
                )));
            }
            (name.as_str(), params)
        }
    };
    let mut req = Request::post(format!("{device}/action/{name}"));
    if !params.is_empty() {
        req = req.json(&Value::Object(params));
    }
    let resp = req.send_ok()?;
    let mut outcome = ActionOutcome::accepted();
    // A Mac's lock answers with the 6-digit PIN that unlocks it.
    if request.kind == ActionKind::Lock && !resp.body().is_empty() {
        let body: Value = resp.json()?;
        if let Some(pin) = lenient::string(&body, "/PIN") {
            outcome = outcome.with_value("pin", pin, true);
        }
    }
    Ok(outcome)
}
