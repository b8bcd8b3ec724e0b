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

/// The normalized action names, as the CLI and the API take them.
pub const ACTION_NAMES: &str =
    "lock, erase, restart, shutdown, unlock-account, retire, refresh-inventory, vendor:NAME";

impl ActionKind {
    /// The name the CLI and API use (`lock`, `unlock-account`, `vendor:NAME`).
    pub fn name(&self) -> String {
        match self {
            ActionKind::Lock => "lock".into(),
            ActionKind::Erase => "erase".into(),
            ActionKind::Restart => "restart".into(),
            ActionKind::Shutdown => "shutdown".into(),
            ActionKind::UnlockAccount => "unlock-account".into(),
            ActionKind::Retire => "retire".into(),
            ActionKind::RefreshInventory => "refresh-inventory".into(),
            ActionKind::Vendor(name) => format!("vendor:{name}"),
        }
    }
}

impl std::str::FromStr for ActionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "lock" => ActionKind::Lock,
            "erase" => ActionKind::Erase,
            "restart" => ActionKind::Restart,
            "shutdown" => ActionKind::Shutdown,
            "unlock-account" => ActionKind::UnlockAccount,
            "retire" => ActionKind::Retire,
            "refresh-inventory" => ActionKind::RefreshInventory,
            other => match other.strip_prefix("vendor:") {
                Some(name) if !name.is_empty() => ActionKind::Vendor(name.into()),
                _ => return Err(format!("unknown action `{other}` ({ACTION_NAMES})")),
            },
        })
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
