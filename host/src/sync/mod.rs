//! The sync engine: one run walks every resource of an account, stores each
//! page in one transaction with its checkpoint, reads device details that
//! are new, changed or stale, and only after a complete pass confirms and
//! marks removals. A run holds the account's lease in the database, so one
//! process runs it; a run whose process died is resumed from its checkpoints.

pub mod background;
pub mod record;
pub mod schedule;
mod seen;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};

use crate::account::AccountSession;
use crate::accounts::{AccountError, Accounts};
use crate::contract::{
    ConnectorError, Entity, ListOptions, Page, ResourceKind, ResourceScope, ServerErrorInfo,
};
use crate::holder;
use crate::pager::{Pager, WalkError, retry_rate_limited};
use crate::runtime::{CallError, Connector, Warm};
use crate::store::accounts::AccountRow;
use crate::store::records::{
    AppWrite, DetailTodo, DetailWrite, DeviceSummaryWrite, PageWrite, RowWrite, Table,
    removals_step,
};
use crate::store::runs::{Lease, RunCounts, RunRef, RunRow};
use crate::store::{Store, StoreError, now, stamp};
use crate::webhooks;
use crate::webhooks::events::run_finished;
use record::{
    Incoming, apps_hash, content_hash, fingerprint, indexed_unchanged, merge, parse_object,
    projections, summary_hash,
};
use seen::Seen;

/// Tunables of a sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Details older than this are read again.
    pub details_max_age: Duration,
    /// At most this many absent records are confirmed with `get` per run
    /// and kind; the rest wait for a second complete pass.
    pub confirm_limit: i64,
    /// Detail reads in flight at once (at most the account's concurrency).
    pub detail_concurrency: usize,
    /// How long a lease lasts without renewal.
    pub lease_ttl: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            details_max_age: Duration::from_secs(7 * 24 * 3600),
            confirm_limit: 500,
            detail_concurrency: 8,
            lease_ttl: Duration::from_secs(60),
        }
    }
}

/// Why a sync did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Another process (or task) is syncing the account.
    #[error(
        "account `{account}` is already syncing ({holder}, lease until {until}); wait for it to finish"
    )]
    AlreadyRunning {
        /// Account name.
        account: String,
        /// The lease holder.
        holder: String,
        /// Lease end.
        until: String,
    },
    /// The account could not be opened.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Walking a resource failed; nothing was removed.
    #[error("listing {kind} failed: {source}")]
    Walk {
        /// The resource.
        kind: &'static str,
        /// Why.
        source: WalkError,
    },
    /// A call failed in a way that stops the run (credentials, network).
    #[error("{0}")]
    Fatal(String),
    /// A scheduled run found the account no longer due (another process
    /// just synced it).
    #[error("account `{0}` is not due; another process synced it")]
    NotDue(String),
    /// Another holder took the lease (this process stalled past its TTL).
    #[error("lost the sync lease of account `{0}`; another process took over")]
    LeaseLost(String),
}

/// A progress report during a run.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Account name.
    pub account: String,
    /// `organizations`, `users`, `devices`, `details`, `removals`.
    pub phase: &'static str,
    /// Counts so far in this process.
    pub counts: RunCounts,
}

/// Receives progress reports.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// Runs syncs.
#[derive(Clone)]
pub struct Syncer {
    /// Accounts and their connectors.
    pub accounts: Accounts,
    /// Tunables.
    pub options: SyncOptions,
    holder: String,
    /// Where syncs run, if not on the caller's runtime.
    background: Option<background::Background>,
    /// The store syncs write through (see [`Syncer::in_background`]).
    store: Store,
}

impl Syncer {
    /// A syncer whose leases name this process.
    pub fn new(accounts: Accounts, options: SyncOptions) -> Self {
        Self {
            options,
            holder: holder::new_id(),
            background: None,
            store: accounts.store.clone(),
            accounts,
        }
    }

    /// This syncer, running every sync on `background` (a server's
    /// lower-priority runtime) whoever asks for it.
    ///
    /// Its reads and writes go through connections of their own, opened
    /// by the syncs, so that SQLite's work for them runs at their priority too.
    pub fn in_background(self, background: background::Background) -> Self {
        let store = match self.accounts.store.with_own_pool() {
            Ok(store) => store,
            Err(e) => {
                tracing::warn!(error = %e, "syncs write through the server's connections");
                self.store
            }
        };
        Self {
            background: Some(background),
            store,
            ..self
        }
    }

    fn store(&self) -> &Store {
        &self.store
    }

    /// Syncs `account` now (resuming its interrupted run, if any) and
    /// returns the finished run. A `schedule` trigger runs only if the
    /// account is still due once its lease is held (another replica may
    /// have just synced it).
    pub async fn sync(
        &self,
        account: &AccountRow,
        trigger: &str,
        progress: Option<ProgressFn>,
    ) -> Result<RunRow, SyncError> {
        let Some(background) = &self.background else {
            return self.sync_here(account, trigger, progress).await;
        };
        let here = Self {
            background: None,
            ..self.clone()
        };
        let (account, trigger) = (account.clone(), trigger.to_owned());
        let task = background
            .handle()
            .spawn(async move { here.sync_here(&account, &trigger, progress).await });
        join(task)
            .await
            .unwrap_or_else(|e| Err(SyncError::Fatal(format!("the sync was interrupted: {e}"))))
    }

    /// [`Syncer::sync`] on the caller's runtime.
    async fn sync_here(
        &self,
        account: &AccountRow,
        trigger: &str,
        progress: Option<ProgressFn>,
    ) -> Result<RunRow, SyncError> {
        // One holder per sync, so two tasks of one process exclude each other too.
        let holder = format!("{}:{:08x}", self.holder, rand::random::<u32>());
        self.acquire(account, &holder).await?;
        let lost = Arc::new(AtomicBool::new(false));
        let _heartbeat =
            AbortOnDrop(self.heartbeat(account.id.clone(), holder.clone(), lost.clone()));
        let result = match self.still_due(account, trigger).await {
            Ok(true) => self.run(account, trigger, &holder, progress, &lost).await,
            Ok(false) => Err(SyncError::NotDue(account.name.clone())),
            Err(e) => Err(e),
        };
        // The account's lists are then read into memory through the API's
        // store (its connections), not the sync's; a run that did not
        // happen changed nothing to read again.
        let ran = !matches!(result, Err(SyncError::NotDue(_)));
        if let Err(e) = self.store().release_lease(&account.id, &holder).await {
            tracing::warn!(account = %account.name, error = %e, "releasing the sync lease failed; it expires by itself");
        } else if ran && let Err(e) = self.accounts.store.warm_lists(Some(&account.id)).await {
            tracing::debug!(account = %account.name, error = %e, "reading the account's lists into memory");
        }
        crate::metrics::sync_finished(&result);
        result
    }

    async fn still_due(&self, account: &AccountRow, trigger: &str) -> Result<bool, SyncError> {
        if trigger != "schedule" {
            return Ok(true);
        }
        let fresh = self.store().account(&account.id).await?;
        Ok(is_due(&fresh.next_sync_at))
    }

    async fn acquire(&self, account: &AccountRow, new_holder: &str) -> Result<(), SyncError> {
        let ttl = self.options.lease_ttl;
        match self.store().try_lease(&account.id, new_holder, ttl).await? {
            Lease::Acquired => Ok(()),
            Lease::Held { holder, until } => {
                if holder::is_dead(&holder)
                    && self
                        .store()
                        .take_over_lease(&account.id, &holder, new_holder, ttl)
                        .await?
                {
                    tracing::info!(account = %account.name, previous = %holder, "took over the lease of a process that is gone");
                    return Ok(());
                }
                Err(SyncError::AlreadyRunning {
                    account: account.name.clone(),
                    holder,
                    until,
                })
            }
        }
    }

    fn heartbeat(
        &self,
        account_id: String,
        holder: String,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store().clone();
        let ttl = self.options.lease_ttl;
        tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew_lease(&account_id, &holder, ttl).await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => break,
                    // A database hiccup: try again next beat, within the TTL.
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the sync lease failed");
                        if renewed.elapsed() >= ttl {
                            break;
                        }
                    }
                }
            }
            lost.store(true, Ordering::SeqCst);
        })
    }

    async fn run(
        &self,
        account: &AccountRow,
        trigger: &str,
        holder: &str,
        progress: Option<ProgressFn>,
        lost: &Arc<AtomicBool>,
    ) -> Result<RunRow, SyncError> {
        let store = self.store();
        // Before any run exists: a bad key or a missing connector fails
        // here without leaving a run marked running.
        let (connector, session) = self.accounts.session(account)?;
        let run = match store.unfinished_run(&account.id).await? {
            Some(run) => {
                tracing::info!(account = %account.name, run = %run.id, "resuming an interrupted sync run");
                store.adopt_run(&run.id, holder).await?;
                run
            }
            None => store.start_run(&account.id, trigger, holder).await?,
        };
        store.close_stale_runs(&account.id, &run.id).await?;
        let run_ref = RunRef {
            id: &run.id,
            holder,
        };
        let ctx = RunCtx {
            syncer: self,
            account,
            run: run_ref,
            fetch: Fetcher {
                connector: connector.clone(),
                session: session.clone(),
                run_id: run.id.clone(),
                warm: Arc::new(Warm::new(
                    session.clone(),
                    self.options.detail_concurrency.max(1),
                )),
            },
            connector,
            waits_at_start: session.rate_limit_waits().0,
            session,
            progress,
            lost: lost.clone(),
            report: std::sync::Mutex::new(Progress {
                account: account.name.clone(),
                ..Progress::default()
            }),
            seen: std::sync::Mutex::new(Seen::new(store.seen_in_run(&run.id).await?)),
        };
        let outcome = ctx.execute().await;
        let waits = ctx.session.rate_limit_waits().0 - ctx.waits_at_start;
        let counted = store
            .add_counts(
                &run_ref,
                RunCounts {
                    rate_limit_waits: waits as i64,
                    ..RunCounts::default()
                },
            )
            .await;
        let outcome = outcome.and(counted.map_err(SyncError::from));
        // What the run changed is announced even when it failed halfway:
        // the stored pages are real changes. Not when the lease was lost:
        // the new holder announces.
        let lost_lease = matches!(
            outcome,
            Err(SyncError::LeaseLost(_) | SyncError::Store(StoreError::LeaseLost(_)))
        );
        if !lost_lease {
            webhooks::events::announce_devices(store, &account.workspace_id, &account.id).await?;
        }
        let workspace = account.workspace_id.as_str();
        let finished = match outcome {
            Ok(()) => {
                store
                    .finish_run(&run_ref, "succeeded", None, workspace, run_finished)
                    .await?;
                let next = next_sync_at(account.sync_interval_secs);
                store.set_next_sync(&account.id, &next).await?;
                Ok(store.run(&run.id).await?)
            }
            Err(SyncError::LeaseLost(_) | SyncError::Store(StoreError::LeaseLost(_))) => {
                Err(SyncError::LeaseLost(account.name.clone()))
            }
            Err(e) => {
                store
                    .finish_run(
                        &run_ref,
                        "failed",
                        Some(&e.to_string()),
                        workspace,
                        run_finished,
                    )
                    .await?;
                // Retry a failed scheduled run sooner than a full interval.
                let retry = stamp(time::OffsetDateTime::now_utc() + time::Duration::minutes(15));
                store.set_next_sync(&account.id, &retry).await?;
                Err(e)
            }
        };
        if let Err(e) = store.settle_wal().await {
            tracing::warn!(account = %account.name, error = %e, "could not checkpoint the WAL after the sync");
        }
        finished
    }
}

/// Aborts a background task when dropped (a cancelled or panicked sync
/// must not keep renewing its lease or calling the vendor).
struct AbortOnDrop<T = ()>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` as a task of its own and waits for it: concurrent connector
/// calls then use every worker thread, not just the one of the task that
/// waits for them. A panic in it resumes here.
async fn own_task<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    join(tokio::spawn(work))
        .await
        .unwrap_or_else(|e| panic!("a sync task was cancelled: {e}"))
}

/// Waits for `task`, aborting it if the waiter is dropped; a panic in it
/// resumes here, a cancellation (its runtime shut down) is the error.
async fn join<T>(task: tokio::task::JoinHandle<T>) -> Result<T, tokio::task::JoinError> {
    let mut task = AbortOnDrop(task);
    match (&mut task.0).await {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        done => done,
    }
}

/// One run's state.
struct RunCtx<'a> {
    syncer: &'a Syncer,
    account: &'a AccountRow,
    run: RunRef<'a>,
    connector: Arc<Connector>,
    session: Arc<AccountSession>,
    fetch: Fetcher,
    waits_at_start: u64,
    progress: Option<ProgressFn>,
    lost: Arc<AtomicBool>,
    report: std::sync::Mutex<Progress>,
    /// The remote ids this run saw unchanged, by table: its stored seen
    /// sets (read when the run starts or resumes) and those it added since.
    seen: std::sync::Mutex<Seen>,
}

/// A listed page, split for storing.
struct Listed {
    /// Pages of the walk this holds (several when stored together).
    pages: i64,
    records: Vec<ListedRecord>,
    errors: Vec<(Option<String>, String)>,
    next: Option<String>,
    complete: bool,
}

/// A listed record with its id and fingerprint: only a record whose
/// fingerprint changed is normalized for storing.
struct ListedRecord {
    remote_id: String,
    fingerprint: String,
    entity: Entity,
}

impl Listed {
    fn new(page: Page) -> Self {
        Self {
            pages: 1,
            complete: page.next_cursor.is_none(),
            errors: page
                .errors
                .into_iter()
                .map(|e| (e.remote_id, e.message))
                .collect(),
            next: page.next_cursor,
            records: page
                .records
                .into_iter()
                .map(|entity| {
                    let (remote_id, fingerprint) = fingerprint(&entity);
                    ListedRecord {
                        remote_id,
                        fingerprint,
                        entity,
                    }
                })
                .collect(),
        }
    }

    /// Appends the next page of the walk: its records after these, its
    /// position as the walk's.
    fn absorb(&mut self, next: Listed) {
        self.pages += next.pages;
        self.records.extend(next.records);
        self.errors.extend(next.errors);
        self.next = next.next;
        self.complete = next.complete;
    }
}

/// Pages fetched ahead of the one being stored.
const PAGES_AHEAD: usize = 4;
/// Listed records stored in one transaction at most (whole pages).
const WALK_BATCH_RECORDS: usize = 1_200;
/// Detail reads stored per transaction.
const DETAIL_BATCH: usize = 256;
/// Batches of detail reads waiting for the writer: reads go on while one
/// is written.
const DETAIL_BATCHES_QUEUED: usize = 2;

/// Detail reads ready to store.
#[derive(Default)]
struct DetailBatch {
    writes: Vec<DetailWrite>,
    gone: Vec<String>,
    errors: Vec<(Option<String>, String)>,
}

/// Top-level resources in a first sync's walk order (a re-sync walks them
/// at once); devices link to users and organizations when the run ends.
const WALK_ORDER: [(ResourceKind, Table); 3] = [
    (ResourceKind::Organizations, Table::Organizations),
    (ResourceKind::Users, Table::Users),
    (ResourceKind::Devices, Table::Devices),
];

impl RunCtx<'_> {
    fn store(&self) -> &Store {
        self.syncer.store()
    }

    fn supports(&self, kind: ResourceKind, scope: ResourceScope) -> Option<bool> {
        self.connector
            .info
            .resources
            .iter()
            .find(|r| r.kind == kind && r.scope == scope)
            .map(|r| r.supports_get)
    }

    fn report(&self, phase: &'static str, add: RunCounts) {
        let mut p = self.report.lock().expect("progress lock");
        p.phase = phase;
        p.counts += add;
        p.counts.rate_limit_waits =
            (self.session.rate_limit_waits().0 - self.waits_at_start) as i64;
        if let Some(f) = &self.progress {
            f(&p);
        }
    }

    fn check_lease(&self) -> Result<(), SyncError> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(SyncError::LeaseLost(self.account.name.clone()));
        }
        Ok(())
    }

    async fn execute(&self) -> Result<(), SyncError> {
        let walks: Vec<(ResourceKind, Table)> = WALK_ORDER
            .into_iter()
            .filter(|(kind, _)| self.supports(*kind, ResourceScope::TopLevel).is_some())
            .collect();
        if self.store().synced_before(&self.account.id).await? {
            // A re-sync writes little (unchanged records are not written),
            // so one walk's fetching fills the other's waits. A first sync
            // writes every record: its walks are bound by the one writer,
            // and taking turns on it would only slow both.
            self.check_lease()?;
            self.store().set_phase(self.run.id, "walks").await?;
            futures::future::try_join_all(walks.iter().map(|(k, t)| self.walk(*k, *t))).await?;
        } else {
            for (kind, table) in &walks {
                self.check_lease()?;
                self.store().set_phase(self.run.id, kind.name()).await?;
                self.walk(*kind, *table).await?;
            }
        }
        let devices_get =
            self.supports(ResourceKind::Devices, ResourceScope::TopLevel) == Some(true);
        let apps = self
            .supports(ResourceKind::Apps, ResourceScope::PerDevice)
            .is_some();
        if devices_get || apps {
            self.store().set_phase(self.run.id, "details").await?;
            self.details(devices_get, apps).await?;
        }
        // Every walk completed: removals can be trusted.
        self.check_lease()?;
        self.store().set_phase(self.run.id, "removals").await?;
        for (kind, table) in walks {
            self.check_lease()?;
            self.removals(kind, table).await?;
        }
        self.check_lease()?;
        self.store()
            .link_if_changed(&self.account.id, &self.run)
            .await?;
        Ok(())
    }

    /// Walks `kind` from its checkpoint to the end, storing every page.
    async fn walk(&self, kind: ResourceKind, table: Table) -> Result<(), SyncError> {
        let start = self.store().checkpoint(self.run.id, kind.name()).await?;
        let cursor = match start {
            Some((_, true)) => return Ok(()),
            Some((cursor, false)) => cursor,
            None => None,
        };
        let options = ListOptions {
            page_size: None,
            parent_id: None,
        };
        let mut pager = Pager::new(
            self.connector.clone(),
            self.session.clone(),
            kind,
            options,
            cursor,
        )
        .reusing(self.fetch.warm.clone());
        let walk_err = |source| SyncError::Walk {
            kind: kind.name(),
            source,
        };
        // Connector calls run in their own task: a page is compared and
        // stored (in order) while the next ones are fetched.
        let (tx, mut rx) = tokio::sync::mpsc::channel(PAGES_AHEAD);
        let started = Instant::now();
        let _fetching = AbortOnDrop(tokio::spawn(async move {
            let mut fetching = Duration::ZERO;
            loop {
                let t = Instant::now();
                let Some(page) = pager.next().await.transpose() else {
                    break;
                };
                let listed = page.map(Listed::new);
                fetching += t.elapsed();
                let failed = listed.is_err();
                if tx.send(listed).await.is_err() || failed {
                    break;
                }
            }
            tracing::debug!(
                kind = kind.name(),
                fetching_ms = fetching.as_millis() as u64,
                "walk fetched"
            );
        }));
        let (mut pages, mut storing) = (0, Duration::ZERO);
        while let Some(listed) = rx.recv().await {
            let mut listed = listed.map_err(walk_err)?;
            // Pages already fetched share this one's transaction: random
            // ids spread a page's index entries over as many index pages
            // as it has records, so a commit of several pages writes each
            // index page once for all of them.
            let mut failed = None;
            while listed.records.len() < WALK_BATCH_RECORDS && !listed.complete {
                match rx.try_recv() {
                    Ok(Ok(more)) => listed.absorb(more),
                    Ok(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.check_lease()?;
            let t = Instant::now();
            pages += listed.pages;
            self.store_listed(table, kind.name(), listed).await?;
            storing += t.elapsed();
            if let Some(e) = failed {
                return Err(walk_err(e));
            }
        }
        // Which side of the walk bounds it: fetching (vendor, connector)
        // or storing.
        tracing::debug!(
            kind = kind.name(),
            pages,
            walk_ms = started.elapsed().as_millis() as u64,
            storing_ms = storing.as_millis() as u64,
            "walk complete"
        );
        Ok(())
    }

    /// Stores a listed page and reports its counts.
    async fn store_listed(
        &self,
        table: Table,
        kind: &'static str,
        l: Listed,
    ) -> Result<(), SyncError> {
        let counts = self.store_page(table, kind, l).await?;
        self.report(kind, counts);
        Ok(())
    }

    /// Compares listed pages with the store and writes them, with the
    /// walk's position after them, in one transaction.
    async fn store_page(
        &self,
        table: Table,
        kind: &str,
        l: Listed,
    ) -> Result<RunCounts, SyncError> {
        let Listed {
            pages,
            records: listed,
            errors,
            next,
            complete,
        } = l;
        // The last occurrence of a remote id in a page wins.
        let mut by_id: HashMap<String, ListedRecord> = HashMap::with_capacity(listed.len());
        let mut order = Vec::with_capacity(listed.len());
        for rec in listed {
            if !by_id.contains_key(&rec.remote_id) {
                order.push(rec.remote_id.clone());
            }
            by_id.insert(rec.remote_id.clone(), rec);
        }
        let ids: Vec<&str> = order.iter().map(String::as_str).collect();
        let existing = self.store().existing(table, &self.account.id, &ids).await?;
        let details_possible = table == Table::Devices
            && (self.supports(ResourceKind::Devices, ResourceScope::TopLevel) == Some(true)
                || self
                    .supports(ResourceKind::Apps, ResourceScope::PerDevice)
                    .is_some());
        let mut counts = RunCounts {
            pages,
            errors: errors.len() as i64,
            ..RunCounts::default()
        };
        let mut upserts = Vec::new();
        let mut unchanged = Vec::new();
        let mut revived = Vec::new();
        // First pass: a record listed exactly as last time is unchanged.
        let mut changed = Vec::new();
        for remote_id in order {
            let rec = by_id.remove(&remote_id).expect("collected above");
            let old = existing.get(&remote_id);
            let same = old.is_some_and(|o| {
                o.status == "active" && o.list_hash.as_deref() == Some(rec.fingerprint.as_str())
            });
            // Seen earlier in this run (offset paging can show a record on
            // two pages): stored again if changed, but counted once.
            let again = old.is_some_and(|o| o.last_seen_run.as_deref() == Some(self.run.id))
                || self.was_seen(table, &remote_id);
            if same {
                counts.unchanged += !again as i64;
                match old.is_some_and(|o| o.missed) {
                    true => revived.push(remote_id),
                    false => unchanged.push(remote_id),
                }
            } else {
                let incoming = Incoming::new(rec.entity);
                let summary = serde_json::to_string(&incoming.fields).expect("JSON serializes");
                changed.push((remote_id, incoming, summary, rec.fingerprint, again));
            }
        }
        // Second pass: merge changed devices with their stored details.
        let with_detail: Vec<&str> = changed
            .iter()
            .filter(|c| existing.contains_key(&c.0))
            .map(|c| c.0.as_str())
            .collect();
        let details = if table == Table::Devices {
            self.store()
                .details_of(&self.account.id, &with_detail)
                .await?
        } else {
            HashMap::new()
        };
        for (remote_id, rec, summary, list_hash, again) in changed {
            let old = existing.get(&remote_id);
            let merged = details
                .get(&remote_id)
                .and_then(|d| parse_object(d))
                .map(|detail| merge(&rec.fields, Some(&detail)));
            // Without a stored detail the record is the summary as listed.
            let record = match &merged {
                Some(m) => serde_json::to_string(m).expect("JSON serializes"),
                None => summary.clone(),
            };
            let hash = content_hash(&record, &rec.remote_data);
            match old {
                // Listed differently, stored the same (a check-in time
                // the detail already had, or an older fingerprint).
                Some(o) if o.status == "active" && o.content_hash == hash => {
                    counts.unchanged += !again as i64
                }
                Some(_) => counts.updated += !again as i64,
                None => counts.created += 1,
            }
            let device = (table == Table::Devices).then(|| {
                let s_hash = summary_hash(&rec.fields);
                let needs = details_possible
                    && match old {
                        None => true,
                        Some(o) => {
                            o.needs_details
                                || o.status != "active"
                                || o.summary_hash.as_deref() != Some(s_hash.as_str())
                        }
                    };
                DeviceSummaryWrite {
                    summary,
                    summary_hash: s_hash,
                    needs_details: needs,
                }
            });
            upserts.push(RowWrite {
                projections: projections(table, merged.as_ref().unwrap_or(&rec.fields)),
                remote_id,
                record,
                remote_data: rec.remote_data,
                content_hash: hash,
                list_hash,
                device,
            });
        }
        // A record the connector could not map is still there: seeing it
        // keeps it from looking removed, and ends a pass it missed.
        revived.extend(errors.iter().filter_map(|(id, _)| id.clone()));
        let page = PageWrite {
            table,
            account_id: &self.account.id,
            run: self.run,
            kind,
            upserts,
            unchanged,
            revived,
            errors,
            counts,
            next_cursor: next,
            complete,
            checkpoint: true,
        };
        self.store().write_page(&page).await?;
        // Written records say so in their rows (`last_seen_run`); the seen
        // set holds the others only, which keeps its count exact.
        let written = page.upserts.iter().map(|u| u.remote_id.as_str());
        let mut seen = self.seen.lock().expect("seen set lock");
        seen.forget(
            table,
            written.chain(page.revived.iter().map(String::as_str)),
        );
        seen.add(
            table,
            page.unchanged
                .iter()
                .filter(|id| {
                    existing.get(*id).and_then(|o| o.last_seen_run.as_deref()) != Some(self.run.id)
                })
                .map(String::as_str),
        );
        Ok(counts)
    }

    /// Whether this run saw `remote_id` in `table` before.
    fn was_seen(&self, table: Table, remote_id: &str) -> bool {
        let seen = self.seen.lock().expect("seen set lock");
        seen.contains(table, remote_id)
    }

    /// Reads details (and apps) of devices that are new, changed or stale:
    /// reads run in their own task without pause at the set concurrency,
    /// while this one stores what they read in batches.
    async fn details(&self, use_get: bool, apps: bool) -> Result<(), SyncError> {
        let stale_before =
            stamp(time::OffsetDateTime::now_utc() - self.syncer.options.details_max_age);
        let todos = due_for_details(self.store().clone(), self.account.id.clone(), stale_before);
        let concurrency = self.syncer.options.detail_concurrency.max(1);
        let fetch = self.fetch.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel(DETAIL_BATCHES_QUEUED);
        let _reading = AbortOnDrop(tokio::spawn(async move {
            let reads = todos
                .map(|todo| {
                    let fetch = fetch.clone();
                    async move {
                        let t = todo?;
                        Ok(own_task(async move {
                            let r = fetch.read_details(&t, use_get, apps).await;
                            (t, r)
                        })
                        .await)
                    }
                })
                .buffer_unordered(concurrency)
                .chunks(DETAIL_BATCH);
            let mut reads = std::pin::pin!(reads);
            while let Some(chunk) = reads.next().await {
                let batch: Result<Vec<_>, StoreError> = chunk.into_iter().collect();
                let failed = batch.is_err();
                if tx.send(batch).await.is_err() || failed {
                    break;
                }
            }
        }));
        while let Some(batch) = rx.recv().await {
            self.check_lease()?;
            let batch = self.classify(batch?)?;
            self.write_details(batch).await?;
        }
        Ok(())
    }

    /// Sorts detail reads into writes, confirmed removals and errors; a
    /// fatal error stops the run.
    fn classify(
        &self,
        results: Vec<(DetailTodo, Result<DetailWrite, CallError>)>,
    ) -> Result<DetailBatch, SyncError> {
        let mut batch = DetailBatch::default();
        for (t, r) in results {
            match r {
                Ok(w) => batch.writes.push(w),
                // Gone, unless this run just listed it (a 404 right after a
                // listing is the vendor's lag, not a deletion).
                Err(CallError::Connector(ConnectorError::NotFound(m)))
                    if t.last_seen_run.as_deref() == Some(self.run.id)
                        || self.was_seen(Table::Devices, &t.remote_id) =>
                {
                    batch
                        .errors
                        .push((Some(t.remote_id), format!("listed but not found: {m}")))
                }
                Err(CallError::Connector(ConnectorError::NotFound(_))) => batch.gone.push(t.id),
                Err(e) if is_fatal(&e) => {
                    return Err(SyncError::Fatal(format!(
                        "reading device {}: {e}",
                        t.remote_id
                    )));
                }
                Err(e) => batch.errors.push((Some(t.remote_id), e.to_string())),
            }
        }
        Ok(batch)
    }

    /// Stores one batch of detail reads.
    async fn write_details(&self, b: DetailBatch) -> Result<(), SyncError> {
        let mut counts = RunCounts {
            details: b.writes.len() as i64,
            updated: b.writes.iter().filter(|w| w.counts_as_update).count() as i64,
            ..RunCounts::default()
        };
        self.store()
            .write_details(&self.account.id, &self.run, &b.writes, counts)
            .await?;
        if !b.gone.is_empty() {
            counts.removed = self
                .store()
                .mark_removed(Table::Devices, &self.account.id, &self.run, &b.gone)
                .await?;
        }
        if !b.errors.is_empty() {
            counts.errors = b.errors.len() as i64;
            self.store()
                .record_detail_errors(&self.run, &b.errors)
                .await?;
        }
        self.report("details", counts);
        Ok(())
    }

    /// After complete walks: confirms absent records with `get` where the
    /// connector can, then applies the two-pass rule to the rest.
    async fn removals(&self, kind: ResourceKind, table: Table) -> Result<(), SyncError> {
        let step = removals_step(table);
        if self.store().checkpoint(self.run.id, &step).await?.is_some() {
            return Ok(()); // done before this run was interrupted
        }
        let mut counts = RunCounts::default();
        let mut absent: Vec<(String, String)> = if self.all_unmarked_seen(table).await? {
            Vec::new()
        } else {
            let unmarked = self
                .store()
                .unmarked(table, &self.account.id, self.run.id)
                .await?;
            let seen = self.seen.lock().expect("seen set lock");
            unmarked
                .into_iter()
                .filter(|(_, remote_id)| !seen.contains(table, remote_id))
                .collect()
        };
        if self.supports(kind, ResourceScope::TopLevel) == Some(true) && !absent.is_empty() {
            absent.sort_unstable();
            let confirm = absent
                .len()
                .min(self.syncer.options.confirm_limit.max(0) as usize);
            let concurrency = self.syncer.options.detail_concurrency.max(1);
            let results: Vec<((String, String), Result<Entity, CallError>)> =
                futures::stream::iter(absent[..confirm].iter().cloned())
                    .map(|(id, remote_id)| async move {
                        let r = self.fetch.get(kind, &remote_id).await;
                        ((id, remote_id), r)
                    })
                    .buffer_unordered(concurrency)
                    .collect()
                    .await;
            let mut gone = Vec::new();
            let mut alive = Vec::new();
            for ((id, remote_id), r) in results {
                match r {
                    Err(CallError::Connector(ConnectorError::NotFound(_))) => gone.push(id),
                    // Still there: the walk skipped it (a shift in offset paging).
                    Ok(e) if record::remote_id(&e) == remote_id => alive.push(remote_id),
                    Ok(_) => {}
                    Err(e) if is_fatal(&e) => {
                        return Err(SyncError::Fatal(format!(
                            "confirming removal of {remote_id}: {e}"
                        )));
                    }
                    // Unknown: leave it to the two-pass rule.
                    Err(e) => tracing::info!(remote_id, error = %e, "could not confirm a removal"),
                }
            }
            if !alive.is_empty() {
                // Seen, nothing more: its content comes from the next listing.
                self.store()
                    .write_page(&PageWrite {
                        table,
                        account_id: &self.account.id,
                        run: self.run,
                        kind: kind.name(),
                        upserts: Vec::new(),
                        unchanged: Vec::new(),
                        revived: alive.clone(),
                        errors: Vec::new(),
                        counts: RunCounts::default(),
                        next_cursor: None,
                        complete: false,
                        checkpoint: false,
                    })
                    .await?;
            }
            counts.removed += self
                .store()
                .mark_removed(table, &self.account.id, &self.run, &gone)
                .await?;
            // Settled either way: neither misses this pass.
            let gone_ids: HashSet<&String> = gone.iter().collect();
            let alive: HashSet<&String> = alive.iter().collect();
            absent.retain(|(id, remote_id)| !gone_ids.contains(id) && !alive.contains(remote_id));
        }
        let missing: Vec<String> = absent.into_iter().map(|(id, _)| id).collect();
        counts.removed += self
            .store()
            .remove_missing(table, &self.account.id, &self.run, &missing)
            .await?;
        self.report("removals", counts);
        Ok(())
    }

    /// Whether the active records this run left unmarked are all in its
    /// seen set, known from counts without reading them: each id the set
    /// holds is an active record the run did not write (see
    /// [`Seen::exact_len`]), so equal counts mean the same records. An
    /// unchanged re-sync then reads no row to find nothing missing.
    async fn all_unmarked_seen(&self, table: Table) -> Result<bool, SyncError> {
        let seen = self.seen.lock().expect("seen set lock").exact_len(table);
        let Some(seen) = seen else {
            return Ok(false);
        };
        let unmarked = self
            .store()
            .unmarked_count(table, &self.account.id, self.run.id)
            .await?;
        Ok(u64::try_from(unmarked).ok() == Some(seen as u64))
    }
}

/// An app list read and its hash; the list is left out when the stored
/// one has the same hash (nothing to rewrite).
fn unless_stored(
    apps: Option<Vec<AppWrite>>,
    stored: Option<&str>,
) -> (Option<Vec<AppWrite>>, Option<String>) {
    let Some(apps) = apps else {
        return (None, None);
    };
    let hash = apps_hash(&apps);
    let changed = stored != Some(hash.as_str());
    (changed.then_some(apps), Some(hash))
}

/// The connector calls of a run, owned so that they run in their own task
/// while the run's task compares and stores.
#[derive(Clone)]
struct Fetcher {
    connector: Arc<Connector>,
    session: Arc<AccountSession>,
    run_id: String,
    /// Instances shared by the run's calls (one account's, one run long).
    warm: Arc<Warm>,
}

impl Fetcher {
    /// One device's detail read and its apps.
    async fn read_details(
        &self,
        t: &DetailTodo,
        use_get: bool,
        with_apps: bool,
    ) -> Result<DetailWrite, CallError> {
        let summary = parse_object(&t.summary).unwrap_or_default();
        let (detail, detail_remote_data) = if use_get {
            let entity = self.get(ResourceKind::Devices, &t.remote_id).await?;
            let inc = Incoming::new(entity);
            (Some(inc.fields), inc.remote_data)
        } else {
            (None, String::new())
        };
        let apps = if with_apps {
            match self.apps_of(&t.remote_id).await {
                Ok(apps) => Some(apps),
                // No app inventory for this device (some kinds have none).
                Err(CallError::Connector(ConnectorError::NotFound(_))) => Some(Vec::new()),
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let merged = merge(&summary, detail.as_ref());
        let record = serde_json::to_string(&merged).expect("JSON serializes");
        let hash = content_hash(&record, &t.remote_data);
        let (apps, apps_hash) = unless_stored(apps, t.apps_hash.as_deref());
        let projections = projections(Table::Devices, &merged);
        let indexed_unchanged = indexed_unchanged(Table::Devices, &projections, &t.indexed);
        Ok(DetailWrite {
            id: t.id.clone(),
            projections,
            indexed_unchanged,
            counts_as_update: hash != t.content_hash
                && t.changed_run.as_deref() != Some(self.run_id.as_str()),
            content_hash: hash,
            record,
            detail: detail
                .map(|d| serde_json::to_string(&d).expect("JSON serializes"))
                .unwrap_or_else(|| "{}".into()),
            detail_remote_data,
            apps,
            apps_hash,
        })
    }

    /// One record by its remote id; a rate-limited call is retried.
    async fn get(&self, kind: ResourceKind, remote_id: &str) -> Result<Entity, CallError> {
        retry_rate_limited(&self.session, kind.name(), || {
            self.connector
                .get_in(Some(&self.warm), &self.session, kind, remote_id)
        })
        .await
        .map_err(|e| match e {
            WalkError::Call(c) => c,
            // Still limited after every retry: counted, retried next run.
            other => CallError::Connector(ConnectorError::ServerError(ServerErrorInfo {
                status: 429,
                message: other.to_string(),
            })),
        })
    }

    /// Every app on one device.
    async fn apps_of(&self, device_remote_id: &str) -> Result<Vec<AppWrite>, CallError> {
        let options = ListOptions {
            page_size: None,
            parent_id: Some(device_remote_id.to_owned()),
        };
        let mut pager = Pager::new(
            self.connector.clone(),
            self.session.clone(),
            ResourceKind::Apps,
            options,
            None,
        )
        .reusing(self.warm.clone());
        let mut apps = Vec::new();
        loop {
            let page = match pager.next().await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(WalkError::Call(c)) => return Err(c),
                Err(other) => {
                    return Err(CallError::InvalidOutput(format!(
                        "listing apps of {device_remote_id}: {other}"
                    )));
                }
            };
            for e in page.records {
                let inc = Incoming::new(e);
                let name = inc
                    .fields
                    .get("name")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                apps.push(AppWrite {
                    remote_id: inc.remote_id,
                    name,
                    record: serde_json::to_string(&inc.fields).expect("JSON serializes"),
                    remote_data: inc.remote_data,
                });
            }
        }
        Ok(apps)
    }
}

/// Devices of an account due for a detail read, paged through in id order.
fn due_for_details(
    store: Store,
    account_id: String,
    stale_before: String,
) -> impl futures::Stream<Item = Result<DetailTodo, StoreError>> {
    futures::stream::try_unfold(String::new(), move |after| {
        let (store, account_id, stale_before) =
            (store.clone(), account_id.clone(), stale_before.clone());
        async move {
            let todo = store
                .devices_needing_details(&account_id, &stale_before, &after, 512)
                .await?;
            let next = todo.last().map(|last| last.id.clone());
            Ok::<_, StoreError>(
                next.map(|next| (futures::stream::iter(todo.into_iter().map(Ok)), next)),
            )
        }
    })
    .try_flatten()
}

/// Errors that stop a run: every further call would fail the same way.
fn is_fatal(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Connector(
            ConnectorError::Unauthorized(_)
                | ConnectorError::Forbidden(_)
                | ConnectorError::InvalidConfig(_)
                | ConnectorError::ConnectionFailed(_)
                | ConnectorError::TlsFailure(_)
        )
    )
}

/// When an account with `interval_secs` next syncs: one interval from now,
/// jittered by up to 10% so that accounts added together spread out.
pub fn next_sync_at(interval_secs: i64) -> String {
    let interval = interval_secs.max(60) as f64;
    let jitter = rand::random_range(-0.1..0.1) * interval;
    let secs = (interval + jitter) as i64;
    stamp(time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
}

/// Whether a stored timestamp is in the past.
pub fn is_due(at: &str) -> bool {
    at <= now().as_str()
}
