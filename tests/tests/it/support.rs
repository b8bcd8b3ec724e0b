//! Shared test helpers: a runtime with a compiled-artifact cache shared by
//! every test process, the test components, and account specs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mdmhub::account::{AccountSession, AccountSpec, Secret};
use mdmhub::contract::*;
use mdmhub::runtime::{Connector, Runtime, RuntimeConfig, Source};

/// The compiled-artifact cache shared by all tests (keyed by content hash).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifact-cache")
}

/// A runtime with test-sized limits: 1 s of guest CPU, 20 s per call,
/// 192 MiB of memory (room for the hostile component's oversized page).
pub fn runtime() -> Runtime {
    runtime_with_memory(192 << 20)
}

/// The test runtime with another memory cap per call.
pub fn runtime_with_memory(memory_bytes: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        cpu_budget: Duration::from_secs(1),
        call_timeout: Duration::from_secs(20),
        memory_bytes,
        cache_dir: Some(cache_dir()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Paths of the components built by `tests/build.rs`.
pub mod wasm {
    pub const EXAMPLE: &str = env!("MDMHUB_WASM_EXAMPLE_RUST_MINIMAL");
    pub const HOSTILE: &str = env!("MDMHUB_WASM_TEST_HOSTILE");
    pub const BAD_DESCRIBE: &str = env!("MDMHUB_WASM_TEST_BAD_DESCRIBE");
    pub const OTHER_WORLD: &str = env!("MDMHUB_WASM_TEST_OTHER_WORLD");
}

/// Loads a component file, panicking with the rejection reason.
pub async fn load(rt: &Runtime, path: &str) -> Connector {
    let bytes = std::fs::read(path).unwrap();
    rt.load(Source::File(path.into()), &bytes)
        .await
        .unwrap_or_else(|e| panic!("{path} rejected: {e}"))
}

/// An account spec: `config` and `secrets` as pairs, every origin sent to `endpoint`.
pub fn spec(
    config: &[(&str, &str)],
    secrets: &[(&str, &str)],
    endpoint: Option<&str>,
) -> AccountSpec {
    AccountSpec {
        id: "acct-test".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        secrets: secrets
            .iter()
            .map(|(k, v)| (k.to_string(), Secret::new(*v)))
            .collect::<BTreeMap<_, _>>(),
        endpoints: endpoint.into_iter().map(|e| e.parse().unwrap()).collect(),
        rate: None,
    }
}

/// A session for a loaded connector.
pub fn session(rt: &Runtime, c: &Connector, spec: AccountSpec) -> Arc<AccountSession> {
    rt.session(c, spec).unwrap()
}

/// A config field.
pub fn field(key: &str, secret: bool) -> ConfigField {
    ConfigField {
        key: key.into(),
        label: key.into(),
        help: None,
        required: true,
        secret,
        allowed_values: vec![],
        default_value: None,
    }
}

/// A connector description for host-level HTTP tests (no component).
pub fn info(
    auth: AuthScheme,
    fields: Vec<ConfigField>,
    origins: &[&str],
    rate: RatePolicy,
) -> ConnectorInfo {
    ConnectorInfo {
        id: "test".into(),
        name: "test".into(),
        version: "0".into(),
        config: fields,
        auth,
        origins: origins.iter().map(|o| o.to_string()).collect(),
        rate_policy: rate,
        resources: vec![],
        actions: vec![],
        device_url_template: None,
    }
}

/// A permissive rate policy.
pub fn no_limits() -> RatePolicy {
    RatePolicy {
        buckets: vec![],
        max_concurrent: 16,
    }
}

/// A GET request.
pub fn get(url: &str) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url: url.into(),
        headers: vec![],
        body: None,
    }
}

/// A deadline `secs` from now.
pub fn within(secs: u64) -> std::time::Instant {
    std::time::Instant::now() + Duration::from_secs(secs)
}

/// Walks every page of `kind` (the host's loop, as the sync engine will
/// own it) and returns the records and the number of pages.
pub async fn list_all(
    c: &Connector,
    s: &Arc<AccountSession>,
    kind: ResourceKind,
    page_size: Option<u32>,
) -> (Vec<Entity>, usize) {
    let (mut cursor, mut records, mut pages) = (None::<String>, Vec::new(), 0);
    loop {
        let page = c
            .list(
                s,
                kind,
                cursor.as_deref(),
                &ListOptions {
                    page_size,
                    parent_id: None,
                },
            )
            .await
            .unwrap();
        pages += 1;
        records.extend(page.records);
        match page.next_cursor {
            Some(n) if Some(&n) != cursor.as_ref() => cursor = Some(n),
            Some(n) => panic!("cursor {n} repeated"),
            None => return (records, pages),
        }
    }
}

/// A built-in connector by id, loaded (from the artifact cache after the
/// first test).
pub async fn builtin(rt: &Runtime, id: &str) -> Arc<Connector> {
    let (name, bytes) = mdmhub::builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == id)
        .unwrap_or_else(|| panic!("{id} is not built in"));
    Arc::new(
        rt.load(Source::Builtin(name.to_string()), bytes)
            .await
            .unwrap(),
    )
}

/// The built-in Iru connector.
pub async fn iru(rt: &Runtime) -> Arc<Connector> {
    builtin(rt, "iru").await
}

/// The built-in Intune connector.
pub async fn intune(rt: &Runtime) -> Arc<Connector> {
    builtin(rt, "intune").await
}

/// An Intune account (tenant `contoso.onmicrosoft.com`, global cloud) pointed
/// at a Graph simulator, with the app's `client_id` and `client_secret`.
pub fn intune_spec(base_url: &str, client_id: &str, client_secret: &str) -> AccountSpec {
    spec(
        &[("tenant_id", "contoso.onmicrosoft.com")],
        &[("client_id", client_id), ("client_secret", client_secret)],
        Some(base_url),
    )
}

/// An Iru account pointed at a simulator, with `token`.
pub fn iru_spec(base_url: &str, token: &str) -> AccountSpec {
    spec(
        &[("subdomain", "acme"), ("region", "us")],
        &[("api_token", token)],
        Some(base_url),
    )
}
