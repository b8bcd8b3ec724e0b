//! Cursor walks over a large inventory: 10,000 devices of a first sync,
//! walked with page sizes from 100 to 1,000 while that sync rewrites their
//! rows with details, while a second account's first sync inserts rows
//! among them, and once quiet (SQLite, and PostgreSQL when configured).
//! The detail reads of 11,000 devices would take longer than every walk
//! together, so the test does not wait for them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mdmhub::accounts::AccountInput;
use mdmhub::api::ServeOptions;
use mdmhub::store::accounts::AccountRow;
use mdmhub::store::runs::RunRow;
use mdmhub::sync::{Progress, ProgressFn, SyncError, SyncOptions, Syncer};
use mdmhub_tests::sim::control::BudgetSpec;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{World, databases, input, iru_accounts, sim, start_server};

/// Devices synced before the walks.
const FLEET: usize = 10_000;
/// Devices of the second account, whose first sync runs during the walks.
const SECOND: usize = 1_000;
/// Page sizes, cycled page by page: a cursor must not depend on the size
/// of the page that made it.
const LIMITS: [usize; 5] = [100, 1000, 337, 250, 999];

/// Iru's 10,000/h bucket lifted for the account, as an operator would.
fn unlimited(base_url: &str) -> AccountInput {
    AccountInput {
        rate_limit: Some("1000000/s".into()),
        ..input(base_url)
    }
}

/// Workspace `default` with `acme` (FLEET devices) and `second` (SECOND
/// devices), both saved but never synced, a serving API, and a syncer.
async fn big_world(url: &str) -> (World, Syncer) {
    // Without Iru's hourly budget: 10,000 devices need ~30,000 requests
    // for their first sync.
    let (sim_a, srv_a) = sim(FLEET, 11, BudgetSpec::unlimited()).await;
    let (_sim_b, srv_b) = sim(SECOND, 12, BudgetSpec::unlimited()).await;
    let accounts = iru_accounts(url).await;
    let store = accounts.store.clone();
    let acme = accounts
        .add("acme", "iru", unlimited(&srv_a.base_url))
        .await
        .unwrap();
    let second = accounts
        .add("second", "iru", unlimited(&srv_b.base_url))
        .await
        .unwrap();
    let (_, key_a) = store.create_key("default", "walker").await.unwrap();
    let (_, key_b) = store.create_key("other", "walker").await.unwrap();
    let syncer = Syncer::new(
        accounts.clone(),
        SyncOptions {
            lease_ttl: Duration::from_secs(10),
            ..SyncOptions::default()
        },
    );
    let (base, stop, server) = start_server(syncer.clone(), ServeOptions::default()).await;
    let w = World {
        accounts,
        sim_a,
        _sims: (srv_a, srv_b),
        acme,
        beta: second,
        key_a,
        key_b,
        base,
        stop: Some(stop),
        server,
        calls: Arc::default(),
    };
    (w, syncer)
}

/// Starts syncing `account` in the background; the receiver turns true
/// once the sync's walks are done and it reads details.
fn start_sync(
    syncer: &Syncer,
    account: &AccountRow,
) -> (JoinHandle<Result<RunRow, SyncError>>, watch::Receiver<bool>) {
    let (walked, rx) = watch::channel(false);
    let progress: ProgressFn = Arc::new(move |p: &Progress| {
        if matches!(p.phase, "details" | "removals") {
            walked.send_replace(true);
        }
    });
    let (syncer, account) = (syncer.clone(), account.clone());
    let task = tokio::spawn(async move { syncer.sync(&account, "manual", Some(progress)).await });
    (task, rx)
}

/// Walks `/v1/devices?status=all` following `next_cursor`, cycling through
/// `LIMITS`; returns (id, account name) in walk order.
async fn walk_all(w: &World) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for page_no in 0.. {
        let limit = LIMITS[page_no % LIMITS.len()];
        let mut path = format!("/v1/devices?status=all&limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = w.get_a(&path).await;
        let result = page["result"].as_array().unwrap();
        assert_eq!(page["result_count"], result.len());
        assert!(result.len() <= limit, "{path}: {} > {limit}", result.len());
        ids.extend(result.iter().map(|r| {
            let field = |name: &str| r[name].as_str().unwrap().to_owned();
            (field("id"), field("account"))
        }));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids
}

/// Asserts no id appears twice in `ids`; returns them as a set.
fn once_each(ids: &[String], what: &str) -> HashSet<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in ids {
        *seen.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: ids seen more than once: {twice:?}"
    );
    ids.iter().cloned().collect()
}

#[tokio::test]
async fn api_cursor_walk_over_10k_devices_returns_each_once_also_during_a_sync() {
    for url in databases("walk").await {
        let started = Instant::now();
        let (w, syncer) = big_world(&url).await;

        // The first sync of `acme` lists its 10,000 devices, then reads
        // each one's details and apps, rewriting its row: walk meanwhile.
        let (acme, mut acme_walked) = start_sync(&syncer, &w.acme);
        if acme_walked.wait_for(|done| *done).await.is_err() {
            panic!("{url}: the sync ended before its details: {:?}", acme.await);
        }
        eprintln!("{url}: {FLEET} devices listed in {:?}", started.elapsed());
        let t = Instant::now();
        let ids: Vec<String> = walk_all(&w).await.into_iter().map(|(id, _)| id).collect();
        eprintln!(
            "{url}: a walk of {} devices took {:?}",
            ids.len(),
            t.elapsed()
        );
        let before = once_each(&ids, "walk during detail reads");
        assert_eq!(ids.len(), FLEET, "{url}");
        assert!(
            ids.windows(2).all(|p| p[0] < p[1]),
            "pages come in id order"
        );
        assert!(!acme.is_finished(), "the detail reads outlast a walk");

        // The first sync of `second` inserts rows among them (ids are
        // hashes, so anywhere in the order): every device that existed
        // before appears exactly once, the new ones at most once.
        let (second, second_walked) = start_sync(&syncer, &w.beta);
        let (mut walks, mut partial) = (0, 0);
        while walks == 0 || !(*second_walked.borrow() || second.is_finished()) {
            let ids: Vec<String> = walk_all(&w).await.into_iter().map(|(id, _)| id).collect();
            let seen = once_each(&ids, "walk during inserts");
            let missing: Vec<_> = before.difference(&seen).collect();
            assert!(
                missing.is_empty(),
                "{url}: a walk during the inserts missed {} devices that existed before, e.g. {:?}",
                missing.len(),
                missing.first()
            );
            let new = ids.len() - FLEET;
            assert!(new <= SECOND, "{url}: {new} new devices");
            if new < SECOND {
                partial += 1;
            }
            walks += 1;
        }
        eprintln!("{url}: {walks} walks during the inserts, {partial} saw only some of them");
        assert!(
            partial >= 1,
            "{url}: no walk overlapped the second account's inserts"
        );

        // Every device is listed now (the syncs only read details): each
        // once, the old ones and the new ones.
        let all = walk_all(&w).await;
        let ids: Vec<String> = all.iter().map(|(id, _)| id.clone()).collect();
        let after = once_each(&ids, "walk after the inserts");
        assert_eq!(ids.len(), FLEET + SECOND, "{url}");
        assert!(after.is_superset(&before));
        let of_acme = all.iter().filter(|(_, a)| a == "acme").count();
        assert_eq!(of_acme, FLEET, "{url}");

        // A sync still reading details stops here (its run would resume).
        for sync in [acme, second] {
            if sync.is_finished() {
                let run = sync.await.unwrap().unwrap();
                assert_eq!(run.status, "succeeded", "{url}: {:?}", run.error);
            } else {
                sync.abort();
                let _ = sync.await;
            }
        }

        w.shut_down().await;
        eprintln!("{url}: the whole test took {:?}", started.elapsed());
    }
}
