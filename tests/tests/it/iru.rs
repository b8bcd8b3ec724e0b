//! The Iru connector end to end against the Iru simulator.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use mdmhub::account::AccountSession;
use mdmhub::contract::*;
use mdmhub::pager::{Pager, WalkError};
use mdmhub::runtime::CallError;
use mdmhub::runtime::Connector;
use mdmhub_tests::sim::control::{BudgetSpec, Faults};
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;

use crate::support::{self, iru_spec};

/// A simulator, a runtime, the Iru connector and a session for `test-token`.
/// Bind `srv` when destructuring: dropping it stops the simulator.
struct Fixture {
    sim: Arc<IruSim>,
    srv: Running,
    rt: mdmhub::runtime::Runtime,
    c: Arc<Connector>,
    s: Arc<AccountSession>,
}

async fn fixture(devices: usize, faults: Faults) -> Fixture {
    fixture_with(IruOptions {
        devices,
        faults,
        ..IruOptions::default()
    })
    .await
}

async fn fixture_with(opts: IruOptions) -> Fixture {
    let (sim, srv) = IruSim::spawn(opts, 0).await.unwrap();
    let rt = support::runtime();
    let c = support::iru(&rt).await;
    let s = rt
        .session(&c, iru_spec(&srv.base_url, "test-token"))
        .unwrap();
    Fixture { sim, srv, rt, c, s }
}

async fn sim(devices: usize, faults: Faults) -> (Arc<IruSim>, Running) {
    IruSim::spawn(
        IruOptions {
            devices,
            faults,
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap()
}

/// Every record of `kind` through the host's pager.
async fn walk(
    c: &Arc<Connector>,
    s: &Arc<AccountSession>,
    kind: ResourceKind,
    parent: Option<&str>,
) -> Result<Vec<Entity>, WalkError> {
    let options = ListOptions {
        page_size: None,
        parent_id: parent.map(str::to_owned),
    };
    let mut pager = Pager::new(c.clone(), s.clone(), kind, options, None);
    let mut out = Vec::new();
    while let Some(page) = pager.next().await? {
        assert!(page.errors.is_empty(), "{:?}", page.errors);
        out.extend(page.records);
    }
    Ok(out)
}

fn device(e: &Entity) -> &Device {
    match e {
        Entity::Device(d) => d,
        other => panic!("not a device: {other:?}"),
    }
}

#[tokio::test]
async fn lists_1234_devices_exactly_once() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(1_234, Faults::default()).await;
    let records = walk(&c, &s, ResourceKind::Devices, None).await.unwrap();
    let ids: Vec<&str> = records
        .iter()
        .map(|r| device(r).remote_id.as_str())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 1_234);
    assert_eq!(unique.len(), 1_234);
    let expected = sim.device_ids();
    assert!(expected.iter().all(|id| unique.contains(id.as_str())));
    // Five pages of at most 300; the short last page ends the walk. Offset
    // paging reads two pages ahead, so one more request may have gone past
    // the end: the page after page 5, started before page 5 turned out to
    // be short (unless the walk ended before it was sent).
    let requests = sim.control().stats().requests;
    assert!((5..=6).contains(&requests), "{requests} requests");
    // Pages 2 to 5 were requested while the guest read the ones before.
    let metrics = mdmhub::metrics::render();
    assert!(
        metrics.contains("vendor_pages_read_ahead_total 4\n"),
        "{metrics}"
    );
    // Quirks are absorbed: no "" reaches the caller, types are inferred.
    for r in &records {
        let d = device(r);
        assert_eq!(d.completeness, Completeness::Summary);
        assert_ne!(d.asset_tag.as_deref(), Some(""));
        assert_ne!(d.serial_number.as_deref(), Some(""));
        assert!(d.device_type.is_some(), "{:?}", d.model);
        assert!(
            d.web_url
                .as_deref()
                .unwrap()
                .starts_with("https://acme.kandji.io/devices/")
        );
    }
    let unassigned = records
        .iter()
        .filter(|r| device(r).assigned_user.is_none())
        .count();
    assert!(unassigned > 0);
    let types: HashSet<String> = records
        .iter()
        .map(|r| enum_name(&device(r).device_type.unwrap()))
        .collect();
    for t in ["laptop", "desktop", "phone", "tablet", "tv"] {
        assert!(types.contains(t), "{t} missing from {types:?}");
    }
}

#[tokio::test]
async fn get_merges_details() {
    let Fixture {
        c, s, srv: _srv, ..
    } = fixture(60, Faults::default()).await;
    let all = walk(&c, &s, ResourceKind::Devices, None).await.unwrap();
    let pick = |p: Platform| {
        all.iter()
            .map(device)
            .find(|d| d.platform == Some(p))
            .unwrap_or_else(|| panic!("no {p:?} in the fleet"))
            .remote_id
            .clone()
    };
    for (platform, encrypted_known) in [(Platform::Macos, true), (Platform::Ipados, false)] {
        let id = pick(platform);
        let full = c.get(&s, ResourceKind::Devices, &id).await.unwrap();
        let d = device(&full);
        assert_eq!(d.completeness, Completeness::Full);
        assert_eq!(d.remote_id, id);
        // iPads report `uuid` instead of `udid`: both land in `udid`.
        assert!(d.udid.is_some(), "{platform:?}");
        assert!(d.model_identifier.is_some());
        assert!(d.memory_bytes.unwrap() >= 4 << 30);
        assert_eq!(d.mac_addresses.len(), 1);
        assert!(d.is_supervised.is_some());
        assert_eq!(
            d.is_encrypted.is_some(),
            encrypted_known,
            "FileVault is Mac-only"
        );
        let raw: serde_json::Value = serde_json::from_str(&d.remote_data).unwrap();
        assert!(raw["details"]["hardware_overview"].is_object());
    }
    let missing = c.get(&s, ResourceKind::Devices, "no-such-device").await;
    assert!(
        matches!(
            missing,
            Err(CallError::Connector(ConnectorError::NotFound(_)))
        ),
        "{missing:?}"
    );
}

#[tokio::test]
async fn users_apps_and_blueprints() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(1_234, Faults::default()).await;

    let users = walk(&c, &s, ResourceKind::Users, None).await.unwrap();
    let ids: HashSet<String> = users
        .iter()
        .map(|u| match u {
            Entity::User(u) => u.remote_id.clone(),
            _ => panic!(),
        })
        .collect();
    assert_eq!(users.len(), sim.user_ids().len());
    assert_eq!(
        ids.len(),
        users.len(),
        "a user repeated across cursor pages"
    );
    assert!(users.len() > 600, "several cursor pages");

    let device = sim.device_ids()[0].clone();
    let apps = walk(&c, &s, ResourceKind::Apps, Some(&device))
        .await
        .unwrap();
    for a in &apps {
        let Entity::App(a) = a else { panic!() };
        assert_eq!(a.device_remote_id, device);
        assert!(a.identifier.is_some());
    }
    let no_parent = c
        .list(
            &s,
            ResourceKind::Apps,
            None,
            &ListOptions {
                page_size: None,
                parent_id: None,
            },
        )
        .await;
    assert!(matches!(
        no_parent,
        Err(CallError::Connector(ConnectorError::InvalidConfig(_)))
    ));

    let orgs = walk(&c, &s, ResourceKind::Organizations, None)
        .await
        .unwrap();
    assert_eq!(orgs.len(), 6);
    let Entity::Organization(first) = &orgs[0] else {
        panic!()
    };
    assert_eq!(first.kind, OrganizationKind::Blueprint);
    let again = c
        .get(&s, ResourceKind::Organizations, &first.remote_id)
        .await
        .unwrap();
    assert_eq!(
        mdmhub::model::entity_json(&again),
        mdmhub::model::entity_json(&orgs[0])
    );
}

#[tokio::test]
async fn every_action_reaches_the_simulator() {
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture(80, Faults::default()).await;
    let devices = walk(&c, &s, ResourceKind::Devices, None).await.unwrap();
    let mac = devices
        .iter()
        .map(device)
        .find(|d| d.platform == Some(Platform::Macos))
        .unwrap()
        .remote_id
        .clone();
    let act = |kind: ActionKind, params: &str| ActionRequest {
        kind,
        params: params.into(),
    };
    let lock = c
        .action(&s, &mac, &act(ActionKind::Lock, r#"{"message":"Call IT"}"#))
        .await
        .unwrap();
    assert_eq!(lock.status, ActionStatus::Accepted);
    let pin = &lock.values[0];
    assert!(
        pin.sensitive && pin.key == "pin" && pin.value.len() == 6,
        "{pin:?}"
    );

    // A second lock is the vendor's clear 400, not a success.
    match c.action(&s, &mac, &act(ActionKind::Lock, "")).await {
        Err(CallError::Connector(ConnectorError::Rejected(e))) => {
            assert_eq!(e.status, 400);
            assert_eq!(e.message, "This device is already locked.");
        }
        other => panic!("{other:?}"),
    }
    let runs = [
        (
            act(ActionKind::Restart, r#"{"notify_user":true}"#),
            "restart",
        ),
        (act(ActionKind::Shutdown, ""), "shutdown"),
        (
            act(ActionKind::UnlockAccount, r#"{"username":"dana"}"#),
            "unlockaccount",
        ),
        (act(ActionKind::RefreshInventory, ""), "updateinventory"),
        (act(ActionKind::Vendor("blankpush".into()), ""), "blankpush"),
        (act(ActionKind::Erase, r#"{"pin":"123456"}"#), "erase"),
        (act(ActionKind::Retire, ""), "delete"),
    ];
    for (req, _) in &runs {
        c.action(&s, &mac, req)
            .await
            .unwrap_or_else(|e| panic!("{:?}: {e}", req.kind));
    }
    let got: Vec<String> = sim
        .control()
        .actions()
        .iter()
        .map(|a| a.action.clone())
        .collect();
    let mut want = vec!["lock".to_string()];
    want.extend(runs.iter().map(|(_, n)| n.to_string()));
    assert_eq!(got, want);
    let actions = sim.control().actions();
    assert_eq!(actions[0].body["Message"], "Call IT");
    assert_eq!(actions[1].body["NotifyUser"], true);
    assert_eq!(actions[3].body["UserName"], "dana");
    assert_eq!(actions[6].body["PIN"], "123456");
    assert!(
        !sim.device_ids().contains(&mac),
        "retire deletes the record"
    );

    let unlock_without_user = c
        .action(
            &s,
            &devices.iter().map(device).nth(1).unwrap().remote_id,
            &act(ActionKind::UnlockAccount, ""),
        )
        .await;
    assert!(matches!(
        unlock_without_user,
        Err(CallError::Connector(ConnectorError::InvalidConfig(_)))
    ));
    let unknown = c
        .action(&s, "x", &act(ActionKind::Vendor("selfdestruct".into()), ""))
        .await;
    assert!(matches!(
        unknown,
        Err(CallError::Connector(ConnectorError::Unsupported(_)))
    ));
}

#[tokio::test]
async fn bad_token_is_unauthorized_and_missing_permission_forbidden() {
    let Fixture { srv, rt, c, .. } = fixture(10, Faults::default()).await;
    let bad = rt.session(&c, iru_spec(&srv.base_url, "wrong")).unwrap();
    let r = c.check(&bad).await;
    assert!(
        matches!(&r, Err(CallError::Connector(ConnectorError::Unauthorized(m))) if m == "Invalid token."),
        "{r:?}"
    );
    let limited = rt
        .session(&c, iru_spec(&srv.base_url, "limited-token"))
        .unwrap();
    let r = c.check(&limited).await;
    assert!(
        matches!(&r, Err(CallError::Connector(ConnectorError::Forbidden(_)))),
        "{r:?}"
    );
    let good = rt
        .session(&c, iru_spec(&srv.base_url, "test-token"))
        .unwrap();
    c.check(&good).await.unwrap();
}

#[tokio::test]
async fn throttling_is_absorbed() {
    for retry_after in [Some(1), None] {
        let faults = Faults {
            throttle_burst: 3,
            throttle_retry_after: retry_after,
            ..Faults::default()
        };
        let Fixture {
            sim,
            c,
            s,
            srv: _srv,
            ..
        } = fixture(700, faults).await;
        let all = walk(&c, &s, ResourceKind::Devices, None).await.unwrap();
        assert_eq!(all.len(), 700, "retry-after {retry_after:?}");
        assert_eq!(sim.control().stats().throttled, 3);
        assert_eq!(s.rate_limit_waits().0, 3);
    }
}

#[tokio::test]
async fn the_hourly_budget_answers_429_and_the_walk_waits() {
    // The budget scaled down: 2 requests per second instead of 10,000 per hour.
    let Fixture {
        sim,
        c,
        s,
        srv: _srv,
        ..
    } = fixture_with(IruOptions {
        devices: 1_234,
        budget: BudgetSpec {
            limit: 2,
            window: Duration::from_secs(1),
            retry_after: true,
        },
        ..IruOptions::default()
    })
    .await;
    let all = walk(&c, &s, ResourceKind::Devices, None).await.unwrap();
    assert_eq!(all.len(), 1_234);
    assert!(sim.control().stats().throttled >= 1);
}

#[tokio::test]
async fn malformed_json_is_a_clear_error() {
    let faults = Faults {
        malformed_page: Some(300),
        ..Faults::default()
    };
    let Fixture {
        c, s, srv: _srv, ..
    } = fixture(700, faults).await;
    match walk(&c, &s, ResourceKind::Devices, None).await {
        Err(WalkError::Call(CallError::Connector(ConnectorError::InvalidVendorData(m)))) => {
            assert!(m.contains("malformed JSON"), "{m}");
            assert!(m.contains("offset=300"), "the message names the page: {m}");
        }
        other => panic!("{:?}", other.map(|r| r.len())),
    }
}

#[tokio::test]
async fn the_simulator_clamps_limit_to_300() {
    let (_sim, srv) = sim(400, Faults::default()).await;
    let client = reqwest::Client::new();
    let page: Vec<serde_json::Value> = client
        .get(format!("{}/api/v1/devices?limit=1000", srv.base_url))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.len(), 300);
    let past_end: Vec<serde_json::Value> = client
        .get(format!("{}/api/v1/devices?offset=400", srv.base_url))
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(past_end.is_empty());
}

#[tokio::test]
async fn cli_call_lists_gets_and_acts() {
    let (sim, srv) = sim(321, Faults::default()).await;
    let dir = std::env::temp_dir().join(format!("mdmhub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "test-token\n").unwrap();
    let run = |args: Vec<String>| {
        let dir = dir.clone();
        async move {
            use clap::Parser;
            let mut argv: Vec<String> = vec![
                "mdmhub".into(),
                "--data-dir".into(),
                dir.display().to_string(),
            ];
            argv.extend(args);
            let cli = mdmhub::cli::Cli::try_parse_from(argv).unwrap();
            let mut out = Vec::new();
            let r = cli.run_to(&mut out).await;
            (r, String::from_utf8(out).unwrap())
        }
    };
    let base = |op: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "call",
            "--connector",
            "iru",
            "--config",
            "subdomain=acme",
            "--config",
            "region=us",
            "--secret",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!("api_token=@{}", token.display()));
        v.push("--endpoint".into());
        v.push(srv.base_url.clone());
        v.extend(op.iter().map(|s| s.to_string()));
        v
    };
    let (r, out) = run(base(&["list", "devices", "--all", "--json"])).await;
    r.unwrap();
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(list.len(), 321);
    assert_eq!(list[0]["type"], "device");
    let id = sim.device_ids()[5].clone();
    let (r, out) = run(base(&["get", "devices", &id, "--json"])).await;
    r.unwrap();
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["completeness"], "full");
    let (r, out) = run(base(&["action", &id, "lock"])).await;
    r.unwrap();
    assert!(out.starts_with("lock: accepted"), "{out}");
    let (r, _) = run(base(&["action", &id, "lock"])).await;
    let e = format!("{:#}", r.unwrap_err());
    assert!(e.contains("already locked"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
