//! Mapping failures to [`ConnectorError`].

use crate::ConnectorError;

/// Builds an `invalid-vendor-data` error.
pub fn invalid_data(what: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::InvalidVendorData(what.to_string())
}

/// Adds context to `serde_json` results.
pub trait ResultExt<T> {
    /// Maps a decoding error to `invalid-vendor-data`, saying what was decoded.
    fn vendor_data(self, what: &str) -> Result<T, ConnectorError>;
}

impl<T> ResultExt<T> for Result<T, serde_json::Error> {
    fn vendor_data(self, what: &str) -> Result<T, ConnectorError> {
        self.map_err(|e| invalid_data(format!("{what}: {e}")))
    }
}
