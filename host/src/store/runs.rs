//! Sync runs, their per-resource checkpoints, per-record errors, and the
//! per-account lease that makes exactly one process run an account's sync.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::webhooks::{NewEvent, emit_in};
use super::{Store, StoreError, new_id, now, stamp};

/// What a run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounts {
    /// Pages stored.
    pub pages: i64,
    /// Records seen for the first time.
    pub created: i64,
    /// Records whose content changed (or came back after a removal).
    pub updated: i64,
    /// Records seen again without change.
    pub unchanged: i64,
    /// Records confirmed gone.
    pub removed: i64,
    /// Records or detail reads that failed.
    pub errors: i64,
    /// Detail reads done.
    pub details: i64,
    /// Waits for the rate limit (host limiter or vendor 429).
    pub rate_limit_waits: i64,
}

impl std::ops::AddAssign for RunCounts {
    fn add_assign(&mut self, o: Self) {
        self.pages += o.pages;
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.removed += o.removed;
        self.errors += o.errors;
        self.details += o.details;
        self.rate_limit_waits += o.rate_limit_waits;
    }
}

/// One sync run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    /// Run id.
    pub id: String,
    /// Account id.
    pub account_id: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// `manual`, `schedule` or `update`.
    pub trigger: String,
    /// The phase it is in (or stopped in).
    pub phase: Option<String>,
    /// The process running it.
    pub holder: Option<String>,
    /// Started.
    pub started_at: String,
    /// Finished.
    pub finished_at: Option<String>,
    /// Counts so far.
    pub counts: RunCounts,
    /// Why it failed.
    pub error: Option<String>,
}

/// A run as written by the process holding it.
#[derive(Debug, Clone, Copy)]
pub struct RunRef<'a> {
    /// Run id.
    pub id: &'a str,
    /// The lease holder running it.
    pub holder: &'a str,
}

/// The outcome of asking for an account's lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Lease {
    /// This process holds it.
    Acquired,
    /// Another holder has it until the given time.
    Held {
        /// Who.
        holder: String,
        /// Until when, unless renewed.
        until: String,
    },
}

const RUN_COLUMNS: &str = "id, account_id, status, trigger, phase, holder, started_at, finished_at, \
    pages, created, updated, unchanged, removed, errors, details, rate_limit_waits, error";

fn run_from_row(r: &AnyRow) -> Result<RunRow, StoreError> {
    Ok(RunRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        status: r.try_get("status")?,
        trigger: r.try_get("trigger")?,
        phase: r.try_get("phase")?,
        holder: r.try_get("holder")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: RunCounts {
            pages: r.try_get("pages")?,
            created: r.try_get("created")?,
            updated: r.try_get("updated")?,
            unchanged: r.try_get("unchanged")?,
            removed: r.try_get("removed")?,
            errors: r.try_get("errors")?,
            details: r.try_get("details")?,
            rate_limit_waits: r.try_get("rate_limit_waits")?,
        },
        error: r.try_get("error")?,
    })
}

fn later(ttl: Duration) -> String {
    stamp(time::OffsetDateTime::now_utc() + ttl)
}

impl Store {
    /// Takes the account's sync lease for `ttl` if it is free, expired, or
    /// already `holder`'s. An atomic conditional update, so it holds across
    /// processes on PostgreSQL as on SQLite.
    pub async fn try_lease(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let taken = sqlx::query(
            "UPDATE accounts SET lease_holder = $2, lease_expires_at = $3 WHERE id = $1 \
             AND (lease_holder IS NULL OR lease_holder = $2 OR lease_expires_at < $4)",
        )
        .bind(account_id)
        .bind(holder)
        .bind(later(ttl))
        .bind(now())
        .execute(self.pool())
        .await?
        .rows_affected();
        if taken == 1 {
            self.accounts_changed();
            return Ok(Lease::Acquired);
        }
        let row = sqlx::query("SELECT lease_holder, lease_expires_at FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account_id} is gone")))?;
        Ok(Lease::Held {
            holder: row.try_get::<Option<String>, _>(0)?.unwrap_or_default(),
            until: row.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
        })
    }

    /// Takes the lease from `previous` (a holder known to be dead).
    pub async fn take_over_lease(
        &self,
        account_id: &str,
        previous: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE accounts SET lease_holder = $3, lease_expires_at = $4 WHERE id = $1 AND lease_holder = $2",
        )
        .bind(account_id)
        .bind(previous)
        .bind(holder)
        .bind(later(ttl))
        .execute(self.pool())
        .await?
        .rows_affected();
        self.accounts_changed();
        Ok(n == 1)
    }

    /// Extends `holder`'s lease; `false` if it was lost.
    pub async fn renew_lease(
        &self,
        account_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE accounts SET lease_expires_at = $3 WHERE id = $1 AND lease_holder = $2",
        )
        .bind(account_id)
        .bind(holder)
        .bind(later(ttl))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives the lease back.
    pub async fn release_lease(&self, account_id: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE accounts SET lease_holder = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_holder = $2",
        )
        .bind(account_id)
        .bind(holder)
        .execute(self.pool())
        .await?;
        self.accounts_changed();
        Ok(())
    }

    /// The account's run still marked running (its process died or runs it now).
    pub async fn unfinished_run(&self, account_id: &str) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = $1 AND status = 'running' \
             ORDER BY started_at DESC LIMIT 1"
        ))
        .bind(account_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Starts a run.
    pub async fn start_run(
        &self,
        account_id: &str,
        trigger: &str,
        holder: &str,
    ) -> Result<RunRow, StoreError> {
        let id = new_id("run");
        sqlx::query(
            "INSERT INTO sync_runs (id, account_id, status, trigger, holder, started_at) \
             VALUES ($1, $2, 'running', $3, $4, $5)",
        )
        .bind(&id)
        .bind(account_id)
        .bind(trigger)
        .bind(holder)
        .bind(now())
        .execute(self.pool())
        .await?;
        self.run(&id).await
    }

    /// Makes `holder` the runner of an interrupted run it resumes.
    pub async fn adopt_run(&self, run_id: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET holder = $2 WHERE id = $1")
            .bind(run_id)
            .bind(holder)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A run by id.
    pub async fn run(&self, run_id: &str) -> Result<RunRow, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no sync run {run_id}")))?;
        run_from_row(&row)
    }

    /// The newest runs of an account, newest first.
    pub async fn runs(&self, account_id: &str, limit: i64) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE account_id = $1 ORDER BY started_at DESC LIMIT $2"
        ))
        .bind(account_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Up to `limit` runs of `workspace`'s accounts (or of its account
    /// `account`, by name or id), newest first, after the keyset position
    /// `after` (`started_at`, `id`) of a previous page.
    pub async fn runs_in(
        &self,
        workspace: &str,
        account: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<RunRow>, StoreError> {
        let mut conds =
            vec!["account_id IN (SELECT id FROM accounts WHERE workspace_id = $1".to_owned()];
        let mut binds = vec![workspace];
        if let Some(a) = account {
            binds.push(a);
            conds[0].push_str(" AND (name = $2 OR id = $2)");
        }
        conds[0].push(')');
        if let Some((started, id)) = after {
            let (s, i) = (binds.len() + 1, binds.len() + 2);
            conds.push(format!(
                "(started_at < ${s} OR (started_at = ${s} AND id < ${i}))"
            ));
            binds.extend([started, id]);
        }
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE {} \
             ORDER BY started_at DESC, id DESC LIMIT {}",
            conds.join(" AND "),
            limit.max(1)
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// The run `run_id` if it belongs to one of `workspace`'s accounts.
    pub async fn run_in(
        &self,
        workspace: &str,
        run_id: &str,
    ) -> Result<Option<RunRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $2 \
             AND account_id IN (SELECT id FROM accounts WHERE workspace_id = $1)"
        ))
        .bind(workspace)
        .bind(run_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Records the phase a run is in.
    pub async fn set_phase(&self, run_id: &str, phase: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sync_runs SET phase = $2 WHERE id = $1")
            .bind(run_id)
            .bind(phase)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Adds to a run's counts outside a page transaction.
    pub async fn add_counts(&self, run: &RunRef<'_>, c: RunCounts) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        add_counts(&mut tx, run, c).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ends a run as `succeeded` or `failed`, if `run.holder` still runs it,
    /// storing the events `announce` renders from the finished run for
    /// `workspace` in the same transaction (none are lost to a crash).
    pub async fn finish_run(
        &self,
        run: &RunRef<'_>,
        status: &str,
        error: Option<&str>,
        workspace: &str,
        announce: impl FnOnce(&RunRow) -> Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE sync_runs SET status = $2, error = $3, finished_at = $4 \
             WHERE id = $1 AND holder = $5 AND status = 'running'",
        )
        .bind(run.id)
        .bind(status)
        .bind(error)
        .bind(now())
        .bind(run.holder)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Err(StoreError::LeaseLost(run.id.to_owned()));
        }
        if status == "succeeded" {
            // A complete pass: every active record that missed none was
            // seen since the run started (see `last_seen_shown!`).
            sqlx::query(
                "UPDATE accounts SET seen_through_at = s.started_at, \
                 list_generation = list_generation + 1 \
                 FROM (SELECT account_id, started_at FROM sync_runs WHERE id = $1) AS s \
                 WHERE accounts.id = s.account_id",
            )
            .bind(run.id)
            .execute(&mut *tx)
            .await?;
        }
        forget_seen(&mut tx, "run_id = $1", run.id).await?;
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE id = $1"
        ))
        .bind(run.id)
        .fetch_one(&mut *tx)
        .await?;
        let events = announce(&run_from_row(&row)?);
        emit_in(&mut tx, workspace, &events).await?;
        tx.commit().await?;
        self.accounts_changed();
        Ok(())
    }

    /// Closes runs of the account left `running` by processes that died,
    /// other than `keep` (the one being resumed).
    pub async fn close_stale_runs(&self, account_id: &str, keep: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE sync_runs SET status = 'failed', error = 'interrupted; superseded by a later run', \
             finished_at = $3 WHERE account_id = $1 AND status = 'running' AND id <> $2",
        )
        .bind(account_id)
        .bind(keep)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        forget_seen(
            &mut tx,
            "run_id IN (SELECT id FROM sync_runs WHERE account_id = $1 AND status <> 'running')",
            account_id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Where a run's walk of `kind` stands: `None` if it has not started,
    /// else the next cursor and whether the walk is complete.
    pub async fn checkpoint(
        &self,
        run_id: &str,
        kind: &str,
    ) -> Result<Option<(Option<String>, bool)>, StoreError> {
        let row =
            sqlx::query("SELECT cursor, complete FROM checkpoints WHERE run_id = $1 AND kind = $2")
                .bind(run_id)
                .bind(kind)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? == 1)))
            .transpose()
    }

    /// The errors recorded for a run (newest last), at most `limit`.
    pub async fn run_errors(
        &self,
        run_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, remote_id, message FROM sync_errors WHERE run_id = $1 ORDER BY at LIMIT $2",
        )
        .bind(run_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }
}

/// Adds `c` to a run's counts inside `tx`, provided `holder` still runs
/// it: every write of a run goes through here, so a process that lost its
/// lease (and whose run another process adopted) has its writes rolled back.
pub(crate) async fn add_counts(
    tx: &mut super::WriteTx,
    run: &RunRef<'_>,
    c: RunCounts,
) -> Result<(), StoreError> {
    let n = sqlx::query(
        "UPDATE sync_runs SET pages = pages + $2, created = created + $3, updated = updated + $4, \
         unchanged = unchanged + $5, removed = removed + $6, errors = errors + $7, \
         details = details + $8, rate_limit_waits = rate_limit_waits + $9 \
         WHERE id = $1 AND holder = $10 AND status = 'running'",
    )
    .bind(run.id)
    .bind(c.pages)
    .bind(c.created)
    .bind(c.updated)
    .bind(c.unchanged)
    .bind(c.removed)
    .bind(c.errors)
    .bind(c.details)
    .bind(c.rate_limit_waits)
    .bind(run.holder)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(StoreError::LeaseLost(run.id.to_owned()));
    }
    Ok(())
}

/// Moves a run's checkpoint for `kind` inside `tx`, with the page it follows.
pub(crate) async fn set_checkpoint(
    tx: &mut super::WriteTx,
    run_id: &str,
    kind: &str,
    cursor: Option<&str>,
    complete: bool,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checkpoints (run_id, kind, cursor, complete) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (run_id, kind) DO UPDATE SET cursor = excluded.cursor, complete = excluded.complete",
    )
    .bind(run_id)
    .bind(kind)
    .bind(cursor)
    .bind(complete as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records per-record errors inside `tx`.
pub(crate) async fn record_errors(
    tx: &mut super::WriteTx,
    run_id: &str,
    kind: &str,
    errors: &[(Option<String>, String)],
) -> Result<(), StoreError> {
    let at = now();
    for (remote_id, message) in errors {
        sqlx::query(
            "INSERT INTO sync_errors (run_id, kind, remote_id, message, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(kind)
        .bind(remote_id)
        .bind(message)
        .bind(&at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Deletes the seen sets of the runs `which` selects (by `$1` = `value`):
/// only a running run reads its own.
async fn forget_seen(tx: &mut super::WriteTx, which: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(&format!("DELETE FROM run_seen WHERE {which}"))
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
