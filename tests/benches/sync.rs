//! Sync benchmarks against the Iru simulator (figures, not assertions):
//! 1. a full first sync of N devices (default 100,000) by `mdmhub sync` in
//!    its own process (SQLite): time, devices/s and peak RSS, vs the same
//!    requests (every page, each device's summary, details and apps)
//!    fetched and parsed (`serde_json::Value`) in plain Rust with the same
//!    HTTP client and concurrency. Targets: at most 2x; RSS at most 200 MB;
//! 2. a re-sync of the unchanged fleet vs fetching the pages alone.
//!    Target: at most 1.5x;
//! 3. the simulator enforcing a 20 requests/s budget and the account's rate
//!    overridden to `20/s`: the rate of requests the vendor answered
//!    (429s not counted; target: at least 90% of 20/s) and whether every
//!    device arrived.
//!
//! Run: `cargo bench -p mdmhub-tests --bench sync`
//! (`MDMHUB_BENCH_DEVICES`, `MDMHUB_BENCH_LIMITED_DEVICES` change sizes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mdmhub::account::{AccountSession, AccountSpec, Secret};
use mdmhub::contract::{HttpRequest, Method};
use mdmhub::runtime::{Runtime, RuntimeConfig, Source};
use mdmhub_tests::sim::control::BudgetSpec;
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mdmhub-it");
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Devices read in full at once: the Iru connector's `max-concurrent`.
const CONCURRENCY: usize = 4;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let devices = env_usize("MDMHUB_BENCH_DEVICES", 100_000);
    let limited_devices = env_usize("MDMHUB_BENCH_LIMITED_DEVICES", 150);
    let tmp = std::env::temp_dir().join(format!("mdmhub-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);

    let unlimited = BudgetSpec::unlimited();
    let (sim, srv) = IruSim::spawn(
        IruOptions {
            devices,
            budget: unlimited,
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap();

    // Raw: the same requests in plain Rust.
    let raw = Raw::new(&srv.base_url).await;
    let requests = || sim.control().stats().requests;
    let at_start = requests();
    let (t, cpu_at_start) = (Instant::now(), own_cpu());
    let ids = raw.pages().await;
    let raw_pages = t.elapsed();
    let raw_page_requests = requests() - at_start;
    assert_eq!(ids.len(), devices);
    futures::stream::iter(ids)
        .for_each_concurrent(CONCURRENCY * 2, |id| {
            let raw = &raw;
            async move { raw.device(&id).await }
        })
        .await;
    let raw_full = t.elapsed();
    let raw_cpu = own_cpu() - cpu_at_start;
    let raw_requests = requests() - at_start;

    // mdmhub in its own process.
    let dir = tmp.join("full");
    run(
        &dir,
        &["accounts", "add", "--connector", "iru", "--name", "acme"],
        Some(&srv.base_url),
        Some("1000000/s"),
    );
    let before_first = requests();
    let first = run(&dir, &["sync", "acme"], None, None);
    let before_again = requests();
    let again = run(&dir, &["sync", "acme"], None, None);
    let again_requests = requests() - before_again;
    let first_requests = before_again - before_first;

    println!("sync, {devices} devices (SQLite, one process, no rate limit):");
    println!(
        "  first sync {:.1} s ({:.0} devices/s, peak RSS {} MB) vs raw pages+details+apps {:.1} s: {:.2}x (target <= 2x, <= 200 MB)",
        first.wall.as_secs_f64(),
        devices as f64 / first.wall.as_secs_f64(),
        first.peak_kib / 1024,
        raw_full.as_secs_f64(),
        first.wall.as_secs_f64() / raw_full.as_secs_f64()
    );
    // CPU seconds vary less than wall time between runs on a shared machine.
    println!(
        "  CPU: first sync {:.1} s (+ simulator {:.1} s) vs raw client and simulator {:.1} s",
        first.cpu.as_secs_f64(),
        first.sim_cpu.as_secs_f64(),
        raw_cpu.as_secs_f64()
    );
    println!(
        "  requests: first sync {first_requests} vs raw {raw_requests}; re-sync {again_requests} vs raw pages {raw_page_requests}"
    );
    println!(
        "  re-sync (unchanged) {:.2} s (peak RSS {} MB) vs raw pages {:.2} s: {:.2}x (target <= 1.5x)",
        again.wall.as_secs_f64(),
        again.peak_kib / 1024,
        raw_pages.as_secs_f64(),
        again.wall.as_secs_f64() / raw_pages.as_secs_f64()
    );

    // Rate-limited: 20 requests/s at the vendor, 20/s for the account.
    let (sim, srv) = IruSim::spawn(
        IruOptions {
            devices: limited_devices,
            budget: BudgetSpec {
                limit: 20,
                window: Duration::from_secs(1),
                retry_after: true,
            },
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tmp.join("limited");
    run(
        &dir,
        &["accounts", "add", "--connector", "iru", "--name", "acme"],
        Some(&srv.base_url),
        Some("20/s"),
    );
    let before = sim.control().stats();
    let took = run(&dir, &["sync", "acme"], None, None).wall;
    let after = sim.control().stats();
    let requests = after.requests - before.requests;
    let throttled = after.throttled - before.throttled;
    // Sustained: the requests the vendor answered (a 429 spends time, not
    // budget).
    let answered = requests - throttled;
    let rate = answered as f64 / took.as_secs_f64();
    let stored = count_devices(&dir);
    println!(
        "  rate-limited (vendor 20/s, account 20/s, {limited_devices} devices): {answered} requests answered in {:.1} s = {rate:.1}/s ({:.0}% of 20/s), and {throttled} answered 429 and retried; {stored}/{limited_devices} devices stored (target >= 90%, none lost)",
        took.as_secs_f64(),
        rate / 20.0 * 100.0
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// What one `mdmhub-it` process took.
struct Ran {
    wall: Duration,
    /// Peak RSS, KiB.
    peak_kib: u64,
    /// The process's CPU time, user + system.
    cpu: Duration,
    /// This process's CPU time meanwhile: the simulator serving it.
    sim_cpu: Duration,
}

/// CPU time (user + system) of a process from its `/proc/.../stat`.
fn cpu_time(stat: &Path) -> Option<Duration> {
    let text = std::fs::read_to_string(stat).ok()?;
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in USER_HZ (100 on Linux).
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time of this process so far.
fn own_cpu() -> Duration {
    cpu_time(Path::new("/proc/self/stat")).unwrap_or_default()
}

/// Runs `mdmhub-it` over `dir`, measuring it.
fn run(dir: &Path, args: &[&str], endpoint: Option<&str>, rate: Option<&str>) -> Ran {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir").arg(dir).args(args);
    if let Some(e) = endpoint {
        cmd.args(["--config", "subdomain=acme", "--config", "region=us"])
            .args(["--secret", "api_token=test-token", "--endpoint", e]);
    }
    if let Some(r) = rate {
        cmd.args(["--rate-limit", r]);
    }
    cmd.env("MDMHUB_MASTER_KEY", KEY)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let (t, own_before) = (Instant::now(), own_cpu());
    let mut child = cmd.spawn().unwrap();
    let status = PathBuf::from(format!("/proc/{}/status", child.id()));
    let stat = PathBuf::from(format!("/proc/{}/stat", child.id()));
    let (mut peak, mut cpu) = (0, Duration::ZERO);
    loop {
        // VmHWM is the kernel's high-water mark: the last read before exit
        // misses at most the final few milliseconds.
        if let Some(hwm) = std::fs::read_to_string(&status)
            .ok()
            .and_then(|s| vm_hwm(&s))
        {
            peak = peak.max(hwm);
        }
        // Like VmHWM, read while the process lives (a reaped one is gone).
        cpu = cpu_time(&stat).unwrap_or(cpu);
        if let Some(code) = child.try_wait().unwrap() {
            assert!(code.success(), "mdmhub {args:?} failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ran {
        wall: t.elapsed(),
        peak_kib: peak,
        cpu,
        sim_cpu: own_cpu() - own_before,
    }
}

fn vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn count_devices(dir: &Path) -> String {
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(["devices", "list", "--json", "--limit", "10000"])
        .env("MDMHUB_MASTER_KEY", KEY)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["result_count"].to_string()
}

/// Plain-Rust requests with the host's HTTP client and an Iru session
/// (rate override as for the synced account; Iru's four requests in flight).
struct Raw {
    rt: Runtime,
    session: Arc<AccountSession>,
    api: String,
}

impl Raw {
    async fn new(base_url: &str) -> Self {
        let rt = Runtime::new(RuntimeConfig::default()).unwrap();
        let (name, bytes) = mdmhub::builtin::BUILTINS
            .iter()
            .find(|(n, _)| *n == "iru")
            .unwrap();
        let iru = rt
            .load(Source::Builtin(name.to_string()), bytes)
            .await
            .unwrap();
        let spec = AccountSpec {
            id: "raw".into(),
            config: [("subdomain", "acme"), ("region", "us")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            secrets: [("api_token".to_string(), Secret::new("test-token"))].into(),
            endpoints: vec![base_url.parse().unwrap()],
            rate: Some("1000000/s".parse().unwrap()),
        };
        let session = rt.session(&iru, spec).unwrap();
        let api = session.origins[0].clone();
        Self { rt, session, api }
    }

    async fn get(&self, url: String) -> Value {
        let req = HttpRequest {
            method: Method::Get,
            url,
            headers: vec![],
            body: None,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let resp = self
            .rt
            .http()
            .send(&self.session, req, None, deadline, false)
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        serde_json::from_slice(&resp.body).unwrap()
    }

    /// Every page of blueprints, users and devices; returns the device ids.
    async fn pages(&self) -> Vec<String> {
        for first in ["blueprints", "users"] {
            let mut url = format!("{}/api/v1/{first}", self.api);
            loop {
                let v = self.get(url).await;
                match v["next"].as_str() {
                    Some(next) => url = next.to_owned(),
                    None => break,
                }
            }
        }
        let mut ids = Vec::new();
        loop {
            let url = format!(
                "{}/api/v1/devices?ordering=device_id&limit=300&offset={}",
                self.api,
                ids.len()
            );
            let page = self.get(url).await;
            let items = page.as_array().unwrap();
            ids.extend(
                items
                    .iter()
                    .map(|d| d["device_id"].as_str().unwrap().to_owned()),
            );
            if items.len() < 300 {
                return ids;
            }
        }
    }

    /// One device's summary, details and apps, as a detail read does.
    async fn device(&self, id: &str) {
        let base = format!("{}/api/v1/devices/{id}", self.api);
        self.get(base.clone()).await;
        self.get(format!("{base}/details")).await;
        self.get(format!("{base}/apps")).await;
    }
}
