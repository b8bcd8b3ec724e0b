//! The HTTP API end to end: `mdmhub::api::serve` in this process on a free
//! port, over inventories synced from Iru simulators into SQLite (and
//! PostgreSQL when `MDMHUB_TEST_POSTGRES_URL` is set), called through real
//! HTTP with reqwest.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mdmhub::account::Secret;
use mdmhub::accounts::{AccountInput, Accounts};
use mdmhub::api::{self, ServeOptions};
use mdmhub::runtime::Registry;
use mdmhub::secrets::MasterKey;
use mdmhub::store::Store;
use mdmhub::store::accounts::AccountRow;
use mdmhub::sync::background::Background;
use mdmhub::sync::{SyncOptions, Syncer};
use mdmhub_tests::sim::control::{BudgetSpec, Faults};
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Executor;
use tokio::sync::oneshot;

use crate::support;

mod actions;
mod endpoints;
mod walk;
mod webhooks;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TOKEN: &str = "tok-ApiS3cr3t-9012";
/// Devices of workspace A's account: more than two pages of 100.
const DEVICES: usize = 230;

/// Database URLs for one test: SQLite always, PostgreSQL when configured.
async fn databases(test: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("api")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = vec![mdmhub::store::sqlite_url(&dir.join("mdmhub.db"))];
    if let Ok(admin) = std::env::var("MDMHUB_TEST_POSTGRES_URL") {
        sqlx::any::install_default_drivers();
        let db = format!("t_api_{test}_{}_{:08x}", std::process::id(), rand_u32());
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        pool.execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        pool.close().await;
        let (prefix, _) = admin.rsplit_once('/').unwrap();
        out.push(format!("{prefix}/{db}"));
    }
    out
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn input(base_url: &str) -> AccountInput {
    AccountInput {
        config: [("subdomain", "acme"), ("region", "us")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        secrets: [("api_token".to_string(), Secret::new(TOKEN))].into(),
        endpoints: vec![base_url.to_string()],
        rate_limit: None,
        interval_secs: None,
    }
}

/// An Iru simulator of `devices` (fleet `seed`) spending `budget`.
async fn sim(devices: usize, seed: u64, budget: BudgetSpec) -> (Arc<IruSim>, Running) {
    IruSim::spawn(
        IruOptions {
            devices,
            seed,
            token: TOKEN.into(),
            budget,
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap()
}

/// Two workspaces with one synced account each, and a running server.
struct World {
    accounts: Accounts,
    sim_a: Arc<IruSim>,
    _sims: (Running, Running),
    acme: AccountRow,
    beta: AccountRow,
    key_a: String,
    key_b: String,
    base: String,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    calls: Arc<Mutex<BTreeSet<(String, String)>>>,
}

async fn world(url: &str) -> World {
    world_with(url, ServeOptions::default()).await
}

/// Accounts over the database at `url` with the Iru connector loaded.
async fn iru_accounts(url: &str) -> Accounts {
    let rt = support::runtime();
    let registry = Registry {
        connectors: [("iru".to_string(), support::iru(&rt).await)].into(),
        rejected: vec![],
    };
    Accounts {
        store: Store::open(url).await.unwrap(),
        runtime: rt,
        registry: Arc::new(registry),
        key: Arc::new(MasterKey::parse(KEY).unwrap()),
    }
}

/// An HTTP answer read whole.
async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        content_type,
        body,
        text,
        headers,
    }
}

/// The syncer tests use: short leases, so a stopped process's are soon
/// free; syncs on a lower-priority runtime of their own, as `serve` runs them.
fn syncer(accounts: &Accounts) -> Syncer {
    Syncer::new(
        accounts.clone(),
        SyncOptions {
            lease_ttl: Duration::from_secs(5),
            ..SyncOptions::default()
        },
    )
    .in_background(Background::new().unwrap())
}

/// A server on a free loopback port: its base URL, its stop signal and its task.
async fn start_server(
    syncer: Syncer,
    options: ServeOptions,
) -> (
    String,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let options = ServeOptions {
        schedule: false,
        grace: Duration::from_secs(30),
        // The tests' accounts point at loopback simulators.
        api_endpoints: true,
        ..options
    };
    let server = tokio::spawn(api::serve(listener, syncer, options, async {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

/// [`world`], served with `options` (scheduling off, endpoints allowed).
async fn world_with(url: &str, options: ServeOptions) -> World {
    let iru_budget = IruOptions::default().budget;
    let (sim_a, srv_a) = sim(DEVICES, 1, iru_budget).await;
    let (_sim_b, srv_b) = sim(15, 2, iru_budget).await;
    let accounts = iru_accounts(url).await;
    let store = accounts.store.clone();
    let acme = accounts
        .add("acme", "iru", input(&srv_a.base_url))
        .await
        .unwrap();
    // Workspace `beta` and an account in it, saved as `accounts add` would.
    let (_, key_b) = store.create_key("beta", "reader").await.unwrap();
    let (_, key_a) = store.create_key("default", "reader").await.unwrap();
    let ws_b = store.workspace("beta").await.unwrap().unwrap();
    let mut beta = acme.clone();
    beta.id = mdmhub::store::new_id("acc");
    beta.workspace_id = ws_b.id;
    beta.name = "beta-mdm".into();
    beta.endpoints = vec![srv_b.base_url.clone()];
    beta.sealed_secrets = accounts.key.seal(&beta.id, &input("").secrets);
    store.insert_account(&beta).await.unwrap();
    let syncer = syncer(&accounts);
    for a in [&acme, &beta] {
        assert_eq!(
            syncer.sync(a, "manual", None).await.unwrap().status,
            "succeeded"
        );
    }
    let (base, stop, server) = start_server(syncer, options).await;
    World {
        accounts,
        sim_a,
        _sims: (srv_a, srv_b),
        acme,
        beta,
        key_a,
        key_b,
        base,
        stop: Some(stop),
        server,
        calls: Arc::default(),
    }
}

/// An answer: status, content type and JSON body.
struct Answer {
    status: StatusCode,
    content_type: String,
    body: Value,
    text: String,
    headers: reqwest::header::HeaderMap,
}

impl World {
    /// Calls `method path` with `key` (if any), noting the route called.
    async fn call(&self, method: &str, path: &str, key: Option<&str>) -> Answer {
        self.send(method, path, key, None, &[]).await
    }

    /// Calls `method path` with `key`, a JSON `body` and `headers`, noting
    /// the route called.
    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let route = path.split('?').next().unwrap().to_owned();
        self.calls
            .lock()
            .unwrap()
            .insert((method.to_lowercase(), route));
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        answer(req.send().await.unwrap()).await
    }

    /// `GET path` with workspace A's key, expecting 200.
    async fn get_a(&self, path: &str) -> Value {
        let a = self.call("GET", path, Some(&self.key_a)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        a.body
    }

    /// Stops the server and waits for it to finish.
    async fn shut_down(mut self) {
        self.stop_server().await;
    }

    async fn stop_server(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        let server = std::mem::replace(&mut self.server, tokio::spawn(async { Ok(()) }));
        tokio::time::timeout(Duration::from_secs(40), server)
            .await
            .expect("the server stops within its grace period")
            .unwrap()
            .unwrap();
    }

    /// Starts a server again (after [`Self::stop_server`]) over the same database.
    async fn start_again(&mut self, options: ServeOptions) {
        let (base, stop, server) = start_server(syncer(&self.accounts), options).await;
        (self.base, self.stop, self.server) = (base, Some(stop), server);
    }
}

/// Asserts `a` is a problem of `slug` with `status`.
fn assert_problem(a: &Answer, status: u16, slug: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.text);
    assert_eq!(a.content_type, "application/problem+json", "{}", a.text);
    assert_eq!(
        a.body["type"],
        format!("https://mdmhub.dev/problems/{slug}"),
        "{}",
        a.text
    );
    assert_eq!(a.body["status"], status);
    assert!(a.body["title"].is_string() && a.body["detail"].is_string());
}

/// Walks every page of `path` (which has a query) with `limit`, returning the ids.
async fn walk(w: &World, path: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&limit={limit}&cursor={c}"),
            None => format!("{path}&limit={limit}"),
        };
        let page = w.get_a(&page_path).await;
        let result = page["result"].as_array().unwrap();
        assert_eq!(page["result_count"], result.len());
        assert!(result.len() <= limit);
        ids.extend(result.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn api_serves_each_workspace_its_own_inventory() {
    for url in databases("serves").await {
        let w = world(&url).await;

        // Keys: none, malformed, unknown, wrong scheme.
        assert_problem(
            &w.call("GET", "/v1/devices", None).await,
            401,
            "unauthorized",
        );
        assert_problem(
            &w.call("GET", "/v1/devices", Some("mdmh_not-a-key")).await,
            401,
            "unauthorized",
        );
        assert_problem(
            &w.call("GET", "/v1/devices", Some("garbage")).await,
            401,
            "unauthorized",
        );

        // A cursor walk of 100 per page returns each device exactly once.
        let ids = walk(&w, "/v1/devices?status=all", 100).await;
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(ids.len(), DEVICES, "{url}");
        assert_eq!(unique.len(), DEVICES);

        // Lists leave remote_data out unless asked; a single read has it.
        let page = w.get_a("/v1/devices?limit=5").await;
        let first = &page["result"][0];
        assert!(first.get("remote_data").is_none());
        assert_eq!(first["account"], "acme");
        let with = w.get_a("/v1/devices?limit=5&include=remote_data").await;
        assert!(with["result"][0]["remote_data"]["summary"].is_object());
        let id = first["id"].as_str().unwrap();
        let one = w.get_a(&format!("/v1/devices/{id}")).await;
        assert_eq!(one["id"], id);
        assert!(one["remote_data"]["summary"].is_object());
        assert!(one["same_as"].is_array());

        // Filters.
        let serial = one["serial_number"].as_str().unwrap();
        let by_serial = w
            .get_a(&format!("/v1/devices?serial={}", serial.to_lowercase()))
            .await;
        assert_eq!(by_serial["result_count"], 1);
        let platform = one["platform"].as_str().unwrap();
        let by_platform = w
            .get_a(&format!("/v1/devices?platform={platform}&limit=1000"))
            .await;
        assert!(
            by_platform["result"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["platform"] == platform)
        );
        let kind = one["device_type"].as_str().unwrap();
        let by_type = w
            .get_a(&format!(
                "/v1/devices?device_type={kind}&limit=1000&account=acme"
            ))
            .await;
        assert!(by_type["result_count"].as_u64().unwrap() >= 1);
        if let Some(email) = one["assigned_user"]["email"].as_str() {
            let by_email = w.get_a(&format!("/v1/devices?email={email}")).await;
            assert!(
                by_email["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["id"] == id)
            );
        }
        assert_eq!(
            w.get_a("/v1/devices?status=removed").await["result_count"],
            0
        );
        assert_eq!(
            w.get_a("/v1/devices?updated_since=2999-01-01T00:00:00Z")
                .await["result_count"],
            0
        );
        assert_eq!(
            w.get_a("/v1/devices?updated_since=2000-01-01T00:00:00%2B02:00&limit=1")
                .await["result_count"],
            1
        );
        for bad in [
            "/v1/devices?limit=0",
            "/v1/devices?limit=1001",
            "/v1/devices?limit=many",
            "/v1/devices?platfrom=macos",
            "/v1/devices?status=gone",
            "/v1/devices?include=everything",
            "/v1/devices?updated_since=yesterday",
            "/v1/sync-runs?cursor=junk",
        ] {
            assert_problem(
                &w.call("GET", bad, Some(&w.key_a)).await,
                400,
                "invalid-parameter",
            );
        }

        // Users, apps and organizations: list and get.
        for (kind, query) in [
            ("users", "?status=active"),
            ("apps", "?limit=3"),
            ("organizations", "?status=all"),
        ] {
            let page = w.get_a(&format!("/v1/{kind}{query}")).await;
            let first = &page["result"][0];
            assert!(first.get("remote_data").is_none(), "{kind}");
            let id = first["id"].as_str().unwrap();
            let one = w.get_a(&format!("/v1/{kind}/{id}")).await;
            assert_eq!(one["id"], id);
            assert!(one.get("remote_data").is_some(), "{kind}");
        }
        let app = &w.get_a("/v1/apps?limit=1").await["result"][0];
        let device = app["device_id"].as_str().unwrap();
        let apps = w
            .get_a(&format!("/v1/apps?device={device}&limit=1000"))
            .await;
        assert!(
            apps["result"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["device_id"] == device)
        );
        let email = w.get_a("/v1/users?limit=1").await["result"][0]["email"]
            .as_str()
            .unwrap()
            .to_uppercase();
        assert_eq!(
            w.get_a(&format!("/v1/users?email={email}")).await["result_count"],
            1
        );

        // Accounts never show secrets.
        let accounts = w.call("GET", "/v1/accounts", Some(&w.key_a)).await;
        assert_eq!(accounts.status, StatusCode::OK);
        assert_eq!(accounts.body["result_count"], 1);
        assert!(!accounts.text.contains(TOKEN) && !accounts.text.contains("sealed"));
        let acme = w.get_a(&format!("/v1/accounts/{}", w.acme.id)).await;
        assert_eq!(acme["name"], "acme");
        assert_eq!(acme["last_run"]["status"], "succeeded");
        assert_eq!(w.get_a("/v1/accounts/acme").await["id"], w.acme.id.as_str());

        // Sync runs: a page of one, then the run itself.
        let runs = w
            .get_a(&format!("/v1/sync-runs?account={}", w.acme.id))
            .await;
        assert_eq!(runs["result_count"], 1);
        let run_id = runs["result"][0]["id"].as_str().unwrap().to_owned();
        let run = w.get_a(&format!("/v1/sync-runs/{run_id}")).await;
        assert!(run["counts"]["created"].as_i64().unwrap() > DEVICES as i64);
        assert!(run["record_errors"].is_array());

        // Connectors.
        let connectors = w.get_a("/v1/connectors").await;
        assert_eq!(connectors["result"][0]["id"], "iru");
        assert!(connectors["rejected"].is_array());

        // Workspaces: each key sees only its own workspace's objects.
        let b_devices = w
            .call("GET", "/v1/devices?limit=1000", Some(&w.key_b))
            .await;
        assert_eq!(b_devices.body["result_count"], 15);
        assert!(
            b_devices.body["result"]
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["account"] == "beta-mdm")
        );
        let b_device = b_devices.body["result"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b_run = w.accounts.store.runs(&w.beta.id, 1).await.unwrap()[0]
            .id
            .clone();
        for path in [
            format!("/v1/devices/{b_device}"),
            format!("/v1/accounts/{}", w.beta.id),
            format!("/v1/sync-runs/{b_run}"),
        ] {
            assert_problem(
                &w.call("GET", &path, Some(&w.key_a)).await,
                404,
                "not-found",
            );
        }
        assert_problem(
            &w.call(
                "POST",
                &format!("/v1/accounts/{}/sync", w.beta.id),
                Some(&w.key_a),
            )
            .await,
            404,
            "not-found",
        );
        assert_problem(
            &w.call("GET", &format!("/v1/devices/{id}"), Some(&w.key_b))
                .await,
            404,
            "not-found",
        );
        let b_runs = w.call("GET", "/v1/sync-runs", Some(&w.key_b)).await;
        assert_eq!(b_runs.body["result_count"], 1);
        assert_eq!(b_runs.body["result"][0]["account_id"], w.beta.id.as_str());
        let b_accounts = w.call("GET", "/v1/accounts", Some(&w.key_b)).await;
        assert_eq!(b_accounts.body["result"][0]["name"], "beta-mdm");

        // Routing problems.
        assert_problem(
            &w.call("GET", "/v1/nothing", Some(&w.key_a)).await,
            404,
            "not-found",
        );
        assert_problem(
            &w.call("DELETE", "/v1/devices", Some(&w.key_a)).await,
            405,
            "method-not-allowed",
        );

        // Health and the document.
        assert_eq!(w.call("GET", "/healthz", None).await.body["status"], "ok");
        assert_eq!(w.call("GET", "/readyz", None).await.body["status"], "ready");
        let doc = w.call("GET", "/openapi.json", None).await;
        assert_eq!(doc.status, StatusCode::OK);
        assert_eq!(doc.body["openapi"], "3.1.0");

        // The action, account and metrics routes, once each so that the
        // document check below sees them (`api::actions` tests them).
        assert_eq!(w.call("GET", "/metrics", None).await.status, StatusCode::OK);
        assert_eq!(w.get_a("/v1/actions").await["result_count"], 0);
        let empty = serde_json::json!({});
        assert_problem(
            &w.send("POST", "/v1/accounts", Some(&w.key_a), Some(&empty), &[])
                .await,
            400,
            "invalid-body",
        );
        let explode = serde_json::json!({"action": "explode"});
        let actions = format!("/v1/devices/{id}/actions");
        assert_problem(
            &w.send("POST", &actions, Some(&w.key_a), Some(&explode), &[])
                .await,
            422,
            "unknown-action",
        );

        webhooks::touch_every_route(&w).await;

        // A sync by hand: 202 with the run; a second while it runs is 409.
        w.sim_a.control().set_faults(Faults {
            slow_ms: 300,
            ..Faults::default()
        });
        let started = w
            .call(
                "POST",
                &format!("/v1/accounts/{}/sync", w.acme.id),
                Some(&w.key_a),
            )
            .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.text);
        let run_id = started.body["run"]["id"].as_str().unwrap().to_owned();
        assert_eq!(started.body["run"]["status"], "running");
        assert_problem(
            &w.call("POST", "/v1/accounts/acme/sync", Some(&w.key_a))
                .await,
            409,
            "sync-already-running",
        );
        assert_eq!(
            w.get_a(&format!("/v1/accounts/{}", w.acme.id)).await["syncing"],
            true
        );

        // A key revoked works no more.
        w.accounts.store.revoke_key("beta", "reader").await.unwrap();
        assert_problem(
            &w.call("GET", "/v1/devices", Some(&w.key_b)).await,
            401,
            "unauthorized",
        );

        check_document_matches_calls(&doc.body, &w.calls.lock().unwrap());

        // Shutdown lets the running sync finish.
        let store = w.accounts.store.clone();
        w.shut_down().await;
        let run = store.run(&run_id).await.unwrap();
        assert_eq!(run.status, "succeeded", "{url}: {:?}", run.error);
    }
}

/// Every operation in the document was called, and every route called
/// (other than the deliberate misses) is in the document.
fn check_document_matches_calls(doc: &Value, calls: &BTreeSet<(String, String)>) {
    let mut documented: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()), false);
        }
    }
    let misses = [("get", "/v1/nothing"), ("delete", "/v1/devices")];
    for (method, route) in calls {
        if misses.contains(&(method.as_str(), route.as_str())) {
            continue;
        }
        let hit = documented
            .iter_mut()
            .find(|((m, template), _)| m == method && matches(template, route));
        match hit {
            Some((_, seen)) => *seen = true,
            None => panic!("{method} {route} was served but is not in the OpenAPI document"),
        }
    }
    let uncalled: Vec<_> = documented.iter().filter(|(_, seen)| !**seen).collect();
    assert!(
        uncalled.is_empty(),
        "documented but never called: {uncalled:?}"
    );
}

/// Whether a concrete path fits an OpenAPI path template.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

#[test]
fn the_openapi_document_is_3_1_and_describes_every_operation() {
    let doc: Value = serde_json::to_value(api::document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Outgoing webhooks are described too, each event with its body.
    let hooks = doc["webhooks"].as_object().unwrap();
    assert_eq!(hooks.len(), mdmhub::webhooks::EVENT_TYPES.len());
    assert_eq!(
        hooks["device.compliance_changed"]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/WebhookEvent"
    );
    assert!(doc["info"]["title"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/devices",
        "/v1/devices/{id}",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/apps",
        "/v1/apps/{id}",
        "/v1/organizations",
        "/v1/organizations/{id}",
        "/v1/accounts",
        "/v1/accounts/{id}",
        "/v1/accounts/{id}/sync",
        "/v1/sync-runs",
        "/v1/sync-runs/{id}",
        "/v1/connectors",
        "/v1/devices/{id}/actions",
        "/v1/actions",
        "/metrics",
        "/healthz",
        "/readyz",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{method} {path}");
            assert!(op["operationId"].is_string(), "{method} {path}");
            if path.starts_with("/v1/") {
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path} documents 401"
                );
            }
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
}
