//! `mdmhub accounts`: add (after a successful `check()`), list, test,
//! update and remove saved accounts. Secrets are read from files, the
//! environment or stdin, sealed, and never printed.

use std::io::Write;

use anyhow::Context as _;
use clap::Subcommand;

use super::inputs::{AccountArgs, interval};
use super::sync::{SyncArgs, run_one};
use super::{Env, table};
use crate::store::accounts::DEFAULT_WORKSPACE;

/// `mdmhub accounts` subcommands.
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Check credentials with the connector and save the account.
    Add {
        /// The connector id (see `mdmhub connectors list`).
        #[arg(long)]
        connector: String,
        /// A unique name for the account.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        account: AccountArgs,
        /// Time between scheduled syncs, e.g. `6h`, `1d` [default: 24h].
        #[arg(long, value_parser = interval)]
        interval: Option<i64>,
        /// The workspace to add it to (created if missing); API keys of
        /// that workspace see it.
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
    },
    /// List saved accounts with their last sync.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the connector's check with the saved credentials.
    Test {
        /// Account name.
        name: String,
    },
    /// Change settings; new credentials are checked, then the account's
    /// records are re-fetched.
    Update {
        /// Account name.
        name: String,
        #[command(flatten)]
        account: AccountArgs,
        /// Time between scheduled syncs, e.g. `6h`, `1d`.
        #[arg(long, value_parser = interval)]
        interval: Option<i64>,
        /// Do not re-fetch now; the next scheduled sync will.
        #[arg(long)]
        no_sync: bool,
    },
    /// Delete an account and everything synced from it.
    Remove {
        /// Account name.
        name: String,
    },
}

impl AccountsCommand {
    /// Runs the subcommand.
    pub async fn run(self, env: &Env, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
        let accounts = env.accounts().await?;
        match self {
            AccountsCommand::Add {
                connector,
                name,
                account,
                interval,
                workspace,
            } => {
                let input = account.input(interval)?;
                let ws = accounts
                    .store
                    .ensure_workspace(&workspace)
                    .await
                    .with_context(|| format!("workspace `{workspace}`"))?;
                let row = accounts.add_in(&ws.id, &name, &connector, input).await?;
                writeln!(
                    out,
                    "Saved account `{}` ({connector}); credentials checked. Run `mdmhub sync {}` to fetch its inventory.",
                    row.name, row.name
                )?;
            }
            AccountsCommand::List { json } => {
                let mut rows = Vec::new();
                let mut values = Vec::new();
                for a in accounts.store.accounts().await? {
                    let last = accounts.store.runs(&a.id, 1).await?.into_iter().next();
                    let syncing = a.lease_holder.is_some();
                    values.push(serde_json::json!({
                        "id": a.id, "name": a.name, "connector": a.connector, "config": a.config,
                        "endpoints": a.endpoints, "rate_limit": a.rate_limit,
                        "sync_interval_secs": a.sync_interval_secs, "next_sync_at": a.next_sync_at,
                        "syncing": syncing, "last_run": last,
                    }));
                    rows.push(vec![
                        a.name.clone(),
                        a.connector.clone(),
                        last.as_ref()
                            .map(|r| {
                                format!(
                                    "{} {}",
                                    r.status,
                                    r.finished_at.as_deref().unwrap_or(&r.started_at)
                                )
                            })
                            .unwrap_or_else(|| "never synced".into()),
                        if syncing {
                            "syncing".into()
                        } else {
                            a.next_sync_at.clone()
                        },
                    ]);
                }
                if json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&values)?)?;
                } else if rows.is_empty() {
                    writeln!(out, "No accounts yet: add one with `mdmhub accounts add`.")?;
                } else {
                    table::write(out, &["NAME", "CONNECTOR", "LAST SYNC", "NEXT SYNC"], &rows)?;
                }
            }
            AccountsCommand::Test { name } => {
                let row = accounts.store.account(&name).await?;
                accounts.test(&row).await?;
                writeln!(out, "OK: account `{name}` works.")?;
            }
            AccountsCommand::Update {
                name,
                account,
                interval,
                no_sync,
            } => {
                let mut row = accounts.store.account(&name).await?;
                let refetch = accounts.update(&mut row, account.input(interval)?).await?;
                writeln!(out, "Updated account `{name}`.")?;
                if refetch && !no_sync {
                    writeln!(out, "Re-fetching its records with the new settings…")?;
                    let args = SyncArgs::one(&name);
                    run_one(&accounts, &args, &row, "update", out).await?;
                } else if refetch {
                    writeln!(out, "Its records will be re-fetched by the next sync.")?;
                }
            }
            AccountsCommand::Remove { name } => {
                let row = accounts.store.account(&name).await?;
                let devices = accounts
                    .store
                    .remove_account(&row.id)
                    .await
                    .with_context(|| format!("removing account `{name}`"))?;
                writeln!(out, "Removed account `{name}` and its {devices} devices.")?;
            }
        }
        Ok(())
    }
}
