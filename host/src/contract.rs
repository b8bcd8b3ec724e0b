//! The connector contract's types, as the host sees them (the newest WIT
//! version). Older versions would be converted into these.

pub use crate::runtime::bindings::mdmhub::connector::http::{
    BodyCursorPaging, Header, HttpError, KeysetPaging, NextUrlPaging, OffsetPaging,
    PageNumberPaging, Paging, Request as HttpRequest, Response as HttpResponse,
};
pub use crate::runtime::bindings::mdmhub::connector::types::*;

/// The WIT package version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.0";

impl ResourceKind {
    /// The plural name used by the CLI and API (`devices`, `users`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Devices => "devices",
            ResourceKind::Users => "users",
            ResourceKind::Apps => "apps",
            ResourceKind::Organizations => "organizations",
        }
    }
}

impl std::str::FromStr for ResourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            ResourceKind::Devices,
            ResourceKind::Users,
            ResourceKind::Apps,
            ResourceKind::Organizations,
        ]
        .into_iter()
        .find(|k| k.name() == s || k.name().trim_end_matches('s') == s)
        .ok_or_else(|| format!("unknown resource `{s}` (devices, users, apps, organizations)"))
    }
}

/// The lowercase name of a WIT enum value (`laptop`, `macos`, `blueprint`),
/// as the CLI and the API show it.
pub fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s.to_lowercase(),
        _ => String::new(),
    }
}
