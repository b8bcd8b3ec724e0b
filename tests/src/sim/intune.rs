//! The Microsoft Intune simulator (Microsoft Graph), faithful to
//! `shared/vendors/intune.md`: client-credentials tokens from
//! `/{tenant}/oauth2/v2.0/token` with Entra's error shape and app roles (an
//! app without the device permissions gets 403); `managedDevices` in OData
//! envelopes with absolute `@odata.nextLink`s carrying an opaque, checked
//! `$skiptoken` (1000 a page, `$top` clamped, `$skip` answering an empty
//! page), `$select` (detail-only properties blank in lists and revealed on a
//! single GET only when selected), lenient `$filter` (`ne` acts as `eq`, `in`
//! is a 500, other properties are ignored); device actions answering 204;
//! detectedApps (per device on `/beta` only); `/users` (100 a page, `$top`
//! 1..999) and `/organization`; Graph's error envelope with Intune's
//! JSON-in-message bodies and its response headers; and Intune's 20 s
//! throttling windows per tenant and per app, answered with 429 (with
//! `Retry-After`, except on per-device detectedApps).
//!
//! The fleet is [`Fleet::mixed`]. Devices are listed in id order and a
//! `$skiptoken` resumes after the last id served (keyset paging), so a
//! device deleted mid-walk shifts nothing.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::{Value, json};

use super::control::{ActionRecord, Control, Faults, Gate, SlidingWindow, retry_after_secs};
use super::fleet::{Fleet, Kind, Machine, NOW, Person, software, uuid};
use super::server::{Running, base_from_headers, serve};
use super::{base64url, bearer, datetime, fnv, from_base64url, json_body, now_secs, rfc3339};

/// `managedDevices`: the default page size and the `$top` cap.
pub const DEVICE_PAGE: usize = 1000;
/// `/users`: the default page size.
pub const USER_PAGE: usize = 100;
/// `/users`: the largest `$top` accepted (1000 is a 400).
pub const USER_MAX_TOP: usize = 999;
/// Tenant-wide detectedApps: default page and `$top` cap (undocumented; assumed).
pub const APP_PAGE: usize = 50;

const READ: &str = "DeviceManagementManagedDevices.Read.All";
const READ_WRITE: &str = "DeviceManagementManagedDevices.ReadWrite.All";
const PRIVILEGED: &str = "DeviceManagementManagedDevices.PrivilegedOperations.All";
const USER_READ: &str = "User.Read.All";
const ORG_READ: &str = "Organization.Read.All";
const DIRECTORY_READ: &str = "Directory.Read.All";
/// The roles in the full app's tokens.
const FULL_ROLES: &[&str] = &[READ, READ_WRITE, PRIVILEGED, USER_READ, ORG_READ];
/// The limited app can read the directory but not devices.
const LIMITED_ROLES: &[&str] = &[USER_READ, ORG_READ];

/// Graph hosts of every cloud: the scope's resource must be one of them.
const GRAPH_HOSTS: &[&str] = &[
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];
/// Microsoft Graph's application id, also a valid scope resource.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Never-set dates, as Intune writes them.
const NEVER: &str = "0001-01-01T00:00:00Z";
/// `complianceGracePeriodExpirationDateTime` outside a grace period.
const NO_GRACE: &str = "9999-12-31T23:59:59Z";
const NIL_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The Intune backend its error messages point at.
const INTUNE_FE: &str = "https://fef.msua06.manage.microsoft.com/DeviceFE/StatelessDeviceFEService";
const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";
const AGS_DIAGNOSTIC: &str = r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"003","RoleInstance":"AM2PEPF0001C2D5"}}"#;
/// The tenant's default verified domain (the fleet's addresses are here).
const DOMAIN: &str = "example.com";
/// The tenant's initial domain.
const INITIAL_DOMAIN: &str = "acmecorp.onmicrosoft.com";
const ORG_NAME: &str = "Acme Corp";

/// Intune's request limits (intune.md §9): per tenant and per app in the
/// tenant, all requests and writes, over a sliding window.
#[derive(Debug, Clone)]
pub struct Throttle {
    /// Window length (20 s).
    pub window: Duration,
    /// Requests per window, all apps of the tenant.
    pub tenant_any: u32,
    /// Requests per window, one app.
    pub app_any: u32,
    /// Writes (POST/PUT/PATCH/DELETE) per window, all apps.
    pub tenant_write: u32,
    /// Writes per window, one app.
    pub app_write: u32,
    /// Send `Retry-After` (seconds until the window frees) on 429s.
    pub retry_after: bool,
}

impl Default for Throttle {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(20),
            tenant_any: 4_000,
            app_any: 2_000,
            tenant_write: 400,
            app_write: 200,
            retry_after: true,
        }
    }
}

impl Throttle {
    /// The real limits times `factor` (each at least 1).
    pub fn scaled(factor: f64) -> Self {
        let scale = |n: u32| ((f64::from(n) * factor) as u32).max(1);
        let real = Self::default();
        Self {
            tenant_any: scale(real.tenant_any),
            app_any: scale(real.app_any),
            tenant_write: scale(real.tenant_write),
            app_write: scale(real.app_write),
            ..real
        }
    }

    /// No limits (benchmarks).
    pub fn unlimited() -> Self {
        Self {
            tenant_any: u32::MAX,
            app_any: u32::MAX,
            tenant_write: u32::MAX,
            app_write: u32::MAX,
            ..Self::default()
        }
    }

    fn is_unlimited(&self) -> bool {
        [
            self.tenant_any,
            self.app_any,
            self.tenant_write,
            self.app_write,
        ]
        .iter()
        .all(|l| *l == u32::MAX)
    }
}

/// How the simulator behaves.
#[derive(Debug, Clone)]
pub struct IntuneOptions {
    /// Devices in the fleet.
    pub devices: usize,
    /// Fleet seed.
    pub seed: u64,
    /// The app with every permission.
    pub client_id: String,
    /// The secret of both apps.
    pub client_secret: String,
    /// A valid app whose tokens lack the device permissions (403).
    pub limited_client_id: String,
    /// The tenant id or domain the token endpoint accepts; `None`: any.
    pub tenant: Option<String>,
    /// Token lifetime (`expires_in`).
    pub token_ttl: Duration,
    /// Intune's request limits.
    pub throttle: Throttle,
    /// Faults to inject from the start.
    pub faults: Faults,
}

impl Default for IntuneOptions {
    fn default() -> Self {
        Self {
            devices: 100,
            seed: 1,
            client_id: "test-client".into(),
            client_secret: "test-secret".into(),
            limited_client_id: "limited-client".into(),
            tenant: None,
            token_ttl: Duration::from_secs(3599),
            throttle: Throttle::default(),
            faults: Faults::default(),
        }
    }
}

/// An issued access token.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    roles: &'static [&'static str],
    expires: Instant,
}

/// One entry of `deviceActionResults`.
#[derive(Debug, Clone)]
struct ActionResult {
    name: &'static str,
    started: i64,
}

/// What Intune tracks about a device beyond the fleet: actions sent to it.
#[derive(Debug, Clone, Default)]
struct Managed {
    /// `managementState`; `None` is `managed`.
    state: Option<&'static str>,
    actions: Vec<ActionResult>,
}

/// A detectedApp: one software version on one platform, and how many live
/// devices report it.
#[derive(Debug, Clone)]
struct App {
    software: usize,
    platform: &'static str,
    devices: u32,
}

/// Devices that may disappear or change, and what depends on them.
struct Devices {
    fleet: Fleet,
    /// Live machine indexes by device id.
    by_id: HashMap<String, usize>,
    /// Live machine indexes sorted by id: the listing order.
    sorted: Vec<usize>,
    /// Per machine index.
    managed: Vec<Managed>,
    /// detectedApps by id.
    apps: BTreeMap<String, App>,
}

impl Devices {
    fn new(fleet: Fleet) -> Self {
        let machines = &fleet.machines;
        let by_id = machines
            .iter()
            .enumerate()
            .map(|(i, m)| (m.id.clone(), i))
            .collect();
        let mut sorted: Vec<usize> = (0..machines.len()).collect();
        sorted.sort_by(|a, b| machines[*a].id.cmp(&machines[*b].id));
        let mut apps = BTreeMap::new();
        for m in machines {
            tally(&mut apps, m, true);
        }
        Self {
            managed: vec![Managed::default(); machines.len()],
            fleet,
            by_id,
            sorted,
            apps,
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    fn id(&self, i: usize) -> &str {
        &self.fleet.machines[i].id
    }
}

/// Adds (or removes) a device's detectedApps to the tenant-wide counts.
fn tally(apps: &mut BTreeMap<String, App>, m: &Machine, add: bool) {
    for (id, software, platform) in detected(m) {
        let app = apps.entry(id).or_insert(App {
            software,
            platform,
            devices: 0,
        });
        if add {
            app.devices += 1;
        } else {
            app.devices = app.devices.saturating_sub(1);
        }
    }
    apps.retain(|_, a| a.devices > 0);
}

/// Intune's request budget: sliding windows per tenant and per app.
struct Budget {
    spec: Throttle,
    tenant_any: SlidingWindow,
    tenant_write: SlidingWindow,
    /// `[any, write]` per client id.
    apps: HashMap<String, [SlidingWindow; 2]>,
}

impl Budget {
    fn new(spec: &Throttle) -> Self {
        Self {
            tenant_any: SlidingWindow::new(spec.tenant_any, spec.window),
            tenant_write: SlidingWindow::new(spec.tenant_write, spec.window),
            apps: HashMap::new(),
            spec: spec.clone(),
        }
    }

    /// Spends one request of `app`, or says how long until it would fit.
    /// A refused request spends nothing.
    fn spend(&mut self, app: &str, write: bool, now: Instant) -> Result<(), Duration> {
        let Budget {
            spec,
            tenant_any,
            tenant_write,
            apps,
        } = self;
        let [app_any, app_write] = apps.entry(app.to_owned()).or_insert_with(|| {
            [
                SlidingWindow::new(spec.app_any, spec.window),
                SlidingWindow::new(spec.app_write, spec.window),
            ]
        });
        let mut windows = vec![tenant_any, app_any];
        if write {
            windows.extend([tenant_write, app_write]);
        }
        let wait = windows
            .iter_mut()
            .map(|w| w.wait(now))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        for w in windows {
            w.hit(now);
        }
        Ok(())
    }
}

/// A running simulator's state.
pub struct IntuneSim {
    devices: RwLock<Devices>,
    /// People indexes sorted by id: the `/users` order.
    users: Vec<usize>,
    tokens: Mutex<HashMap<String, Grant>>,
    issued: AtomicU64,
    budget: Option<Mutex<Budget>>,
    tenant_id: String,
    /// Keys `$skiptoken` checks to this instance.
    page_secret: u64,
    control: Arc<Control>,
    opts: IntuneOptions,
}

impl IntuneSim {
    /// Generates the fleet.
    pub fn new(opts: IntuneOptions) -> Arc<Self> {
        let fleet = Fleet::mixed(opts.devices, opts.seed);
        let tenant_id = match &opts.tenant {
            Some(t) if is_guid(t) => t.to_ascii_lowercase(),
            _ => uuid(&mut StdRng::seed_from_u64(opts.seed ^ 0x7e4a_4e7e)),
        };
        let people = &fleet.people;
        let mut users: Vec<usize> = (0..people.len()).collect();
        users.sort_by(|a, b| people[*a].id.cmp(&people[*b].id));
        let budget =
            (!opts.throttle.is_unlimited()).then(|| Mutex::new(Budget::new(&opts.throttle)));
        Arc::new(Self {
            devices: RwLock::new(Devices::new(fleet)),
            users,
            tokens: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
            budget,
            tenant_id,
            page_secret: rand::random(),
            control: Control::without_budget(opts.faults.clone()),
            opts,
        })
    }

    /// Starts serving on 127.0.0.1:`port` (0: any free port).
    pub async fn spawn(opts: IntuneOptions, port: u16) -> std::io::Result<(Arc<Self>, Running)> {
        let sim = Self::new(opts);
        let running = serve(sim.router(), port).await?;
        Ok((sim, running))
    }

    /// Faults, counters and the action record.
    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The organization id (tenant GUID) the simulator reports.
    pub fn tenant_id(&self) -> String {
        self.tenant_id.clone()
    }

    /// Ids of the live devices, in listing order.
    pub fn device_ids(&self) -> Vec<String> {
        let d = self.devices.read().unwrap();
        d.sorted.iter().map(|i| d.id(*i).to_owned()).collect()
    }

    /// Ids of every user, in listing order.
    pub fn user_ids(&self) -> Vec<String> {
        let d = self.devices.read().unwrap();
        self.users
            .iter()
            .map(|i| d.fleet.people[*i].id.clone())
            .collect()
    }

    /// A live device's fleet record (its kind, owner, ...), for tests.
    pub fn machine(&self, id: &str) -> Option<Machine> {
        let d = self.devices.read().unwrap();
        d.index(id).map(|i| d.fleet.machines[i].clone())
    }

    /// A live device's `managementState`.
    pub fn management_state(&self, id: &str) -> Option<&'static str> {
        let d = self.devices.read().unwrap();
        d.index(id).map(|i| d.managed[i].state.unwrap_or("managed"))
    }

    /// Deletes a device as an admin would; false if it did not exist.
    pub fn delete_device(&self, id: &str) -> bool {
        let mut d = self.devices.write().unwrap();
        let Some(i) = d.by_id.remove(id) else {
            return false;
        };
        d.sorted.retain(|x| *x != i);
        let Devices { fleet, apps, .. } = &mut *d;
        tally(apps, &fleet.machines[i], false);
        true
    }

    /// Changes a device as Intune would see it change (not its id); false
    /// if unknown.
    pub fn update_device(&self, id: &str, change: impl FnOnce(&mut Machine)) -> bool {
        let mut d = self.devices.write().unwrap();
        let Some(i) = d.index(id) else {
            return false;
        };
        let Devices { fleet, apps, .. } = &mut *d;
        tally(apps, &fleet.machines[i], false);
        change(&mut fleet.machines[i]);
        tally(apps, &fleet.machines[i], true);
        true
    }

    /// Every token issued so far answers 401 from now on.
    pub fn expire_tokens(&self) {
        self.tokens.lock().unwrap().clear();
    }

    /// Access tokens issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The router: the token endpoint, Graph behind faults, auth and the
    /// budget, plus `/_sim/*`.
    pub fn router(self: &Arc<Self>) -> Router {
        let graph = graph_routes("v1.0")
            .merge(graph_routes("beta"))
            .fallback(unknown_route)
            .layer(middleware::from_fn_with_state(self.clone(), graph_gate))
            .with_state(self.clone());
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .with_state(self.clone())
            .merge(graph)
            .merge(self.control.router())
    }
}

fn graph_routes(version: &str) -> Router<Arc<IntuneSim>> {
    let at = |path: &str| format!("/{version}{path}");
    Router::new()
        .route(&at("/deviceManagement/managedDevices"), get(list_devices))
        .route(
            &at("/deviceManagement/managedDevices/{id}"),
            get(get_device).delete(delete_device),
        )
        .route(
            &at("/deviceManagement/managedDevices/{id}/{segment}"),
            get(device_segment).post(device_action),
        )
        .route(&at("/deviceManagement/detectedApps"), get(list_apps))
        .route(&at("/deviceManagement/detectedApps/{id}"), get(get_app))
        .route(
            &at("/deviceManagement/detectedApps/{id}/managedDevices"),
            get(app_devices),
        )
        .route(&at("/users"), get(list_users))
        .route(&at("/users/{id}"), get(get_user))
        .route(&at("/organization"), get(list_orgs))
        .route(&at("/organization/{id}"), get(get_org))
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn random_guid() -> String {
    uuid(&mut StdRng::from_rng(&mut rand::rng()))
}

// ---------------------------------------------------------------------------
// The token endpoint (Entra ID)

/// An Entra token error: status, `error`, the AADSTS number, description.
struct EntraError(StatusCode, &'static str, u32, String);

impl EntraError {
    /// A 400 (most token errors).
    fn bad(error: &'static str, code: u32, description: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, error, code, description.into())
    }

    /// A 401: the client could not be authenticated.
    fn invalid_client(code: u32, description: impl Into<String>) -> Self {
        Self(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description.into(),
        )
    }

    fn missing(param: &str) -> Self {
        let description =
            format!("The request body must contain the following parameter: '{param}'.");
        Self::bad("invalid_request", 900144, description)
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let EntraError(status, error, code, description) = self;
        let (trace, correlation) = (random_guid(), random_guid());
        // Entra writes `2024-05-30 12:28:26Z`.
        let timestamp = rfc3339(now_secs()).replacen('T', " ", 1);
        let body = Props(vec![
            ("error", json!(error)),
            (
                "error_description",
                json!(format!(
                    "AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"
                )),
            ),
            ("error_codes", json!([code])),
            ("timestamp", json!(timestamp)),
            ("trace_id", json!(trace)),
            ("correlation_id", json!(correlation)),
            (
                "error_uri",
                json!(format!(
                    "https://login.microsoftonline.com/error?code={code}"
                )),
            ),
        ]);
        entra_json(status, &body)
    }
}

fn entra_json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        bytes,
    )
        .into_response()
}

/// `POST /{tenant}/oauth2/v2.0/token`: client credentials only. Outside
/// Graph's budget, faults and request counters.
async fn token(
    State(sim): State<Arc<IntuneSim>>,
    Path(tenant): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = form.ok().map(|Form(f)| f);
    match sim.check_token_request(&tenant, form.as_ref()) {
        Err(e) => e.into_response(),
        Ok((client_id, roles)) => {
            let token = sim.issue(client_id, roles);
            let ttl = sim.opts.token_ttl.as_secs();
            let body = Props(vec![
                ("token_type", json!("Bearer")),
                ("expires_in", json!(ttl)),
                ("ext_expires_in", json!(ttl)),
                ("access_token", json!(token)),
            ]);
            entra_json(StatusCode::OK, &body)
        }
    }
}

impl IntuneSim {
    fn knows_tenant(&self, tenant: &str) -> bool {
        let Some(expected) = &self.opts.tenant else {
            return true;
        };
        [expected.as_str(), &self.tenant_id, DOMAIN, INITIAL_DOMAIN]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tenant))
    }

    /// Validates a token request in Entra's order; the client and its roles.
    fn check_token_request<'f>(
        &self,
        tenant: &str,
        form: Option<&'f HashMap<String, String>>,
    ) -> Result<(&'f str, &'static [&'static str]), EntraError> {
        if !self.knows_tenant(tenant) {
            return Err(EntraError::bad(
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            ));
        }
        // A body that is not a form reads as one without parameters.
        let field = |k: &str| {
            form.and_then(|f| f.get(k))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| EntraError::missing(k))
        };
        let grant_type = field("grant_type")?;
        if grant_type != "client_credentials" {
            return Err(EntraError::bad(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
        let client_id = field("client_id")?;
        let roles = if client_id == self.opts.client_id {
            FULL_ROLES
        } else if client_id == self.opts.limited_client_id {
            LIMITED_ROLES
        } else {
            return Err(EntraError::bad(
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{ORG_NAME}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ));
        };
        check_scope(field("scope")?)?;
        let secret = field("client_secret").map_err(|_| {
            let description = "'client_assertion', 'client_secret' or 'request' is required \
                               for the 'client_credentials' grant type.";
            EntraError::invalid_client(7000216, description)
        })?;
        if secret != self.opts.client_secret {
            return Err(EntraError::invalid_client(
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            ));
        }
        Ok((client_id, roles))
    }

    /// A JWT-shaped token (opaque to clients; unsigned) with a `roles` claim.
    fn issue(&self, client_id: &str, roles: &'static [&'static str]) -> String {
        let now = now_secs();
        let ttl = self.opts.token_ttl.as_secs() as i64;
        let claims = json!({
            "aud": "https://graph.microsoft.com",
            "iss": format!("https://sts.windows.net/{}/", self.tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "appid": client_id,
            "idtyp": "app",
            "roles": roles,
            "tid": self.tenant_id,
            "uti": random_guid(),
            "ver": "1.0",
        });
        let signature: [u8; 32] = rand::random();
        let token = format!(
            "{}.{}.{}",
            base64url(br#"{"typ":"JWT","alg":"RS256","kid":"mdmhub-sim"}"#),
            base64url(claims.to_string().as_bytes()),
            base64url(&signature)
        );
        let grant = Grant {
            client_id: client_id.to_owned(),
            roles,
            expires: Instant::now() + self.opts.token_ttl,
        };
        self.tokens.lock().unwrap().insert(token.clone(), grant);
        self.issued.fetch_add(1, Ordering::Relaxed);
        token
    }
}

/// Client credentials need `<resource>/.default`, the resource being Graph.
fn check_scope(scope: &str) -> Result<(), EntraError> {
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(EntraError::bad(
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let host = resource.strip_prefix("https://").unwrap_or(resource);
    if GRAPH_HOSTS.contains(&host) || host == GRAPH_APP_ID {
        return Ok(());
    }
    Err(EntraError::bad(
        "invalid_scope",
        70011,
        format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
        ),
    ))
}

// ---------------------------------------------------------------------------
// Graph: what every request meets

/// Per-request facts the handlers need: ids for headers and error bodies,
/// the base URL links point at, the API version and the path.
#[derive(Debug, Clone)]
struct Ctx {
    request_id: String,
    client_request_id: String,
    base: String,
    version: String,
    path: String,
    query: Option<String>,
}

/// A handler's answer; a refusal is an error response.
type Answer = Result<Response, Refused>;

/// An error response, boxed so that `Result`s stay small.
#[derive(Debug)]
struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(resp: Response) -> Self {
        Self(Box::new(resp))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Graph's error envelope: `{"error": {...}}`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: GraphError<'a>,
}

/// Graph's `error` object, fields in Graph's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphError<'a> {
    code: &'a str,
    message: &'a str,
    inner_error: InnerError<'a>,
}

/// Where and when the error happened, for Microsoft support.
#[derive(Serialize)]
struct InnerError<'a> {
    date: String,
    #[serde(rename = "request-id")]
    request_id: &'a str,
    #[serde(rename = "client-request-id")]
    client_request_id: &'a str,
}

impl Ctx {
    fn new(req: &Request) -> Self {
        let request_id = random_guid();
        // Graph echoes the caller's id, or reuses its own.
        let client_request_id = req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| request_id.clone(), str::to_owned);
        let path = req.uri().path().to_owned();
        let version = path.split('/').nth(1).unwrap_or_default().to_owned();
        Self {
            request_id,
            client_request_id,
            base: base_from_headers(req.headers()),
            version,
            path,
            query: req.uri().query().map(str::to_owned),
        }
    }

    /// An absolute URL under this request's API version.
    fn url(&self, rest: &str) -> String {
        format!("{}/{}/{rest}", self.base, self.version)
    }

    /// An `@odata.context` value.
    fn context(&self, rest: &str) -> String {
        format!("{}/{}/$metadata#{rest}", self.base, self.version)
    }

    /// Graph's error envelope.
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Response {
        // `innerError.date` has no zone: `2024-05-30T12:28:26`.
        let date = rfc3339(now_secs()).trim_end_matches('Z').to_owned();
        let error = GraphError {
            code,
            message,
            inner_error: InnerError {
                date,
                request_id: &self.request_id,
                client_request_id: &self.client_request_id,
            },
        };
        graph_json(status, &ErrorBody { error })
    }

    fn bad_request(&self, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn unknown_segment(&self, segment: &str) -> Response {
        self.bad_request(&format!("Resource not found for the segment '{segment}'."))
    }

    /// The Intune backend's error: its JSON document as the message.
    fn intune_error(&self, status: StatusCode, code: &str) -> Response {
        let message = format!(
            "An error has occurred - Operation ID (for customer support): {NIL_GUID} - Activity ID: {} - Url: {}",
            self.request_id,
            self.backend_url()
        );
        let document = format!(
            "{{\r\n  \"_version\": 3,\r\n  \"Message\": {},\r\n  \"CustomApiErrorPhrase\": \"\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{{}}\"\r\n}}",
            Value::String(message)
        );
        self.error(status, code, &document)
    }

    fn backend_url(&self) -> String {
        let rest = self.path.splitn(3, '/').nth(2).unwrap_or_default();
        let query = self.query.as_deref().map(|q| format!("&{q}"));
        format!(
            "{INTUNE_FE}/{rest}?api-version=2023-10-19{}",
            query.unwrap_or_default()
        )
    }

    fn not_found(&self) -> Response {
        self.intune_error(StatusCode::NOT_FOUND, "ResourceNotFound")
    }

    fn unauthorized(&self, message: &str) -> Response {
        let mut resp = self.error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\""),
        );
        resp
    }

    /// A missing app role: Intune's sentence on device paths, the
    /// directory's elsewhere.
    fn forbidden(&self) -> Response {
        if !is_intune(&self.path) {
            return self.error(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            );
        }
        let message = format!(
            "Application is not authorized to perform this operation - Operation ID (for customer support): {NIL_GUID} - Activity ID: {} - Url: {} - CustomApiErrorPhrase: ",
            self.request_id,
            self.backend_url()
        );
        self.error(StatusCode::FORBIDDEN, "Forbidden", &message)
    }

    fn too_many_requests(&self, retry_after: Option<u64>) -> Response {
        let mut resp = self.error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Too many requests. Please try again later.",
        );
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }

    fn server_error(&self, status: u16) -> Response {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let (code, message) = match status.as_u16() {
            500 => ("InternalServerError", "An internal server error occurred."),
            502 => ("BadGateway", "The server received an invalid response."),
            504 => ("GatewayTimeout", "The request timed out."),
            _ => (
                "ServiceUnavailable",
                "The service is temporarily unavailable. Please try again later.",
            ),
        };
        self.error(status, code, message)
    }

    /// Headers Graph puts on every response.
    fn decorate(&self, mut resp: Response) -> Response {
        let h = resp.headers_mut();
        for (name, value) in [
            ("request-id", &self.request_id),
            ("client-request-id", &self.client_request_id),
        ] {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        }
        h.insert(
            "x-ms-ags-diagnostic",
            HeaderValue::from_static(AGS_DIAGNOSTIC),
        );
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if h.contains_key(header::CONTENT_TYPE) {
            h.insert("odata-version", HeaderValue::from_static("4.0"));
        }
        resp
    }
}

/// Faults, then the token and its roles, then Intune's budget.
async fn graph_gate(State(sim): State<Arc<IntuneSim>>, mut req: Request, next: Next) -> Response {
    let ctx = Ctx::new(&req);
    let token = bearer(req.headers()).map(str::to_owned);
    let resp = match sim.admit(req.method().clone(), token, &ctx).await {
        Ok(()) => {
            req.extensions_mut().insert(ctx.clone());
            next.run(req).await
        }
        Err(refused) => refused,
    };
    ctx.decorate(resp)
}

impl IntuneSim {
    async fn admit(
        &self,
        method: Method,
        token: Option<String>,
        ctx: &Ctx,
    ) -> Result<(), Response> {
        match self.control.gate_faults().await {
            Gate::Pass => {}
            Gate::Throttle(secs) => return Err(ctx.too_many_requests(secs)),
            Gate::Fail(status) => return Err(ctx.server_error(status)),
        }
        let grant = self
            .grant(token.as_deref())
            .map_err(|m| ctx.unauthorized(m))?;
        let needs = required_roles(&method, &ctx.path);
        if !needs.is_empty() && !needs.iter().any(|r| grant.roles.contains(r)) {
            return Err(ctx.forbidden());
        }
        if is_intune(&ctx.path) {
            let write = !matches!(method, Method::GET | Method::HEAD);
            if let Err(wait) = self.spend(&grant.client_id, write) {
                self.control.note_throttled();
                // Per-device detectedApps are throttled without a hint.
                let hint = self.opts.throttle.retry_after && !is_device_apps(&ctx.path);
                return Err(ctx.too_many_requests(hint.then(|| retry_after_secs(wait))));
            }
        }
        Ok(())
    }

    fn grant(&self, token: Option<&str>) -> Result<Grant, &'static str> {
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or("Access token is empty.")?;
        match self.tokens.lock().unwrap().get(token) {
            Some(g) if g.expires > Instant::now() => Ok(g.clone()),
            _ => Err("Access token has expired or is not yet valid."),
        }
    }

    fn spend(&self, app: &str, write: bool) -> Result<(), Duration> {
        match &self.budget {
            None => Ok(()),
            Some(b) => b.lock().unwrap().spend(app, write, Instant::now()),
        }
    }
}

/// The root resource of a Graph path (`/v1.0/users/x` → `users`).
fn resource(path: &str) -> &str {
    path.split('/').nth(2).unwrap_or_default()
}

/// Served by Intune (its roles, budget and error style).
fn is_intune(path: &str) -> bool {
    resource(path) == "deviceManagement"
}

fn is_device_apps(path: &str) -> bool {
    is_intune(path) && path.contains("/managedDevices/") && path.ends_with("/detectedApps")
}

/// App roles of which a request needs one.
fn required_roles(method: &Method, path: &str) -> &'static [&'static str] {
    match (resource(path), method) {
        ("deviceManagement", &Method::POST) => &[PRIVILEGED],
        ("deviceManagement", &Method::DELETE) => &[READ_WRITE],
        ("deviceManagement", _) => &[READ, READ_WRITE],
        ("users", _) => &[USER_READ, DIRECTORY_READ],
        ("organization", _) => &[ORG_READ, USER_READ, DIRECTORY_READ],
        _ => &[],
    }
}

/// Graph names the first segment it cannot resolve: an unknown root, or
/// else (near enough) the last segment.
async fn unknown_route(Extension(ctx): Extension<Ctx>) -> Response {
    if !["v1.0", "beta"].contains(&ctx.version.as_str()) {
        return ctx.bad_request(&format!("Invalid version: {}", ctx.version));
    }
    let root = resource(&ctx.path);
    let known = ["deviceManagement", "users", "organization"].contains(&root);
    let last = ctx.path.trim_end_matches('/').rsplit('/').next();
    ctx.unknown_segment(if known {
        last.unwrap_or_default()
    } else {
        root
    })
}

// ---------------------------------------------------------------------------
// OData: ordered objects, envelopes, query options, page tokens

/// A JSON object that keeps its keys in order (Graph writes properties in
/// schema or `$select` order; a `serde_json` map would sort them).
#[derive(Debug, Clone, Default)]
struct Props(Vec<(&'static str, Value)>);

impl Serialize for Props {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Props {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Only `names`, in that order.
    fn project(&self, names: &[&'static str]) -> Props {
        Props(
            names
                .iter()
                .filter_map(|n| self.get(n).map(|v| (*n, v.clone())))
                .collect(),
        )
    }

    /// An entity response: `@odata.context` first.
    fn entity(mut self, context: String) -> Response {
        self.0.insert(0, ("@odata.context", Value::String(context)));
        graph_json(StatusCode::OK, &self)
    }
}

fn graph_json(status: StatusCode, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("JSON serializes");
    (status, [(header::CONTENT_TYPE, ODATA_JSON)], bytes).into_response()
}

/// A collection page.
#[derive(Serialize)]
struct Collection<T> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<usize>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    value: Vec<T>,
}

impl<T: Serialize> Collection<T> {
    fn new(context: String, value: Vec<T>) -> Self {
        Self {
            context,
            count: None,
            next_link: None,
            value,
        }
    }

    fn respond(self) -> Answer {
        Ok(graph_json(StatusCode::OK, &self))
    }
}

/// OData system query options (`$` optional, names case-insensitive).
#[derive(Debug, Default)]
struct Options {
    top: Option<String>,
    select: Option<String>,
    filter: Option<String>,
    skiptoken: Option<String>,
    skip: Option<String>,
    count: Option<String>,
}

impl Options {
    fn new(query: &HashMap<String, String>) -> Self {
        let mut o = Self::default();
        for (k, v) in query {
            let slot = match k.trim_start_matches('$').to_ascii_lowercase().as_str() {
                "top" => &mut o.top,
                "select" => &mut o.select,
                "filter" => &mut o.filter,
                "skiptoken" => &mut o.skiptoken,
                "skip" => &mut o.skip,
                "count" => &mut o.count,
                _ => continue,
            };
            *slot = Some(v.clone());
        }
        o
    }

    /// `$top`: absent → `default`, above `cap` → `cap` (Intune clamps).
    fn top(&self, default: usize, cap: usize) -> Result<usize, String> {
        match &self.top {
            None => Ok(default),
            Some(t) => t.parse::<usize>().map(|n| n.clamp(1, cap)).map_err(|_| {
                format!("Invalid value '{t}' for $top query option found. The $top query option requires a non-negative integer value.")
            }),
        }
    }

    /// A `$skip` past the start, which Intune answers with nothing.
    fn skips(&self) -> bool {
        self.skiptoken.is_none()
            && self
                .skip
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
    }

    fn wants_count(&self) -> bool {
        self.count
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("true"))
    }

    /// What a `$skiptoken` is bound to: the collection and the options that
    /// shape its pages, so it only works in the request it came from.
    fn scope(&self, collection: &str) -> String {
        format!(
            "{collection}\n{:?}\n{:?}\n{:?}",
            self.top, self.select, self.filter
        )
    }

    /// The query of a next link: the original options, then the token.
    fn next_query(&self, skiptoken: &str) -> String {
        let repeated = [
            ("$top", &self.top),
            ("$select", &self.select),
            ("$filter", &self.filter),
            ("$count", &self.count),
        ];
        let mut parts: Vec<String> = repeated
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| format!("{k}={}", encode(v))))
            .collect();
        parts.push(format!("$skiptoken={skiptoken}"));
        parts.join("&")
    }
}

/// Percent-encodes a query value, leaving OData's punctuation readable.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            b'-' | b'.' | b'_' | b'~' | b',' | b'\'' | b'(' | b')' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl IntuneSim {
    /// An opaque `$skiptoken`: the key to resume after, and a check.
    fn skiptoken(&self, scope: &str, after: &str) -> String {
        let mut bytes = after.as_bytes().to_vec();
        bytes.extend(self.check(scope, after).to_be_bytes());
        base64url(&bytes)
    }

    fn check(&self, scope: &str, after: &str) -> u64 {
        fnv(format!("{}\n{scope}\n{after}", self.page_secret).as_bytes())
    }

    /// The key a request's `$skiptoken` resumes after; `Err` if it was not
    /// issued for this request.
    fn resume_after(&self, o: &Options, scope: &str) -> Result<Option<String>, ()> {
        let Some(token) = &o.skiptoken else {
            return Ok(None);
        };
        let bytes = from_base64url(token).ok_or(())?;
        let split = bytes.len().checked_sub(8).ok_or(())?;
        let (after, check) = bytes.split_at(split);
        let after = String::from_utf8(after.to_vec()).map_err(|_| ())?;
        let valid = check == self.check(scope, &after).to_be_bytes();
        valid.then_some(Some(after)).ok_or(())
    }
}

/// `$select` as schema names in the order given; `None` when absent.
fn parse_select(
    raw: Option<&str>,
    props: &[&'static str],
    entity: &str,
) -> Result<Option<Vec<&'static str>>, String> {
    let Some(raw) = raw.filter(|r| !r.trim().is_empty()) else {
        return Ok(None);
    };
    let mut names: Vec<&'static str> = Vec::new();
    for name in raw.split(',').map(str::trim) {
        let known = props
            .iter()
            .find(|p| p.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "Could not find a property named '{name}' on type 'microsoft.graph.{entity}'."
                )
            })?;
        if !names.contains(known) {
            names.push(known);
        }
    }
    Ok(Some(names))
}

/// `(a,b)` after a collection in `@odata.context` when `$select` was given.
fn select_suffix(select: &Option<Vec<&str>>) -> String {
    select
        .as_ref()
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default()
}

/// `$select` plus `id`, which Intune always returns.
fn with_id(select: &[&'static str]) -> Vec<&'static str> {
    let mut names = select.to_vec();
    if !names.contains(&"id") {
        names.insert(0, "id");
    }
    names
}

/// A page read one item long: the page, and the key to resume after if
/// more remain.
fn split_page<T>(
    mut items: Vec<T>,
    top: usize,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let more = items.len() > top;
    items.truncate(top);
    let after = more.then(|| items.last().map(&key)).flatten();
    (items, after)
}

// ---------------------------------------------------------------------------
// managedDevice

/// Every managedDevice property (v1.0: 55 plus the inherited `id`), in
/// schema order.
const DEVICE_PROPS: &[&str] = &[
    "id",
    "userId",
    "deviceName",
    "managedDeviceOwnerType",
    "deviceActionResults",
    "enrolledDateTime",
    "lastSyncDateTime",
    "operatingSystem",
    "complianceState",
    "jailBroken",
    "managementAgent",
    "managementState",
    "osVersion",
    "easActivated",
    "easDeviceId",
    "easActivationDateTime",
    "azureADRegistered",
    "deviceEnrollmentType",
    "activationLockBypassCode",
    "emailAddress",
    "azureADDeviceId",
    "deviceCategoryDisplayName",
    "deviceRegistrationState",
    "isSupervised",
    "exchangeLastSuccessfulSyncDateTime",
    "exchangeAccessState",
    "exchangeAccessStateReason",
    "remoteAssistanceSessionUrl",
    "remoteAssistanceSessionErrorDetails",
    "isEncrypted",
    "userPrincipalName",
    "model",
    "manufacturer",
    "imei",
    "complianceGracePeriodExpirationDateTime",
    "serialNumber",
    "phoneNumber",
    "androidSecurityPatchLevel",
    "userDisplayName",
    "configurationManagerClientEnabledFeatures",
    "wiFiMacAddress",
    "ethernetMacAddress",
    "deviceHealthAttestationState",
    "subscriberCarrier",
    "meid",
    "totalStorageSpaceInBytes",
    "freeStorageSpaceInBytes",
    "managedDeviceName",
    "partnerReportedThreatState",
    "requireUserEnrollmentApproval",
    "managementCertificateExpirationDate",
    "iccid",
    "udid",
    "notes",
    "physicalMemoryInBytes",
    "enrollmentProfileName",
];

/// Properties `$filter` can test; any other property is silently ignored.
const FILTERABLE: &[&str] = &[
    "operatingSystem",
    "complianceState",
    "managementAgent",
    "serialNumber",
    "deviceName",
    "userPrincipalName",
];

/// What Intune reports about a machine beyond the fleet's facts, derived
/// from its id so that every response agrees.
struct Facts {
    compliance: &'static str,
    grace_until: String,
    agent: &'static str,
    enrollment: &'static str,
    profile: Option<&'static str>,
    /// Co-managed with Configuration Manager: its enabled workloads.
    co_management: Value,
    aad_registered: bool,
    aad_device_id: String,
    imei: String,
    meid: String,
    phone: String,
    carrier: &'static str,
    iccid: String,
    udid: String,
    ethernet: String,
    storage: (i64, i64),
    memory: i64,
    cert_expiry: i64,
    bypass_code: Option<String>,
}

/// Draws for [`Facts`]: every one happens whatever the machine looks like,
/// so a change made through `update_device` alters only what depends on it.
struct Dice {
    compliance: u32,
    co_managed: bool,
    autopilot: bool,
    aad_device_id: String,
    imei: String,
    phone: String,
    carrier: &'static str,
    iccid: String,
    reserved: i64,
    free_percent: i64,
    cert_days: i64,
    bypass_code: String,
}

impl Dice {
    fn roll(m: &Machine) -> Self {
        let mut rng = StdRng::seed_from_u64(fnv(m.id.as_bytes()));
        Self {
            compliance: rng.random_range(0..100),
            co_managed: rng.random_bool(0.1),
            autopilot: rng.random_bool(0.8),
            aad_device_id: uuid(&mut rng),
            imei: digits(&mut rng, 15),
            phone: format!("+1555{}", digits(&mut rng, 7)),
            carrier: *["Verizon", "T-Mobile", "AT&T"].choose(&mut rng).unwrap(),
            iccid: format!("8901{}", digits(&mut rng, 15)),
            reserved: rng.random_range(1_000_000_000..3_000_000_000),
            free_percent: rng.random_range(10..70),
            cert_days: rng.random_range(30..330),
            bypass_code: (0..7)
                .map(|_| digits(&mut rng, 4))
                .collect::<Vec<_>>()
                .join("-"),
        }
    }
}

fn digits(rng: &mut StdRng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10)))
        .collect()
}

fn facts(m: &Machine) -> Facts {
    let dice = Dice::roll(m);
    let co_managed = m.kind.is_windows() && dice.co_managed;
    let phone = matches!(m.kind, Kind::IPhone | Kind::AndroidPhone);
    let synced = m.last_check_in.is_some();
    let total = i64::from(m.storage_gb) * 1_000_000_000 - dice.reserved;
    let compliance = compliance(m, dice.compliance);
    let enrollment = enrollment_type(m, co_managed, dice.autopilot);
    let aad_registered = m.kind.is_windows() || (!m.kind.is_mac() && m.owner.is_some());
    let imei = &dice.imei;
    Facts {
        compliance,
        grace_until: match compliance {
            "inGracePeriod" => rfc3339(NOW + 3 * 86_400),
            _ => NO_GRACE.into(),
        },
        agent: match m.kind {
            _ if co_managed => "configurationManagerClientMdm",
            Kind::AndroidPhone if !m.personal => "googleCloudDevicePolicyController",
            _ => "mdm",
        },
        enrollment,
        profile: match enrollment {
            "appleBulkWithUser" | "appleBulkWithoutUser" => Some("Corporate ADE"),
            "windowsAzureADJoin" => Some("Autopilot - User Driven"),
            _ => None,
        },
        co_management: if co_managed {
            json!({"inventory": true, "modernApps": false, "resourceAccess": false, "deviceConfiguration": false, "compliancePolicy": true, "windowsUpdateForBusiness": false})
        } else {
            Value::Null
        },
        aad_registered,
        aad_device_id: if aad_registered {
            dice.aad_device_id
        } else {
            NIL_GUID.into()
        },
        // iOS groups IMEI digits, Android sends one number.
        imei: match m.kind {
            Kind::IPhone => format!(
                "{} {} {} {}",
                &imei[..2],
                &imei[2..8],
                &imei[8..14],
                &imei[14..]
            ),
            Kind::AndroidPhone => imei.clone(),
            _ => String::new(),
        },
        meid: if m.kind == Kind::IPhone {
            imei[..14].to_owned()
        } else {
            String::new()
        },
        // Intune does not collect phone numbers from personal devices.
        phone: if phone && !m.personal {
            dice.phone
        } else {
            String::new()
        },
        carrier: if phone { dice.carrier } else { "" },
        iccid: if phone { dice.iccid } else { String::new() },
        udid: if m.kind.is_apple() {
            m.udid.to_uppercase()
        } else {
            String::new()
        },
        ethernet: if m.kind.is_windows() || m.kind == Kind::MacDesktop {
            mac_address(m, 1)
        } else {
            String::new()
        },
        storage: if synced {
            (total, total * dice.free_percent / 100)
        } else {
            (0, 0)
        },
        memory: if synced {
            i64::from(m.memory_gb) << 30
        } else {
            0
        },
        cert_expiry: NOW + dice.cert_days * 86_400,
        bypass_code: (matches!(m.kind, Kind::IPhone | Kind::IPad) && m.supervised)
            .then_some(dice.bypass_code),
    }
}

fn compliance(m: &Machine, roll: u32) -> &'static str {
    match (m.last_check_in, m.encrypted, roll) {
        (None, _, _) => "unknown",
        (_, false, _) | (_, _, 0..4) => "noncompliant",
        (_, _, 4..6) => "inGracePeriod",
        _ => "compliant",
    }
}

fn enrollment_type(m: &Machine, co_managed: bool, autopilot: bool) -> &'static str {
    match m.kind {
        _ if co_managed => "windowsCoManagement",
        Kind::WindowsLaptop | Kind::WindowsDesktop if autopilot => "windowsAzureADJoin",
        Kind::WindowsLaptop | Kind::WindowsDesktop => "windowsAutoEnrollment",
        // Fully managed Android is not in v1.0's enum: Graph says so.
        Kind::AndroidPhone if !m.personal => "unknownFutureValue",
        _ if m.personal || !m.supervised => "userEnrollment",
        _ if m.owner.is_some() => "appleBulkWithUser",
        _ => "appleBulkWithoutUser",
    }
}

fn operating_system(kind: Kind) -> &'static str {
    match kind {
        Kind::WindowsLaptop | Kind::WindowsDesktop => "Windows",
        Kind::MacLaptop | Kind::MacDesktop => "macOS",
        Kind::IPhone => "iOS",
        Kind::IPad => "iPadOS",
        Kind::AppleTv => "tvOS",
        Kind::AndroidPhone => "Android",
    }
}

/// `14.5 (23F79)` on macOS, the version alone elsewhere (Windows' has the build).
fn os_version(m: &Machine) -> String {
    match m.kind {
        Kind::MacLaptop | Kind::MacDesktop => format!("{} ({})", m.os.0, m.os.1),
        _ => m.os.0.to_owned(),
    }
}

/// Apple devices report a model name; others what their firmware says.
fn model(m: &Machine) -> &'static str {
    if m.kind.is_apple() {
        m.model.split(" (").next().unwrap_or(m.model)
    } else {
        m.model_identifier
    }
}

/// A MAC without separators (upper case on Windows), `bump` added to the
/// last byte (a second interface).
fn mac_address(m: &Machine, bump: u8) -> String {
    let mut bytes: Vec<u8> = m
        .mac
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    if let Some(last) = bytes.last_mut() {
        *last = last.wrapping_add(bump);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if m.kind.is_windows() {
        hex.to_uppercase()
    } else {
        hex
    }
}

/// `dana.lee12_Windows_7/23/2024_9:31 AM`: Intune's generated name.
fn managed_device_name(m: &Machine, user: Option<&Person>) -> String {
    let platform = match m.kind {
        Kind::WindowsLaptop | Kind::WindowsDesktop => "Windows",
        Kind::MacLaptop | Kind::MacDesktop => "MacOS",
        Kind::IPhone => "iPhone",
        Kind::IPad => "iPad",
        Kind::AppleTv => "AppleTV",
        Kind::AndroidPhone if m.personal => "AndroidForWork",
        Kind::AndroidPhone => "AndroidEnterprise",
    };
    let who = user.map_or(m.name.as_str(), |p| p.email.split('@').next().unwrap_or(""));
    let t = datetime(m.enrolled.1);
    let (hour, half) = match t.hour() {
        0 => (12, "AM"),
        h @ 1..12 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{who}_{platform}_{}/{}/{}_{hour}:{:02} {half}",
        t.month() as u8,
        t.day(),
        t.year(),
        t.minute()
    )
}

fn android_patch_level(m: &Machine) -> &'static str {
    match (m.kind, m.os.0) {
        (Kind::AndroidPhone, "14") => "2024-07-01",
        (Kind::AndroidPhone, _) => "2024-05-01",
        _ => "",
    }
}

fn action_results(managed: &Managed) -> Value {
    managed
        .actions
        .iter()
        .map(|a| {
            json!({
                "actionName": a.name,
                "actionState": "pending",
                "startDateTime": rfc3339(a.started),
                "lastUpdatedDateTime": rfc3339(a.started),
            })
        })
        .collect()
}

/// Properties a list leaves blank: only a single GET that selects them
/// by name returns their values.
const DETAIL_ONLY: &[&str] = &[
    "activationLockBypassCode",
    "ethernetMacAddress",
    "iccid",
    "udid",
    "notes",
    "physicalMemoryInBytes",
];

impl Devices {
    /// Every property of device `i`, detail-only ones blank (`0` or
    /// `null`, as in a list) unless named in `reveal`.
    fn device_props(&self, i: usize, reveal: &[&str]) -> Props {
        let m = &self.fleet.machines[i];
        let f = facts(m);
        let user = m.owner.map(|p| &self.fleet.people[p]);
        let user_text = |get: fn(&Person) -> &str| json!(user.map_or("", get));
        let owner_type = if m.personal { "personal" } else { "company" };
        let mobile = matches!(m.kind, Kind::IPhone | Kind::IPad | Kind::AndroidPhone);
        let jailbroken = if mobile { "False" } else { "Unknown" };
        let last_sync = m.last_check_in.map_or(NEVER.into(), rfc3339);
        let state = self.managed[i].state.unwrap_or("managed");
        let category = if m.personal {
            "Unknown"
        } else {
            self.fleet.groups[m.group]
        };
        let registered = if f.aad_registered {
            "registered"
        } else {
            "notRegistered"
        };
        let mut props = Props(vec![
            ("id", json!(m.id)),
            ("userId", user_text(|p| p.id.as_str())),
            ("deviceName", json!(m.name)),
            ("managedDeviceOwnerType", json!(owner_type)),
            ("deviceActionResults", action_results(&self.managed[i])),
            ("enrolledDateTime", json!(rfc3339(m.enrolled.1))),
            ("lastSyncDateTime", json!(last_sync)),
            ("operatingSystem", json!(operating_system(m.kind))),
            ("complianceState", json!(f.compliance)),
            ("jailBroken", json!(jailbroken)),
            ("managementAgent", json!(f.agent)),
            ("managementState", json!(state)),
            ("osVersion", json!(os_version(m))),
            ("easActivated", json!(false)),
            ("easDeviceId", json!("")),
            ("easActivationDateTime", json!(NEVER)),
            ("azureADRegistered", json!(f.aad_registered)),
            ("deviceEnrollmentType", json!(f.enrollment)),
            ("activationLockBypassCode", json!(f.bypass_code)),
            ("emailAddress", user_text(|p| p.email.as_str())),
            ("azureADDeviceId", json!(f.aad_device_id)),
            ("deviceCategoryDisplayName", json!(category)),
            ("deviceRegistrationState", json!(registered)),
            ("isSupervised", json!(m.kind.is_apple() && m.supervised)),
            ("exchangeLastSuccessfulSyncDateTime", json!(NEVER)),
            ("exchangeAccessState", json!("none")),
            ("exchangeAccessStateReason", json!("none")),
            ("remoteAssistanceSessionUrl", json!("")),
            ("remoteAssistanceSessionErrorDetails", json!("")),
            ("isEncrypted", json!(m.encrypted)),
            ("userPrincipalName", user_text(|p| p.email.as_str())),
            ("model", json!(model(m))),
            ("manufacturer", json!(m.manufacturer)),
            ("imei", json!(f.imei)),
            (
                "complianceGracePeriodExpirationDateTime",
                json!(f.grace_until),
            ),
            ("serialNumber", json!(m.serial.as_deref().unwrap_or(""))),
            ("phoneNumber", json!(f.phone)),
            ("androidSecurityPatchLevel", json!(android_patch_level(m))),
            ("userDisplayName", user_text(|p| p.name.as_str())),
            ("configurationManagerClientEnabledFeatures", f.co_management),
            ("wiFiMacAddress", json!(mac_address(m, 0))),
            ("ethernetMacAddress", json!(f.ethernet)),
            ("deviceHealthAttestationState", Value::Null),
            ("subscriberCarrier", json!(f.carrier)),
            ("meid", json!(f.meid)),
            ("totalStorageSpaceInBytes", json!(f.storage.0)),
            ("freeStorageSpaceInBytes", json!(f.storage.1)),
            ("managedDeviceName", json!(managed_device_name(m, user))),
            ("partnerReportedThreatState", json!("unknown")),
            ("requireUserEnrollmentApproval", Value::Null),
            (
                "managementCertificateExpirationDate",
                json!(rfc3339(f.cert_expiry)),
            ),
            ("iccid", json!(f.iccid)),
            ("udid", json!(f.udid)),
            ("notes", json!(m.asset_tag)),
            ("physicalMemoryInBytes", json!(f.memory)),
            ("enrollmentProfileName", json!(f.profile)),
        ]);
        for (name, value) in &mut props.0 {
            if DETAIL_ONLY.contains(name) && !reveal.contains(name) {
                let zero = *name == "physicalMemoryInBytes";
                *value = if zero { json!(0) } else { Value::Null };
            }
        }
        props
    }
}

/// One `$filter` test Intune honours.
#[derive(Debug, PartialEq)]
enum Clause {
    /// `prop eq 'v'` (and `prop ne 'v'`, which Intune answers as `eq`).
    Eq(&'static str, String),
    /// `startswith(prop,'v')`.
    StartsWith(&'static str, String),
}

#[derive(Debug, PartialEq)]
enum FilterError {
    /// 400 with this message.
    Invalid(String),
    /// The `in` operator: Intune answers 500.
    In,
}

/// Parses `a and b and ...`; clauses Intune ignores are dropped.
fn parse_filter(raw: &str) -> Result<Vec<Clause>, FilterError> {
    let mut clauses = Vec::new();
    for part in split_and(raw) {
        if let Some(c) = parse_clause(part)? {
            clauses.push(c);
        }
    }
    Ok(clauses)
}

/// Splits on ` and ` outside string literals.
fn split_and(raw: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let lower = raw.to_ascii_lowercase();
    for (i, c) in raw.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted && i >= start && lower[i..].starts_with(" and ") {
            parts.push(&raw[start..i]);
            start = i + " and ".len();
        }
    }
    parts.push(&raw[start..]);
    parts
}

fn parse_clause(clause: &str) -> Result<Option<Clause>, FilterError> {
    let mut c = clause.trim();
    while let Some(inner) = c.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        c = inner.trim();
    }
    let invalid = || FilterError::Invalid(format!("Invalid filter clause: {}", clause.trim()));
    let function = c
        .get(..11)
        .filter(|f| f.eq_ignore_ascii_case("startswith("));
    if function.is_some() {
        let args = c[11..].strip_suffix(')').ok_or_else(invalid)?;
        let (prop, value) = args.split_once(',').ok_or_else(invalid)?;
        let value = string_literal(value.trim()).ok_or_else(invalid)?;
        return Ok(filterable(prop.trim()).map(|p| Clause::StartsWith(p, value)));
    }
    let mut words = c.splitn(3, ' ');
    let (Some(prop), Some(op), Some(value)) = (words.next(), words.next(), words.next()) else {
        return Err(invalid());
    };
    match (op.to_ascii_lowercase().as_str(), filterable(prop)) {
        ("in", _) => Err(FilterError::In),
        ("eq" | "ne", Some(prop)) => {
            let value = string_literal(value.trim()).ok_or_else(invalid)?;
            Ok(Some(Clause::Eq(prop, value)))
        }
        // Other properties, and date comparisons (reported flaky), are
        // ignored: the filter returns every device.
        ("eq" | "ne" | "gt" | "ge" | "lt" | "le", _) => Ok(None),
        _ => Err(invalid()),
    }
}

/// The schema name of a property `$filter` honours.
fn filterable(name: &str) -> Option<&'static str> {
    FILTERABLE
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .copied()
}

/// `'it''s'` → `it's`; `None` unless one well-formed literal.
fn string_literal(text: &str) -> Option<String> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\'' && chars.next() != Some('\'') {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

impl Clause {
    fn matches(&self, m: &Machine, f: &Facts, people: &[Person]) -> bool {
        let (prop, want) = match self {
            Clause::Eq(p, v) | Clause::StartsWith(p, v) => (*p, v),
        };
        let owner = m.owner.map(|p| people[p].email.as_str());
        let have = match prop {
            "operatingSystem" => operating_system(m.kind),
            "complianceState" => f.compliance,
            "managementAgent" => f.agent,
            "serialNumber" => m.serial.as_deref().unwrap_or(""),
            "deviceName" => &m.name,
            _ => owner.unwrap_or(""),
        };
        match self {
            Clause::Eq(..) => have.eq_ignore_ascii_case(want),
            Clause::StartsWith(..) => have.to_lowercase().starts_with(&want.to_lowercase()),
        }
    }
}

/// Which devices a device collection holds.
struct Selector {
    clauses: Vec<Clause>,
    /// Only devices reporting this detectedApp.
    app: Option<String>,
}

impl Selector {
    fn keeps(&self, d: &Devices, i: usize) -> bool {
        let m = &d.fleet.machines[i];
        if let Some(app) = &self.app
            && !detected(m).any(|(id, ..)| id == *app)
        {
            return false;
        }
        if self.clauses.is_empty() {
            return true;
        }
        let f = facts(m);
        self.clauses
            .iter()
            .all(|c| c.matches(m, &f, &d.fleet.people))
    }
}

/// A device collection: where its links and its `@odata.context` point.
struct Listing {
    /// Absolute URL of the collection (next links).
    link: String,
    /// `@odata.context` fragment, without `$select`.
    context: String,
    app: Option<String>,
}

async fn list_devices(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let listing = Listing {
        link: ctx.url("deviceManagement/managedDevices"),
        context: "deviceManagement/managedDevices".into(),
        app: None,
    };
    sim.device_page(&ctx, &Options::new(&q), listing)
}

impl IntuneSim {
    fn device_page(&self, ctx: &Ctx, o: &Options, listing: Listing) -> Answer {
        let top = o
            .top(DEVICE_PAGE, DEVICE_PAGE)
            .map_err(|m| ctx.bad_request(&m))?;
        let select = parse_select(o.select.as_deref(), DEVICE_PROPS, "managedDevice")
            .map_err(|m| ctx.bad_request(&m))?;
        let clauses = match o.filter.as_deref().map(parse_filter).transpose() {
            Ok(c) => c.unwrap_or_default(),
            Err(FilterError::In) => {
                let status = StatusCode::INTERNAL_SERVER_ERROR;
                return Err(ctx.intune_error(status, "InternalServerError").into());
            }
            Err(FilterError::Invalid(m)) => return Err(ctx.bad_request(&m).into()),
        };
        let selector = Selector {
            clauses,
            app: listing.app,
        };
        let scope = o.scope(&listing.context);
        let after = self
            .resume_after(o, &scope)
            .map_err(|()| ctx.intune_error(StatusCode::BAD_REQUEST, "BadRequest"))?;
        let context = ctx.context(&format!("{}{}", listing.context, select_suffix(&select)));
        if o.skips() {
            return Collection::<Props>::new(context, vec![]).respond();
        }
        self.walk_faults(&selector, after.as_deref(), &context)?;
        let d = self.devices.read().unwrap();
        let start = after.map_or(0, |a| d.sorted.partition_point(|i| d.id(*i) <= a.as_str()));
        let candidates: Vec<usize> = d.sorted[start..]
            .iter()
            .copied()
            .filter(|i| selector.keeps(&d, *i))
            .take(top + 1)
            .collect();
        let (page, resume) = split_page(candidates, top, |i| d.id(*i).to_owned());
        let names = select.as_deref().map(with_id);
        let value = page
            .iter()
            .map(|i| {
                let props = d.device_props(*i, &[]);
                match names.as_deref() {
                    Some(n) => props.project(n),
                    None => props,
                }
            })
            .collect();
        // Beta reports the count unasked; v1.0 when `$count=true`.
        let count = (o.wants_count() || ctx.version == "beta")
            .then(|| d.sorted.iter().filter(|i| selector.keeps(&d, **i)).count());
        Collection {
            context,
            count,
            next_link: resume.map(|a| {
                format!(
                    "{}?{}",
                    listing.link,
                    o.next_query(&self.skiptoken(&scope, &a))
                )
            }),
            value,
        }
        .respond()
    }

    /// The walk faults, keyed by the index of the page's first device.
    fn walk_faults(
        &self,
        selector: &Selector,
        after: Option<&str>,
        context: &str,
    ) -> Result<(), Refused> {
        let faults = self.control.faults();
        if faults.malformed_page.is_none() && faults.delete_during_walk_at.is_none() {
            return Ok(());
        }
        let offset = {
            let d = self.devices.read().unwrap();
            d.sorted
                .iter()
                .take_while(|i| after.is_some_and(|a| d.id(**i) <= a))
                .filter(|i| selector.keeps(&d, **i))
                .count() as u64
        };
        if faults.malformed_page == Some(offset) {
            let body = format!(
                "{{\"@odata.context\":\"{context}\",\"value\":[{{\"id\":\"3c2f\",\"deviceName\":\"Broken"
            );
            let malformed = (StatusCode::OK, [(header::CONTENT_TYPE, ODATA_JSON)], body);
            return Err(malformed.into_response().into());
        }
        if self.control.take_delete_during_walk(offset)
            && let Some(first) = self.device_ids().into_iter().next()
        {
            self.delete_device(&first);
        }
        Ok(())
    }
}

async fn get_device(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let o = Options::new(&q);
    let select = parse_select(o.select.as_deref(), DEVICE_PROPS, "managedDevice")
        .map_err(|m| ctx.bad_request(&m))?;
    let d = sim.devices.read().unwrap();
    let i = d.index(&id).ok_or_else(|| ctx.not_found())?;
    // Detail-only properties only come back when selected by name.
    let props = d.device_props(i, select.as_deref().unwrap_or_default());
    let props = match &select {
        Some(s) => props.project(&with_id(s)),
        None => props,
    };
    let context = format!(
        "deviceManagement/managedDevices{}/$entity",
        select_suffix(&select)
    );
    Ok(props.entity(ctx.context(&context)))
}

async fn delete_device(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Answer {
    if !sim.delete_device(&id) {
        return Err(ctx.not_found().into());
    }
    sim.control.record(ActionRecord {
        device_id: id,
        action: "delete".into(),
        body: Value::Null,
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET .../managedDevices/{id}/{segment}`: `users`, and `detectedApps` on
/// beta only (v1.0's managedDevice has no such navigation).
async fn device_segment(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, segment)): Path<(String, String)>,
) -> Answer {
    let d = sim.devices.read().unwrap();
    let known = segment == "users" || (segment == "detectedApps" && ctx.version == "beta");
    if !known {
        return Err(ctx.unknown_segment(&segment).into());
    }
    let i = d.index(&id).ok_or_else(|| ctx.not_found())?;
    let m = &d.fleet.machines[i];
    if segment == "users" {
        let people = &d.fleet.people;
        let value = m
            .owner
            .map(|p| user_props(&people[p]).project(USER_DEFAULT));
        return Collection::new(ctx.context("users"), value.into_iter().collect()).respond();
    }
    let value = detected(m)
        .filter_map(|(app, ..)| d.apps.get(&app).map(|a| app_props(&app, a)))
        .collect();
    let context = format!("deviceManagement/managedDevices('{id}')/detectedApps");
    Collection::new(ctx.context(&context), value).respond()
}

// ---------------------------------------------------------------------------
// Actions

/// A parameter's type (validated as OData would).
#[derive(Debug, Clone, Copy)]
enum Param {
    Bool,
    Text,
    Object,
}

impl Param {
    fn accepts(self, v: &Value) -> bool {
        let typed = match self {
            Param::Bool => v.is_boolean(),
            Param::Text => v.is_string(),
            Param::Object => v.is_object(),
        };
        typed || v.is_null()
    }

    fn edm(self) -> &'static str {
        match self {
            Param::Bool => "Edm.Boolean",
            Param::Text => "Edm.String",
            Param::Object => "microsoft.graph.updateWindowsDeviceAccountActionParameter",
        }
    }
}

/// A device action: its name, parameters and the kinds it applies to.
struct ActionSpec {
    name: &'static str,
    params: &'static [(&'static str, Param)],
    applies: fn(Kind) -> bool,
}

fn any_kind(_: Kind) -> bool {
    true
}
fn windows(k: Kind) -> bool {
    k.is_windows()
}
fn apple(k: Kind) -> bool {
    k.is_apple()
}
fn apple_mobile(k: Kind) -> bool {
    matches!(k, Kind::IPhone | Kind::IPad)
}
fn shared_ipad(k: Kind) -> bool {
    k == Kind::IPad
}
fn mobile(k: Kind) -> bool {
    matches!(k, Kind::IPhone | Kind::IPad | Kind::AndroidPhone)
}
fn not_android(k: Kind) -> bool {
    k != Kind::AndroidPhone
}
fn not_mac(k: Kind) -> bool {
    !k.is_mac()
}

const fn action(
    name: &'static str,
    params: &'static [(&'static str, Param)],
    applies: fn(Kind) -> bool,
) -> ActionSpec {
    ActionSpec {
        name,
        params,
        applies,
    }
}

/// The managedDevice actions of intune.md §7.
const ACTIONS: &[ActionSpec] = &[
    action("remoteLock", &[], any_kind),
    action(
        "wipe",
        &[
            ("keepEnrollmentData", Param::Bool),
            ("keepUserData", Param::Bool),
            ("macOsUnlockCode", Param::Text),
            ("persistEsimDataPlan", Param::Bool),
        ],
        any_kind,
    ),
    action("retire", &[], any_kind),
    action("rebootNow", &[], any_kind),
    action("shutDown", &[], not_android),
    action("syncDevice", &[], any_kind),
    action("resetPasscode", &[], mobile),
    action("recoverPasscode", &[], any_kind),
    action("disableLostMode", &[], apple_mobile),
    action("locateDevice", &[], not_mac),
    action("bypassActivationLock", &[], apple),
    action("requestRemoteAssistance", &[], any_kind),
    action("logoutSharedAppleDeviceActiveUser", &[], shared_ipad),
    action(
        "deleteUserFromSharedAppleDevice",
        &[("userPrincipalName", Param::Text)],
        shared_ipad,
    ),
    action(
        "windowsDefenderScan",
        &[("quickScan", Param::Bool)],
        windows,
    ),
    action("windowsDefenderUpdateSignatures", &[], windows),
    action(
        "cleanWindowsDevice",
        &[("keepUserData", Param::Bool)],
        windows,
    ),
    action(
        "updateWindowsDeviceAccount",
        &[("updateWindowsDeviceAccountActionParameter", Param::Object)],
        windows,
    ),
];

impl ActionSpec {
    /// Checks the body's parameters as OData does; the message if not.
    fn check(&self, body: &Value) -> Result<(), String> {
        let params = match body {
            Value::Null => return Ok(()),
            Value::Object(p) => p,
            _ => return Err("The request body must be a JSON object.".into()),
        };
        for (key, value) in params {
            let Some((_, ty)) = self.params.iter().find(|(n, _)| n == key) else {
                return Err(format!(
                    "The parameter '{key}' in the request payload is not a valid parameter for the operation '{}'.",
                    self.name
                ));
            };
            if !ty.accepts(value) {
                let literal = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                return Err(format!(
                    "Cannot convert the literal '{literal}' to the expected type '{}'.",
                    ty.edm()
                ));
            }
        }
        Ok(())
    }
}

/// `POST .../managedDevices/{id}/{action}`: 204, recorded, shown in
/// `deviceActionResults` and `managementState`.
async fn device_action(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let spec = ACTIONS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ctx.unknown_segment(&name))?;
    let body = json_body(&body).map_err(|e| ctx.bad_request(&format!("Invalid JSON. {e}")))?;
    spec.check(&body).map_err(|m| ctx.bad_request(&m))?;
    {
        let mut d = sim.devices.write().unwrap();
        let i = d.index(&id).ok_or_else(|| ctx.not_found())?;
        if !(spec.applies)(d.fleet.machines[i].kind) {
            return Err(ctx
                .intune_error(StatusCode::BAD_REQUEST, "BadRequest")
                .into());
        }
        let managed = &mut d.managed[i];
        managed.actions.retain(|a| a.name != spec.name);
        managed.actions.push(ActionResult {
            name: spec.name,
            started: now_secs(),
        });
        match spec.name {
            "retire" => managed.state = Some("retirePending"),
            "wipe" => managed.state = Some("wipeIssued"),
            _ => {}
        }
    }
    sim.control.record(ActionRecord {
        device_id: id,
        action: spec.name.into(),
        body,
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------------------
// detectedApps

/// detectedApp properties, in schema order.
const APP_PROPS: &[&str] = &[
    "id",
    "displayName",
    "version",
    "sizeInByte",
    "deviceCount",
    "publisher",
    "platform",
];

fn app_platform(m: &Machine) -> &'static str {
    match m.kind {
        Kind::WindowsLaptop | Kind::WindowsDesktop => "windows",
        Kind::MacLaptop | Kind::MacDesktop => "macOS",
        Kind::IPhone | Kind::IPad => "ios",
        Kind::AndroidPhone if m.personal => "androidWorkProfile",
        Kind::AndroidPhone => "androidDedicatedAndFullyManaged",
        Kind::AppleTv => "unknown",
    }
}

/// A detectedApp id: stable per (name, version, platform) across the
/// tenant; 44 hex digits like Intune's.
fn app_id(software_index: usize, platform: &str) -> String {
    let s = software(software_index);
    let key = format!("{}\n{}\n{platform}", s.name, s.version);
    let part = |salt: &str| fnv(format!("{salt}{key}").as_bytes());
    format!(
        "{:016x}{:016x}{:012x}",
        part("a"),
        part("b"),
        part("c") >> 16
    )
}

/// The detectedApps a device reports: `(id, software, platform)`. Intune
/// shows unmanaged apps for company-owned devices only, so personal
/// devices report none.
fn detected(m: &Machine) -> impl Iterator<Item = (String, usize, &'static str)> + '_ {
    let platform = app_platform(m);
    let apps: &[usize] = if m.personal { &[] } else { &m.apps };
    apps.iter()
        .map(move |s| (app_id(*s, platform), *s, platform))
}

fn app_props(id: &str, app: &App) -> Props {
    let s = software(app.software);
    // Mobile platforms report no sizes.
    let size = match app.platform {
        "windows" | "macOS" => (fnv(s.name.as_bytes()) % 400_000_000 + 1_000_000) as i64,
        _ => 0,
    };
    Props(vec![
        ("id", json!(id)),
        ("displayName", json!(s.name)),
        ("version", json!(s.version)),
        ("sizeInByte", json!(size)),
        ("deviceCount", json!(app.devices)),
        ("publisher", json!(s.vendor)),
        ("platform", json!(app.platform)),
    ])
}

/// `GET /deviceManagement/detectedApps`: the tenant's apps, by id, paged.
async fn list_apps(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let o = Options::new(&q);
    let top = o.top(APP_PAGE, APP_PAGE).map_err(|m| ctx.bad_request(&m))?;
    let select = parse_select(o.select.as_deref(), APP_PROPS, "detectedApp")
        .map_err(|m| ctx.bad_request(&m))?;
    let scope = o.scope("detectedApps");
    let after = sim
        .resume_after(&o, &scope)
        .map_err(|()| ctx.intune_error(StatusCode::BAD_REQUEST, "BadRequest"))?;
    let context = ctx.context(&format!(
        "deviceManagement/detectedApps{}",
        select_suffix(&select)
    ));
    if o.skips() {
        return Collection::<Props>::new(context, vec![]).respond();
    }
    let d = sim.devices.read().unwrap();
    let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let candidates: Vec<(&String, &App)> = d
        .apps
        .range::<str, _>((from, Bound::Unbounded))
        .take(top + 1)
        .collect();
    let (page, resume) = split_page(candidates, top, |(id, _)| (*id).clone());
    let names = select.as_deref().map(with_id);
    let value = page
        .iter()
        .map(|(id, app)| {
            let props = app_props(id, app);
            match names.as_deref() {
                Some(n) => props.project(n),
                None => props,
            }
        })
        .collect();
    let link = ctx.url("deviceManagement/detectedApps");
    Collection {
        context,
        count: o.wants_count().then_some(d.apps.len()),
        next_link: resume.map(|a| format!("{link}?{}", o.next_query(&sim.skiptoken(&scope, &a)))),
        value,
    }
    .respond()
}

async fn get_app(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Answer {
    let d = sim.devices.read().unwrap();
    let app = d.apps.get(&id).ok_or_else(|| ctx.not_found())?;
    Ok(app_props(&id, app).entity(ctx.context("deviceManagement/detectedApps/$entity")))
}

/// `GET /deviceManagement/detectedApps/{id}/managedDevices`: paged like
/// the device list.
async fn app_devices(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    if !sim.devices.read().unwrap().apps.contains_key(&id) {
        return Err(ctx.not_found().into());
    }
    let listing = Listing {
        link: ctx.url(&format!(
            "deviceManagement/detectedApps/{id}/managedDevices"
        )),
        context: format!("deviceManagement/detectedApps('{id}')/managedDevices"),
        app: Some(id),
    };
    sim.device_page(&ctx, &Options::new(&q), listing)
}

// ---------------------------------------------------------------------------
// Users and the organization (the directory)

/// user properties: Graph's default set first (its order), then the ones
/// only `$select` returns.
const USER_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
    "accountEnabled",
    "department",
    "companyName",
    "createdDateTime",
    "employeeId",
    "usageLocation",
    "userType",
    "onPremisesSyncEnabled",
];

/// What `/users` returns without `$select`: the head of [`USER_PROPS`].
const USER_DEFAULT: &[&str] = USER_PROPS.split_at(11).0;

fn user_props(p: &Person) -> Props {
    let (given, surname) = p.name.split_once(' ').unwrap_or((p.name.as_str(), ""));
    let days = (fnv(p.id.as_bytes()) % 600) as i64;
    Props(vec![
        ("businessPhones", json!([])),
        ("displayName", json!(p.name)),
        ("givenName", json!(given)),
        ("jobTitle", json!(p.job_title)),
        ("mail", json!(p.email)),
        ("mobilePhone", Value::Null),
        ("officeLocation", Value::Null),
        ("preferredLanguage", json!("en-US")),
        ("surname", json!(surname)),
        ("userPrincipalName", json!(p.email)),
        ("id", json!(p.id)),
        ("accountEnabled", json!(p.active)),
        ("department", json!(p.department)),
        ("companyName", json!(ORG_NAME)),
        (
            "createdDateTime",
            json!(rfc3339(NOW - (400 + days) * 86_400)),
        ),
        ("employeeId", Value::Null),
        ("usageLocation", json!("US")),
        ("userType", json!("Member")),
        ("onPremisesSyncEnabled", Value::Null),
    ])
}

/// `$top` of `/users`: 1..=999, else Entra's 400.
fn user_top(o: &Options) -> Result<usize, String> {
    let Some(raw) = &o.top else {
        return Ok(USER_PAGE);
    };
    raw.parse::<usize>()
        .ok()
        .filter(|n| (1..=USER_MAX_TOP).contains(n))
        .ok_or_else(|| {
            format!("Invalid page size specified: '{raw}'. Must be between 1 and {USER_MAX_TOP} inclusive.")
        })
}

async fn list_users(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let o = Options::new(&q);
    let bad = |code: &str, m: &str| ctx.error(StatusCode::BAD_REQUEST, code, m);
    if o.skip.is_some() {
        let message = "'$skip' is not supported by the service.";
        return Err(bad("Request_BadRequest", message).into());
    }
    let top = user_top(&o).map_err(|m| bad("Request_UnsupportedQuery", &m))?;
    let select = parse_select(o.select.as_deref(), USER_PROPS, "user")
        .map_err(|m| bad("Request_BadRequest", &m))?;
    let scope = o.scope("users");
    let after = sim.resume_after(&o, &scope).map_err(|()| {
        bad(
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        )
    })?;
    let d = sim.devices.read().unwrap();
    let people = &d.fleet.people;
    let start = after.map_or(0, |a| sim.users.partition_point(|i| people[*i].id <= a));
    let candidates = sim.users[start..].iter().take(top + 1).copied().collect();
    let (page, resume) = split_page(candidates, top, |i| people[*i].id.clone());
    let names = select.as_deref().unwrap_or(USER_DEFAULT);
    let value = page
        .iter()
        .map(|i| user_props(&people[*i]).project(names))
        .collect();
    let link = ctx.url("users");
    Collection {
        context: ctx.context(&format!("users{}", select_suffix(&select))),
        count: None,
        next_link: resume.map(|a| format!("{link}?{}", o.next_query(&sim.skiptoken(&scope, &a)))),
        value,
    }
    .respond()
}

/// `GET /users/{id or userPrincipalName}`.
async fn get_user(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let o = Options::new(&q);
    let select = parse_select(o.select.as_deref(), USER_PROPS, "user")
        .map_err(|m| ctx.error(StatusCode::BAD_REQUEST, "Request_BadRequest", &m))?;
    let d = sim.devices.read().unwrap();
    let person = d
        .fleet
        .people
        .iter()
        .find(|p| p.id == id || p.email.eq_ignore_ascii_case(&id))
        .ok_or_else(|| {
            ctx.error(
                StatusCode::NOT_FOUND,
                "Request_ResourceNotFound",
                &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
            )
        })?;
    let props = user_props(person).project(select.as_deref().unwrap_or(USER_DEFAULT));
    Ok(props.entity(ctx.context(&format!("users{}/$entity", select_suffix(&select)))))
}

impl IntuneSim {
    fn org_props(&self) -> Props {
        let domain = |name: &str, default: bool, initial: bool| json!({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": default, "isInitial": initial, "name": name, "type": "Managed"});
        Props(vec![
            ("id", json!(self.tenant_id)),
            ("deletedDateTime", Value::Null),
            ("businessPhones", json!(["+1 425 555 0100"])),
            ("city", json!("Redmond")),
            ("country", Value::Null),
            ("countryLetterCode", json!("US")),
            ("createdDateTime", json!(rfc3339(NOW - 1_200 * 86_400))),
            ("defaultUsageLocation", Value::Null),
            ("displayName", json!(ORG_NAME)),
            ("marketingNotificationEmails", json!([])),
            ("onPremisesLastSyncDateTime", Value::Null),
            ("onPremisesSyncEnabled", Value::Null),
            ("postalCode", json!("98052")),
            ("preferredLanguage", json!("en")),
            ("securityComplianceNotificationMails", json!([])),
            ("securityComplianceNotificationPhones", json!([])),
            ("state", json!("WA")),
            ("street", json!("1 Example Way")),
            (
                "technicalNotificationMails",
                json!([format!("it@{DOMAIN}")]),
            ),
            ("tenantType", json!("AAD")),
            (
                "assignedPlans",
                json!([{"assignedDateTime": rfc3339(NOW - 900 * 86_400), "capabilityStatus": "Enabled", "service": "SCO", "servicePlanId": "c1ec4a95-1f05-45b3-a911-aa3fa01094f5"}]),
            ),
            ("privacyProfile", Value::Null),
            ("provisionedPlans", json!([])),
            (
                "verifiedDomains",
                json!([
                    domain(DOMAIN, true, false),
                    domain(INITIAL_DOMAIN, false, true)
                ]),
            ),
        ])
    }
}

async fn list_orgs(State(sim): State<Arc<IntuneSim>>, Extension(ctx): Extension<Ctx>) -> Answer {
    Collection::new(ctx.context("organization"), vec![sim.org_props()]).respond()
}

async fn get_org(
    State(sim): State<Arc<IntuneSim>>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Answer {
    if !id.eq_ignore_ascii_case(&sim.tenant_id) {
        return Err(ctx.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        ).into());
    }
    Ok(sim.org_props().entity(ctx.context("organization/$entity")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_in_schema_order() {
        assert_eq!(DEVICE_PROPS.len(), 56);
        let d = Devices::new(Fleet::mixed(50, 3));
        let props = d.device_props(0, &[]);
        let names: Vec<&str> = props.0.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, DEVICE_PROPS);
        assert_eq!(props.get("physicalMemoryInBytes"), Some(&json!(0)));
        assert_eq!(props.get("udid"), Some(&Value::Null));
    }

    #[test]
    fn filters() {
        use Clause::*;
        assert_eq!(
            parse_filter("operatingSystem eq 'Windows' and startswith(deviceName,'ACME-''LT')"),
            Ok(vec![
                Eq("operatingSystem", "Windows".into()),
                StartsWith("deviceName", "ACME-'LT".into()),
            ])
        );
        assert_eq!(
            parse_filter("complianceState ne 'compliant'"),
            Ok(vec![Eq("complianceState", "compliant".into())])
        );
        assert_eq!(parse_filter("skuFamily eq 'x'"), Ok(vec![]));
        assert_eq!(parse_filter("isEncrypted eq true"), Ok(vec![]));
        assert_eq!(
            parse_filter("lastSyncDateTime ge 2024-01-01T00:00:00Z"),
            Ok(vec![])
        );
        assert_eq!(
            parse_filter("operatingSystem in ('iOS','Android')"),
            Err(FilterError::In)
        );
        assert!(matches!(
            parse_filter("deviceName eq 'a' or deviceName eq 'b'"),
            Err(FilterError::Invalid(_))
        ));
        assert_eq!(
            split_and("deviceName eq 'x and y' and model eq 'z'").len(),
            2
        );
    }

    #[test]
    fn throttle_scaling() {
        let t = Throttle::scaled(0.001);
        assert_eq!(
            (t.tenant_any, t.app_any, t.tenant_write, t.app_write),
            (4, 2, 1, 1)
        );
        assert!(Throttle::unlimited().is_unlimited());
        let mut b = Budget::new(&t);
        let now = Instant::now();
        assert_eq!(b.spend("a", true, now), Ok(()));
        assert!(b.spend("b", true, now).is_err(), "tenant write limit");
        assert_eq!(b.spend("a", false, now), Ok(()));
        assert!(b.spend("a", false, now).is_err(), "app limit");
        assert_eq!(b.spend("b", false, now), Ok(()));
        assert_eq!(b.spend("c", false, now), Ok(()));
        assert!(b.spend("d", false, now).is_err(), "tenant limit");
        let later = now + Duration::from_secs(20);
        assert_eq!(b.spend("d", true, later), Ok(()), "the window slid");
    }
}
