//! Checks that what a connector returns keeps the contract: a sane
//! `describe()`, bounded pages, RFC 3339 timestamps, records of the kind asked.

use std::collections::BTreeSet;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::CallError;
use crate::contract::*;
use crate::template;

/// Most records (and record errors) in one page.
const MAX_PAGE_RECORDS: usize = 10_000;
/// Most bytes of text in one page or record.
const MAX_PAGE_BYTES: usize = 64 << 20;
/// Largest sane `describe()` (all strings together).
const MAX_DESCRIBE_BYTES: usize = 1 << 20;

/// Validates a connector's self-description.
pub fn describe(info: &ConnectorInfo) -> Result<(), String> {
    let size = serde_json::to_vec(info)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DESCRIBE_BYTES {
        return Err(format!(
            "it is {size} bytes; at most {MAX_DESCRIBE_BYTES} are allowed"
        ));
    }
    if info.id.is_empty()
        || info.id.len() > 64
        || !info
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!(
            "id `{}` must be 1-64 lowercase letters, digits or `-`",
            info.id
        ));
    }
    if info.name.trim().is_empty() || info.version.trim().is_empty() {
        return Err("name and version must not be empty".into());
    }
    let mut keys = BTreeSet::new();
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for f in &info.config {
        if !keys.insert(f.key.as_str()) {
            return Err(format!("config key `{}` is declared twice", f.key));
        }
        if !f.secret {
            names.insert(&f.key);
        }
        for a in &f.allowed_values {
            names.extend(a.variables.iter().map(|v| v.name.as_str()));
        }
    }
    let secret = |k: &str| info.config.iter().any(|f| f.key == k && f.secret);
    let known = |k: &str| keys.contains(k);
    let check_template = |t: &str, extra: &[&str]| -> Result<(), String> {
        for n in template::names(t) {
            if !names.contains(n) && !extra.contains(&n) {
                return Err(format!(
                    "template `{t}` uses `{{{n}}}`, which is no non-secret config key or variable"
                ));
            }
        }
        Ok(())
    };
    if info.origins.is_empty() && !matches!(info.auth, AuthScheme::None) {
        return Err("it declares credentials but no origin to send them to".into());
    }
    for o in &info.origins {
        if !o.starts_with("https://") {
            return Err(format!("origin `{o}` must start with https://"));
        }
        if o["https://".len()..].contains('/') {
            return Err(format!(
                "origin `{o}` must be scheme and host only, without a path"
            ));
        }
        check_template(o, &[])?;
    }
    let need_secret = |k: &str| {
        if secret(k) {
            Ok(())
        } else {
            Err(format!(
                "auth uses `{k}`, which is not a secret config field"
            ))
        }
    };
    let need_field = |k: &str| {
        if known(k) {
            Ok(())
        } else {
            Err(format!("auth uses `{k}`, which is not a config field"))
        }
    };
    match &info.auth {
        AuthScheme::None => {}
        AuthScheme::Bearer(b) => need_secret(&b.token_field)?,
        AuthScheme::ApiKey(k) => {
            need_secret(&k.key_field)?;
            crate::http::policy::check_header(&k.header, None)
                .map_err(|e| format!("api-key header: {e}"))?;
        }
        AuthScheme::Basic(b) => {
            need_field(&b.username_field)?;
            need_secret(&b.password_field)?;
        }
        AuthScheme::Oauth2ClientCredentials(o) => {
            need_field(&o.client_id_field)?;
            need_secret(&o.client_secret_field)?;
            token_url(&o.token_url)?;
            check_template(&o.token_url, &[])?;
        }
        AuthScheme::TokenExchange(t) => {
            need_field(&t.username_field)?;
            need_secret(&t.password_field)?;
            token_url(&t.token_url)?;
            check_template(&t.token_url, &[])?;
        }
    }
    let rp = &info.rate_policy;
    if rp.max_concurrent == 0 || rp.max_concurrent > 1_000 {
        return Err(format!(
            "max-concurrent {} must be 1-1000",
            rp.max_concurrent
        ));
    }
    if rp
        .buckets
        .iter()
        .any(|b| b.requests == 0 || b.window_ms == 0)
    {
        return Err("every rate bucket needs requests > 0 and window-ms > 0".into());
    }
    let mut kinds = BTreeSet::new();
    for r in &info.resources {
        if !kinds.insert(format!("{:?}", r.kind)) {
            return Err(format!("resource {:?} is declared twice", r.kind));
        }
    }
    if let Some(t) = &info.device_url_template {
        check_template(t, &["device_id"])?;
    }
    Ok(())
}

fn token_url(t: &str) -> Result<(), String> {
    if t.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("token URL `{t}` must start with https://"))
    }
}

/// Validates a page: bounded, records of `kind`; a record with a bad
/// timestamp becomes a record error instead of reaching the store.
pub fn page(mut page: Page, kind: ResourceKind) -> Result<Page, CallError> {
    if page.records.len() > MAX_PAGE_RECORDS || page.errors.len() > MAX_PAGE_RECORDS {
        return Err(CallError::InvalidOutput(format!(
            "a page holds at most {MAX_PAGE_RECORDS} records"
        )));
    }
    let bytes: usize = page.records.iter().map(entity_bytes).sum();
    if bytes > MAX_PAGE_BYTES {
        return Err(CallError::InvalidOutput(format!(
            "a page of {bytes} bytes is over the {} MiB limit",
            MAX_PAGE_BYTES >> 20
        )));
    }
    let records = std::mem::take(&mut page.records);
    for r in records {
        match check_entity(&r, kind) {
            Ok(()) => page.records.push(r),
            Err(message) => page.errors.push(RecordError {
                remote_id: Some(remote_id(&r).to_owned()),
                message,
            }),
        }
    }
    Ok(page)
}

/// Validates a single record.
pub fn entity(e: Entity, kind: ResourceKind) -> Result<Entity, CallError> {
    if entity_bytes(&e) > MAX_PAGE_BYTES {
        return Err(CallError::InvalidOutput(
            "the record is over the size limit".into(),
        ));
    }
    check_entity(&e, kind).map_err(CallError::InvalidOutput)?;
    Ok(e)
}

fn check_entity(e: &Entity, kind: ResourceKind) -> Result<(), String> {
    let actual = match e {
        Entity::Device(_) => ResourceKind::Devices,
        Entity::User(_) => ResourceKind::Users,
        Entity::App(_) => ResourceKind::Apps,
        Entity::Organization(_) => ResourceKind::Organizations,
    };
    if actual != kind {
        return Err(format!("a {actual:?} record in a {kind:?} listing"));
    }
    if remote_id(e).is_empty() {
        return Err("empty remote id".into());
    }
    if let Entity::Device(d) = e {
        for (field, value) in [
            ("last-check-in-at", &d.last_check_in_at),
            ("enrolled-at", &d.enrolled_at),
        ] {
            if let Some(v) = value
                && OffsetDateTime::parse(v, &Rfc3339).is_err()
            {
                return Err(format!("{field} `{v}` is not RFC 3339"));
            }
        }
    }
    Ok(())
}

fn remote_id(e: &Entity) -> &str {
    match e {
        Entity::Device(d) => &d.remote_id,
        Entity::User(u) => &u.remote_id,
        Entity::App(a) => &a.remote_id,
        Entity::Organization(o) => &o.remote_id,
    }
}

fn entity_bytes(e: &Entity) -> usize {
    match e {
        Entity::Device(d) => {
            d.remote_data.len()
                + d.extra
                    .iter()
                    .map(|x| x.key.len() + x.value.len())
                    .sum::<usize>()
                + 512
        }
        Entity::User(u) => u.remote_data.len() + 256,
        Entity::App(a) => a.remote_data.len() + 256,
        Entity::Organization(o) => o.remote_data.len() + 128,
    }
}
