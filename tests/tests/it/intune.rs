//! The Intune connector end to end against the Microsoft Graph simulator:
//! the host's client-credentials flow, `@odata.nextLink` paging, detail-only
//! fields, users, apps, the tenant, actions, auth failures, token expiry
//! and throttling.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mdmhub::account::AccountSession;
use mdmhub::contract::*;
use mdmhub::pager::Pager;
use mdmhub::runtime::{CallError, Connector};
use mdmhub_tests::sim::control::Faults;
use mdmhub_tests::sim::intune::{IntuneOptions, IntuneSim, Throttle};
use mdmhub_tests::sim::server::Running;

use crate::support::{self, intune_spec};

/// A simulator, the Intune connector and a session for the test app.
/// Bind `srv` when destructuring: dropping it stops the simulator.
struct Fixture {
    sim: Arc<IntuneSim>,
    srv: Running,
    rt: mdmhub::runtime::Runtime,
    c: Arc<Connector>,
    s: Arc<AccountSession>,
}

async fn fixture(opts: IntuneOptions) -> Fixture {
    let (sim, srv) = IntuneSim::spawn(opts, 0).await.unwrap();
    let rt = support::runtime();
    let c = support::intune(&rt).await;
    let s = rt
        .session(&c, intune_spec(&srv.base_url, "test-client", "test-secret"))
        .unwrap();
    Fixture { sim, srv, rt, c, s }
}

fn devices(n: usize) -> IntuneOptions {
    IntuneOptions {
        devices: n,
        ..IntuneOptions::default()
    }
}

/// Every record of `kind` through the host's pager, with the page count.
async fn walk(
    c: &Arc<Connector>,
    s: &Arc<AccountSession>,
    kind: ResourceKind,
    options: ListOptions,
) -> Result<(Vec<Entity>, usize), mdmhub::pager::WalkError> {
    let mut pager = Pager::new(c.clone(), s.clone(), kind, options, None);
    let (mut out, mut pages) = (Vec::new(), 0);
    while let Some(page) = pager.next().await? {
        assert!(page.errors.is_empty(), "{:?}", page.errors);
        out.extend(page.records);
        pages += 1;
    }
    Ok((out, pages))
}

fn no_options() -> ListOptions {
    ListOptions {
        page_size: None,
        parent_id: None,
    }
}

fn device(e: &Entity) -> &Device {
    match e {
        Entity::Device(d) => d,
        other => panic!("not a device: {other:?}"),
    }
}

/// An enum value's variant name, lowercase (`DeviceType::Laptop` is `laptop`).
fn name_of<T: std::fmt::Debug>(v: &T) -> String {
    let debug = format!("{v:?}");
    let head = debug.split('(').next().unwrap_or_default();
    head.rsplit("::").next().unwrap_or_default().to_lowercase()
}

#[tokio::test]
async fn lists_2500_devices_across_next_links_exactly_once() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(devices(2_500)).await;
    let (records, pages) = walk(&c, &s, ResourceKind::Devices, no_options())
        .await
        .unwrap();
    // Graph's default page of 1,000: 1,000 + 1,000 + 500, one token.
    assert_eq!(pages, 3);
    assert_eq!(sim.tokens_issued(), 1);
    // Pages 2 and 3 were read ahead through their `@odata.nextLink`, and
    // taken: no request more than the pages.
    assert_eq!(sim.control().stats().requests, 3);
    let metrics = mdmhub::metrics::render();
    assert!(
        metrics.contains("vendor_pages_read_ahead_total 2\n"),
        "{metrics}"
    );
    let ids: Vec<&str> = records
        .iter()
        .map(|r| device(r).remote_id.as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!((ids.len(), unique.len()), (2_500, 2_500));
    assert!(
        sim.device_ids()
            .iter()
            .all(|id| unique.contains(id.as_str()))
    );

    let mut types = HashSet::new();
    let mut platforms = HashSet::new();
    for r in &records {
        let d = device(r);
        assert_eq!(d.completeness, Completeness::Summary);
        for blank in [&d.serial_number, &d.name, &d.model, &d.udid] {
            assert_ne!(blank.as_deref(), Some(""), "\"\" is unknown");
        }
        assert_eq!(d.memory_bytes, None, "lists report 0 for memory");
        assert!(d.last_check_in_at.as_deref() != Some("0001-01-01T00:00:00Z"));
        assert!(
            d.web_url.as_deref().unwrap().starts_with(
                "https://intune.microsoft.com/#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/"
            ),
            "{:?}",
            d.web_url
        );
        types.extend(d.device_type.as_ref().map(name_of));
        platforms.extend(d.platform.as_ref().map(name_of));
    }
    for t in ["laptop", "desktop", "phone"] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
    for p in ["windows", "macos", "ios", "android"] {
        assert!(platforms.contains(p), "{p} missing from {platforms:?}");
    }
    let without_serial = records
        .iter()
        .filter(|r| device(r).serial_number.is_none())
        .count();
    assert!(without_serial > 0, "a few devices have no serial");
}

#[tokio::test]
async fn get_adds_the_fields_lists_leave_out() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(devices(200)).await;
    let (records, _) = walk(&c, &s, ResourceKind::Devices, no_options())
        .await
        .unwrap();
    let windows = records
        .iter()
        .map(device)
        .find(|d| {
            d.platform == Some(Platform::Windows) && d.device_type == Some(DeviceType::Desktop)
        })
        .expect("a Windows desktop");
    let full = match c.get(&s, ResourceKind::Devices, &windows.remote_id).await {
        Ok(Entity::Device(d)) => d,
        other => panic!("{other:?}"),
    };
    assert_eq!(full.completeness, Completeness::Full);
    assert!(
        full.memory_bytes.unwrap() >= 4 << 30,
        "{:?}",
        full.memory_bytes
    );
    assert_eq!(full.serial_number, windows.serial_number);
    assert!(!full.mac_addresses.is_empty());
    let raw: serde_json::Value = serde_json::from_str(&full.remote_data).unwrap();
    assert_ne!(raw["physicalMemoryInBytes"], 0);
    assert!(raw.get("ethernetMacAddress").is_some());

    // An unknown id is not-found with Intune's message, not its JSON.
    match c.get(&s, ResourceKind::Devices, "no-such-device").await {
        Err(CallError::Connector(ConnectorError::NotFound(m))) => {
            assert!(!m.contains("_version"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let _ = sim;
}

#[tokio::test]
async fn users_apps_and_the_tenant() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(devices(300)).await;
    let (users, _) = walk(&c, &s, ResourceKind::Users, no_options())
        .await
        .unwrap();
    assert_eq!(users.len(), sim.user_ids().len());
    let Entity::User(u) = &users[0] else {
        panic!("{:?}", users[0])
    };
    assert!(u.email.as_deref().unwrap().contains('@'));
    assert!(u.is_active.is_some() && u.department.is_some());

    // Small pages: users continue across several next links.
    let (again, pages) = walk(
        &c,
        &s,
        ResourceKind::Users,
        ListOptions {
            page_size: Some(7),
            parent_id: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(again.len(), users.len());
    assert!(pages > 1);

    let device = &sim.device_ids()[0];
    let (apps, _) = walk(
        &c,
        &s,
        ResourceKind::Apps,
        ListOptions {
            page_size: None,
            parent_id: Some(device.clone()),
        },
    )
    .await
    .unwrap();
    assert!(!apps.is_empty());
    for a in &apps {
        let Entity::App(a) = a else { panic!("{a:?}") };
        assert_eq!(&a.device_remote_id, device);
        assert!(!a.name.is_empty());
    }

    let (orgs, _) = walk(&c, &s, ResourceKind::Organizations, no_options())
        .await
        .unwrap();
    match orgs.as_slice() {
        [Entity::Organization(o)] => {
            assert_eq!(o.kind, OrganizationKind::Tenant);
            assert_eq!(o.remote_id, sim.tenant_id());
        }
        other => panic!("{other:?}"),
    }
}

fn act(kind: ActionKind, params: &str) -> ActionRequest {
    ActionRequest {
        kind,
        params: params.into(),
    }
}

#[tokio::test]
async fn every_action_reaches_the_simulator() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(devices(100)).await;
    let (records, _) = walk(&c, &s, ResourceKind::Devices, no_options())
        .await
        .unwrap();
    let windows = records
        .iter()
        .map(device)
        .find(|d| d.platform == Some(Platform::Windows))
        .unwrap()
        .remote_id
        .clone();
    let cases = [
        (act(ActionKind::Lock, ""), "remoteLock"),
        (
            act(
                ActionKind::Erase,
                r#"{"keep_enrollment_data": false, "keep_user_data": true}"#,
            ),
            "wipe",
        ),
        (act(ActionKind::Restart, ""), "rebootNow"),
        (act(ActionKind::Shutdown, ""), "shutDown"),
        (act(ActionKind::RefreshInventory, ""), "syncDevice"),
        (
            act(
                ActionKind::Vendor("windowsDefenderScan".into()),
                r#"{"quickScan": true}"#,
            ),
            "windowsDefenderScan",
        ),
        (act(ActionKind::Retire, ""), "retire"),
    ];
    for (req, _) in &cases {
        let outcome = c.action(&s, &windows, req).await.unwrap();
        assert_eq!(outcome.status, ActionStatus::Accepted);
    }
    let actions = sim.control().actions();
    let names: Vec<&str> = actions.iter().map(|a| a.action.as_str()).collect();
    let want: Vec<&str> = cases.iter().map(|(_, n)| *n).collect();
    assert_eq!(names, want);
    assert!(actions.iter().all(|a| a.device_id == windows));
    assert_eq!(actions[1].body["keepUserData"], true);
    assert_eq!(actions[1].body["keepEnrollmentData"], false);
    assert_eq!(actions[5].body["quickScan"], true);

    // Refused before any request: no vendor call, a clear reason.
    for (req, want) in [
        (act(ActionKind::UnlockAccount, ""), "unsupported"),
        (
            act(ActionKind::Vendor("selfDestruct".into()), ""),
            "unsupported",
        ),
        (
            act(ActionKind::Erase, r#"{"keep_user_data": "yes"}"#),
            "invalidconfig",
        ),
        (
            act(ActionKind::Lock, r#"{"message": "hi"}"#),
            "invalidconfig",
        ),
    ] {
        match c.action(&s, &windows, &req).await {
            Err(CallError::Connector(e)) => {
                assert_eq!(name_of(&e), want, "{req:?}: {e:?}")
            }
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert_eq!(sim.control().actions().len(), cases.len());

    // A Windows-only action on a phone is the vendor's 400.
    let phone = records
        .iter()
        .map(device)
        .find(|d| d.platform == Some(Platform::Android))
        .unwrap();
    match c
        .action(
            &s,
            &phone.remote_id,
            &act(ActionKind::Vendor("windowsDefenderScan".into()), ""),
        )
        .await
    {
        Err(CallError::Connector(ConnectorError::Rejected(e))) => assert_eq!(e.status, 400),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_secret_is_unauthorized_with_the_aadsts_code() {
    let Fixture { c, rt, srv, .. } = fixture(devices(10)).await;
    let s = rt
        .session(&c, intune_spec(&srv.base_url, "test-client", "wrong"))
        .unwrap();
    match c.check(&s).await {
        Err(CallError::Connector(ConnectorError::Unauthorized(m))) => {
            assert!(m.contains("AADSTS7000215"), "{m}");
            assert!(!m.contains("wrong"), "the secret is never echoed: {m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_missing_permission_is_forbidden() {
    let Fixture { c, rt, srv, .. } = fixture(devices(10)).await;
    let s = rt
        .session(
            &c,
            intune_spec(&srv.base_url, "limited-client", "test-secret"),
        )
        .unwrap();
    match c.check(&s).await {
        Err(CallError::Connector(ConnectorError::Forbidden(m))) => {
            assert!(m.contains("not authorized"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_token_expiring_mid_walk_is_refreshed_once() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(devices(2_500)).await;
    let options = ListOptions {
        page_size: Some(500),
        parent_id: None,
    };
    let mut pager = Pager::new(c.clone(), s.clone(), ResourceKind::Devices, options, None);
    let mut seen = pager.next().await.unwrap().unwrap().records.len();
    sim.expire_tokens();
    while let Some(page) = pager.next().await.unwrap() {
        seen += page.records.len();
    }
    assert_eq!(seen, 2_500);
    assert_eq!(sim.tokens_issued(), 2, "one refresh, not one per request");
}

#[tokio::test]
async fn throttling_with_and_without_retry_after_is_absorbed() {
    for retry_after in [Some(1), None] {
        let Fixture {
            sim,
            c,
            s,
            srv: _srv,
            ..
        } = fixture(IntuneOptions {
            devices: 1_200,
            faults: Faults {
                throttle_burst: 3,
                throttle_retry_after: retry_after,
                ..Faults::default()
            },
            ..IntuneOptions::default()
        })
        .await;
        let (records, _) = walk(&c, &s, ResourceKind::Devices, no_options())
            .await
            .unwrap();
        assert_eq!(records.len(), 1_200);
        assert_eq!(sim.control().stats().throttled, 3, "{retry_after:?}");
    }

    // The tenant's own windows, scaled down: the walk waits and completes.
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(IntuneOptions {
        devices: 600,
        throttle: Throttle {
            window: Duration::from_secs(1),
            tenant_any: 20,
            app_any: 8,
            tenant_write: 4,
            app_write: 2,
            retry_after: true,
        },
        ..IntuneOptions::default()
    })
    .await;
    let options = ListOptions {
        page_size: Some(25),
        parent_id: None,
    };
    let (records, pages) = walk(&c, &s, ResourceKind::Devices, options).await.unwrap();
    assert_eq!((records.len(), pages), (600, 24));
    assert!(sim.control().stats().throttled > 0);
}
