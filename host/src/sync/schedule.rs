//! Scheduled syncs: every account runs on its interval (jittered when a run
//! ends), several at once up to a bound. Each due account is claimed through
//! its database lease, so among several `mdmhub` processes sharing a
//! PostgreSQL database exactly one runs it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{SyncError, Syncer};
use crate::store::now;
use crate::store::runs::RunRow;

/// The outcome of one account's scheduled run.
#[derive(Debug)]
pub struct Scheduled {
    /// Account name.
    pub account: String,
    /// The finished run, or why it did not run or failed.
    pub result: Result<RunRow, SyncError>,
}

/// Runs every account that is due now, at most `concurrency` at once, and
/// returns when they have finished. Accounts another process is syncing
/// are skipped (`AlreadyRunning`), as are those it synced meanwhile (`NotDue`).
pub async fn run_due(syncer: &Syncer, concurrency: usize) -> Result<Vec<Scheduled>, SyncError> {
    let due = syncer.accounts.store.due_accounts(&now()).await?;
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for account in due {
        let syncer = syncer.clone();
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let result = syncer.sync(&account, "schedule", None).await;
            Scheduled {
                account: account.name,
                result,
            }
        });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(s) => out.push(s),
            Err(e) => tracing::error!(error = %e, "a scheduled sync task panicked"),
        }
    }
    Ok(out)
}

/// Runs due accounts every `tick` until `shutdown` resolves; each tick
/// also drops lists held in memory of accounts removed by other processes.
pub async fn run_forever(
    syncer: Syncer,
    concurrency: usize,
    tick: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if let Err(e) = syncer.accounts.store.prune_lists().await {
            tracing::warn!(error = %e, "could not check for removed accounts' lists");
        }
        match run_due(&syncer, concurrency).await {
            Ok(done) => {
                for s in done {
                    match s.result {
                        Ok(run) => {
                            tracing::info!(account = %s.account, created = run.counts.created, updated = run.counts.updated, removed = run.counts.removed, errors = run.counts.errors, "scheduled sync finished")
                        }
                        Err(SyncError::AlreadyRunning { .. } | SyncError::NotDue(_)) => {}
                        Err(e) => {
                            tracing::warn!(account = %s.account, error = %e, "scheduled sync failed")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list due accounts"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}
