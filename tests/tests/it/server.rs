//! A local test server with one route per HTTP rule under test, and the
//! fictional Acme MDM API the example connectors talk to.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

/// What the server saw.
#[derive(Default)]
pub struct Seen {
    pub hits: Mutex<HashMap<String, u64>>,
    pub auth: Mutex<Vec<Option<String>>>,
    pub ports: Mutex<std::collections::HashSet<u16>>,
    pub token_calls: AtomicU64,
    pub token_generation: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub locks: Mutex<Vec<String>>,
}

/// A running server.
pub struct TestServer {
    pub url: String,
    pub seen: Arc<Seen>,
}

impl Seen {
    fn hit(&self, name: &str) -> u64 {
        let mut h = self.hits.lock().unwrap();
        let n = h.entry(name.into()).or_default();
        *n += 1;
        *n
    }
    /// How often `name` was requested.
    pub fn hits(&self, name: &str) -> u64 {
        self.hits.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[derive(Clone)]
struct S {
    seen: Arc<Seen>,
    base: String,
    devices: usize,
}

/// Starts a server with `devices` Acme devices.
pub async fn start(devices: usize) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let s = S {
        seen: seen.clone(),
        base: url.clone(),
        devices,
    };
    let app = Router::new()
        .route("/ok", get(ok))
        .route("/echo", get(echo))
        .route(
            "/redirect-out",
            get(|| async { redirect("https://evil.example/x") }),
        )
        .route("/redirect-same", get(|| async { redirect("/echo") }))
        .route(
            "/redirect-to",
            get(|Query(q): Query<HashMap<String, String>>| async move { redirect(&q["url"]) }),
        )
        .route("/slow-429", get(slow_429))
        .route(
            "/429-forever",
            get(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    [(header::RETRY_AFTER, "3600")],
                    "slow down",
                )
            }),
        )
        .route("/retry-date", get(retry_date))
        .route("/retry-none", get(retry_none))
        .route("/503-once", get(unavailable_once))
        .route("/big", get(|| async { "x".repeat(2 << 20) }))
        .route("/slow", get(slow))
        .route("/pages/number", get(page_number))
        .route("/pages/keyset", get(keyset))
        .route("/pages/cursor", get(body_cursor))
        .route("/pages/link", get(link))
        .route("/{tenant}/oauth/token", post(oauth_token))
        .route("/auth/token", post(exchange_token))
        .route("/protected", get(protected))
        .route("/revoke", post(revoke))
        .route("/api/v1/devices", get(acme_devices))
        .route("/api/v1/devices/{id}", get(acme_device))
        .route("/api/v1/devices/{id}/lock", post(acme_lock))
        .route("/api/v1/users", get(acme_users))
        .with_state(s);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestServer { url, seen }
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}

fn record(s: &S, name: &str, headers: &HeaderMap, addr: SocketAddr) -> u64 {
    s.seen.auth.lock().unwrap().push(
        headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_string()),
    );
    s.seen.ports.lock().unwrap().insert(addr.port());
    s.seen.hit(name)
}

async fn ok(
    State(s): State<S>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> &'static str {
    record(&s, "ok", &headers, addr);
    "ok"
}

async fn echo(
    State(s): State<S>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Json<Value> {
    record(&s, "echo", &headers, addr);
    let h: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    Json(json!(h))
}

async fn slow_429(State(s): State<S>) -> Response {
    if s.seen.hit("slow-429") == 1 {
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "2")]).into_response();
    }
    "done".into_response()
}

async fn retry_date(State(s): State<S>) -> Response {
    if s.seen.hit("retry-date") == 1 {
        let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2));
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, at)]).into_response();
    }
    "done".into_response()
}

async fn retry_none(State(s): State<S>) -> Response {
    if s.seen.hit("retry-none") <= 2 {
        return StatusCode::TOO_MANY_REQUESTS.into_response();
    }
    "done".into_response()
}

async fn unavailable_once(State(s): State<S>) -> Response {
    if s.seen.hit("503-once") == 1 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "0.2")],
        )
            .into_response();
    }
    "done".into_response()
}

async fn slow(State(s): State<S>) -> &'static str {
    let now = s.seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    "slow"
}

fn q(q: &HashMap<String, String>, k: &str, default: u64) -> u64 {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// 7 items in all, for every paging style.
const ITEMS: u64 = 7;

async fn page_number(Query(p): Query<HashMap<String, String>>) -> Json<Value> {
    let (page, size) = (q(&p, "page", 1), q(&p, "size", 3));
    let items: Vec<u64> = ((page - 1) * size..(page * size).min(ITEMS)).collect();
    Json(json!({ "data": items }))
}

async fn keyset(Query(p): Query<HashMap<String, String>>) -> Json<Value> {
    let after = p
        .get("after")
        .map(|a| a.parse::<u64>().unwrap() + 1)
        .unwrap_or(0);
    let limit = q(&p, "limit", 3);
    Json(json!(
        (after..(after + limit).min(ITEMS))
            .map(|i| json!({ "id": i }))
            .collect::<Vec<_>>()
    ))
}

async fn body_cursor(Query(p): Query<HashMap<String, String>>) -> Json<Value> {
    let start = p
        .get("cursor")
        .map(|c| c.trim_start_matches("c").parse::<u64>().unwrap())
        .unwrap_or(0);
    let end = (start + 3).min(ITEMS);
    let next = (end < ITEMS).then(|| format!("c{end}"));
    Json(json!({ "items": (start..end).collect::<Vec<_>>(), "meta": { "next": next } }))
}

async fn link(State(s): State<S>, Query(p): Query<HashMap<String, String>>) -> Response {
    let page = q(&p, "page", 1);
    let mut resp = Json(json!([page])).into_response();
    if page < 3 {
        let v = format!("<{}/pages/link?page={}>; rel=\"next\"", s.base, page + 1);
        resp.headers_mut().insert(header::LINK, v.parse().unwrap());
    }
    resp
}

async fn oauth_token(State(s): State<S>, Form(form): Form<HashMap<String, String>>) -> Response {
    s.seen.token_calls.fetch_add(1, Ordering::SeqCst);
    // Slow enough that concurrent callers overlap: single-flight must hold.
    tokio::time::sleep(Duration::from_millis(150)).await;
    if form.get("client_secret").map(String::as_str) != Some("s3cret")
        || form.get("grant_type").map(String::as_str) != Some("client_credentials")
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}))).into_response();
    }
    let generation = s.seen.token_generation.load(Ordering::SeqCst);
    Json(json!({"access_token": format!("tok-{generation}"), "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

async fn exchange_token(State(s): State<S>, headers: HeaderMap) -> Response {
    s.seen.token_calls.fetch_add(1, Ordering::SeqCst);
    // "jamf:pw" in base64.
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some("Basic amFtZjpwdw==")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let expires = time::OffsetDateTime::now_utc() + time::Duration::minutes(30);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    Json(json!({"token": "exchanged", "expires": expires})).into_response()
}

async fn protected(
    State(s): State<S>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    record(&s, "protected", &headers, addr);
    let want = format!(
        "Bearer tok-{}",
        s.seen.token_generation.load(Ordering::SeqCst)
    );
    let got = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got == want || got == "Bearer exchanged" {
        "secret data".into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn revoke(State(s): State<S>) -> &'static str {
    s.seen.token_generation.fetch_add(1, Ordering::SeqCst);
    "revoked"
}

fn acme_record(i: usize) -> Value {
    json!({
        "id": format!("dev-{i:05}"),
        "name": format!("Laptop {i}"),
        "serial": if i % 10 == 3 { json!("") } else { json!(format!("SN{i:08}")) },
        "os": if i.is_multiple_of(2) { "macOS" } else { "Windows" },
        "os_version": "14.5",
        "last_seen": 1_700_000_000 + i as u64,
        "user_email": format!("user{i}@example.com"),
        "encrypted": if i.is_multiple_of(3) { "false" } else { "true" },
    })
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some("Bearer acme-token")
}

async fn acme_devices(
    State(s): State<S>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    if !bearer_ok(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid token."})),
        )
            .into_response();
    }
    let (offset, limit) = (
        q(&p, "offset", 0) as usize,
        q(&p, "limit", 100).min(100) as usize,
    );
    let items: Vec<Value> = (offset..(offset + limit).min(s.devices))
        .map(acme_record)
        .collect();
    Json(json!(items)).into_response()
}

async fn acme_device(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match id.trim_start_matches("dev-").parse::<usize>() {
        Ok(i) if i < s.devices => {
            let mut d = acme_record(i);
            d["memory_bytes"] = json!(17_179_869_184u64);
            Json(d).into_response()
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({"detail": "Not found."}))).into_response(),
    }
}

async fn acme_lock(State(s): State<S>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let mut locks = s.seen.locks.lock().unwrap();
    if locks.contains(&id) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!("This device is already locked.")),
        )
            .into_response();
    }
    locks.push(id.clone());
    Json(json!({"command_id": format!("cmd-{}", locks.len()), "pin": "496406"})).into_response()
}

async fn acme_users(
    State(s): State<S>,
    headers: HeaderMap,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let start = q(&p, "cursor", 0);
    let end = (start + 2).min(5);
    let users: Vec<Value> = (start..end).map(|i| json!({"id": i, "email": format!("user{i}@example.com"), "name": format!("User {i}"), "active": true})).collect();
    let next = (end < 5).then(|| format!("{}/api/v1/users?cursor={end}", s.base));
    Json(json!({ "users": users, "next": next })).into_response()
}
