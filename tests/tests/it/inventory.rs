//! Accounts, the store and the sync engine end to end against the Iru
//! simulator (and Intune, syncing alongside). Every test runs on SQLite and, when `MDMHUB_TEST_POSTGRES_URL`
//! names a server (as `scripts/test` arranges), on PostgreSQL too.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Command;

use mdmhub::account::Secret;
use mdmhub::accounts::{AccountError, AccountInput, Accounts};
use mdmhub::runtime::Registry;
use mdmhub::secrets::MasterKey;
use mdmhub::store::Store;
use mdmhub::store::accounts::AccountRow;
use mdmhub::store::listed_accounts::FRESH_FOR;
use mdmhub::store::query::{Filter, Listing};
use mdmhub::store::runs::RunRow;
use mdmhub::sync::{SyncError, SyncOptions, Syncer, schedule};
use mdmhub_tests::sim::control::Faults;
use mdmhub_tests::sim::intune::{IntuneOptions, IntuneSim};
use mdmhub_tests::sim::iru::{IruOptions, IruSim};
use mdmhub_tests::sim::server::Running;
use sqlx::Executor;

use crate::support;

/// A fixed master key for tests (base64 of 32 bytes).
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// A token distinctive enough to search files and logs for.
const TOKEN: &str = "tok-Zq8xS3cr3t-4471";

/// Where a test's data lives: a temp dir, and a database URL in it or on
/// the PostgreSQL test server.
struct Place {
    dir: PathBuf,
    url: String,
}

/// Fresh places for one test: SQLite always, PostgreSQL when configured.
async fn places(test: &str) -> Vec<Place> {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("inventory")
        .join(format!("{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let sqlite_dir = base.join("sqlite");
    std::fs::create_dir_all(&sqlite_dir).unwrap();
    let mut out = vec![Place {
        url: mdmhub::store::sqlite_url(&sqlite_dir.join("mdmhub.db")),
        dir: sqlite_dir,
    }];
    if let Ok(admin) = std::env::var("MDMHUB_TEST_POSTGRES_URL") {
        sqlx::any::install_default_drivers();
        let db = format!("t_{}_{:08x}", test, rand_suffix());
        let pool = sqlx::AnyPool::connect(&admin).await.unwrap();
        pool.execute(format!("CREATE DATABASE {db}").as_str())
            .await
            .unwrap();
        pool.close().await;
        let (prefix, _) = admin.rsplit_once('/').unwrap();
        let dir = base.join("postgres");
        std::fs::create_dir_all(&dir).unwrap();
        out.push(Place {
            url: format!("{prefix}/{db}"),
            dir,
        });
    }
    out
}

fn rand_suffix() -> u32 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos())
        ^ std::process::id()
}

/// A simulator and the account operations over one place.
struct Inv {
    sim: Arc<IruSim>,
    srv: Running,
    accounts: Accounts,
}

async fn inventory(place: &Place, devices: usize, faults: Faults) -> Inv {
    let (sim, srv) = IruSim::spawn(
        IruOptions {
            devices,
            faults,
            token: TOKEN.into(),
            ..IruOptions::default()
        },
        0,
    )
    .await
    .unwrap();
    let rt = support::runtime();
    let iru = support::iru(&rt).await;
    let intune = support::intune(&rt).await;
    let registry = Registry {
        connectors: [("iru".to_string(), iru), ("intune".to_string(), intune)].into(),
        rejected: vec![],
    };
    let accounts = Accounts {
        store: Store::open(&place.url).await.unwrap(),
        runtime: rt,
        registry: Arc::new(registry),
        key: Arc::new(MasterKey::parse(KEY).unwrap()),
    };
    Inv { sim, srv, accounts }
}

fn input(base_url: &str, token: &str) -> AccountInput {
    AccountInput {
        config: [("subdomain", "acme"), ("region", "us")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        secrets: [("api_token".to_string(), Secret::new(token))].into(),
        endpoints: vec![base_url.to_string()],
        rate_limit: None,
        interval_secs: None,
    }
}

/// An Intune account for the Graph simulator's test app.
fn intune_input(base_url: &str) -> AccountInput {
    AccountInput {
        config: [(
            "tenant_id".to_string(),
            "contoso.onmicrosoft.com".to_string(),
        )]
        .into(),
        secrets: [
            ("client_id".to_string(), Secret::new("test-client")),
            ("client_secret".to_string(), Secret::new("test-secret")),
        ]
        .into(),
        endpoints: vec![base_url.to_string()],
        rate_limit: None,
        interval_secs: None,
    }
}

impl Inv {
    async fn add(&self, name: &str) -> AccountRow {
        self.accounts
            .add(name, "iru", input(&self.srv.base_url, TOKEN))
            .await
            .unwrap()
    }

    fn syncer(&self) -> Syncer {
        Syncer::new(
            self.accounts.clone(),
            SyncOptions {
                lease_ttl: Duration::from_secs(5),
                ..SyncOptions::default()
            },
        )
    }

    async fn sync(&self, account: &AccountRow) -> RunRow {
        self.syncer().sync(account, "manual", None).await.unwrap()
    }

    async fn devices(&self, account: &AccountRow, status: &str) -> i64 {
        self.accounts
            .store
            .count(Listing::Devices, &account.id, Some(status))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn resync_is_unchanged_check_ins_skip_details_and_deletions_are_removed() {
    for place in places("resync").await {
        let inv = inventory(&place, 120, Faults::default()).await;
        let acme = inv.add("acme").await;
        let first = inv.sync(&acme).await;
        assert_eq!(first.status, "succeeded");
        assert_eq!(inv.devices(&acme, "active").await, 120);
        // A server's store, with records kept ready to list, beside the
        // plain one: both list the same bytes, cold, warm and after changes.
        let cached = Store::open(&place.url).await.unwrap();
        cached.cache_lists(1 << 20);
        assert_lists_agree(&inv.accounts.store, &cached, "cold").await;
        settle(&cached).await;
        assert_lists_agree(&inv.accounts.store, &cached, "snapshots").await;
        assert_eq!(
            first.counts.details, 120,
            "every new device is read in full"
        );
        assert!(first.counts.created > 120, "devices, users and blueprints");
        let total = first.counts.created;

        let again = inv.sync(&acme).await;
        assert_eq!(
            (
                again.counts.created,
                again.counts.updated,
                again.counts.unchanged
            ),
            (0, 0, total),
            "{}",
            place.url
        );
        assert_eq!(again.counts.details, 0);
        // Unchanged records are not rewritten, yet show the pass saw them.
        let stored_at: String = sqlx::query_scalar("SELECT MAX(last_seen_at) FROM devices")
            .fetch_one(inv.accounts.store.pool())
            .await
            .unwrap();
        assert!(stored_at < again.started_at, "{stored_at}");
        let kept = &inv.sim.device_ids()[20];
        let kept_seen = || async {
            let d = inv.accounts.store.device(kept).await.unwrap().unwrap();
            d["last_seen_at"].as_str().unwrap().to_owned()
        };
        assert_eq!(kept_seen().await, again.started_at);

        // A check-in alone updates the record but needs no detail read; a
        // rename does.
        let ids = inv.sim.device_ids();
        inv.sim.update_device(&ids[0], |m| {
            m.last_check_in = m.last_check_in.map(|t| t + 60)
        });
        let checked_in = inv.sync(&acme).await;
        assert_eq!(
            (checked_in.counts.updated, checked_in.counts.details),
            (1, 0)
        );
        inv.sim
            .update_device(&ids[1], |m| m.name = "Renamed Mac".into());
        let renamed = inv.sync(&acme).await;
        assert_eq!((renamed.counts.updated, renamed.counts.details), (1, 1));
        let shown = inv.accounts.store.device(&ids[1]).await.unwrap().unwrap();
        assert_eq!(shown["name"], "Renamed Mac");
        // Written by another store: seen within `FRESH_FOR`.
        tokio::time::sleep(FRESH_FOR).await;
        assert_lists_agree(&inv.accounts.store, &cached, "renamed").await;
        settle(&cached).await;
        assert_lists_agree(&inv.accounts.store, &cached, "renamed, snapshots").await;
        assert!(
            shown["udid"].is_string(),
            "a list page keeps the detail fields"
        );

        for id in &ids[10..13] {
            assert!(inv.sim.delete_device(id));
        }
        let after = inv.sync(&acme).await;
        assert_eq!(after.counts.removed, 3, "confirmed by a get answering 404");
        assert_eq!(inv.devices(&acme, "active").await, 117);
        let gone = inv.accounts.store.device(&ids[10]).await.unwrap().unwrap();
        assert_eq!(gone["status"], "removed");
        assert!(gone["removed_at"].is_string());
        assert!(
            gone["last_seen_at"].as_str().unwrap() < after.started_at.as_str(),
            "a removed record keeps when it was last seen"
        );
        assert_eq!(kept_seen().await, after.started_at);
        // Written by another store: seen within `FRESH_FOR`.
        tokio::time::sleep(FRESH_FOR).await;
        assert_lists_agree(&inv.accounts.store, &cached, "removed").await;
        settle(&cached).await;
        assert_lists_agree(&inv.accounts.store, &cached, "removed, snapshots").await;
        let usage = cached.list_cache_usage().unwrap();
        assert!(
            usage.1 > 120,
            "devices, users and organizations cached: {usage:?}"
        );

        // Users link by email; devices show their organization.
        let (linked, _) = inv
            .accounts
            .store
            .list(
                Listing::Devices,
                &Filter {
                    limit: 500,
                    ..Filter::default()
                },
            )
            .await
            .unwrap();
        assert!(linked.iter().any(|d| d["user_id"].is_string()));
        assert!(linked.iter().all(|d| d["organization_id"].is_string()));
        let apps_of = |device: Option<String>| {
            let store = inv.accounts.store.clone();
            async move {
                let filter = Filter {
                    device,
                    limit: 500,
                    ..Filter::default()
                };
                store.list(Listing::Apps, &filter).await.unwrap().0
            }
        };
        let any = apps_of(None).await;
        assert!(!any.is_empty(), "apps are read with details");
        let device = any[0]["device_id"].as_str().unwrap().to_owned();
        let apps = apps_of(Some(device.clone())).await;
        assert!(apps.iter().all(|a| a["device_id"] == device.as_str()));
        assert!(!apps.is_empty(), "apps are read with details");

        // With a second account mid-sync (its lease held elsewhere), each
        // page merges the settled account's snapshot with the other's rows
        // read from the database up to where that snapshot ends the page.
        let beta = inv.add("beta").await;
        inv.sync(&beta).await;
        sqlx::query("UPDATE accounts SET lease_holder = 'elsewhere' WHERE id = $1")
            .bind(&beta.id)
            .execute(inv.accounts.store.pool())
            .await
            .unwrap();
        tokio::time::sleep(FRESH_FOR).await;
        settle(&cached).await;
        assert_lists_agree(&inv.accounts.store, &cached, "one account syncing").await;
        inv.accounts.store.remove_account(&beta.id).await.unwrap();

        // Removed by another process: the cached store drops its lists
        // when it next checks.
        inv.accounts.store.remove_account(&acme.id).await.unwrap();
        assert!(cached.list_snapshot_usage().unwrap().1 > 0);
        cached.prune_lists().await.unwrap();
        assert_eq!(cached.list_snapshot_usage().unwrap().1, 0);
    }
}

/// A server's lists of an account a sync is writing (through the server's
/// store) are brought up to date by reading only the records each of the
/// sync's transactions wrote, and list what the database holds.
#[tokio::test]
async fn lists_in_memory_follow_a_sync_by_the_records_it_wrote() {
    for place in places("noted").await {
        let inv = inventory(&place, 700, Faults::default()).await;
        let cached = inv.accounts.store.clone();
        cached.cache_lists(1 << 26);
        let plain = Store::open(&place.url).await.unwrap();
        let acme = inv.add("acme").await;
        assert_eq!(inv.sync(&acme).await.status, "succeeded");
        settle(&cached).await;
        assert_lists_agree(&plain, &cached, "synced").await;
        let (full, updated) = cached.list_snapshot_reads().unwrap();

        // Two device pages are stored with a renamed device each; the
        // third page breaks the walk. The account is then shown as still
        // syncing (its lease held elsewhere): no list is read in full.
        let ids = inv.sim.device_ids();
        for i in [5, 350] {
            inv.sim
                .update_device(&ids[i], |m| m.name = format!("Renamed {i}"));
        }
        inv.sim.control().set_faults(Faults {
            malformed_page: Some(600),
            ..Faults::default()
        });
        let err = inv.syncer().sync(&acme, "manual", None).await.unwrap_err();
        assert!(matches!(err, SyncError::Walk { .. }), "{err}");
        sqlx::query("UPDATE accounts SET lease_holder = 'elsewhere' WHERE id = $1")
            .bind(&acme.id)
            .execute(plain.pool())
            .await
            .unwrap();
        // Another process's writes are seen within `FRESH_FOR`.
        tokio::time::sleep(FRESH_FOR).await;
        assert_lists_agree(&plain, &cached, "mid-sync").await;
        settle(&cached).await;
        assert_lists_agree(&plain, &cached, "mid-sync, brought up to date").await;
        let (full_now, updated_now) = cached.list_snapshot_reads().unwrap();
        assert_eq!(full_now, full, "{}", place.url);
        assert!(updated_now > updated, "{}", place.url);
        let page = cached
            .list_text(
                Listing::Devices,
                &Filter {
                    limit: 1000,
                    omit_remote_data: true,
                    ..Filter::default()
                },
            )
            .await
            .unwrap();
        let page = String::from_utf8(page.records).unwrap();
        assert!(page.contains("Renamed 5") && page.contains("Renamed 350"));

        // A write this store was not told of (another process's) makes
        // the list be read from the database until the sync ends.
        sqlx::query("UPDATE accounts SET list_generation = list_generation + 1 WHERE id = $1")
            .bind(&acme.id)
            .execute(plain.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE device_data SET record = replace(record, 'Renamed 5', 'Elsewhere 5')")
            .execute(plain.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE devices SET content_hash = 'elsewhere' WHERE remote_id = $1")
            .bind(&ids[5])
            .execute(plain.pool())
            .await
            .unwrap();
        tokio::time::sleep(FRESH_FOR).await;
        assert_lists_agree(&plain, &cached, "written elsewhere").await;
        assert_eq!(
            cached.list_snapshot_reads().unwrap(),
            (full_now, updated_now)
        );
    }
}

/// Waits until no account list is being read into memory and the
/// devices, users and organizations of the account are held.
async fn settle(cached: &Store) {
    for _ in 0..500 {
        let held = cached.list_snapshot_usage().unwrap().1;
        if !cached.list_snapshots_reading() && held >= 3 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("account lists were not read into memory");
}

/// Every page of every listing (active and removed records, 40 a page)
/// reads the same from `plain` and from `cached` (a store with the list
/// cache on), and as `serde_json` writes [`Store::list`]'s records.
async fn assert_lists_agree(plain: &Store, cached: &Store, when: &str) {
    for listing in [
        Listing::Devices,
        Listing::Users,
        Listing::Organizations,
        Listing::Apps,
    ] {
        for status in [None, Some("active"), Some("removed")] {
            let mut after = None;
            loop {
                let f = Filter {
                    limit: 40,
                    after: after.clone(),
                    omit_remote_data: true,
                    status: status.map(str::to_owned),
                    ..Filter::default()
                };
                let want = plain.list_text(listing, &f).await.unwrap();
                let got = cached.list_text(listing, &f).await.unwrap();
                let (records, next) = plain.list(listing, &f).await.unwrap();
                let parsed = serde_json::to_vec(&records).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got.records),
                    String::from_utf8_lossy(&want.records),
                    "{listing:?} {when}"
                );
                assert_eq!(parsed, [b"[", &want.records[..], b"]"].concat());
                assert_eq!((got.count, &got.next), (want.count, &want.next));
                assert_eq!((records.len(), &next), (want.count, &want.next));
                match want.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
    }
}

/// A write that reads first (removing an account counts its devices)
/// waits for another writer, as a sync is, instead of failing with
/// "database is locked" when that writer commits meanwhile.
#[tokio::test]
async fn removing_an_account_waits_for_another_writer() {
    for place in places("writers").await {
        let inv = inventory(&place, 20, Faults::default()).await;
        let acme = inv.add("acme").await;
        let beta = inv.add("beta").await;
        inv.sync(&acme).await;
        let store = inv.accounts.store.clone();
        let mut other = store.pool().begin().await.unwrap();
        sqlx::query("UPDATE accounts SET next_sync_at = next_sync_at WHERE id = $1")
            .bind(&beta.id)
            .execute(&mut *other)
            .await
            .unwrap();
        let removing = {
            let (store, id) = (store.clone(), acme.id.clone());
            tokio::spawn(async move { store.remove_account(&id).await })
        };
        // It has read by now, and waits for the lock `other` holds.
        tokio::time::sleep(Duration::from_millis(300)).await;
        other.commit().await.unwrap();
        let removed = removing.await.unwrap();
        assert_eq!(removed.unwrap(), 20, "{}", place.url);
        assert!(store.account("acme").await.is_err());
    }
}

#[tokio::test]
async fn a_failed_run_removes_nothing() {
    for place in places("failed").await {
        let inv = inventory(&place, 400, Faults::default()).await;
        let acme = inv.add("acme").await;
        inv.sync(&acme).await;
        let ids = inv.sim.device_ids();
        for id in &ids[..3] {
            inv.sim.delete_device(id);
        }
        // The second devices page comes back broken: the walk fails halfway.
        inv.sim.control().set_faults(Faults {
            malformed_page: Some(300),
            ..Faults::default()
        });
        let err = inv.syncer().sync(&acme, "manual", None).await.unwrap_err();
        assert!(matches!(err, SyncError::Walk { .. }), "{err}");
        assert_eq!(inv.devices(&acme, "active").await, 400, "nothing removed");
        let runs = inv.accounts.store.runs(&acme.id, 1).await.unwrap();
        assert_eq!(runs[0].status, "failed");
        assert!(runs[0].error.as_deref().unwrap().contains("devices"));

        inv.sim.control().set_faults(Faults::default());
        let ok = inv.sync(&acme).await;
        assert_eq!(ok.counts.removed, 3);
        assert_eq!(inv.devices(&acme, "active").await, 397);
    }
}

#[tokio::test]
async fn a_device_deleted_mid_walk_never_makes_a_live_one_look_removed() {
    for place in places("midwalk").await {
        let inv = inventory(&place, 700, Faults::default()).await;
        let acme = inv.add("acme").await;
        inv.sync(&acme).await;
        // When page 2 is requested, the first device goes: every later
        // device shifts one place and the walk skips one live device.
        inv.sim.control().set_faults(Faults {
            delete_during_walk_at: Some(300),
            ..Faults::default()
        });
        let run = inv.sync(&acme).await;
        // The deleted device was seen on page 1 before it went; the live
        // device the walk skipped is confirmed alive by `get`.
        assert_eq!(run.counts.removed, 0, "no live device removed");
        // Confirming a skipped device changes nothing. A re-sync walks users
        // and devices at once, so the deleted device's owner may have been
        // listed after the deletion, with one device fewer (an update).
        assert_eq!(run.counts.created, 0);
        assert!(run.counts.updated <= 1, "{:?}", run.counts);
        assert_eq!(inv.devices(&acme, "active").await, 700);
        let next = inv.sync(&acme).await;
        assert_eq!(next.counts.removed, 1, "only the deleted device");
        assert_eq!(inv.devices(&acme, "active").await, 699);
        let live: std::collections::HashSet<_> = inv.sim.device_ids().into_iter().collect();
        let (removed, _) = inv
            .accounts
            .store
            .list(
                Listing::Devices,
                &Filter {
                    status: Some("removed".into()),
                    limit: 10,
                    ..Filter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(removed.len(), 1);
        assert!(!live.contains(removed[0]["remote_id"].as_str().unwrap()));
    }
}

/// The `mdmhub` program as a separate process over `place`.
fn mdmhub(place: &Place) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mdmhub-it"));
    cmd.arg("--data-dir")
        .arg(&place.dir)
        .arg("--database-url")
        .arg(&place.url)
        .env("MDMHUB_MASTER_KEY", KEY)
        .stdin(Stdio::null());
    cmd
}

/// Runs `mdmhub sync acme` in a child process and kills it (SIGKILL) as
/// soon as `enough` says so.
async fn kill_sync_once<F: Future<Output = bool>>(place: &Place, enough: impl Fn() -> F) {
    let mut child = mdmhub(place)
        .args(["sync", "acme"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !enough().await {
        assert!(Instant::now() < deadline, "the child got nowhere");
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
}

#[tokio::test]
async fn a_sync_killed_mid_run_resumes_with_every_device_once() {
    for place in places("killed").await {
        let inv = inventory(
            &place,
            1500,
            Faults {
                slow_ms: 5,
                ..Faults::default()
            },
        )
        .await;
        let acme = inv.add("acme").await;
        // Killed once some pages and details are stored.
        kill_sync_once(&place, || async {
            inv.devices(&acme, "active").await >= 600
        })
        .await;
        let interrupted = inv
            .accounts
            .store
            .unfinished_run(&acme.id)
            .await
            .unwrap()
            .expect("the killed run is still marked running");

        let run = inv.sync(&acme).await;
        assert_eq!(run.id, interrupted.id, "the same run resumed");
        assert_eq!(run.status, "succeeded");
        assert_eq!(inv.devices(&acme, "active").await, 1500);
        assert_eq!(inv.devices(&acme, "removed").await, 0, "no false removal");
        assert_eq!(run.counts.removed, 0);
        let store = &inv.accounts.store;
        let users = store.count(Listing::Users, &acme.id, None).await.unwrap();
        let orgs = store
            .count(Listing::Organizations, &acme.id, None)
            .await
            .unwrap();
        assert_eq!(
            run.counts.created,
            1500 + users + orgs,
            "every record counted once across the kill"
        );
        assert_eq!((run.counts.updated, run.counts.unchanged), (0, 0));
        assert_eq!(run.counts.details, 1500, "each device read in full once");
        let requests = || inv.sim.control().stats().requests;
        let before = requests();
        let again = inv.sync(&acme).await;
        let walk_requests = requests() - before;
        assert_eq!((again.counts.created, again.counts.removed), (0, 0));

        // A re-sync killed mid-walk keeps what it saw unchanged: resumed,
        // it counts each record once and misses none.
        inv.sim.control().set_faults(Faults {
            slow_ms: 150,
            ..Faults::default()
        });
        kill_sync_once(&place, || async {
            let run = store.unfinished_run(&acme.id).await.unwrap();
            run.is_some_and(|r| r.counts.unchanged >= 300)
        })
        .await;
        inv.sim.control().set_faults(Faults::default());
        let before = requests();
        let resumed = inv.sync(&acme).await;
        assert!(
            requests() - before < walk_requests,
            "the rest of the walk, and no get to confirm what it saw before"
        );
        assert_eq!(resumed.status, "succeeded");
        assert_eq!(
            (resumed.counts.unchanged, resumed.counts.removed),
            (again.counts.unchanged, 0),
            "every record counted once across the kill"
        );
        for table in ["devices", "users", "organizations"] {
            let missed: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE account_id = $1 AND missed_passes > 0"
            ))
            .bind(&acme.id)
            .fetch_one(store.pool())
            .await
            .unwrap();
            assert_eq!(missed, 0, "no {table} look missed");
        }
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_seen")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(left, 0, "a finished run's seen sets are gone");
    }
}

#[tokio::test]
async fn bad_credentials_are_refused_with_their_class_and_nothing_is_saved() {
    for place in places("badcreds").await {
        let inv = inventory(&place, 10, Faults::default()).await;
        let cases = [
            (input(&inv.srv.base_url, "wrong"), "Unauthorized"),
            (input(&inv.srv.base_url, "limited-token"), "Forbidden"),
            (input("http://127.0.0.1:9", TOKEN), "Connection failed"),
        ];
        for (inp, class) in cases {
            match inv.accounts.add("acme", "iru", inp).await {
                Err(AccountError::CheckFailed {
                    class: got, hint, ..
                }) => {
                    assert_eq!(got, class);
                    assert!(!hint.is_empty());
                }
                other => panic!("expected {class}, got {other:?}"),
            }
        }
        assert!(inv.accounts.store.accounts().await.unwrap().is_empty());
        let unknown = inv
            .accounts
            .add("x", "nope", input("http://x", TOKEN))
            .await;
        assert!(matches!(unknown, Err(AccountError::UnknownConnector(_))));
    }
}

#[tokio::test]
async fn secrets_never_reach_the_database_files_or_the_logs() {
    for place in places("secrets").await {
        let inv = inventory(&place, 50, Faults::default()).await;
        let add = mdmhub(&place)
            .args(["accounts", "add", "--connector", "iru", "--name", "acme"])
            .args(["--config", "subdomain=acme", "--config", "region=us"])
            .args(["--secret", "api_token=env:IRU_TOKEN", "--endpoint"])
            .arg(&inv.srv.base_url)
            .env("IRU_TOKEN", TOKEN)
            .env(
                "RUST_LOG",
                "debug,cranelift_codegen=info,wasmtime_internal_cranelift=info,wasmtime=info",
            )
            .output()
            .await
            .unwrap();
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let sync = mdmhub(&place)
            .args(["sync", "acme"])
            .env(
                "RUST_LOG",
                "debug,cranelift_codegen=info,wasmtime_internal_cranelift=info,wasmtime=info",
            )
            .output()
            .await
            .unwrap();
        assert!(
            sync.status.success(),
            "{}",
            String::from_utf8_lossy(&sync.stderr)
        );
        let list = mdmhub(&place)
            .args(["accounts", "list", "--json"])
            .output()
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&list.stdout).contains("acme"));
        let mut searched = vec![
            add.stdout,
            add.stderr,
            sync.stdout,
            sync.stderr,
            list.stdout,
        ];
        for entry in std::fs::read_dir(&place.dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                searched.push(std::fs::read(&path).unwrap());
            }
        }
        // PostgreSQL keeps its files elsewhere: search every stored text.
        let store = &inv.accounts.store;
        let row = store.account("acme").await.unwrap();
        searched.push(row.sealed_secrets.clone().into_bytes());
        searched.push(serde_json::to_vec(&row.config).unwrap());
        for bytes in &searched {
            assert!(
                !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
                "the token leaked ({})",
                place.url
            );
        }
        assert!(searched.len() >= 6);
    }
}

#[tokio::test]
async fn iru_and_intune_sync_concurrently_and_one_process_runs_each() {
    for place in places("concurrent").await {
        let slow = Faults {
            slow_ms: 3,
            ..Faults::default()
        };
        let inv = inventory(&place, 300, slow.clone()).await;
        let (_graph, graph_srv) = IntuneSim::spawn(
            IntuneOptions {
                devices: 200,
                faults: slow,
                ..IntuneOptions::default()
            },
            0,
        )
        .await
        .unwrap();
        let a = inv.add("a").await;
        let b = inv
            .accounts
            .add("b", "intune", intune_input(&graph_srv.base_url))
            .await
            .unwrap();

        let done = schedule::run_due(&inv.syncer(), 2).await.unwrap();
        assert_eq!(done.len(), 2);
        let runs: BTreeMap<String, RunRow> = done
            .into_iter()
            .map(|s| (s.account, s.result.unwrap()))
            .collect();
        let (ra, rb) = (&runs["a"], &runs["b"]);
        assert!(
            ra.started_at < rb.finished_at.clone().unwrap()
                && rb.started_at < ra.finished_at.clone().unwrap(),
            "the runs overlapped"
        );
        assert_eq!(inv.devices(&a, "active").await, 300);
        assert_eq!(inv.devices(&b, "active").await, 200);
        // Scheduled again only after the interval.
        assert!(
            schedule::run_due(&inv.syncer(), 2)
                .await
                .unwrap()
                .is_empty()
        );

        // Two processes (two lease holders) start the same sync at once:
        // exactly one runs it, the other is told it is running.
        let (s1, s2) = (inv.syncer(), inv.syncer());
        let (r1, r2) = tokio::join!(s1.sync(&a, "manual", None), s2.sync(&a, "manual", None));
        let ok = [&r1, &r2].iter().filter(|r| r.is_ok()).count();
        let busy = [&r1, &r2]
            .iter()
            .filter(|r| matches!(r, Err(SyncError::AlreadyRunning { .. })))
            .count();
        assert_eq!((ok, busy), (1, 1), "{r1:?} {r2:?}");
        let busy_msg = [r1, r2]
            .into_iter()
            .find_map(Result::err)
            .unwrap()
            .to_string();
        assert!(busy_msg.contains("already syncing"), "{busy_msg}");
    }
}

/// An account row of the default workspace with no usable connector
/// config: for store tests that write pages themselves.
async fn bare_account(store: &Store, name: &str) -> AccountRow {
    let account = AccountRow {
        id: format!("acc_{name}"),
        workspace_id: "default".into(),
        name: name.into(),
        connector: "iru".into(),
        config: BTreeMap::new(),
        sealed_secrets: "v1:none".into(),
        endpoints: vec![],
        rate_limit: None,
        sync_interval_secs: 3600,
        next_sync_at: mdmhub::store::now(),
        lease_holder: None,
        lease_expires_at: None,
        created_at: mdmhub::store::now(),
        updated_at: mdmhub::store::now(),
    };
    store.insert_account(&account).await.unwrap();
    account
}

/// Writes `upserts` as the one, complete page of `table` in a new run of
/// `account` (counted as created; an empty page changes nothing); returns
/// the run's id.
async fn complete_page(
    store: &Store,
    account: &AccountRow,
    table: mdmhub::store::records::Table,
    upserts: Vec<mdmhub::store::records::RowWrite>,
    missed_before: Vec<String>,
) -> String {
    use mdmhub::store::records::PageWrite;
    use mdmhub::store::runs::{RunCounts, RunRef};
    let run = store.start_run(&account.id, "manual", "h").await.unwrap();
    let counts = RunCounts {
        created: upserts.len() as i64,
        ..RunCounts::default()
    };
    store
        .write_page(&PageWrite {
            table,
            account_id: &account.id,
            run: RunRef {
                id: &run.id,
                holder: "h",
            },
            kind: table.name(),
            upserts,
            unchanged: vec![],
            revived: missed_before,
            errors: vec![],
            counts,
            next_cursor: None,
            complete: true,
            checkpoint: true,
        })
        .await
        .unwrap();
    run.id
}

#[tokio::test]
async fn devices_are_relinked_when_a_user_of_another_account_goes() {
    use mdmhub::store::records::{DeviceSummaryWrite, RowWrite, Table};
    use mdmhub::store::runs::RunRef;
    for place in places("relink").await {
        let store = Store::open(&place.url).await.unwrap();
        let laptops = bare_account(&store, "laptops").await;
        let people = bare_account(&store, "people").await;
        let row = |remote_id: &str, projections: Vec<Option<String>>, device: bool| RowWrite {
            remote_id: remote_id.into(),
            record: "{}".into(),
            remote_data: "{}".into(),
            content_hash: "h".into(),
            list_hash: "f".into(),
            projections,
            device: device.then(|| DeviceSummaryWrite {
                summary: "{}".into(),
                summary_hash: "s".into(),
                needs_details: false,
            }),
        };
        let mut mac = vec![None; Table::Devices.projections().len()];
        mac[5] = Some("dana@example.com".to_owned());
        let dana = vec![Some("dana@example.com".to_owned()), Some("Dana".to_owned())];
        let page =
            |account, table, upserts| complete_page(&store, account, table, upserts, Vec::new());
        let user_run = page(&people, Table::Users, vec![row("u1", dana, false)]).await;
        let run = page(&laptops, Table::Devices, vec![row("d1", mac, true)]).await;
        let link = |run: String| {
            let store = store.clone();
            let id = laptops.id.clone();
            async move {
                let r = RunRef {
                    id: &run,
                    holder: "h",
                };
                store.link_if_changed(&id, &r).await.unwrap()
            }
        };
        let user_of_d1 = || {
            let store = store.clone();
            let id = mdmhub::store::record_id("dev", &laptops.id, "d1");
            async move { store.device(&id).await.unwrap().unwrap()["user_id"].clone() }
        };
        assert!(link(run).await, "a run that created devices links");
        let dana_id = mdmhub::store::record_id("usr", &people.id, "u1");
        assert_eq!(
            user_of_d1().await,
            dana_id.as_str(),
            "another account's user"
        );
        let quiet = page(&laptops, Table::Devices, vec![]).await;
        assert!(!link(quiet).await, "nothing changed: no relinking");
        // The other account's user goes: the next quiet run relinks.
        let r = RunRef {
            id: &user_run,
            holder: "h",
        };
        store
            .mark_removed(Table::Users, &people.id, &r, &[dana_id])
            .await
            .unwrap();
        let quiet = page(&laptops, Table::Devices, vec![]).await;
        assert!(link(quiet).await, "a user of the workspace changed");
        assert!(user_of_d1().await.is_null(), "no active user has the email");
    }
}

#[tokio::test]
async fn without_a_confirming_get_removal_takes_two_complete_passes() {
    use mdmhub::store::records::{RowWrite, Table};
    use mdmhub::store::runs::RunRef;
    for place in places("twopass").await {
        let store = Store::open(&place.url).await.unwrap();
        let account = bare_account(&store, "twopass").await;
        let org = |id: &str| RowWrite {
            remote_id: id.into(),
            record: format!(r#"{{"remote_id":"{id}","name":"{id}"}}"#),
            remote_data: "{}".into(),
            content_hash: id.into(),
            list_hash: id.into(),
            projections: vec![Some(id.into())],
            device: None,
        };
        // One complete pass that lists `upserted` and, as they were stored,
        // `unchanged` (written as seen: each missed the pass before);
        // returns how many it removed.
        let pass = |upserted: Vec<&'static str>, unchanged: Vec<&'static str>| {
            let store = store.clone();
            let account = account.clone();
            async move {
                let upserts = upserted.iter().map(|id| org(id)).collect();
                let unchanged = unchanged.iter().map(|id| id.to_string()).collect();
                let run =
                    complete_page(&store, &account, Table::Organizations, upserts, unchanged).await;
                let r = RunRef {
                    id: &run,
                    holder: "h",
                };
                let missing: Vec<String> = store
                    .unmarked(Table::Organizations, &account.id, &run)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                let removed = store
                    .remove_missing(Table::Organizations, &account.id, &r, &missing)
                    .await
                    .unwrap();
                store
                    .finish_run(&r, "succeeded", None, "default", |_| Vec::new())
                    .await
                    .unwrap();
                removed
            }
        };
        // `last_seen_at` of each organization as lists show it.
        let shown = || async {
            let filter = Filter {
                account: Some(account.id.clone()),
                status: None,
                limit: 10,
                ..Filter::default()
            };
            let (orgs, _) = store.list(Listing::Organizations, &filter).await.unwrap();
            orgs.iter()
                .map(|o| {
                    let id = o["remote_id"].as_str().unwrap().to_owned();
                    (id, o["last_seen_at"].as_str().unwrap().to_owned())
                })
                .collect::<std::collections::HashMap<_, _>>()
        };
        assert_eq!(pass(vec!["a", "b"], vec![]).await, 0);
        let first = shown().await;
        assert_eq!(
            pass(vec!["a"], vec![]).await,
            0,
            "one missed pass is not enough"
        );
        let missed = shown().await;
        assert_eq!(missed["b"], first["b"], "missed: when it was last seen");
        assert!(missed["a"] > first["a"]);
        assert_eq!(
            pass(vec!["a"], vec!["b"]).await,
            0,
            "seen again, unchanged: the count resets"
        );
        assert!(shown().await["b"] > missed["b"]);
        assert_eq!(pass(vec!["a"], vec![]).await, 0);
        assert_eq!(
            pass(vec!["a"], vec![]).await,
            1,
            "absent from two passes running"
        );
        let active = store
            .count(Listing::Organizations, &account.id, Some("active"))
            .await
            .unwrap();
        assert_eq!(active, 1);
        // A process that lost its lease cannot write into the run.
        let run = store.start_run(&account.id, "manual", "h2").await.unwrap();
        let stale = RunRef {
            id: &run.id,
            holder: "someone-else",
        };
        assert!(
            store
                .remove_missing(Table::Organizations, &account.id, &stale, &[])
                .await
                .is_err()
        );
    }
}

/// The events stored for delivery, as (type, body) in id order.
async fn stored_events(store: &Store) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT type, body FROM webhook_events ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(t, b)| (t, serde_json::from_str(&b).unwrap()))
        .collect()
}

/// How many stored events have each type.
fn event_counts(events: &[(String, serde_json::Value)]) -> BTreeMap<&str, usize> {
    let mut out = BTreeMap::new();
    for (t, _) in events {
        *out.entry(t.as_str()).or_default() += 1;
    }
    out
}

/// Device events follow the inventory, from the outbox written with each
/// run: nothing while no one subscribes; then each change once, in its
/// final state (an Intune device that turns noncompliant is updated and
/// `device.compliance_changed` from true), a deletion as
/// `device.removed`, and nothing about devices on an unchanged re-sync.
#[tokio::test]
async fn device_events_follow_the_inventory() {
    use mdmhub::store::webhooks::SubscriptionRow;
    for place in places("events").await {
        let inv = inventory(&place, 1, Faults::default()).await;
        let (graph, graph_srv) = IntuneSim::spawn(
            IntuneOptions {
                devices: 60,
                ..IntuneOptions::default()
            },
            0,
        )
        .await
        .unwrap();
        let b = inv
            .accounts
            .add("b", "intune", intune_input(&graph_srv.base_url))
            .await
            .unwrap();
        let store = &inv.accounts.store;
        inv.syncer().sync(&b, "manual", None).await.unwrap();
        assert!(
            stored_events(store).await.is_empty(),
            "no subscriber, no event"
        );

        let at = mdmhub::store::now();
        store
            .insert_subscription(&SubscriptionRow {
                id: "whk_test".into(),
                workspace_id: "default".into(),
                url: "https://hooks.example.com/in".into(),
                events: mdmhub::webhooks::EVENT_TYPES.map(String::from).to_vec(),
                description: None,
                sealed_secret: "v1:unused".into(),
                created_at: at.clone(),
                updated_at: at,
                disabled_at: None,
                disabled_reason: None,
            })
            .await
            .unwrap();
        let (page, _) = store
            .list(
                Listing::Devices,
                &Filter {
                    limit: 100,
                    ..Filter::default()
                },
            )
            .await
            .unwrap();
        let compliant: Vec<_> = page
            .iter()
            .filter(|d| d["is_compliant"] == true && d["account"] == "b")
            .collect();
        let (flip, gone) = (&compliant[0], &compliant[1]);
        let flip_remote = flip["remote_id"].as_str().unwrap();
        assert!(graph.update_device(flip_remote, |m| m.encrypted = false));
        assert!(graph.delete_device(gone["remote_id"].as_str().unwrap()));
        let run = inv.syncer().sync(&b, "manual", None).await.unwrap();
        assert_eq!((run.counts.removed, run.counts.updated), (1, 1), "{run:?}");

        let events = stored_events(store).await;
        assert_eq!(
            event_counts(&events),
            BTreeMap::from([
                ("device.compliance_changed", 1),
                ("device.removed", 1),
                ("device.updated", 1),
                ("sync.completed", 1),
            ]),
            "{}",
            place.url
        );
        let changed = &events
            .iter()
            .find(|(t, _)| t == "device.compliance_changed")
            .unwrap()
            .1;
        assert_eq!(changed["data"]["device"]["id"], flip["id"]);
        assert_eq!(changed["data"]["device"]["is_compliant"], false);
        assert_eq!(changed["data"]["previous"]["is_compliant"], true);
        let removed = &events
            .iter()
            .find(|(t, _)| t == "device.removed")
            .unwrap()
            .1;
        assert_eq!(removed["data"]["device"]["id"], gone["id"]);
        assert_eq!(removed["data"]["device"]["status"], "removed");
        let completed = &events
            .iter()
            .find(|(t, _)| t == "sync.completed")
            .unwrap()
            .1;
        assert_eq!(completed["data"]["run"]["id"], run.id.as_str());
        assert_eq!(completed["data"]["run"]["counts"]["removed"], 1);

        // Unchanged: the run is announced, no device is.
        inv.syncer().sync(&b, "manual", None).await.unwrap();
        let again = stored_events(store).await;
        assert_eq!(event_counts(&again)["sync.completed"], 2);
        assert_eq!(again.len(), events.len() + 1);
    }
}
