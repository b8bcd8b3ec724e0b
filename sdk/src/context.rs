//! Reading the account's config and origins from a call's [`Context`].

use crate::{ConnectorError, Context};

/// Convenience readers on [`Context`].
pub trait ContextExt {
    /// The value of a config key, if set and not empty.
    fn config(&self, key: &str) -> Option<&str>;
    /// The value of a required config key, or `invalid-config`.
    fn require(&self, key: &str) -> Result<&str, ConnectorError>;
    /// The expanded origin at `index` of `describe().origins`.
    fn origin(&self, index: usize) -> Result<&str, ConnectorError>;
}

impl ContextExt for Context {
    fn config(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.value.as_str())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, key: &str) -> Result<&str, ConnectorError> {
        self.config(key)
            .ok_or_else(|| ConnectorError::InvalidConfig(format!("config `{key}` is required")))
    }

    fn origin(&self, index: usize) -> Result<&str, ConnectorError> {
        self.origins.get(index).map(String::as_str).ok_or_else(|| {
            ConnectorError::InvalidConfig(format!("the host passed no origin #{index}"))
        })
    }
}
