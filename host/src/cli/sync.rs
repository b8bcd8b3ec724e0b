//! `mdmhub sync`: sync one account or all of them now with a progress bar,
//! or keep syncing accounts on their schedules (`--schedule`).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::Env;
use crate::accounts::Accounts;
use crate::store::accounts::AccountRow;
use crate::store::runs::RunRow;
use crate::sync::{Progress, SyncOptions, Syncer, schedule};

/// `mdmhub sync` options.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The account to sync.
    pub account: Option<String>,
    /// Sync every account.
    #[arg(long, conflicts_with = "account")]
    pub all: bool,
    /// Keep running, syncing each account when its interval is due.
    #[arg(long, conflicts_with_all = ["account", "all"])]
    pub schedule: bool,
    /// Accounts synced at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Re-read device details older than this many hours.
    #[arg(long, default_value_t = 7 * 24)]
    pub details_max_age_hours: u64,
}

impl SyncArgs {
    /// Options for syncing the one account `name`.
    pub fn one(name: &str) -> Self {
        Self {
            account: Some(name.into()),
            all: false,
            schedule: false,
            concurrency: 1,
            details_max_age_hours: 7 * 24,
        }
    }

    fn options(&self) -> SyncOptions {
        SyncOptions {
            details_max_age: Duration::from_secs(self.details_max_age_hours * 3600),
            ..SyncOptions::default()
        }
    }

    /// Runs the sync(s).
    pub async fn run(self, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let accounts = env.accounts().await?;
        if self.schedule {
            let syncer = Syncer::new(accounts, self.options());
            writeln!(out, "Syncing accounts on their schedules; Ctrl-C stops.")?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            schedule::run_forever(syncer, self.concurrency, Duration::from_secs(30), stop).await;
            return Ok(());
        }
        let targets: Vec<AccountRow> = match (&self.account, self.all) {
            (Some(name), _) => vec![accounts.store.account(name).await?],
            (None, true) => accounts.store.accounts().await?,
            (None, false) => bail!("name an account, or pass --all (see `mdmhub accounts list`)"),
        };
        if targets.is_empty() {
            writeln!(
                out,
                "No accounts to sync: add one with `mdmhub accounts add`."
            )?;
            return Ok(());
        }
        if let [one] = targets.as_slice() {
            run_one(&accounts, &self, one, "manual", out).await?;
            return Ok(());
        }
        let syncer = Syncer::new(accounts, self.options());
        let bars = MultiProgress::new();
        let limit = Arc::new(tokio::sync::Semaphore::new(self.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for account in targets {
            let (syncer, bars, limit) = (syncer.clone(), bars.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("never closed");
                let bar = bars.add(bar());
                let started = Instant::now();
                let result = syncer
                    .sync(&account, "manual", Some(progress_fn(&bar)))
                    .await;
                bar.finish_and_clear();
                (account.name, result, started.elapsed())
            });
        }
        let mut failed = 0;
        while let Some(done) = tasks.join_next().await {
            let (name, result, took) = done?;
            match result {
                Ok(run) => writeln!(out, "{}", summary(&name, &run, took))?,
                Err(e) => {
                    failed += 1;
                    writeln!(out, "{name}: sync failed: {e}")?;
                }
            }
        }
        if failed > 0 {
            bail!("{failed} account(s) failed to sync");
        }
        Ok(())
    }
}

/// Syncs one account with a progress bar and prints its counts.
pub async fn run_one(
    accounts: &Accounts,
    args: &SyncArgs,
    account: &AccountRow,
    trigger: &str,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<RunRow> {
    let syncer = Syncer::new(accounts.clone(), args.options());
    let bar = bar();
    let started = Instant::now();
    let result = syncer.sync(account, trigger, Some(progress_fn(&bar))).await;
    bar.finish_and_clear();
    let run = result?;
    writeln!(out, "{}", summary(&account.name, &run, started.elapsed()))?;
    if run.counts.errors > 0 {
        for (kind, id, message) in accounts.store.run_errors(&run.id, 5).await? {
            writeln!(
                out,
                "  error in {kind} {}: {message}",
                id.as_deref().unwrap_or("(no id)")
            )?;
        }
    }
    Ok(run)
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").expect("a valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn progress_fn(bar: &ProgressBar) -> Arc<dyn Fn(&Progress) + Send + Sync> {
    let bar = bar.clone();
    Arc::new(move |p: &Progress| {
        let c = &p.counts;
        bar.set_message(format!(
            "{}: {} | {} pages, {} records ({} new, {} changed), {} details, {} rate-limit waits",
            p.account,
            p.phase,
            c.pages,
            c.created + c.updated + c.unchanged,
            c.created,
            c.updated,
            c.details,
            c.rate_limit_waits
        ));
    })
}

fn summary(name: &str, run: &RunRow, took: Duration) -> String {
    let c = &run.counts;
    format!(
        "{name}: {} created, {} updated, {} unchanged, {} removed, {} errors; {} pages, {} detail reads, {} rate-limit waits in {:.1}s",
        c.created,
        c.updated,
        c.unchanged,
        c.removed,
        c.errors,
        c.pages,
        c.details,
        c.rate_limit_waits,
        took.as_secs_f64()
    )
}
