//! API read benchmark (issue 6; figures, not assertions): `GET
//! /v1/devices?limit=100` over N stored devices (default 100,000, SQLite),
//! served by `mdmhub::api::serve` in this process on a loopback port and
//! driven by a keep-alive load generator (hyper, one connection per
//! concurrent client, each following `next_cursor` to the end of the
//! inventory and starting again from the first page):
//! 1. alone, as a freshly started server: the list cache fills as pages
//!    are read (16 clients that start together read the same pages at
//!    once, so most of their reads miss);
//! 2. alone, warm: after one walk of every page has filled the list cache;
//! 3. while the listed account is synced again, its fleet unchanged (a
//!    server's daily sync), in one-second measurements for as long as
//!    the sync runs;
//! 4. while a second account's first sync (another Iru simulator, no rate
//!    limit) writes its devices into the same database (measured from its
//!    first stored device: its users come before);
//! 5. while a third account's first sync runs paced as a real vendor paces
//!    it (`MDMHUB_BENCH_SYNC_RATE` requests/s, default 20: the sync bench's
//!    scaled-up Iru budget; Iru itself allows under 3 a second).
//!
//! Targets: at least 5,000 requests/s and p99 at most 20 ms on a 2-core
//! machine. The load generator runs on a thread and runtime of its own
//! (one core at most); the server and the sync share the process's
//! runtime.
//!
//! Every answer must be 200 with `result_count` 100 (fewer only on the
//! last page) and a `next_cursor` until the last page; every 16th answer
//! of each connection is parsed in full (100 records, ids ascending, no
//! `remote_data`, the same `result_count`). Anything else counts as an
//! error.
//!
//! The inventory is made by a real first sync from the Iru simulator and
//! cached under `target/tmp/bench-api/` by device count (the first run
//! takes a few minutes at 100,000); each run works on a copy of it.
//! `MDMHUB_BENCH_RESEED=1` makes it again.
//!
//! Run: `cargo bench -p mdmhub-tests --bench api`
//! (`MDMHUB_BENCH_DEVICES`, `MDMHUB_BENCH_CONNECTIONS` (default 16),
//! `MDMHUB_BENCH_SECS` (default 10), `MDMHUB_BENCH_WARMUP` (seconds before
//! the first measurement, default 1), `MDMHUB_BENCH_SYNC_DEVICES` (default
//! 50,000: the fleet synced during the last measurement),
//! `MDMHUB_BENCH_LIST_CACHE_MIB` (default: `serve`'s)).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use mdmhub::account::Secret;
use mdmhub::accounts::{AccountInput, Accounts};
use mdmhub::api::{self, ServeOptions};
use mdmhub::runtime::{Registry, Runtime, RuntimeConfig, Source};
use mdmhub::secrets::MasterKey;
use mdmhub::store::Store;
use mdmhub::store::query::Listing;
use mdmhub::sync::background::Background;
use mdmhub::sync::{SyncOptions, Syncer};
use mdmhub_tests::sim::control::BudgetSpec;
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;
use serde::Deserialize;

const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TOKEN: &str = "bench-token";
/// Bump when what a sync stores changes, so the cached inventory is made again.
const SEED_VERSION: u32 = 1;
const PAGE: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let devices = env_usize("MDMHUB_BENCH_DEVICES", 100_000);
    let connections = env_usize("MDMHUB_BENCH_CONNECTIONS", 16).max(1);
    let secs = env_usize("MDMHUB_BENCH_SECS", 10).max(1) as u64;
    let sync_devices = env_usize("MDMHUB_BENCH_SYNC_DEVICES", 50_000);
    // The server's runtime: a worker per core, as `mdmhub serve` has.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(
        devices,
        connections,
        Duration::from_secs(secs),
        sync_devices,
    ));
}

async fn run(devices: usize, connections: usize, secs: Duration, sync_devices: usize) {
    let tmp = std::env::temp_dir().join(format!("mdmhub-bench-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();

    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(bench_dir().join("artifact-cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let (name, bytes) = mdmhub::builtin::BUILTINS
        .iter()
        .find(|(n, _)| *n == "iru")
        .unwrap();
    let iru = Arc::new(
        rt.load(Source::Builtin(name.to_string()), bytes)
            .await
            .unwrap(),
    );
    let registry = Arc::new(Registry {
        connectors: [("iru".to_string(), iru)].into(),
        rejected: vec![],
    });

    let seeded = seed(&rt, &registry, devices).await;
    let db = tmp.join("mdmhub.db");
    std::fs::copy(&seeded, &db).unwrap();
    let accounts = Accounts {
        store: Store::open(&mdmhub::store::sqlite_url(&db)).await.unwrap(),
        runtime: rt,
        registry,
        key: Arc::new(MasterKey::parse(KEY).unwrap()),
    };
    let store = accounts.store.clone();
    let acme = store.account("acme").await.unwrap();
    let stored = store.count(Listing::Devices, &acme.id, None).await.unwrap();
    assert_eq!(stored as usize, devices, "the cached inventory's devices");
    let (_, key) = store.create_key("default", "bench").await.unwrap();

    // As `mdmhub serve` runs syncs: on their lower-priority runtime.
    let syncer = Syncer::new(accounts.clone(), SyncOptions::default())
        .in_background(Background::new().unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = ServeOptions {
        schedule: false,
        grace: Duration::from_secs(5),
        list_cache_bytes: env_usize(
            "MDMHUB_BENCH_LIST_CACHE_MIB",
            api::DEFAULT_LIST_CACHE_MIB as usize,
        ) as u64
            * (1 << 20),
        ..ServeOptions::default()
    };
    let server = tokio::spawn(api::serve(listener, syncer.clone(), options, async {
        let _ = stopped.await;
    }));

    let load = Load {
        addr,
        auth: format!("Bearer {key}"),
        connections,
    };
    println!(
        "api: GET /v1/devices?limit={PAGE} over {devices} devices (SQLite), {connections} keep-alive connections, {} s per measurement",
        secs.as_secs()
    );
    load.measure(Duration::from_secs(
        env_usize("MDMHUB_BENCH_WARMUP", 1) as u64
    ))
    .await; // warm-up
    let alone = load.measure(secs).await;
    alone.print("alone");
    let cache = |store: &Store| {
        if let (Some((bytes, records)), Some((s_bytes, lists))) =
            (store.list_cache_usage(), store.list_snapshot_usage())
        {
            println!(
                "  list cache: {records} records, {:.1} MiB; {lists} account lists in memory, {:.1} MiB",
                bytes as f64 / (1 << 20) as f64,
                s_bytes as f64 / (1 << 20) as f64
            );
        }
    };
    cache(&store);
    // Then with every record in the list cache, as a server that has
    // served a walk of the inventory since its last sync has them.
    let took = load.walk_once().await;
    println!(
        "  one walk of every page (filling the list cache): {:.1} s",
        took.as_secs_f64()
    );
    cache(&store);
    let warm = load.measure(secs).await;
    warm.print("alone, warm");

    // The listed account's own re-sync, its fleet unchanged: what a
    // server does every day. Measured in one-second slices for as long as
    // the sync runs.
    let vendor = Background::new().unwrap();
    let resync = {
        let (_sim, srv) = vendor.handle().spawn(sim(devices, 1)).await.unwrap();
        // The seeding simulator is gone: this one serves the same fleet.
        sqlx::query("UPDATE accounts SET endpoints = $1 WHERE id = $2")
            .bind(serde_json::to_string(&[&srv.base_url]).unwrap())
            .bind(&acme.id)
            .execute(store.pool())
            .await
            .unwrap();
        let acme = store.account("acme").await.unwrap();
        let sync = {
            let syncer = syncer.clone();
            tokio::spawn(async move { syncer.sync(&acme, "manual", None).await })
        };
        let mut busy = Outcome::default();
        while !sync.is_finished() {
            busy.absorb(load.measure(Duration::from_secs(1)).await);
        }
        let run = sync.await.unwrap().unwrap();
        assert_eq!(
            (run.status.as_str(), run.counts.created, run.counts.updated),
            ("succeeded", 0, 0),
            "the re-synced fleet is unchanged"
        );
        busy.print("during a re-sync of the listed account");
        println!(
            "  the re-sync took {:.1} s: {} unchanged, {} updated, {} created",
            busy.took.as_secs_f64(),
            run.counts.unchanged,
            run.counts.updated,
            run.counts.created
        );
        busy
    };

    // A second account's first sync in the same process and database.
    // The vendor is another machine in production: its simulator runs at
    // a lower priority, like the sync, so it does not take the API's CPU
    // either.
    let during = |name: &'static str, seed: u64, rate: Option<usize>| {
        let (accounts, syncer, store, load, vendor) = (&accounts, &syncer, &store, &load, &vendor);
        async move {
            let (_sim, srv) = vendor
                .handle()
                .spawn(sim(sync_devices, seed))
                .await
                .unwrap();
            let mut account_input = input(&srv.base_url);
            if let Some(r) = rate {
                account_input.rate_limit = Some(format!("{r}/s"));
            }
            let account = accounts.add(name, "iru", account_input).await.unwrap();
            let sync = {
                let (syncer, account) = (syncer.clone(), account.clone());
                tokio::spawn(async move { syncer.sync(&account, "manual", None).await })
            };
            // Measured once it stores devices: its users come first, and
            // they are neither what is listed nor as heavy to store.
            let waiting = Instant::now();
            while stored_by(store, &account.id).await.1 == 0
                && waiting.elapsed() < Duration::from_secs(120)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let before = stored_by(store, &account.id).await;
            let busy = load.measure(secs).await;
            let after = stored_by(store, &account.id).await;
            let finished = sync.is_finished();
            sync.abort();
            let _ = sync.await;
            // Its lease would outlive the aborted sync: gone, the account
            // is not read as one being synced in the next measurement.
            store.remove_account(&account.id).await.unwrap();
            (busy, before, after, finished)
        }
    };
    let report =
        |label: &str, (busy, before, after, finished): &(Outcome, (i64, i64), (i64, i64), bool)| {
            busy.print(label);
            println!(
                "  the sync stored {} users and {} devices (of {sync_devices}) while measured{}",
                after.0 - before.0,
                after.1 - before.1,
                if *finished {
                    " (it finished before the end)"
                } else {
                    ""
                }
            );
        };
    let unpaced = during("beta", 2, None).await;
    report("during another account's first sync", &unpaced);
    // A real vendor paces a sync: Iru allows 10,000 requests an hour, so
    // a sync waits for the vendor most of the time. Here at the sync
    // bench's scaled-up Iru budget, 20 requests/s.
    let rate = env_usize("MDMHUB_BENCH_SYNC_RATE", 20);
    let paced = during("gamma", 3, Some(rate)).await;
    report(
        &format!("during a first sync paced at {rate} requests/s"),
        &paced,
    );
    let busy = &unpaced.0;
    let paced = &paced.0;

    println!();
    println!(
        "  {:<12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "load"
    );
    for (label, r) in [
        ("alone", &alone),
        ("alone, warm", &warm),
        ("re-sync", &resync),
        ("first sync", busy),
        ("first, paced", paced),
    ] {
        println!(
            "  {:<12} {:>10} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>6.2}",
            label,
            r.requests,
            r.rps(),
            r.pct(0.50),
            r.pct(0.99),
            r.max(),
            r.errors,
            r.load
        );
    }
    println!(
        "  targets: >= 5000 req/s, p99 <= 20 ms; load = 1-min load average at the end (2 cores)"
    );
    if let Some((full, updated)) = store.list_snapshot_reads() {
        println!(
            "  account lists read into memory: {full} in full, {updated} brought up to date by the records a sync wrote"
        );
    }

    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The users and devices account `id` has stored.
async fn stored_by(store: &Store, id: &str) -> (i64, i64) {
    (
        store.count(Listing::Users, id, None).await.unwrap(),
        store.count(Listing::Devices, id, None).await.unwrap(),
    )
}

/// Where the bench keeps what outlives a run: `target/tmp/bench-api`.
fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-api")
}

fn input(base_url: &str) -> AccountInput {
    AccountInput {
        config: [("subdomain", "acme"), ("region", "us")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        secrets: [("api_token".to_string(), Secret::new(TOKEN))].into(),
        endpoints: vec![base_url.to_string()],
        rate_limit: Some("1000000/s".into()),
        interval_secs: None,
    }
}

async fn sim(devices: usize, seed: u64) -> (Arc<IruSim>, Running) {
    IruSim::spawn(
        IruOptions {
            devices,
            seed,
            token: TOKEN.into(),
            budget: BudgetSpec::unlimited(),
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap()
}

/// The database file of an inventory of `devices` devices synced once
/// from the Iru simulator (account `acme`, default workspace), made if
/// not cached.
async fn seed(rt: &Runtime, registry: &Arc<Registry>, devices: usize) -> PathBuf {
    let dir = bench_dir().join(format!("iru-{devices}-v{SEED_VERSION}"));
    let file = dir.join("mdmhub.db");
    if file.exists() && std::env::var_os("MDMHUB_BENCH_RESEED").is_none() {
        return file;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let work = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    println!(
        "seeding {devices} devices by a first sync from the Iru simulator (cached for later runs)..."
    );
    let t = Instant::now();
    let (_sim, srv) = sim(devices, 1).await;
    let store = Store::open(&mdmhub::store::sqlite_url(&work.join("mdmhub.db")))
        .await
        .unwrap();
    let accounts = Accounts {
        store: store.clone(),
        runtime: rt.clone(),
        registry: registry.clone(),
        key: Arc::new(MasterKey::parse(KEY).unwrap()),
    };
    let acme = accounts
        .add("acme", "iru", input(&srv.base_url))
        .await
        .unwrap();
    let run = Syncer::new(accounts, SyncOptions::default())
        .sync(&acme, "manual", None)
        .await
        .unwrap();
    assert_eq!(run.status, "succeeded");
    // One self-contained file: the WAL folded in.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await
        .unwrap();
    store.pool().close().await;
    std::fs::rename(&work, &dir).unwrap();
    println!("seeded in {:.0} s", t.elapsed().as_secs_f64());
    file
}

/// A load: `connections` keep-alive clients.
struct Load {
    addr: std::net::SocketAddr,
    auth: String,
    connections: usize,
}

/// What one measurement saw.
#[derive(Default)]
struct Outcome {
    requests: u64,
    errors: u64,
    /// Latencies in microseconds, sorted.
    latencies: Vec<u32>,
    took: Duration,
    /// The 1-minute load average when it ended.
    load: f64,
    /// CPU time this process used (server, load generator, sync), seconds.
    cpu: f64,
}

impl Outcome {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.took.as_secs_f64()
    }

    fn pct(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1] as f64 / 1000.0
    }

    /// Adds another measurement's figures to these.
    fn absorb(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.took += other.took;
        self.cpu += other.cpu;
        self.load = other.load;
    }

    fn max(&self) -> f64 {
        self.latencies
            .last()
            .map_or(f64::NAN, |&m| m as f64 / 1000.0)
    }

    fn print(&self, label: &str) {
        println!(
            "  {label}: {} requests in {:.1} s = {:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors; process CPU {:.2} cores, {:.2} ms a request",
            self.requests,
            self.took.as_secs_f64(),
            self.rps(),
            self.pct(0.50),
            self.pct(0.99),
            self.max(),
            self.errors,
            self.cpu / self.took.as_secs_f64(),
            self.cpu * 1000.0 / self.requests.max(1) as f64
        );
    }
}

impl Load {
    /// One walk of the whole inventory: how long it took.
    async fn walk_once(&self) -> Duration {
        let t = Instant::now();
        let until = t + Duration::from_secs(3600);
        let (_, errors) = client(self.addr, self.auth.clone(), until, 1, true).await;
        assert_eq!(errors, 0, "the warming walk");
        t.elapsed()
    }

    /// Runs the load on a thread and runtime of its own for `secs`.
    async fn measure(&self, secs: Duration) -> Outcome {
        let (addr, auth, n) = (self.addr, self.auth.clone(), self.connections);
        tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let cpu = process_cpu();
                let started = Instant::now();
                let until = started + secs;
                let clients: Vec<_> = (0..n)
                    .map(|i| tokio::spawn(client(addr, auth.clone(), until, i, false)))
                    .collect();
                let mut out = Outcome::default();
                for c in clients {
                    let (lat, errors) = c.await.unwrap();
                    out.requests += lat.len() as u64;
                    out.errors += errors;
                    out.latencies.extend(lat);
                }
                out.took = started.elapsed();
                out.cpu = process_cpu() - cpu;
                out.latencies.sort_unstable();
                out.load = std::fs::read_to_string("/proc/loadavg")
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(f64::NAN);
                out
            })
        })
        .await
        .unwrap()
    }
}

/// CPU seconds this process has used (user + system).
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with `)`: utime is the
    // 12th, stime the 13th (in clock ticks, 100 a second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// One keep-alive connection walking the devices until `until` (or to
/// the end of one walk if `once`): its latencies (µs) and errors.
async fn client(
    addr: std::net::SocketAddr,
    auth: String,
    until: Instant,
    n: usize,
    once: bool,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut cursor: Option<String> = None;
    let mut sender = None;
    let mut count = n; // staggers the full checks across connections
    while Instant::now() < until {
        if sender.is_none() {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let io = hyper_util::rt::TokioIo::new(stream);
            let (s, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
                .await
                .unwrap();
            tokio::spawn(conn);
            sender = Some(s);
        }
        let s = sender.as_mut().unwrap();
        let uri = match &cursor {
            Some(c) => format!("/v1/devices?limit={PAGE}&cursor={c}"),
            None => format!("/v1/devices?limit={PAGE}"),
        };
        let req = hyper::Request::get(uri)
            .header(hyper::header::HOST, "bench")
            .header(hyper::header::AUTHORIZATION, &auth)
            .body(Empty::new())
            .unwrap();
        let t = Instant::now();
        // A keep-alive connection takes the next request once it has
        // finished the last response.
        let sent = match s.ready().await {
            Ok(()) => s.send_request(req).await,
            Err(e) => Err(e),
        };
        let answer = match sent {
            Ok(resp) => {
                let status = resp.status();
                resp.into_body()
                    .collect()
                    .await
                    .ok()
                    .map(|b| (status, b.to_bytes()))
            }
            Err(_) => None,
        };
        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        count += 1;
        match answer
            .filter(|(status, _)| *status == hyper::StatusCode::OK)
            .and_then(|(_, body)| check(&body, count.is_multiple_of(16)))
        {
            Some(None) if once => break,
            Some(next) => cursor = next,
            None => {
                errors += 1;
                cursor = None;
                sender = None; // a fresh connection after any failure
            }
        }
    }
    (latencies, errors)
}

/// The tail of a page: `"next_cursor":...,"result_count":N}`.
#[derive(Deserialize)]
struct Tail {
    next_cursor: Option<String>,
    result_count: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullPage {
    result: Vec<Record>,
    next_cursor: Option<String>,
    result_count: usize,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    remote_data: Option<serde::de::IgnoredAny>,
}

/// Checks a page; `Some(next cursor)` if it is a good one. The page's
/// last members are read from its end; `full` parses all of it.
fn check(body: &[u8], full: bool) -> Option<Option<String>> {
    let at = memrfind(body, b"\"next_cursor\"")?;
    let mut tail = b"{".to_vec();
    tail.extend_from_slice(&body[at..]);
    let tail: Tail = serde_json::from_slice(&tail).ok()?;
    let ok_count =
        tail.result_count == PAGE || (tail.next_cursor.is_none() && tail.result_count <= PAGE);
    if !ok_count {
        return None;
    }
    if full {
        let page: FullPage = serde_json::from_slice(body).ok()?;
        let ordered = page.result.windows(2).all(|w| w[0].id < w[1].id);
        let bare = page.result.iter().all(|r| r.remote_data.is_none());
        if page.result.len() != page.result_count
            || page.result_count != tail.result_count
            || page.next_cursor != tail.next_cursor
            || !ordered
            || !bare
        {
            return None;
        }
    }
    Some(tail.next_cursor)
}

fn memrfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}
