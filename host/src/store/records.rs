//! Writing synced records: pages upserted by (account, remote id) in one
//! transaction with their checkpoint and counts, device details, apps per
//! device, removals, and the links between devices, users and organizations.
//! What to write (merges, hashes, counts) is decided by `sync`.

use std::collections::HashMap;

use sqlx::Row;

use super::runs::{self, RunCounts, RunRef};
use super::{Store, StoreError, now, placeholders, record_id};

/// A table of synced records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `devices`.
    Devices,
    /// `users`.
    Users,
    /// `organizations`.
    Organizations,
}

impl Table {
    /// The SQL table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Devices => "devices",
            Table::Users => "users",
            Table::Organizations => "organizations",
        }
    }
    /// The id prefix of its rows.
    pub fn prefix(self) -> &'static str {
        match self {
            Table::Devices => "dev",
            Table::Users => "usr",
            Table::Organizations => "org",
        }
    }
    /// Columns copied out of the record for filtering, in
    /// [`RowWrite::projections`] order.
    pub fn projections(self) -> &'static [&'static str] {
        match self {
            Table::Devices => &[
                "name",
                "serial_number",
                "device_type",
                "platform",
                "management_state",
                "assigned_user_email",
                "organization_remote_id",
                "last_check_in_at",
            ],
            Table::Users => &["email", "name"],
            Table::Organizations => &["name"],
        }
    }
}

/// What the store holds for a record, for comparing a new version.
#[derive(Debug, Clone)]
pub struct Existing {
    /// mdmhub id.
    pub id: String,
    /// Hash of the stored content.
    pub content_hash: String,
    /// Devices: hash of the summary fields that matter.
    pub summary_hash: Option<String>,
    /// Devices: hash of the summary and vendor JSON as last listed, so an
    /// unchanged listing is recognized without reading the detail.
    pub list_hash: Option<String>,
    /// Devices: a detail read is pending.
    pub needs_details: bool,
    /// `active` or `removed`.
    pub status: String,
    /// The last run that saw it.
    pub last_seen_run: Option<String>,
}

/// One record to insert or update.
#[derive(Debug, Clone)]
pub struct RowWrite {
    /// The vendor's id.
    pub remote_id: String,
    /// The normalized record (JSON object, without `remote_data`).
    pub record: String,
    /// The vendor's JSON.
    pub remote_data: String,
    /// Hash of record and remote data.
    pub content_hash: String,
    /// Values of [`Table::projections`].
    pub projections: Vec<Option<String>>,
    /// Devices only.
    pub device: Option<DeviceSummaryWrite>,
}

/// The summary side of a device write.
#[derive(Debug, Clone)]
pub struct DeviceSummaryWrite {
    /// The normalized summary as listed (JSON).
    pub summary: String,
    /// Hash of the summary fields that matter.
    pub summary_hash: String,
    /// Hash of the summary and its vendor JSON.
    pub list_hash: String,
    /// Whether a detail read is needed.
    pub needs_details: bool,
}

/// One stored page.
#[derive(Debug, Clone)]
pub struct PageWrite<'a> {
    /// Which table.
    pub table: Table,
    /// The account.
    pub account_id: &'a str,
    /// The run, and who runs it.
    pub run: RunRef<'a>,
    /// Resource name for the checkpoint and errors.
    pub kind: &'a str,
    /// New or changed records (`changed`: counts as created or updated).
    pub upserts: Vec<RowWrite>,
    /// Remote ids seen without change.
    pub unchanged: Vec<String>,
    /// Records that could not be mapped.
    pub errors: Vec<(Option<String>, String)>,
    /// Counts to add to the run.
    pub counts: RunCounts,
    /// The walk's position after this page, and whether it was the last.
    pub next_cursor: Option<String>,
    /// Whether the walk is complete with this page.
    pub complete: bool,
    /// Whether to move the checkpoint (false for records confirmed alive
    /// outside a walk).
    pub checkpoint: bool,
}

/// A device whose details are due.
#[derive(Debug, Clone)]
pub struct DetailTodo {
    /// mdmhub id.
    pub id: String,
    /// The vendor's id.
    pub remote_id: String,
    /// The stored summary (JSON).
    pub summary: String,
    /// The vendor's JSON of the summary.
    pub remote_data: String,
    /// Hash of the stored content.
    pub content_hash: String,
    /// The run that last created or changed it.
    pub changed_run: Option<String>,
    /// The last run that listed it.
    pub last_seen_run: Option<String>,
}

/// The result of reading one device's details.
#[derive(Debug, Clone)]
pub struct DetailWrite {
    /// mdmhub id.
    pub id: String,
    /// The merged record (JSON).
    pub record: String,
    /// The normalized detail record (JSON).
    pub detail: String,
    /// The vendor's JSON of the detail read.
    pub detail_remote_data: String,
    /// Hash of the merged content.
    pub content_hash: String,
    /// Device projections of the merged record.
    pub projections: Vec<Option<String>>,
    /// Whether this changed the content and counts as an update in this run.
    pub counts_as_update: bool,
    /// The device's apps, replacing what is stored, if they were read.
    pub apps: Option<Vec<AppWrite>>,
}

/// One installed app.
#[derive(Debug, Clone)]
pub struct AppWrite {
    /// The vendor's id of the app on this device.
    pub remote_id: String,
    /// App name.
    pub name: Option<String>,
    /// The normalized record (JSON).
    pub record: String,
    /// The vendor's JSON.
    pub remote_data: String,
}

impl Store {
    /// What is stored for these remote ids of an account.
    pub async fn existing(
        &self,
        table: Table,
        account_id: &str,
        remote_ids: &[&str],
    ) -> Result<HashMap<String, Existing>, StoreError> {
        if remote_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let device_cols = if table == Table::Devices {
            "summary_hash, list_hash, needs_details"
        } else {
            "NULL AS summary_hash, NULL AS list_hash, CAST(0 AS BIGINT) AS needs_details"
        };
        let sql = format!(
            "SELECT remote_id, id, content_hash, status, last_seen_run, {device_cols} FROM {} \
             WHERE account_id = $1 AND remote_id IN ({})",
            table.name(),
            placeholders(2, remote_ids.len())
        );
        let mut q = sqlx::query(&sql).bind(account_id);
        for id in remote_ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("remote_id")?,
                    Existing {
                        id: r.try_get("id")?,
                        content_hash: r.try_get("content_hash")?,
                        status: r.try_get("status")?,
                        last_seen_run: r.try_get("last_seen_run")?,
                        summary_hash: r.try_get("summary_hash")?,
                        list_hash: r.try_get("list_hash")?,
                        needs_details: r.try_get::<i64, _>("needs_details")? == 1,
                    },
                ))
            })
            .collect()
    }

    /// The stored detail records (JSON) of these devices, by remote id.
    pub async fn details_of(
        &self,
        account_id: &str,
        remote_ids: &[&str],
    ) -> Result<HashMap<String, String>, StoreError> {
        if remote_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT r.remote_id, d.detail FROM devices r JOIN device_data d ON d.device_id = r.id \
             WHERE r.account_id = $1 AND d.detail IS NOT NULL AND r.remote_id IN ({})",
            placeholders(2, remote_ids.len())
        );
        let mut q = sqlx::query(&sql).bind(account_id);
        for id in remote_ids {
            q = q.bind(*id);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Stores a page, its errors, counts and checkpoint atomically: a run
    /// killed at any point resumes after the last stored page.
    pub async fn write_page(&self, page: &PageWrite<'_>) -> Result<(), StoreError> {
        let at = now();
        let table = page.table;
        let proj = table.projections();
        let devices = table == Table::Devices;
        let mut cols: Vec<&str> = vec!["id", "account_id", "remote_id"];
        cols.extend(proj);
        if !devices {
            cols.extend(["record", "remote_data"]);
        }
        cols.extend([
            "content_hash",
            "status",
            "missed_passes",
            "last_seen_run",
            "changed_run",
            "first_seen_at",
            "last_seen_at",
            "updated_at",
        ]);
        if devices {
            cols.extend(["summary_hash", "list_hash", "needs_details"]);
        }
        let updates: Vec<String> = cols
            .iter()
            .filter(|c| !matches!(**c, "id" | "account_id" | "remote_id" | "first_seen_at"))
            .map(|c| format!("{c} = excluded.{c}"))
            .chain(std::iter::once("removed_at = NULL".to_owned()))
            .collect();
        let upsert = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (account_id, remote_id) DO UPDATE SET {}",
            table.name(),
            cols.join(", "),
            placeholders(1, cols.len()),
            updates.join(", ")
        );

        let mut tx = self.pool().begin().await?;
        for w in &page.upserts {
            let id = record_id(table.prefix(), page.account_id, &w.remote_id);
            let mut q = sqlx::query(&upsert)
                .bind(&id)
                .bind(page.account_id)
                .bind(&w.remote_id);
            for v in &w.projections {
                q = q.bind(v.as_deref());
            }
            if !devices {
                q = q.bind(&w.record).bind(&w.remote_data);
            }
            q = q
                .bind(&w.content_hash)
                .bind("active")
                .bind(0i64)
                .bind(page.run.id)
                .bind(page.run.id)
                .bind(&at)
                .bind(&at)
                .bind(&at);
            if let Some(d) = &w.device {
                q = q
                    .bind(&d.summary_hash)
                    .bind(&d.list_hash)
                    .bind(d.needs_details as i64);
            }
            q.execute(&mut *tx).await?;
            if let Some(d) = &w.device {
                sqlx::query(
                    "INSERT INTO device_data (device_id, record, summary, remote_data) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (device_id) DO UPDATE SET \
                     record = excluded.record, summary = excluded.summary, \
                     remote_data = excluded.remote_data",
                )
                .bind(&id)
                .bind(&w.record)
                .bind(&d.summary)
                .bind(&w.remote_data)
                .execute(&mut *tx)
                .await?;
            }
        }
        // Seen again without change: one statement per chunk.
        for chunk in page.unchanged.chunks(500) {
            let sql = format!(
                "UPDATE {} SET last_seen_run = $1, last_seen_at = $2, missed_passes = 0 \
                 WHERE account_id = $3 AND remote_id IN ({})",
                table.name(),
                placeholders(4, chunk.len())
            );
            let mut q = sqlx::query(&sql)
                .bind(page.run.id)
                .bind(&at)
                .bind(page.account_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        runs::record_errors(&mut tx, page.run.id, page.kind, &page.errors).await?;
        runs::add_counts(&mut tx, &page.run, page.counts).await?;
        if page.checkpoint {
            runs::set_checkpoint(
                &mut tx,
                page.run.id,
                page.kind,
                page.next_cursor.as_deref(),
                page.complete,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` active devices of the account, after `after_id` in id
    /// order, whose details are pending or older than `stale_before`.
    pub async fn devices_needing_details(
        &self,
        account_id: &str,
        stale_before: &str,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<DetailTodo>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.remote_id, d.summary, d.remote_data, r.content_hash, r.changed_run, \
             r.last_seen_run FROM devices r JOIN device_data d ON d.device_id = r.id \
             WHERE r.account_id = $1 AND r.status = 'active' AND r.id > $2 \
             AND (r.needs_details = 1 OR r.details_at IS NULL OR r.details_at < $3) \
             ORDER BY r.id LIMIT $4",
        )
        .bind(account_id)
        .bind(after_id)
        .bind(stale_before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DetailTodo {
                    id: r.try_get("id")?,
                    remote_id: r.try_get("remote_id")?,
                    summary: r.try_get("summary")?,
                    remote_data: r.try_get("remote_data")?,
                    content_hash: r.try_get("content_hash")?,
                    changed_run: r.try_get("changed_run")?,
                    last_seen_run: r.try_get("last_seen_run")?,
                })
            })
            .collect()
    }

    /// Stores a batch of detail reads (and the apps read with them).
    pub async fn write_details(
        &self,
        account_id: &str,
        run: &RunRef<'_>,
        writes: &[DetailWrite],
        counts: RunCounts,
    ) -> Result<(), StoreError> {
        let at = now();
        let proj = Table::Devices.projections();
        let sets: Vec<String> = proj
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 2))
            .collect();
        let n = proj.len() + 2;
        let sql = format!(
            "UPDATE devices SET {}, content_hash = ${n}, needs_details = 0, details_at = ${}, \
             changed_run = CASE WHEN ${} = 1 THEN ${} ELSE changed_run END, \
             updated_at = CASE WHEN ${} = 1 THEN ${} ELSE updated_at END WHERE id = $1",
            sets.join(", "),
            n + 1,
            n + 2,
            n + 3,
            n + 2,
            n + 1,
        );
        let mut tx = self.pool().begin().await?;
        for w in writes {
            let mut q = sqlx::query(&sql).bind(&w.id);
            for v in &w.projections {
                q = q.bind(v.as_deref());
            }
            q.bind(&w.content_hash)
                .bind(&at)
                .bind(w.counts_as_update as i64)
                .bind(run.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE device_data SET record = $2, detail = $3, detail_remote_data = $4 \
                 WHERE device_id = $1",
            )
            .bind(&w.id)
            .bind(&w.record)
            .bind(&w.detail)
            .bind(&w.detail_remote_data)
            .execute(&mut *tx)
            .await?;
            if let Some(apps) = &w.apps {
                replace_apps(&mut tx, account_id, &w.id, apps, &at).await?;
            }
        }
        runs::add_counts(&mut tx, run, counts).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a failed detail read's error without losing its pending flag.
    pub async fn record_detail_errors(
        &self,
        run: &RunRef<'_>,
        errors: &[(Option<String>, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        runs::record_errors(&mut tx, run.id, "details", errors).await?;
        runs::add_counts(
            &mut tx,
            run,
            RunCounts {
                errors: errors.len() as i64,
                ..RunCounts::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` active records of the account not seen by `run_id`.
    pub async fn absent(
        &self,
        table: Table,
        account_id: &str,
        run_id: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, remote_id FROM {} WHERE account_id = $1 AND status = 'active' \
             AND (last_seen_run IS NULL OR last_seen_run <> $2) ORDER BY id LIMIT $3",
            table.name()
        ))
        .bind(account_id)
        .bind(run_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Marks records removed now (a `get` confirmed they are gone).
    pub async fn mark_removed(
        &self,
        table: Table,
        run: &RunRef<'_>,
        ids: &[String],
    ) -> Result<i64, StoreError> {
        let at = now();
        let mut removed = 0;
        let mut tx = self.pool().begin().await?;
        for chunk in ids.chunks(500) {
            let sql = format!(
                "UPDATE {} SET status = 'removed', removed_at = $1, updated_at = $1, changed_run = $2 \
                 WHERE status = 'active' AND id IN ({})",
                table.name(),
                placeholders(3, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(&at).bind(run.id);
            for id in chunk {
                q = q.bind(id);
            }
            removed += q.execute(&mut *tx).await?.rows_affected() as i64;
        }
        runs::add_counts(
            &mut tx,
            run,
            RunCounts {
                removed,
                ..RunCounts::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// After a complete pass: every active record `run_id` did not see has
    /// missed one more pass, and those that missed two are removed (offset
    /// paging can skip a live record once, when another is deleted
    /// mid-walk; it cannot skip it in two passes running).
    pub async fn remove_missing(
        &self,
        table: Table,
        account_id: &str,
        run: &RunRef<'_>,
    ) -> Result<i64, StoreError> {
        let at = now();
        let t = table.name();
        let mut tx = self.pool().begin().await?;
        sqlx::query(&format!(
            "UPDATE {t} SET missed_passes = missed_passes + 1 WHERE account_id = $1 \
             AND status = 'active' AND (last_seen_run IS NULL OR last_seen_run <> $2)"
        ))
        .bind(account_id)
        .bind(run.id)
        .execute(&mut *tx)
        .await?;
        let removed = sqlx::query(&format!(
            "UPDATE {t} SET status = 'removed', removed_at = $3, updated_at = $3, changed_run = $2 \
             WHERE account_id = $1 AND status = 'active' AND missed_passes >= 2"
        ))
        .bind(account_id)
        .bind(run.id)
        .bind(&at)
        .execute(&mut *tx)
        .await?
        .rows_affected() as i64;
        runs::add_counts(
            &mut tx,
            run,
            RunCounts {
                removed,
                ..RunCounts::default()
            },
        )
        .await?;
        // Once per run: a resumed run must not count a second missed pass.
        runs::set_checkpoint(&mut tx, run.id, &removals_step(table), None, true).await?;
        tx.commit().await?;
        Ok(removed)
    }

    /// Links the account's devices to users by exact (case-insensitive)
    /// email, preferring a user of the same account, and to organizations
    /// by remote id.
    pub async fn link(&self, account_id: &str) -> Result<(), StoreError> {
        let user = "COALESCE(\
               (SELECT u.id FROM users u WHERE u.account_id = devices.account_id \
                  AND u.status = 'active' AND u.email = devices.assigned_user_email ORDER BY u.id LIMIT 1), \
               (SELECT u.id FROM users u JOIN accounts a ON a.id = u.account_id \
                  WHERE a.workspace_id = (SELECT workspace_id FROM accounts WHERE id = devices.account_id) \
                  AND u.status = 'active' AND u.email = devices.assigned_user_email ORDER BY u.id LIMIT 1))";
        let org = "(SELECT o.id FROM organizations o WHERE o.account_id = devices.account_id \
               AND o.status = 'active' AND o.remote_id = devices.organization_remote_id)";
        let mut tx = self.pool().begin().await?;
        // Only rows whose link changes are written: a re-sync rewrites nothing.
        for (col, expr) in [("user_id", user), ("organization_id", org)] {
            sqlx::query(&format!(
                "UPDATE devices SET {col} = {expr} WHERE account_id = $1 AND {col} IS DISTINCT FROM {expr}"
            ))
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The checkpoint name marking a run's removals of `table` as done.
pub fn removals_step(table: Table) -> String {
    format!("removals:{}", table.name())
}

/// Replaces a device's stored apps with `apps`.
async fn replace_apps(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    device_id: &str,
    apps: &[AppWrite],
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM apps WHERE device_id = $1")
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    for a in apps {
        sqlx::query(
            "INSERT INTO apps (id, account_id, device_id, remote_id, name, record, remote_data, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (device_id, remote_id) DO NOTHING",
        )
        .bind(record_id("app", device_id, &a.remote_id))
        .bind(account_id)
        .bind(device_id)
        .bind(&a.remote_id)
        .bind(&a.name)
        .bind(&a.record)
        .bind(&a.remote_data)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
