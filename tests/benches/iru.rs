//! Listing 100,000 devices from the Iru simulator through the Iru component
//! vs fetching and parsing (`serde_json::Value`) the same pages with the
//! same HTTP client in plain Rust. Target: at most 1.3x.
//!
//! Run: `cargo bench -p mdmhub-tests --bench iru` (`MDMHUB_BENCH_DEVICES`
//! changes the fleet size).

use std::time::{Duration, Instant};

use mdmhub::contract::*;
use mdmhub::pager::Pager;
use mdmhub::runtime::{Runtime, RuntimeConfig, Source};
use mdmhub_tests::sim::control::BudgetSpec;
use mdmhub_tests::sim::iru::{IruOptions, IruSim};

const RUNS: usize = 5;

#[tokio::main]
async fn main() {
    let devices: usize = std::env::var("MDMHUB_BENCH_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (_sim, srv) = IruSim::spawn(
        IruOptions {
            devices,
            budget: BudgetSpec {
                limit: u32::MAX,
                window: Duration::from_secs(3600),
                retry_after: true,
            },
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let (name, bytes) = mdmhub::builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == "iru")
        .unwrap();
    let iru = std::sync::Arc::new(
        rt.load(Source::Builtin(name.to_string()), bytes)
            .await
            .unwrap(),
    );
    let spec = mdmhub::account::AccountSpec {
        id: "bench".into(),
        config: [("subdomain", "acme"), ("region", "us")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        secrets: [(
            "api_token".to_string(),
            mdmhub::account::Secret::new("test-token"),
        )]
        .into(),
        endpoints: vec![srv.base_url.parse().unwrap()],
        rate: Some("1000000/s".parse().unwrap()),
    };
    let session = rt.session(&iru, spec).unwrap();

    let mut raw = Vec::new();
    let mut component = Vec::new();
    for _ in 0..RUNS {
        // Raw: the host's HTTP client, the same pages, parsed to `Value`.
        let t = Instant::now();
        let mut offset = 0u64;
        let mut count = 0usize;
        loop {
            let req = HttpRequest {
                method: Method::Get,
                url: format!("{}/api/v1/devices?ordering=device_id", session.origins[0]),
                headers: vec![],
                body: None,
            };
            let paging = Paging::Offset(OffsetPaging {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                offset,
                limit: 300,
                items_pointer: String::new(),
                stop_on_short_page: true,
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            let resp = rt
                .http()
                .send(&session, req, Some(paging), deadline)
                .await
                .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            count += v.as_array().unwrap().len();
            match resp.next {
                Some(n) => offset = n.parse().unwrap(),
                None => break,
            }
        }
        assert_eq!(count, devices);
        raw.push(t.elapsed());

        // Through the component: one sandboxed call per page, normalized records.
        let t = Instant::now();
        let mut pager = Pager::new(
            iru.clone(),
            session.clone(),
            ResourceKind::Devices,
            ListOptions {
                page_size: None,
                parent_id: None,
            },
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
        "iru, {devices} devices in {} pages, median of {RUNS}: raw fetch+parse {:.0} ms ({:.0} devices/s), through the component {:.0} ms ({:.0} devices/s): {:.2}x",
        devices.div_ceil(300),
        r.as_secs_f64() * 1e3,
        devices as f64 / r.as_secs_f64(),
        c.as_secs_f64() * 1e3,
        devices as f64 / c.as_secs_f64(),
        c.as_secs_f64() / r.as_secs_f64()
    );
}
