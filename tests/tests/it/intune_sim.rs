//! The Intune simulator itself over HTTP: the token endpoint, paging,
//! list-vs-GET properties, `$filter`, users, throttling, token expiry,
//! permissions and actions (intune.md is the reference, not a connector).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mdmhub_tests::sim::control::ActionRecord;
use mdmhub_tests::sim::fleet::Kind;
use mdmhub_tests::sim::intune::{IntuneOptions, IntuneSim, Throttle};
use mdmhub_tests::sim::server::Running;
use reqwest::header::HeaderMap;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

async fn sim(opts: IntuneOptions) -> (Arc<IntuneSim>, Running) {
    IntuneSim::spawn(opts, 0).await.unwrap()
}

fn devices(devices: usize) -> IntuneOptions {
    IntuneOptions {
        devices,
        ..IntuneOptions::default()
    }
}

/// A form field.
type Field = (&'static str, &'static str);

/// The tenant the token tests configure.
const TENANT: &str = "acmecorp.onmicrosoft.com";

/// A valid client-credentials form, with `changes` applied.
fn form(changes: &[Field]) -> Vec<Field> {
    let mut form = vec![
        ("client_id", "test-client"),
        ("client_secret", "test-secret"),
        ("scope", GRAPH_SCOPE),
        ("grant_type", "client_credentials"),
    ];
    for (key, value) in changes {
        form.retain(|(k, _)| k != key);
        form.push((key, value));
    }
    form
}

async fn request_token(base: &str, tenant: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = Client::new()
        .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn token(base: &str, client_id: &'static str) -> String {
    let (status, body) =
        request_token(base, "any-tenant", &form(&[("client_id", client_id)])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A Graph call: status, headers and the JSON body (`null` when empty).
async fn call(
    method: Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut req = Client::new().request(method, url).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, headers, body)
}

async fn get(url: &str, token: &str) -> (StatusCode, HeaderMap, Value) {
    call(Method::GET, url, token, None).await
}

/// A live device of the wanted kind that has synced.
fn device_where(sim: &IntuneSim, wanted: impl Fn(Kind) -> bool) -> String {
    sim.device_ids()
        .into_iter()
        .find(|id| {
            let m = sim.machine(id).unwrap();
            wanted(m.kind) && m.last_check_in.is_some() && !m.personal
        })
        .expect("the fleet has one")
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn intune_sim_token_endpoint_and_its_errors() {
    let opts = IntuneOptions {
        tenant: Some(TENANT.into()),
        ..devices(1)
    };
    let (sim, srv) = sim(opts).await;
    let base = &srv.base_url;
    let (status, body) = request_token(base, TENANT, &form(&[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    let (status, _) = request_token(base, &sim.tenant_id(), &form(&[])).await;
    assert_eq!(status, StatusCode::OK, "the tenant GUID works too");

    let cases: [(&str, Option<Field>, u16, &str, u64); 6] = [
        (
            TENANT,
            Some(("client_secret", "wrong")),
            401,
            "invalid_client",
            7000215,
        ),
        (
            TENANT,
            Some(("client_id", "nobody")),
            400,
            "unauthorized_client",
            700016,
        ),
        ("other.onmicrosoft.com", None, 400, "invalid_request", 90002),
        (
            TENANT,
            Some(("scope", "https://graph.microsoft.com/User.Read")),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            TENANT,
            Some(("scope", "https://management.azure.com/.default")),
            400,
            "invalid_scope",
            70011,
        ),
        (
            TENANT,
            Some(("grant_type", "password")),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ];
    for (tenant, change, status, error, code) in cases {
        let (got, body) = request_token(base, tenant, &form(change.as_slice())).await;
        assert_eq!(got.as_u16(), status, "{change:?}: {body}");
        assert_eq!(body["error"], error, "{body}");
        assert_eq!(body["error_codes"], json!([code]));
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        for key in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
            assert!(body[key].is_string(), "{key}: {body}");
        }
    }
    let not_a_form = Client::new()
        .post(format!("{base}/{TENANT}/oauth2/v2.0/token"))
        .json(&json!({"client_id": "test-client", "grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sim.tokens_issued(), 2);
    assert_eq!(
        sim.control().stats().requests,
        0,
        "tokens are not Graph requests"
    );
}

#[tokio::test]
async fn intune_sim_pages_2500_devices_once_through_opaque_absolute_links() {
    let (sim, srv) = sim(devices(2_500)).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let list = format!("{base}/v1.0/deviceManagement/managedDevices");
    let (mut url, mut ids, mut links) = (list.clone(), Vec::new(), Vec::new());
    loop {
        let (status, headers, body) = get(&url, &t).await;
        assert_eq!(status, StatusCode::OK);
        for h in ["request-id", "client-request-id", "x-ms-ags-diagnostic"] {
            assert!(headers.contains_key(h), "{h}");
        }
        let content_type = headers["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(
            body["@odata.context"],
            format!("{base}/v1.0/$metadata#deviceManagement/managedDevices")
        );
        let page = body["value"].as_array().unwrap();
        ids.extend(page.iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        let Some(next) = body["@odata.nextLink"].as_str() else {
            break;
        };
        assert!(next.starts_with(&format!("{list}?$skiptoken=")), "{next}");
        links.push(next.to_owned());
        url = next.to_owned();
    }
    assert_eq!(links.len(), 2, "pages of 1000");
    assert_eq!(ids, sim.device_ids(), "each device once, in listing order");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2_500);
    for link in &links {
        let skiptoken = link.rsplit_once("$skiptoken=").unwrap().1;
        assert!(
            skiptoken.parse::<u64>().is_err() && !skiptoken.contains("1000"),
            "{skiptoken}"
        );
    }

    // $top and $select come back in the link; an edited token is refused.
    let (_, _, body) = get(&format!("{list}?$top=700&$select=id,deviceName"), &t).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 700);
    let next = body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.contains("$top=700") && next.contains("$select=id,deviceName"),
        "{next}"
    );
    let (status, _, _) = get(next, &t).await;
    assert_eq!(status, StatusCode::OK);
    let mut tampered = next.to_owned();
    let at = tampered.len() - 12;
    let flipped = if &tampered[at..=at] == "A" { "B" } else { "A" };
    tampered.replace_range(at..=at, flipped);
    let (status, _, body) = get(&tampered, &t).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "BadRequest");

    let (_, _, body) = get(&format!("{list}?$top=5000"), &t).await;
    assert_eq!(
        body["value"].as_array().unwrap().len(),
        1000,
        "$top is clamped"
    );
    let (_, _, body) = get(&format!("{list}?$skip=1000"), &t).await;
    assert_eq!(body["value"], json!([]), "$skip is not honoured");
    assert!(body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn intune_sim_blanks_detail_properties_in_lists_and_reveals_them_when_selected() {
    let (sim, srv) = sim(devices(200)).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let list = format!("{base}/v1.0/deviceManagement/managedDevices");
    let (_, _, body) = get(&list, &t).await;
    for d in body["value"].as_array().unwrap() {
        assert_eq!(d.as_object().unwrap().len(), 56);
        assert_eq!(d["physicalMemoryInBytes"], 0);
        for blank in ["ethernetMacAddress", "udid", "iccid", "notes"] {
            assert!(d[blank].is_null(), "{blank}: {d}");
        }
    }
    let windows = device_where(&sim, Kind::is_windows);
    let (status, _, plain) = get(&format!("{list}/{windows}"), &t).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        plain["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#deviceManagement/managedDevices/$entity")
    );
    assert_eq!(plain["physicalMemoryInBytes"], 0, "not selected: blank");
    assert_eq!(plain["operatingSystem"], "Windows");
    assert!(plain["osVersion"].as_str().unwrap().starts_with("10.0."));

    let select = "id,deviceName,physicalMemoryInBytes,ethernetMacAddress,udid";
    let (_, _, d) = get(&format!("{list}/{windows}?$select={select}"), &t).await;
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6, "{keys:?}");
    assert!(
        d["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!("managedDevices({select})/$entity"))
    );
    assert!(d["physicalMemoryInBytes"].as_i64().unwrap() >= 8 << 30);
    assert_eq!(d["ethernetMacAddress"].as_str().unwrap().len(), 12);
    assert_eq!(d["udid"], "", "only Apple devices have a UDID");

    let (_, _, body) = get(&format!("{list}?$select=deviceName"), &t).await;
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("managedDevices(deviceName)")
    );
    let first = body["value"][0].as_object().unwrap();
    assert_eq!(
        first.keys().collect::<HashSet<_>>(),
        HashSet::from([&"id".to_owned(), &"deviceName".to_owned()]),
        "id always comes back"
    );

    let (status, _, body) = get(&format!("{list}/no-such-device"), &t).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "ResourceNotFound");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("{\r\n  \"_version\": 3,"), "{message}");
    assert!(body["error"]["innerError"]["request-id"].is_string());

    // Per-device apps exist on beta only.
    let (status, _, body) = get(&format!("{list}/{windows}/detectedApps"), &t).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'detectedApps'."
    );
    let beta = format!("{base}/beta/deviceManagement/managedDevices/{windows}/detectedApps");
    let (status, _, body) = get(&beta, &t).await;
    assert_eq!(status, StatusCode::OK);
    let apps = body["value"].as_array().unwrap();
    assert!(!apps.is_empty());
    for key in [
        "id",
        "displayName",
        "version",
        "sizeInByte",
        "deviceCount",
        "publisher",
        "platform",
    ] {
        assert!(!apps[0][key].is_null(), "{key}");
    }
    assert_eq!(apps[0]["platform"], "windows");
    let app_id = apps[0]["id"].as_str().unwrap();
    let (_, _, body) = get(
        &format!("{base}/v1.0/deviceManagement/detectedApps/{app_id}/managedDevices"),
        &t,
    )
    .await;
    let holders: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert!(holders.contains(&windows.as_str()));
    assert_eq!(
        holders.len() as u64,
        apps[0]["deviceCount"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn intune_sim_filters_as_intune_does() {
    let (sim, srv) = sim(devices(300)).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let list = format!("{base}/v1.0/deviceManagement/managedDevices");
    let count = |body: &Value| body["value"].as_array().unwrap().len();
    let (_, _, windows) = get(&format!("{list}?$filter=operatingSystem eq 'Windows'"), &t).await;
    assert!(count(&windows) > 0 && count(&windows) < 300);
    assert!(
        windows["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["operatingSystem"] == "Windows")
    );
    let (_, _, ne) = get(&format!("{list}?$filter=operatingSystem ne 'Windows'"), &t).await;
    assert_eq!(count(&ne), count(&windows), "`ne` acts as `eq`");
    let (_, _, ignored) = get(&format!("{list}?$filter=skuFamily eq 'x'"), &t).await;
    assert_eq!(count(&ignored), 300, "unsupported properties are ignored");
    let prefix = &sim.machine(&sim.device_ids()[0]).unwrap().name[..6];
    let (_, _, starts) = get(
        &format!("{list}?$filter=startswith(deviceName,'{prefix}')"),
        &t,
    )
    .await;
    assert!(count(&starts) > 0);
    let (status, _, body) = get(
        &format!("{list}?$filter=operatingSystem in ('iOS','Android')"),
        &t,
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"_version\": 3")
    );
}

#[tokio::test]
async fn intune_sim_users_page_by_100_and_refuse_top_1000() {
    let (sim, srv) = sim(devices(600)).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let users = format!("{base}/v1.0/users");
    let (status, _, body) = get(&format!("{users}?$top=1000"), &t).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "Request_UnsupportedQuery");
    assert_eq!(
        body["error"]["message"],
        "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    );

    let (mut url, mut ids, mut pages) = (users.clone(), Vec::new(), 0);
    loop {
        let (status, _, body) = get(&url, &t).await;
        assert_eq!(status, StatusCode::OK);
        let page = body["value"].as_array().unwrap();
        assert!(
            page[0].get("department").is_none(),
            "not in the default set"
        );
        ids.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        pages += 1;
        let Some(next) = body["@odata.nextLink"].as_str() else {
            break;
        };
        assert!(next.starts_with(&format!("{users}?$skiptoken=")));
        url = next.to_owned();
    }
    assert_eq!(ids, sim.user_ids());
    assert_eq!(pages, 4, "400 users, 100 a page");

    let (_, _, body) = get(
        &format!("{users}?$top=999&$select=id,department,accountEnabled"),
        &t,
    )
    .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 400);
    assert!(body.get("@odata.nextLink").is_none());
    assert_eq!(body["value"][0].as_object().unwrap().len(), 3);
    let (status, _, user) = get(&format!("{users}/{}", ids[0]), &t).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], ids[0]);
    let (status, _, body) = get(&format!("{users}/nobody"), &t).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "Request_ResourceNotFound")
    );

    let (_, _, orgs) = get(&format!("{base}/v1.0/organization"), &t).await;
    assert_eq!(orgs["value"][0]["id"], sim.tenant_id());
    assert!(
        orgs["value"][0]["verifiedDomains"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
}

#[tokio::test]
async fn intune_sim_throttles_with_retry_after_except_per_device_apps() {
    let opts = IntuneOptions {
        throttle: Throttle::scaled(0.001),
        ..devices(20)
    };
    let (sim, srv) = sim(opts).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let list = format!("{base}/v1.0/deviceManagement/managedDevices");
    // This app may send 2 requests per 20 s window.
    for _ in 0..2 {
        assert_eq!(get(&list, &t).await.0, StatusCode::OK);
    }
    let (status, headers, body) = get(&list, &t).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_code(&body), "TooManyRequests");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    let id = &sim.device_ids()[0];
    let apps = format!("{base}/beta/deviceManagement/managedDevices/{id}/detectedApps");
    let (status, headers, _) = get(&apps, &t).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        !headers.contains_key("retry-after"),
        "per-device detectedApps give no hint"
    );
    let (status, _, _) = get(&format!("{base}/v1.0/users"), &t).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the directory is not Intune's budget"
    );
    assert_eq!(sim.control().stats().throttled, 2);
}

#[tokio::test]
async fn intune_sim_expired_tokens_answer_401() {
    let (sim, srv) = sim(devices(5)).await;
    let base = &srv.base_url;
    let org = format!("{base}/v1.0/organization");
    let t = token(base, "test-client").await;
    assert_eq!(get(&org, &t).await.0, StatusCode::OK);
    sim.expire_tokens();
    let (status, headers, body) = get(&org, &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "InvalidAuthenticationToken");
    assert_eq!(
        body["error"]["message"],
        "Access token has expired or is not yet valid."
    );
    assert!(headers.contains_key("request-id"));
    let fresh = token(base, "test-client").await;
    assert_eq!(get(&org, &fresh).await.0, StatusCode::OK);
    assert_eq!(sim.tokens_issued(), 2);
    let anonymous = Client::new().get(&org).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let (_, short) = sim_with_ttl(Duration::ZERO).await;
    let t = token(&short.base_url, "test-client").await;
    let (status, _, _) = get(&format!("{}/v1.0/organization", short.base_url), &t).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "past its expires_in");
}

async fn sim_with_ttl(ttl: Duration) -> (Arc<IntuneSim>, Running) {
    sim(IntuneOptions {
        token_ttl: ttl,
        ..devices(1)
    })
    .await
}

#[tokio::test]
async fn intune_sim_limited_client_is_forbidden_on_devices() {
    let (sim, srv) = sim(devices(5)).await;
    let base = &srv.base_url;
    let t = token(base, "limited-client").await;
    assert_eq!(
        get(&format!("{base}/v1.0/users"), &t).await.0,
        StatusCode::OK
    );
    let (status, _, body) = get(&format!("{base}/v1.0/deviceManagement/managedDevices"), &t).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Application is not authorized to perform this operation - Operation ID"),
        "{message}"
    );
    assert!(message.ends_with("CustomApiErrorPhrase: "), "{message}");
    let id = &sim.device_ids()[0];
    let lock = format!("{base}/v1.0/deviceManagement/managedDevices/{id}/remoteLock");
    assert_eq!(
        call(Method::POST, &lock, &t, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(sim.control().actions().is_empty());
}

#[tokio::test]
async fn intune_sim_actions_answer_204_and_are_recorded() {
    let (sim, srv) = sim(devices(100)).await;
    let base = &srv.base_url;
    let t = token(base, "test-client").await;
    let devices = format!("{base}/v1.0/deviceManagement/managedDevices");
    let windows = device_where(&sim, Kind::is_windows);
    let iphone = device_where(&sim, |k| k == Kind::IPhone);
    let post = |id: &str, action: &str, body: Option<Value>| {
        let url = format!("{devices}/{id}/{action}");
        let t = t.clone();
        async move { call(Method::POST, &url, &t, body).await }
    };

    let (status, _, body) = post(&windows, "remoteLock", None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _, _) = post(&iphone, "wipe", Some(json!({"keepUserData": true}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        sim.control().actions(),
        [
            ActionRecord {
                device_id: windows.clone(),
                action: "remoteLock".into(),
                body: Value::Null
            },
            ActionRecord {
                device_id: iphone.clone(),
                action: "wipe".into(),
                body: json!({"keepUserData": true})
            },
        ]
    );
    assert_eq!(sim.management_state(&iphone), Some("wipeIssued"));
    let (_, _, d) = get(
        &format!("{devices}/{windows}?$select=deviceActionResults,managementState"),
        &t,
    )
    .await;
    assert_eq!(d["deviceActionResults"][0]["actionName"], "remoteLock");
    assert_eq!(d["deviceActionResults"][0]["actionState"], "pending");
    assert_eq!(d["managementState"], "managed");
    assert_eq!(
        post(&windows, "retire", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.management_state(&windows), Some("retirePending"));

    let refused = [
        (
            post(&iphone, "wipe", Some(json!({"keepUserData": "yes"}))).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            post(
                &iphone,
                "windowsDefenderScan",
                Some(json!({"quickScan": true})),
            )
            .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            post(&windows, "frobnicate", None).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            post("no-such-device", "remoteLock", None).await,
            StatusCode::NOT_FOUND,
        ),
    ];
    for ((status, _, body), expected) in refused {
        assert_eq!(status, expected, "{body}");
    }
    let (_, _, body) = post(&windows, "frobnicate", None).await;
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'frobnicate'."
    );
    assert_eq!(
        sim.control().actions().len(),
        3,
        "refused actions are not recorded"
    );

    assert_eq!(
        call(Method::DELETE, &format!("{devices}/{windows}"), &t, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        get(&format!("{devices}/{windows}"), &t).await.0,
        StatusCode::NOT_FOUND
    );
    assert!(!sim.device_ids().contains(&windows));
}

#[tokio::test]
async fn intune_sim_echoes_client_request_id() {
    let (_sim, srv) = sim(devices(1)).await;
    let t = token(&srv.base_url, "test-client").await;
    let resp = Client::new()
        .get(format!("{}/v1.0/organization", srv.base_url))
        .bearer_auth(&t)
        .header("client-request-id", "4f9e0c7a-0000-4000-a000-000000000001")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["client-request-id"],
        "4f9e0c7a-0000-4000-a000-000000000001"
    );
    assert_ne!(
        resp.headers()["request-id"],
        "4f9e0c7a-0000-4000-a000-000000000001"
    );
}
