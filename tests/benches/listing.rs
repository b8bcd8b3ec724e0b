//! Listing N devices (default 100,000) from a vendor simulator through the
//! built-in connector vs fetching and parsing (`serde_json::Value`) the same
//! pages with the same HTTP client in plain Rust. Target: at most 1.3x.
//!
//! Run: `cargo bench -p mdmhub-tests --bench listing`
//! (`MDMHUB_BENCH_DEVICES` changes the fleet size, `MDMHUB_BENCH_VENDORS`
//! the vendors: `iru,intune` by default).

use std::sync::Arc;
use std::time::{Duration, Instant};

use mdmhub::account::{AccountSession, AccountSpec, Secret};
use mdmhub::contract::*;
use mdmhub::pager::Pager;
use mdmhub::runtime::{Connector, Runtime, RuntimeConfig, Source};
use mdmhub_tests::sim::control::BudgetSpec;
use mdmhub_tests::sim::intune::{IntuneOptions, IntuneSim, Throttle};
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;

const RUNS: usize = 5;

/// The URL and paging of the page after a position (`None`: the first).
type PageRequest = Box<dyn Fn(&AccountSession, Option<&str>) -> (String, Paging)>;

/// One vendor's listing: its simulator, connector, session, and how plain
/// Rust asks for the page after `next` (`None`: the first).
struct Case {
    _srv: Running,
    connector: Arc<Connector>,
    session: Arc<AccountSession>,
    page: PageRequest,
    /// JSON pointer to a page's items.
    items: &'static str,
}

#[tokio::main]
async fn main() {
    let devices: usize = std::env::var("MDMHUB_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let vendors = std::env::var("MDMHUB_BENCH_VENDORS").unwrap_or_else(|_| "iru,intune".into());
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    for vendor in vendors.split(',') {
        let case = match vendor {
            "iru" => iru(&rt, devices).await,
            "intune" => intune(&rt, devices).await,
            other => panic!("no listing benchmark for `{other}`"),
        };
        run(&rt, vendor, &case, devices).await;
    }
}

async fn builtin(rt: &Runtime, id: &str) -> Arc<Connector> {
    let (name, bytes) = mdmhub::builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == id)
        .unwrap();
    Arc::new(
        rt.load(Source::Builtin(name.to_string()), bytes)
            .await
            .unwrap(),
    )
}

fn spec(srv: &Running, config: &[(&str, &str)], secrets: &[(&str, &str)]) -> AccountSpec {
    let pairs = |p: &[(&str, &str)]| {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    AccountSpec {
        id: "bench".into(),
        config: pairs(config).into_iter().collect(),
        secrets: pairs(secrets)
            .into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect(),
        endpoints: vec![srv.base_url.parse().unwrap()],
        rate: Some("1000000/s".parse().unwrap()),
    }
}

async fn iru(rt: &Runtime, devices: usize) -> Case {
    let (_, srv) = IruSim::spawn(
        IruOptions {
            devices,
            budget: BudgetSpec::unlimited(),
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let connector = builtin(rt, "iru").await;
    let spec = spec(
        &srv,
        &[("subdomain", "acme"), ("region", "us")],
        &[("api_token", "test-token")],
    );
    let session = rt.session(&connector, spec).unwrap();
    Case {
        _srv: srv,
        connector,
        session,
        page: Box::new(|s, next| {
            let offset = next.map_or(0, |n| n.parse().unwrap());
            let paging = Paging::Offset(OffsetPaging {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                offset,
                limit: 300,
                items_pointer: String::new(),
                stop_on_short_page: true,
            });
            (
                format!("{}/api/v1/devices?ordering=device_id", s.origins[0]),
                paging,
            )
        }),
        items: "",
    }
}

async fn intune(rt: &Runtime, devices: usize) -> Case {
    let (_, srv) = IntuneSim::spawn(
        IntuneOptions {
            devices,
            throttle: Throttle::unlimited(),
            ..IntuneOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let connector = builtin(rt, "intune").await;
    let spec = spec(
        &srv,
        &[("tenant_id", "contoso.onmicrosoft.com")],
        &[
            ("client_id", "test-client"),
            ("client_secret", "test-secret"),
        ],
    );
    let session = rt.session(&connector, spec).unwrap();
    Case {
        _srv: srv,
        connector,
        session,
        page: Box::new(|s, next| {
            let url = next.map(str::to_owned).unwrap_or_else(|| {
                format!(
                    "{}/v1.0/deviceManagement/managedDevices?$top=1000",
                    s.origins[0]
                )
            });
            let paging = Paging::NextUrl(NextUrlPaging {
                url_pointer: "/@odata.nextLink".into(),
            });
            (url, paging)
        }),
        items: "/value",
    }
}

/// Median of [`RUNS`] of each way, printed as one line.
async fn run(rt: &Runtime, vendor: &str, case: &Case, devices: usize) {
    let mut raw = Vec::new();
    let mut component = Vec::new();
    let mut pages = 0;
    for _ in 0..RUNS {
        // Raw: the host's HTTP client, the same pages, parsed to `Value`.
        let t = Instant::now();
        let (mut next, mut count) = (None::<String>, 0usize);
        pages = 0;
        loop {
            let (url, paging) = (case.page)(&case.session, next.as_deref());
            let req = HttpRequest {
                method: Method::Get,
                url,
                headers: vec![],
                body: None,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            let resp = rt
                .http()
                .send(&case.session, req, Some(paging), deadline, false)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            count += v.pointer(case.items).unwrap().as_array().unwrap().len();
            pages += 1;
            match resp.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        assert_eq!(count, devices);
        raw.push(t.elapsed());

        // Through the component: one sandboxed call per page, normalized records.
        let t = Instant::now();
        let options = ListOptions {
            page_size: None,
            parent_id: None,
        };
        let mut pager = Pager::new(
            case.connector.clone(),
            case.session.clone(),
            ResourceKind::Devices,
            options,
            None,
        );
        let mut count = 0usize;
        while let Some(page) = pager.next().await.unwrap() {
            count += page.records.len();
        }
        assert_eq!(count, devices);
        component.push(t.elapsed());
    }
    raw.sort();
    component.sort();
    let (r, c) = (raw[RUNS / 2], component[RUNS / 2]);
    println!(
        "{vendor}, {devices} devices in {pages} pages, median of {RUNS}: raw fetch+parse {:.0} ms ({:.0} devices/s), through the component {:.0} ms ({:.0} devices/s): {:.2}x",
        r.as_secs_f64() * 1e3,
        devices as f64 / r.as_secs_f64(),
        c.as_secs_f64() * 1e3,
        devices as f64 / c.as_secs_f64(),
        c.as_secs_f64() / r.as_secs_f64()
    );
}
