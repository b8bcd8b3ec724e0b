//! The Iru (Kandji) API simulator, faithful to `shared/vendors/iru.md`:
//! `/api/v1/devices` as a bare array with `limit` clamped to 300 and
//! `offset`, `/details` with its string booleans and `udid`/`uuid` split,
//! per-device `/apps`, cursor-paged `/users` with absolute `next` links,
//! DRF-style `/blueprints`, device actions, Django's HTML 404 page, a static
//! bearer token (unknown: 401; valid but lacking the device permission:
//! 403), and the tenant's hourly request budget answered with 429.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::control::{ActionRecord, BudgetSpec, Control, Faults, Gate};
use super::fleet::{CATALOG, Fleet, Kind, Machine, NOW, uuid};
use super::server::{Running, base_from_headers, serve};
use super::{bearer, datetime, json_body};

/// Iru's hard cap on `limit`.
pub const MAX_LIMIT: usize = 300;

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct IruOptions {
    /// Devices in the fleet.
    pub devices: usize,
    /// Fleet seed.
    pub seed: u64,
    /// The valid API token.
    pub token: String,
    /// A valid token without the device permissions.
    pub limited_token: String,
    /// What a missing permission answers (Iru's docs leave 401 vs 403 open).
    pub missing_permission_status: u16,
    /// The tenant's request budget.
    pub budget: BudgetSpec,
    /// Faults to inject from the start.
    pub faults: Faults,
}

impl Default for IruOptions {
    fn default() -> Self {
        Self {
            devices: 100,
            seed: 1,
            token: "test-token".into(),
            limited_token: "limited-token".into(),
            missing_permission_status: 403,
            budget: BudgetSpec {
                limit: 10_000,
                window: Duration::from_secs(3600),
                retry_after: true,
            },
            faults: Faults::default(),
        }
    }
}

/// Devices that may disappear (retire, mid-walk deletes, tests).
struct Devices {
    fleet: Fleet,
    /// Live machine indexes by device id.
    by_id: HashMap<String, usize>,
    /// Live machine indexes sorted by device id (the usual `ordering`).
    sorted: Vec<usize>,
    /// Live machine indexes in enrollment order (the unsorted default).
    enrolled: Vec<usize>,
    locked: HashSet<String>,
    /// Live devices per person (`device_count` of `/users`).
    owned: Vec<usize>,
}

/// A running simulator's state.
pub struct IruSim {
    devices: RwLock<Devices>,
    blueprint_ids: Vec<String>,
    control: Arc<Control>,
    opts: IruOptions,
}

impl IruSim {
    /// Generates the fleet.
    pub fn new(opts: IruOptions) -> Arc<Self> {
        let fleet = Fleet::apple(opts.devices, opts.seed);
        let mut rng = StdRng::seed_from_u64(opts.seed ^ 0xb1e9_7a1d);
        let blueprint_ids = fleet.groups.iter().map(|_| uuid(&mut rng)).collect();
        let by_id: HashMap<_, _> = fleet
            .machines
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        let mut sorted: Vec<usize> = (0..fleet.machines.len()).collect();
        sorted.sort_by(|a, b| fleet.machines[*a].id.cmp(&fleet.machines[*b].id));
        let enrolled = (0..fleet.machines.len()).collect();
        let mut owned = vec![0; fleet.people.len()];
        for p in fleet.machines.iter().filter_map(|m| m.owner) {
            owned[p] += 1;
        }
        Arc::new(Self {
            devices: RwLock::new(Devices {
                fleet,
                by_id,
                sorted,
                enrolled,
                locked: HashSet::new(),
                owned,
            }),
            blueprint_ids,
            control: Control::new(opts.faults.clone(), opts.budget),
            opts,
        })
    }

    /// Starts serving on 127.0.0.1:`port` (0: any free port).
    pub async fn spawn(opts: IruOptions, port: u16) -> std::io::Result<(Arc<Self>, Running)> {
        let sim = Self::new(opts);
        let running = serve(sim.router(), port).await?;
        Ok((sim, running))
    }

    /// Faults, budget, counters and the action record.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// Ids of the live devices, sorted.
    pub fn device_ids(&self) -> Vec<String> {
        let d = self.devices.read().unwrap();
        d.sorted
            .iter()
            .map(|i| d.fleet.machines[*i].id.clone())
            .collect()
    }

    /// Ids of every person in the directory.
    pub fn user_ids(&self) -> Vec<String> {
        let d = self.devices.read().unwrap();
        d.fleet.people.iter().map(|p| p.id.clone()).collect()
    }

    /// Deletes a device as an admin would; false if it did not exist.
    pub fn delete_device(&self, id: &str) -> bool {
        let mut d = self.devices.write().unwrap();
        let Some(i) = d.by_id.remove(id) else {
            return false;
        };
        d.sorted.retain(|x| *x != i);
        d.enrolled.retain(|x| *x != i);
        if let Some(p) = d.fleet.machines[i].owner {
            d.owned[p] -= 1;
        }
        true
    }

    /// Changes a device as the vendor would see it change; false if unknown.
    pub fn update_device(&self, id: &str, change: impl FnOnce(&mut Machine)) -> bool {
        let mut d = self.devices.write().unwrap();
        let Some(i) = d.by_id.get(id).copied() else {
            return false;
        };
        change(&mut d.fleet.machines[i]);
        true
    }

    /// The router: the API behind auth, budget and faults, plus `/_sim/*`.
    pub fn router(self: &Arc<Self>) -> Router {
        let api = Router::new()
            .route("/api/v1/devices", get(list_devices))
            .route(
                "/api/v1/devices/{id}",
                get(get_device).delete(delete_device),
            )
            .route("/api/v1/devices/{id}/details", get(device_details))
            .route("/api/v1/devices/{id}/apps", get(device_apps))
            .route("/api/v1/devices/{id}/action/{name}", post(device_action))
            .route("/api/v1/users", get(list_users))
            .route("/api/v1/users/{id}", get(get_user))
            .route("/api/v1/blueprints", get(list_blueprints))
            .route("/api/v1/blueprints/{id}", get(get_blueprint))
            .fallback(|| async { not_found() })
            .layer(middleware::from_fn_with_state(self.clone(), gate))
            .with_state(self.clone());
        api.merge(self.control.router())
    }

    fn machine_json(&self, m: &Machine, fleet: &Fleet) -> Value {
        let is_mac = matches!(m.kind, Kind::MacLaptop | Kind::MacDesktop);
        json!({
            "device_id": m.id,
            "device_name": m.name,
            "model": m.model,
            "serial_number": m.serial.clone().unwrap_or_default(),
            "platform": platform(m.kind),
            "os_version": m.os.0,
            "supplemental_build_version": m.os.1,
            "supplemental_os_version_extra": "",
            "last_check_in": m.last_check_in.map(iso).unwrap_or_default(),
            "user": user_object(m, &fleet.people),
            "asset_tag": m.asset_tag.clone().unwrap_or_default(),
            "blueprint_id": self.blueprint_ids[m.group],
            "mdm_enabled": true,
            "agent_installed": is_mac,
            "is_missing": false,
            "is_removed": false,
            "agent_version": if is_mac { "4.5.9 (5160)" } else { "" },
            "first_enrollment": spaced(m.enrolled.0),
            "last_enrollment": spaced(m.enrolled.1),
            "blueprint_name": fleet.groups[m.group],
            "lost_mode_status": "",
            "tags": m.tags,
        })
    }
}

fn platform(k: Kind) -> &'static str {
    match k {
        Kind::MacLaptop | Kind::MacDesktop => "Mac",
        Kind::IPhone => "iPhone",
        Kind::IPad => "iPad",
        Kind::AppleTv => "AppleTV",
        // Iru manages Apple devices only; its fleet (`Fleet::apple`) has none.
        Kind::WindowsLaptop | Kind::WindowsDesktop | Kind::AndroidPhone => "",
    }
}

fn user_object(m: &Machine, people: &[super::fleet::Person]) -> Value {
    match m.owner {
        // Unassigned is the empty string, not null.
        None => json!(""),
        Some(p) => {
            let p = &people[p];
            json!({"email": p.email, "name": p.name, "id": p.id, "is_archived": !p.active})
        }
    }
}

/// `2024-07-23T14:11:37.150080Z`.
fn iso(secs: i64) -> String {
    let t = datetime(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        (secs.unsigned_abs() * 7919) % 1_000_000
    )
}

/// `2024-01-26 16:15:36.087016+00:00`: Iru's other timestamp format.
fn spaced(secs: i64) -> String {
    iso(secs).replacen('T', " ", 1).replace('Z', "+00:00")
}

/// Django's 404 page, as Iru serves it.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><html lang=\"en\"><head><title>Not Found</title></head><body><h1>Not Found</h1><p>The requested resource was not found on this server.</p></body></html>",
    )
        .into_response()
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

/// Faults and the budget first, then the bearer token and its permissions.
async fn gate(State(sim): State<Arc<IruSim>>, req: Request, next: Next) -> Response {
    match sim.control.gate().await {
        Gate::Pass => {}
        Gate::Throttle(retry_after) => {
            let mut resp = detail(StatusCode::TOO_MANY_REQUESTS, "Request was throttled.");
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        Gate::Fail(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, "<h1>Server Error (503)</h1>").into_response();
        }
    }
    match bearer(req.headers()) {
        None => {
            return detail(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided.",
            );
        }
        Some(t) if t == sim.opts.token => {}
        Some(t) if t == sim.opts.limited_token => {
            if req.uri().path().starts_with("/api/v1/devices") {
                let status = StatusCode::from_u16(sim.opts.missing_permission_status)
                    .unwrap_or(StatusCode::FORBIDDEN);
                return detail(status, "You do not have permission to perform this action.");
            }
        }
        Some(_) => return detail(StatusCode::UNAUTHORIZED, "Invalid token."),
    }
    next.run(req).await
}

fn limit_offset(q: &HashMap<String, String>) -> (usize, usize) {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    let offset = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    (limit, offset)
}

/// `GET /api/v1/devices`: filters, `ordering`, `limit` (clamped) + `offset`.
async fn list_devices(
    State(sim): State<Arc<IruSim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (limit, offset) = limit_offset(&q);
    let faults = sim.control.faults();
    if faults.malformed_page == Some(offset as u64) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "[{\"device_id\": \"3c2f\", \"device_name\": \"Broken",
        )
            .into_response();
    }
    if sim.control.take_delete_during_walk(offset as u64) {
        let first = sim.device_ids().into_iter().next();
        if let Some(id) = first {
            sim.delete_device(&id);
        }
    }
    let d = sim.devices.read().unwrap();
    let machines = &d.fleet.machines;
    let filters: Vec<(&str, &String)> = [
        "serial_number",
        "platform",
        "user_email",
        "user_email_exact",
        "device_id",
        "blueprint_id",
        "asset_tag",
        "device_name",
    ]
    .iter()
    .filter_map(|k| q.get(*k).map(|v| (*k, v)))
    .collect();
    let ordering = q.get("ordering").map(String::as_str).unwrap_or("");
    let page: Vec<Value> = if filters.is_empty() && (ordering == "device_id" || ordering.is_empty())
    {
        // The common walk, from a maintained index.
        let order = if ordering.is_empty() {
            &d.enrolled
        } else {
            &d.sorted
        };
        order
            .iter()
            .skip(offset)
            .take(limit)
            .map(|i| sim.machine_json(&machines[*i], &d.fleet))
            .collect()
    } else {
        let mut all: Vec<Value> = d
            .enrolled
            .iter()
            .map(|i| sim.machine_json(&machines[*i], &d.fleet))
            .filter(|v| filters.iter().all(|(k, want)| matches_filter(v, k, want)))
            .collect();
        sort_by_ordering(&mut all, ordering);
        all.into_iter().skip(offset).take(limit).collect()
    };
    Json(page).into_response()
}

fn matches_filter(v: &Value, key: &str, want: &str) -> bool {
    let field = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase()
    };
    let want = want.to_lowercase();
    match key {
        "serial_number" | "device_name" => field(&format!("/{key}")).contains(&want),
        "platform" => field("/platform") == want,
        "user_email" => field("/user/email").contains(&want),
        "user_email_exact" => field("/user/email") == want,
        _ => field(&format!("/{key}")) == want,
    }
}

/// `ordering=a,-b`: sort keys, `-` for descending.
fn sort_by_ordering(items: &mut [Value], ordering: &str) {
    let keys: Vec<(&str, bool)> = ordering
        .split(',')
        .filter(|k| !k.is_empty())
        .map(|k| match k.strip_prefix('-') {
            Some(k) => (k, true),
            None => (k, false),
        })
        .collect();
    items.sort_by(|a, b| {
        for (k, desc) in &keys {
            let key = |v: &Value| match *k {
                "user" => v
                    .pointer("/user/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                _ => v
                    .get(*k)
                    .map(|x| x.as_str().map(str::to_owned).unwrap_or(x.to_string()))
                    .unwrap_or_default(),
            };
            let o = key(a).cmp(&key(b));
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        std::cmp::Ordering::Equal
    });
}

fn with_machine<T>(sim: &IruSim, id: &str, f: impl FnOnce(&Machine, &Devices) -> T) -> Option<T> {
    let d = sim.devices.read().unwrap();
    let i = *d.by_id.get(id)?;
    Some(f(&d.fleet.machines[i], &d))
}

async fn get_device(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    with_machine(&sim, &id, |m, d| {
        Json(sim.machine_json(m, &d.fleet)).into_response()
    })
    .unwrap_or_else(not_found)
}

async fn delete_device(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    if !sim.delete_device(&id) {
        return not_found();
    }
    sim.control.record(ActionRecord {
        device_id: id,
        action: "delete".into(),
        body: Value::Null,
    });
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /details`: sections as Iru sends them, quirks included.
async fn device_details(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    with_machine(&sim, &id, |m, d| {
        let is_mac = matches!(m.kind, Kind::MacLaptop | Kind::MacDesktop);
        let summary = sim.machine_json(m, &d.fleet);
        let mut hardware = json!({
            "model_name": m.model.split(" (").next().unwrap_or(m.model),
            "model_identifier": m.model_identifier,
            "processor_name": m.processor,
            "processor_speed": "",
            "number_of_processors": if is_mac { "8" } else { "" },
            "total_number_of_cores": if is_mac { "8" } else { "" },
            "memory": format!("{} GB", m.memory_gb),
            "serial_number": m.serial.clone().unwrap_or_default(),
        });
        // iPad and Apple TV say `uuid` where Macs and iPhones say `udid`.
        let udid_key = if matches!(m.kind, Kind::IPad | Kind::AppleTv) { "uuid" } else { "udid" };
        hardware[udid_key] = json!(m.udid);
        let check_in = m.last_check_in.map(spaced).unwrap_or_default();
        Json(json!({
            "general": {
                "device_id": m.id,
                "device_name": m.name,
                "last_enrollment": spaced(m.enrolled.1),
                "first_enrollment": spaced(m.enrolled.0),
                "model": m.model,
                "platform": platform(m.kind),
                "os_version": m.os.0,
                "supplemental_build_version": m.os.1,
                "supplemental_os_version_extra": "",
                "system_version": format!("{} ({})", m.os.0, m.os.1),
                "boot_volume": if is_mac { "Macintosh HD" } else { "" },
                "time_since_boot": "3 days ago",
                "last_user": m.owner.map(|p| d.fleet.people[p].email.split('@').next().unwrap_or("").to_owned()).unwrap_or_default(),
                "asset_tag": summary["asset_tag"],
                "assigned_user": summary["user"],
                "blueprint_name": summary["blueprint_name"],
                "blueprint_uuid": summary["blueprint_id"],
            },
            "mdm": {
                "mdm_enabled": "True",
                "supervised": if m.supervised { "True" } else { "False" },
                "install_date": spaced(m.enrolled.1),
                "last_check_in": check_in,
                "mdm_enabled_user": [],
            },
            "activation_lock": {
                "bypass_code_failed": false,
                "user_activation_lock_enabled": false,
                "device_activation_lock_enabled": false,
                "activation_lock_allowed_while_supervised": false,
                "activation_lock_supported": true,
            },
            "filevault": {
                "filevault_enabled": if is_mac { json!(m.encrypted) } else { Value::Null },
                "filevault_recoverykey_type": if is_mac && m.encrypted { "personal" } else { "" },
                "filevault_prk_escrowed": is_mac && m.encrypted,
                "filevault_next_rotation": "",
                "filevault_regen_required": false,
            },
            "lost_mode": {},
            "automated_device_enrollment": {"auto_enroll_eligible": true, "auto_enrolled": m.supervised},
            "kandji_agent": {
                "agent_installed": if is_mac { "True" } else { "False" },
                "install_date": if is_mac { spaced(m.enrolled.1) } else { String::new() },
                "last_check_in": m.last_check_in.map(iso).unwrap_or_default(),
                "agent_version": summary["agent_version"],
            },
            "hardware_overview": hardware,
            "volumes": if m.kind == Kind::AppleTv { json!([]) } else { json!([{
                "name": if is_mac { "Macintosh HD - Data" } else { "Data" },
                "format": "APFS",
                "percent_used": "19%",
                "identifier": "disk3s1",
                "capacity": format!("{}.00 GB", m.storage_gb),
                "available": format!("{}.00 GB", m.storage_gb * 4 / 5),
                "encrypted": if m.encrypted { "Yes" } else { "No" },
            }]) },
            "network": if m.kind == Kind::AppleTv { json!({}) } else { json!({
                "local_hostname": m.name.replace(' ', "-"),
                "mac_address": m.mac,
                "ip_address": "192.168.1.76",
                "public_ip": "203.0.113.7",
            }) },
            "recovery_information": {
                "recovery_lock_enabled": false,
                "firmware_password_exist": false,
                "firmware_password_pending": false,
                "password_rotation_scheduled": "",
                "password_has_been_set": false,
            },
            "users": {"regular_users": [], "system_users": []},
            "installed_profiles": [],
            "apple_business_manager": {},
            "security_information": {"remote_desktop_enabled": false},
            "cellular": {},
            "tags": m.tags,
        }))
        .into_response()
    })
    .unwrap_or_else(not_found)
}

async fn device_apps(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    with_machine(&sim, &id, |m, _| {
        let apps: Vec<Value> = m
            .apps
            .iter()
            .map(|i| {
                let s = &CATALOG[*i];
                json!({
                    "app_id": (1000 + i).to_string(),
                    "app_name": s.name,
                    "bundle_id": s.bundle_id,
                    "bundle_size": "104857600",
                    "app_store_vendable": false,
                    "device_based_vpp": false,
                    "source": if s.vendor == "Apple" { "Apple" } else { "Identified Developer" },
                    "process": "",
                    "signature": s.vendor,
                    "creation_date": spaced(NOW - 200 * 86_400),
                    "modification_date": spaced(NOW - 20 * 86_400),
                    "path": format!("/Applications/{}.app", s.name),
                    "version": s.version,
                })
            })
            .collect();
        Json(json!({"device_id": m.id, "apps": apps})).into_response()
    })
    .unwrap_or_else(not_found)
}

/// Every action Iru documents, by its path name.
const ACTIONS: &[&str] = &[
    "lock",
    "erase",
    "restart",
    "shutdown",
    "unlockaccount",
    "blankpush",
    "updateinventory",
    "renewmdmprofile",
    "reinstallagent",
    "clearpasscode",
    "deleteuser",
    "remotedesktop",
    "setname",
    "enablelostmode",
    "disablelostmode",
    "playlostmodesound",
    "updatelocation",
];

async fn device_action(
    State(sim): State<Arc<IruSim>>,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if !ACTIONS.contains(&name.as_str()) {
        return not_found();
    }
    let body = match json_body(&body) {
        Ok(v) => v,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!(format!("JSON parse error - {e}"))),
            )
                .into_response();
        }
    };
    let kind = {
        let d = sim.devices.read().unwrap();
        match d.by_id.get(&id) {
            Some(i) => d.fleet.machines[*i].kind,
            None => return not_found(),
        }
    };
    let is_mac = matches!(kind, Kind::MacLaptop | Kind::MacDesktop);
    let bad = |m: &str| (StatusCode::BAD_REQUEST, Json(json!(m))).into_response();
    let mut answer = StatusCode::OK.into_response();
    match name.as_str() {
        "lock" => {
            let mut d = sim.devices.write().unwrap();
            if !d.locked.insert(id.clone()) {
                return bad("This device is already locked.");
            }
            if is_mac {
                let pin: u32 = rand::rng().random_range(0..1_000_000);
                answer = Json(json!({"PIN": format!("{pin:06}")})).into_response();
            }
        }
        "unlockaccount" if !body.get("UserName").is_some_and(Value::is_string) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"UserName": ["This field is required."]})),
            )
                .into_response();
        }
        "clearpasscode" | "enablelostmode" if is_mac => {
            return bad("Command is not allowed for current device");
        }
        "unlockaccount" | "renewmdmprofile" | "reinstallagent" | "remotedesktop" if !is_mac => {
            return bad("Command is not allowed for current device");
        }
        "erase" => {
            sim.devices.write().unwrap().locked.remove(&id);
        }
        _ => {}
    }
    sim.control.record(ActionRecord {
        device_id: id,
        action: name,
        body,
    });
    answer
}

/// `GET /api/v1/users`: cursor paging; `next` is an absolute URL.
async fn list_users(
    State(sim): State<Arc<IruSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let start = match q.get("cursor") {
        None => 0,
        Some(c) => match decode_cursor(c) {
            Some(n) => n,
            None => return detail(StatusCode::NOT_FOUND, "Invalid cursor"),
        },
    };
    let d = sim.devices.read().unwrap();
    let people: Vec<usize> = (0..d.fleet.people.len())
        .filter(|i| {
            q.get("email")
                .is_none_or(|e| d.fleet.people[*i].email.contains(e.as_str()))
        })
        .collect();
    let end = (start + MAX_LIMIT).min(people.len());
    let base = base_from_headers(&headers);
    let link = |n: usize| Value::String(format!("{base}/api/v1/users?cursor={}", encode_cursor(n)));
    let results: Vec<Value> = people
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|i| user_json(*i, &d))
        .collect();
    Json(json!({
        "next": if end < people.len() { link(end) } else { Value::Null },
        "previous": if start > 0 { link(start.saturating_sub(MAX_LIMIT)) } else { Value::Null },
        "results": results,
    }))
    .into_response()
}

fn user_json(index: usize, d: &Devices) -> Value {
    let p = &d.fleet.people[index];
    json!({
        "active": p.active,
        "archived": !p.active,
        "created_at": iso(NOW - 400 * 86_400),
        "department": p.department,
        "deprecated_user_id": (10_000 + index).to_string(),
        "email": p.email,
        "id": p.id,
        "integration": {"id": 7, "name": "Microsoft Entra ID", "uuid": "5d1e5c2e-2f2f-4a4a-9b9b-0c0c0c0c0c0c", "type": "office365"},
        "job_title": p.job_title,
        "name": p.name,
        "device_count": d.owned[index],
        "updated_at": iso(NOW - 3 * 86_400),
    })
}

/// Opaque to clients, as Iru's cursors are.
fn encode_cursor(n: usize) -> String {
    format!("cD0{n:x}")
}

fn decode_cursor(c: &str) -> Option<usize> {
    usize::from_str_radix(c.strip_prefix("cD0")?, 16).ok()
}

async fn get_user(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    let d = sim.devices.read().unwrap();
    match d.fleet.people.iter().position(|p| p.id == id) {
        Some(i) => Json(user_json(i, &d)).into_response(),
        None => detail(StatusCode::NOT_FOUND, "Not found."),
    }
}

fn blueprint_json(sim: &IruSim, i: usize, d: &Devices) -> Value {
    json!({
        "id": sim.blueprint_ids[i],
        "name": d.fleet.groups[i],
        "icon": "ss-briefcase",
        "color": "aqua-800",
        "description": "",
        "params": {},
        "computers_count": d.sorted.iter().filter(|m| d.fleet.machines[**m].group == i).count(),
        "enrollment_code": {"code": format!("{:06}", 100_000 + i), "is_active": true},
        "type": "classic",
    })
}

async fn list_blueprints(
    State(sim): State<Arc<IruSim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (limit, offset) = limit_offset(&q);
    let d = sim.devices.read().unwrap();
    let count = d.fleet.groups.len();
    let base = base_from_headers(&headers);
    let link =
        |o: usize| Value::String(format!("{base}/api/v1/blueprints?limit={limit}&offset={o}"));
    let results: Vec<Value> = (offset..count.min(offset + limit))
        .map(|i| blueprint_json(&sim, i, &d))
        .collect();
    Json(json!({
        "count": count,
        "next": if offset + limit < count { link(offset + limit) } else { Value::Null },
        "previous": if offset > 0 { link(offset.saturating_sub(limit)) } else { Value::Null },
        "results": results,
    }))
    .into_response()
}

async fn get_blueprint(State(sim): State<Arc<IruSim>>, Path(id): Path<String>) -> Response {
    let d = sim.devices.read().unwrap();
    match sim.blueprint_ids.iter().position(|b| *b == id) {
        Some(i) => Json(blueprint_json(&sim, i, &d)).into_response(),
        None => detail(StatusCode::NOT_FOUND, "Not found."),
    }
}
