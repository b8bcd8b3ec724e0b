//! Short human-readable renderings of a connector's description.

use crate::contract::*;

/// The auth scheme in a few words.
pub fn auth(a: &AuthScheme) -> String {
    match a {
        AuthScheme::None => "none".into(),
        AuthScheme::Bearer(_) => "bearer token".into(),
        AuthScheme::ApiKey(k) => format!("API key in `{}`", k.header),
        AuthScheme::Basic(_) => "basic".into(),
        AuthScheme::Oauth2ClientCredentials(o) => {
            format!("OAuth2 client credentials ({})", o.token_url)
        }
        AuthScheme::TokenExchange(t) => format!("token exchange ({})", t.token_url),
    }
}

/// The rate policy in a few words.
pub fn rate(p: &RatePolicy) -> String {
    let mut parts: Vec<String> = p
        .buckets
        .iter()
        .map(|b| {
            let methods = if b.methods.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    b.methods
                        .iter()
                        // Debug prints `Method::Post`: keep the variant name.
                        .map(|m| {
                            let name = format!("{m:?}");
                            name.rsplit("::").next().unwrap_or(&name).to_uppercase()
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            format!("{}/{}{methods}", b.requests, window(b.window_ms))
        })
        .collect();
    parts.push(format!("{} concurrent", p.max_concurrent));
    parts.join(", ")
}

fn window(ms: u32) -> String {
    match ms {
        1_000 => "s".into(),
        60_000 => "min".into(),
        3_600_000 => "h".into(),
        ms if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}

/// Resources, e.g. `devices, apps (per device)`.
pub fn resources(r: &[ResourceInfo]) -> String {
    r.iter()
        .map(|r| {
            let kind = r.kind.name();
            match r.scope {
                ResourceScope::PerDevice => format!("{kind} (per device)"),
                ResourceScope::TopLevel => kind.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Action names, e.g. `lock, erase, vendor:blankpush`.
pub fn actions(a: &[ActionInfo]) -> String {
    a.iter()
        .map(|a| action_name(&a.kind))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One action's name as the CLI and API spell it.
pub fn action_name(k: &ActionKind) -> String {
    match k {
        ActionKind::Lock => "lock".into(),
        ActionKind::Erase => "erase".into(),
        ActionKind::Restart => "restart".into(),
        ActionKind::Shutdown => "shutdown".into(),
        ActionKind::UnlockAccount => "unlock-account".into(),
        ActionKind::Retire => "retire".into(),
        ActionKind::RefreshInventory => "refresh-inventory".into(),
        ActionKind::Vendor(n) => format!("vendor:{n}"),
    }
}
