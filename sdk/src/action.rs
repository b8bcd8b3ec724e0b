//! Action requests and outcomes: reading a request's JSON params, renaming
//! mdmhub's snake_case keys to a vendor's, and building outcomes.

use serde_json::{Map, Value};

use crate::{ActionOutcome, ActionRequest, ActionStatus, ConnectorError, OutcomeValue};

/// A request's params as a JSON object (`""` and `null` are empty).
pub fn params(request: &ActionRequest) -> Result<Map<String, Value>, ConnectorError> {
    let text = request.params.trim();
    if text.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(_) => Err(ConnectorError::InvalidConfig(
            "action params must be a JSON object".into(),
        )),
        Err(e) => Err(ConnectorError::InvalidConfig(format!(
            "action params are not valid JSON: {e}"
        ))),
    }
}

/// Renames keys per `(ours, theirs)`; keys not in the table pass through,
/// so callers may also use the vendor's own names.
pub fn rename(mut params: Map<String, Value>, table: &[(&str, &str)]) -> Map<String, Value> {
    for (ours, theirs) in table {
        if let Some(v) = params.remove(*ours) {
            params.insert((*theirs).to_owned(), v);
        }
    }
    params
}

impl ActionOutcome {
    /// The vendor accepted the command; it runs on the device later.
    pub fn accepted() -> Self {
        Self {
            status: ActionStatus::Accepted,
            command_id: None,
            message: None,
            values: Vec::new(),
        }
    }

    /// The action is done.
    pub fn completed() -> Self {
        Self {
            status: ActionStatus::Completed,
            ..Self::accepted()
        }
    }

    /// Adds the vendor's command id.
    pub fn with_command_id(mut self, id: Option<String>) -> Self {
        self.command_id = id;
        self
    }

    /// Adds a message for the caller.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Adds a value the caller needs; `sensitive` ones (a PIN) are shown once
    /// and never logged or stored in plaintext by the host.
    pub fn with_value(mut self, key: &str, value: String, sensitive: bool) -> Self {
        self.values.push(OutcomeValue {
            key: key.into(),
            value,
            sensitive,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ActionKind;

    #[test]
    fn params_parse_and_rename() {
        let req = |p: &str| ActionRequest {
            kind: ActionKind::Lock,
            params: p.into(),
        };
        assert!(params(&req("")).unwrap().is_empty());
        assert!(params(&req("null")).unwrap().is_empty());
        assert!(params(&req("[1]")).is_err());
        assert!(params(&req("{")).is_err());
        let m = rename(
            params(&req(r#"{"message":"hi","Footnote":"f"}"#)).unwrap(),
            &[("message", "Message")],
        );
        assert_eq!(m["Message"], "hi");
        assert_eq!(m["Footnote"], "f");
    }
}
