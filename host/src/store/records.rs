//! Writing synced records: pages upserted by (account, remote id) in one
//! transaction with their checkpoint and counts, device details, apps per
//! device, removals, and the links between devices, users and organizations.
//! What to write (merges, hashes, counts) is decided by `sync`.

use std::collections::HashMap;

use sqlx::Row;

use super::runs::{self, RunCounts, RunRef};
use super::{
    Backend, Params, Slot, Store, StoreError, batch_query, child_id, now, record_id,
    rows_per_statement,
};

/// The SQL of a record's `last_seen_at` as callers see it, with `$t` the
/// table's name or alias: a record active in the account's last complete
/// pass was seen at least when that pass started (`seen_through_at`), so
/// re-syncs never rewrite unchanged records to say so. The stored value
/// alone counts once the record missed a pass or went.
macro_rules! last_seen_shown {
    ($t:literal) => {
        concat!(
            "CASE WHEN ",
            $t,
            ".status = 'active' AND ",
            $t,
            ".missed_passes = 0 THEN \
             COALESCE((SELECT s.seen_through_at FROM accounts s WHERE s.id = ",
            $t,
            ".account_id AND s.seen_through_at > ",
            $t,
            ".last_seen_at), ",
            $t,
            ".last_seen_at) ELSE ",
            $t,
            ".last_seen_at END"
        )
    };
}
pub(crate) use last_seen_shown;

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
    /// Every table of synced records.
    pub const ALL: [Table; 3] = [Table::Devices, Table::Users, Table::Organizations];
    /// The SQL table.
    pub fn name(self) -> &'static str {
        match self {
            Table::Devices => "devices",
            Table::Users => "users",
            Table::Organizations => "organizations",
        }
    }
    /// [`last_seen_shown!`] for this table.
    fn last_seen_shown(self) -> &'static str {
        match self {
            Table::Devices => last_seen_shown!("devices"),
            Table::Users => last_seen_shown!("users"),
            Table::Organizations => last_seen_shown!("organizations"),
        }
    }
    /// The listing of its records.
    pub(crate) fn listing(self) -> super::query::Listing {
        match self {
            Table::Devices => super::query::Listing::Devices,
            Table::Users => super::query::Listing::Users,
            Table::Organizations => super::query::Listing::Organizations,
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
                "is_compliant",
            ],
            Table::Users => &["email", "name"],
            Table::Organizations => &["name"],
        }
    }
    /// The projections an index covers. An UPDATE that names one rewrites
    /// its index entry even when the value stays the same, so a detail
    /// write names them only when one changed.
    pub fn indexed_projections(self) -> &'static [&'static str] {
        match self {
            Table::Devices => &["serial_number", "assigned_user_email"],
            Table::Users => &["email"],
            Table::Organizations => &[],
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
    /// Fingerprint of the record as last listed, so an unchanged listing
    /// is recognized without normalizing it (none before migration 0008).
    pub list_hash: Option<String>,
    /// Devices: a detail read is pending.
    pub needs_details: bool,
    /// `active` or `removed`.
    pub status: String,
    /// The last run that wrote it as seen (a run's unchanged records are
    /// in its seen set instead, see [`Store::seen_in_run`]).
    pub last_seen_run: Option<String>,
    /// Whether it missed a complete pass since it was last seen.
    pub missed: bool,
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
    /// Fingerprint of the record as listed.
    pub list_hash: String,
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
    /// Remote ids seen without change: added to the run's seen set, their
    /// rows not written.
    pub unchanged: Vec<String>,
    /// Remote ids seen whose stored record missed a pass (or may have:
    /// records the connector could not map): written as seen, by this run
    /// (`last_seen_run`) and with their `last_seen_at` counting again.
    pub revived: Vec<String>,
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
    /// Hash of the stored app list, if one was stored.
    pub apps_hash: Option<String>,
    /// The stored values of the devices' [`Table::indexed_projections`].
    pub indexed: Vec<Option<String>>,
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
    /// Whether the indexed projections are the stored ones (their index
    /// entries are then left alone).
    pub indexed_unchanged: bool,
    /// The device's apps, replacing what is stored, if they were read and
    /// differ from what is stored.
    pub apps: Option<Vec<AppWrite>>,
    /// Hash of the app list read, if apps were read.
    pub apps_hash: Option<String>,
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
    /// SQL of `remote_id`'s length in bytes.
    fn id_bytes(&self) -> &'static str {
        match self.backend() {
            Backend::Sqlite => "length(CAST(remote_id AS BLOB))",
            Backend::Postgres => "octet_length(remote_id)",
        }
    }

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
        let (summary_hash, needs_details) = if table == Table::Devices {
            ("COALESCE(summary_hash, '')", "needs_details")
        } else {
            ("''", "0")
        };
        let id_bytes = self.id_bytes();
        // One row of text instead of a row per record (a row costs more in
        // the driver than in the database): our own fields, which never
        // hold a space, then the vendor's id after its length in bytes.
        let mut p = Params::new(self.backend());
        let sql = format!(
            "SELECT string_agg(x, '') FROM (SELECT id || ' ' || content_hash || ' ' || status \
             || ' ' || COALESCE(last_seen_run, '') || ' ' || COALESCE(list_hash, '') || ' ' \
             || {summary_hash} || ' ' || {needs_details} || ' ' || missed_passes || ' ' \
             || {id_bytes} || ' ' \
             || remote_id AS x FROM {} WHERE account_id = {} AND remote_id IN ({})) AS rows",
            table.name(),
            p.next(),
            p.list(remote_ids.len()),
        );
        let mut q = sqlx::query_scalar::<_, Option<String>>(&sql).bind(account_id);
        for id in remote_ids {
            q = q.bind(*id);
        }
        let text = q.fetch_one(self.pool()).await?.unwrap_or_default();
        parse_existing(&text)
            .ok_or_else(|| StoreError::Corrupt(format!("unexpected stored {} rows", table.name())))
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
        let mut p = Params::new(self.backend());
        let sql = format!(
            "SELECT r.remote_id, d.detail FROM devices r JOIN device_data d ON d.device_id = r.id \
             WHERE r.account_id = {} AND d.detail IS NOT NULL AND r.remote_id IN ({})",
            p.next(),
            p.list(remote_ids.len())
        );
        let mut q = batch_query(&sql, false).bind(account_id);
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
        let ids: Vec<String> = page
            .upserts
            .iter()
            .map(|w| record_id(page.table.prefix(), page.account_id, &w.remote_id))
            .collect();
        let backend = self.backend();
        let mut tx = self.write_tx().await?;
        upsert_rows(&mut tx, backend, page, &ids, &at).await?;
        if page.table == Table::Devices {
            upsert_device_data(&mut tx, backend, &page.upserts, &ids).await?;
        }
        mark_seen(&mut tx, backend, page, &at).await?;
        add_to_seen(&mut tx, page).await?;
        // Unchanged records look the same until the run ends.
        let generation = match page.upserts.is_empty() && page.revived.is_empty() {
            true => None,
            false => Some(bump_lists(&mut tx, page.account_id, page.table).await?),
        };
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
        if let Some(generation) = generation {
            let revived = page
                .revived
                .iter()
                .map(|r| record_id(page.table.prefix(), page.account_id, r));
            let written = ids.into_iter().chain(revived).map(String::into_boxed_str);
            self.note_written(page.account_id, generation, page.table, written);
        }
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
        if after_id.is_empty() && !self.details_due(account_id, stale_before).await? {
            return Ok(Vec::new());
        }
        let indexed = Table::Devices.indexed_projections();
        let sql = format!(
            "SELECT r.id, r.remote_id, d.summary, d.remote_data, r.content_hash, r.changed_run, \
             r.last_seen_run, r.apps_hash, {} FROM devices r \
             JOIN device_data d ON d.device_id = r.id \
             WHERE r.account_id = $1 AND r.status = 'active' AND r.id > $2 \
             AND (r.needs_details = 1 OR r.details_at IS NULL OR r.details_at < $3) \
             ORDER BY r.id LIMIT $4",
            indexed
                .iter()
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = sqlx::query(&sql)
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
                    apps_hash: r.try_get("apps_hash")?,
                    indexed: indexed
                        .iter()
                        .map(|c| r.try_get(*c))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect()
    }

    /// Whether any active device of the account needs a detail read, from
    /// the partial indexes of pending and of dated details alone.
    async fn details_due(&self, account_id: &str, stale_before: &str) -> Result<bool, StoreError> {
        // Without statistics SQLite may pick `devices_unmarked`, also on
        // `account_id` and covering every active device, and read them all.
        let pending = match self.backend() {
            Backend::Sqlite => "devices INDEXED BY devices_details_pending",
            Backend::Postgres => "devices",
        };
        let sql = format!(
            "SELECT 1 FROM {pending} WHERE account_id = $1 AND status = 'active' \
             AND (needs_details = 1 OR details_at IS NULL) \
             UNION ALL SELECT 1 FROM devices WHERE account_id = $1 AND status = 'active' \
             AND needs_details = 0 AND details_at IS NOT NULL AND details_at < $2 LIMIT 1"
        );
        let due: Option<i64> = sqlx::query_scalar(&sql)
            .bind(account_id)
            .bind(stale_before)
            .fetch_optional(self.pool())
            .await?;
        Ok(due.is_some())
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
        let backend = self.backend();
        let mut tx = self.write_tx().await?;
        update_detailed_devices(&mut tx, backend, run.id, &at, writes).await?;
        update_detail_data(&mut tx, backend, writes).await?;
        replace_apps(&mut tx, backend, account_id, writes, &at).await?;
        let generation = bump_lists(&mut tx, account_id, Table::Devices).await?;
        runs::add_counts(&mut tx, run, counts).await?;
        tx.commit().await?;
        let written = writes.iter().map(|w| w.id.as_str().into());
        self.note_written(account_id, generation, Table::Devices, written);
        Ok(())
    }

    /// Records a failed detail read's error without losing its pending flag.
    pub async fn record_detail_errors(
        &self,
        run: &RunRef<'_>,
        errors: &[(Option<String>, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
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

    /// The active records of the account (id, remote id) whose rows
    /// `run_id` did not write as seen: those not in its seen set either
    /// are what a complete pass missed.
    pub async fn unmarked(
        &self,
        table: Table,
        account_id: &str,
        run_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        // One row of text, as in `existing`: 100,000 rows cost more in the
        // driver than reading them.
        let sql = format!(
            "SELECT string_agg(x, '') FROM (SELECT id || ' ' || {} || ' ' || remote_id AS x \
             FROM {} WHERE account_id = $1 AND status = 'active' \
             AND (last_seen_run IS NULL OR last_seen_run <> $2)) AS rows",
            self.id_bytes(),
            table.name()
        );
        let text: Option<String> = sqlx::query_scalar(&sql)
            .bind(account_id)
            .bind(run_id)
            .fetch_one(self.pool())
            .await?;
        parse_id_pairs(text.as_deref().unwrap_or_default())
            .ok_or_else(|| StoreError::Corrupt(format!("unexpected stored {} rows", table.name())))
    }

    /// How many active records of the account `run_id` did not write as
    /// seen: [`Store::unmarked`] counted, from its partial index alone.
    pub async fn unmarked_count(
        &self,
        table: Table,
        account_id: &str,
        run_id: &str,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE account_id = $1 AND status = 'active' \
             AND (last_seen_run IS NULL OR last_seen_run <> $2)",
            table.name()
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(account_id)
            .bind(run_id)
            .fetch_one(self.pool())
            .await?)
    }

    /// The remote ids a run saw unchanged, by table (see
    /// [`PageWrite::unchanged`]).
    pub async fn seen_in_run(
        &self,
        run_id: &str,
    ) -> Result<HashMap<Table, Vec<String>>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT table_name, remote_ids FROM run_seen WHERE run_id = $1")
                .bind(run_id)
                .fetch_all(self.pool())
                .await?;
        let mut seen: HashMap<Table, Vec<String>> = HashMap::new();
        for (name, ids) in rows {
            let table = Table::ALL
                .into_iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| StoreError::Corrupt(format!("seen set of table {name}")))?;
            let ids: Vec<String> = serde_json::from_str(&ids)
                .map_err(|e| StoreError::Corrupt(format!("seen set of run {run_id}: {e}")))?;
            seen.entry(table).or_default().extend(ids);
        }
        Ok(seen)
    }

    /// Marks records removed now (a `get` confirmed they are gone).
    pub async fn mark_removed(
        &self,
        table: Table,
        account_id: &str,
        run: &RunRef<'_>,
        ids: &[String],
    ) -> Result<i64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let at = now();
        let mut removed = 0;
        let mut tx = self.write_tx().await?;
        for chunk in ids.chunks(500) {
            let mut p = Params::new(self.backend());
            let sql = format!(
                "UPDATE {} SET status = 'removed', removed_at = {}, updated_at = {}, \
                 changed_run = {}, last_seen_at = {} WHERE status = 'active' AND id IN ({})",
                table.name(),
                p.next(),
                p.next(),
                p.next(),
                table.last_seen_shown(),
                p.list(chunk.len())
            );
            let mut q = batch_query(&sql, chunk.len() == 500)
                .bind(&at)
                .bind(&at)
                .bind(run.id);
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
        let generation = bump_lists(&mut tx, account_id, table).await?;
        tx.commit().await?;
        let written = ids.iter().map(|id| id.as_str().into());
        self.note_written(account_id, generation, table, written);
        Ok(removed)
    }

    /// After a complete pass: each of `ids` (active records the pass did
    /// not see) has missed one more pass, and those that missed two are
    /// removed (offset paging can skip a live record once, when another is
    /// deleted mid-walk; it cannot skip it in two passes running). Their
    /// `last_seen_at` stops following the account's passes.
    pub async fn remove_missing(
        &self,
        table: Table,
        account_id: &str,
        run: &RunRef<'_>,
        ids: &[String],
    ) -> Result<i64, StoreError> {
        let at = now();
        let t = table.name();
        let mut tx = self.write_tx().await?;
        let mut removed = 0;
        // `missed_passes` and `status` on the right of `SET` are the
        // values before the update.
        for chunk in ids.chunks(500) {
            // Placeholders in text order (anonymous on SQLite).
            let mut p = Params::new(self.backend());
            let sql = format!(
                "UPDATE {t} SET missed_passes = missed_passes + 1, last_seen_at = {}, \
                 status = CASE WHEN missed_passes >= 1 THEN 'removed' ELSE status END, \
                 removed_at = CASE WHEN missed_passes >= 1 THEN {} ELSE removed_at END, \
                 updated_at = CASE WHEN missed_passes >= 1 THEN {} ELSE updated_at END, \
                 changed_run = CASE WHEN missed_passes >= 1 THEN {} ELSE changed_run END \
                 WHERE account_id = {} AND status = 'active' AND id IN ({}) \
                 RETURNING status",
                table.last_seen_shown(),
                p.next(),
                p.next(),
                p.next(),
                p.next(),
                p.list(chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql)
                .bind(&at)
                .bind(&at)
                .bind(run.id)
                .bind(account_id);
            for id in chunk {
                q = q.bind(id);
            }
            removed += q
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .filter(|s| *s == "removed")
                .count() as i64;
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
        // Once per run: a resumed run must not count a second missed pass.
        runs::set_checkpoint(&mut tx, run.id, &removals_step(table), None, true).await?;
        let generation = match ids.is_empty() {
            true => None,
            false => Some(bump_lists(&mut tx, account_id, table).await?),
        };
        tx.commit().await?;
        if let Some(generation) = generation {
            let written = ids.iter().map(|id| id.as_str().into());
            self.note_written(account_id, generation, table, written);
        }
        Ok(removed)
    }

    /// Links the account's devices as [`Store::link`] does, unless nothing
    /// a link depends on changed since the account's last link: this run
    /// created, updated and removed nothing, and the users of the
    /// workspace's accounts are as they were. Returns whether it linked.
    pub async fn link_if_changed(
        &self,
        account_id: &str,
        run: &RunRef<'_>,
    ) -> Result<bool, StoreError> {
        let changes: i64 =
            sqlx::query_scalar("SELECT created + updated + removed FROM sync_runs WHERE id = $1")
                .bind(run.id)
                .fetch_one(self.pool())
                .await?;
        // The users of the workspace's accounts as they stand: an account
        // added, removed, or whose users changed makes another signature.
        let generations: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, users_generation FROM accounts WHERE workspace_id = \
             (SELECT workspace_id FROM accounts WHERE id = $1) ORDER BY id",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        let signature = generations
            .iter()
            .map(|(id, g)| format!("{id}:{g}"))
            .collect::<Vec<_>>()
            .join(" ");
        let linked: Option<String> =
            sqlx::query_scalar("SELECT link_signature FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_one(self.pool())
                .await?;
        if changes == 0 && linked.as_deref() == Some(signature.as_str()) {
            return Ok(false);
        }
        self.link(account_id).await?;
        // The users as they were before linking: a change made meanwhile
        // makes the next run link again.
        sqlx::query("UPDATE accounts SET link_signature = $2 WHERE id = $1")
            .bind(account_id)
            .bind(&signature)
            .execute(self.pool())
            .await?;
        Ok(true)
    }

    /// Links the account's devices to users by exact (case-insensitive)
    /// email, preferring a user of the same account, and to organizations
    /// by remote id.
    pub async fn link(&self, account_id: &str) -> Result<(), StoreError> {
        // `|| ''` makes `u.id` and `u.account_id` expressions no index
        // gives, so SQLite finds the user by email whatever its planner
        // guesses without statistics; by the account's `(account_id, id)`
        // index it would check every user's email, once per device
        // (minutes at 20,000 devices).
        let user = "COALESCE(\
               (SELECT u.id FROM users u WHERE u.account_id || '' = devices.account_id \
                  AND u.status = 'active' AND u.email = devices.assigned_user_email \
                  ORDER BY u.id || '' LIMIT 1), \
               (SELECT u.id FROM users u JOIN accounts a ON a.id = u.account_id \
                  WHERE a.workspace_id = (SELECT workspace_id FROM accounts WHERE id = devices.account_id) \
                  AND u.status = 'active' AND u.email = devices.assigned_user_email \
                  ORDER BY u.id || '' LIMIT 1))";
        let org = "(SELECT o.id FROM organizations o WHERE o.account_id = devices.account_id \
               AND o.status = 'active' AND o.remote_id = devices.organization_remote_id)";
        let mut tx = self.write_tx().await?;
        let mut linked: Vec<String> = Vec::new();
        // Only rows whose link changes are written: a re-sync rewrites nothing.
        for (col, expr) in [("user_id", user), ("organization_id", org)] {
            linked.extend(
                sqlx::query_scalar::<_, String>(&format!(
                    "UPDATE devices SET {col} = {expr} WHERE account_id = $1 \
                     AND {col} IS DISTINCT FROM {expr} RETURNING id"
                ))
                .bind(account_id)
                .fetch_all(&mut *tx)
                .await?,
            );
        }
        let generation = bump_lists(&mut tx, account_id, Table::Devices).await?;
        tx.commit().await?;
        let written = linked.into_iter().map(String::into_boxed_str);
        self.note_written(account_id, generation, Table::Devices, written);
        Ok(())
    }
}

/// Splits a text read as one row (see [`Store::existing`]): per record,
/// `N` fields without spaces, then the remote id's length in bytes, each
/// followed by a space, then the remote id (which may hold anything).
fn records_text<const N: usize>(mut rest: &str) -> Option<Vec<([&str; N], &str)>> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut fields = [""; N];
        for v in &mut fields {
            let (field, tail) = rest.split_once(' ')?;
            *v = field;
            rest = tail;
        }
        let (len, tail) = rest.split_once(' ')?;
        let len: usize = len.parse().ok()?;
        out.push((fields, tail.get(..len)?));
        rest = &tail[len..];
    }
    Some(out)
}

/// Reads [`Store::existing`]'s text: eight fields a record.
fn parse_existing(text: &str) -> Option<HashMap<String, Existing>> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let rows = records_text::<8>(text)?;
    let existing = rows.into_iter().map(|(fields, remote_id)| {
        let [
            id,
            content_hash,
            status,
            last_seen_run,
            list_hash,
            summary_hash,
            needs,
            missed,
        ] = fields;
        let e = Existing {
            id: id.to_owned(),
            content_hash: content_hash.to_owned(),
            status: status.to_owned(),
            last_seen_run: some(last_seen_run),
            list_hash: some(list_hash),
            summary_hash: some(summary_hash),
            needs_details: needs == "1",
            missed: missed != "0",
        };
        (remote_id.to_owned(), e)
    });
    Some(existing.collect())
}

/// Reads [`Store::unmarked`]'s text: the id, then the remote id.
fn parse_id_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let rows = records_text::<1>(text)?;
    Some(
        rows.into_iter()
            .map(|([id], remote_id)| (id.to_owned(), remote_id.to_owned()))
            .collect(),
    )
}

/// The checkpoint name marking a run's removals of `table` as done.
pub fn removals_step(table: Table) -> String {
    format!("removals:{}", table.name())
}

type Tx = super::WriteTx;

/// The columns of a page upsert into `table`, in bind order.
fn upsert_columns(table: Table) -> Vec<(&'static str, Slot)> {
    let devices = table == Table::Devices;
    let mut cols = vec![
        ("id", Slot::Bind),
        ("account_id", Slot::Bind),
        ("remote_id", Slot::Bind),
    ];
    cols.extend(table.projections().iter().map(|c| (*c, Slot::Bind)));
    if !devices {
        cols.extend([("record", Slot::Bind), ("remote_data", Slot::Bind)]);
    }
    cols.extend([
        ("content_hash", Slot::Bind),
        ("status", Slot::Sql("'active'")),
        ("missed_passes", Slot::Sql("0")),
        ("last_seen_run", Slot::Bind),
        ("changed_run", Slot::Bind),
        ("first_seen_at", Slot::Bind),
        ("last_seen_at", Slot::Bind),
        ("updated_at", Slot::Bind),
        ("list_hash", Slot::Bind),
    ]);
    if devices {
        cols.extend([("summary_hash", Slot::Bind), ("needs_details", Slot::Bind)]);
    }
    cols
}

/// `INSERT ... ON CONFLICT DO UPDATE` of `rows` records into `table`.
fn upsert_sql(backend: Backend, table: Table, rows: usize) -> String {
    let cols = upsert_columns(table);
    let slots: Vec<Slot> = cols.iter().map(|c| c.1).collect();
    let updates: Vec<String> = cols
        .iter()
        .map(|c| c.0)
        .filter(|c| !matches!(*c, "id" | "account_id" | "remote_id" | "first_seen_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .chain(std::iter::once("removed_at = NULL".to_owned()))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {} ON CONFLICT (account_id, remote_id) DO UPDATE SET {}",
        table.name(),
        cols.iter().map(|c| c.0).collect::<Vec<_>>().join(", "),
        Params::new(backend).tuples(rows, &slots),
        updates.join(", ")
    )
}

/// Inserts or updates a page's new and changed records, many per statement.
async fn upsert_rows(
    tx: &mut Tx,
    backend: Backend,
    page: &PageWrite<'_>,
    ids: &[String],
    at: &str,
) -> Result<(), StoreError> {
    let per_row = upsert_columns(page.table)
        .iter()
        .filter(|c| c.1 == Slot::Bind)
        .count();
    let n = rows_per_statement(per_row, 0);
    for (rows, ids) in page.upserts.chunks(n).zip(ids.chunks(n)) {
        let sql = upsert_sql(backend, page.table, rows.len());
        let mut q = batch_query(&sql, rows.len() == n);
        for (w, id) in rows.iter().zip(ids) {
            q = q.bind(id).bind(page.account_id).bind(&w.remote_id);
            for v in &w.projections {
                q = q.bind(v.as_deref());
            }
            if w.device.is_none() {
                q = q.bind(&w.record).bind(&w.remote_data);
            }
            q = q
                .bind(&w.content_hash)
                .bind(page.run.id)
                .bind(page.run.id)
                .bind(at)
                .bind(at)
                .bind(at)
                .bind(&w.list_hash);
            if let Some(d) = &w.device {
                q = q.bind(&d.summary_hash).bind(d.needs_details as i64);
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Bumps the account's `list_generation` and returns it: lists kept in
/// memory for the account are stale once this transaction commits (until
/// told what it wrote, see [`Store::note_written`]); and for writes of
/// `Users`, its `users_generation`, so that devices are linked again.
/// Called last in a transaction: its records locked before the account's
/// row, the order removing an account takes too (PostgreSQL would
/// otherwise deadlock).
async fn bump_lists(tx: &mut Tx, account_id: &str, table: Table) -> Result<i64, StoreError> {
    let users = match table {
        Table::Users => ", users_generation = users_generation + 1",
        _ => "",
    };
    Ok(sqlx::query_scalar(&format!(
        "UPDATE accounts SET list_generation = list_generation + 1{users} WHERE id = $1 \
         RETURNING list_generation"
    ))
    .bind(account_id)
    .fetch_one(&mut **tx)
    .await?)
}

/// Stores the listed JSON of a page's new and changed devices.
async fn upsert_device_data(
    tx: &mut Tx,
    backend: Backend,
    rows: &[RowWrite],
    ids: &[String],
) -> Result<(), StoreError> {
    let n = rows_per_statement(4, 0);
    for (rows, ids) in rows.chunks(n).zip(ids.chunks(n)) {
        let sql = format!(
            "INSERT INTO device_data (device_id, record, summary, remote_data) VALUES {} \
             ON CONFLICT (device_id) DO UPDATE SET record = excluded.record, \
             summary = excluded.summary, remote_data = excluded.remote_data",
            Params::new(backend).tuples(rows.len(), &[Slot::Bind; 4])
        );
        let mut q = batch_query(&sql, rows.len() == n);
        for (w, id) in rows.iter().zip(ids) {
            let summary = w.device.as_ref().map(|d| d.summary.as_str());
            q = q
                .bind(id)
                .bind(&w.record)
                .bind(summary.unwrap_or("{}"))
                .bind(&w.remote_data);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Adds a page's unchanged records to the run's seen set.
async fn add_to_seen(tx: &mut Tx, page: &PageWrite<'_>) -> Result<(), StoreError> {
    if page.unchanged.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO run_seen (run_id, table_name, remote_ids) VALUES ($1, $2, $3)")
        .bind(page.run.id)
        .bind(page.table.name())
        .bind(serde_json::to_string(&page.unchanged).expect("strings serialize"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Marks a page's revived records seen by this run, many per statement.
async fn mark_seen(
    tx: &mut Tx,
    backend: Backend,
    page: &PageWrite<'_>,
    at: &str,
) -> Result<(), StoreError> {
    let per_statement = rows_per_statement(1, 3);
    for chunk in page.revived.chunks(per_statement) {
        let mut p = Params::new(backend);
        let sql = format!(
            "UPDATE {} SET last_seen_run = {}, last_seen_at = {}, missed_passes = 0 \
             WHERE account_id = {} AND remote_id IN ({})",
            page.table.name(),
            p.next(),
            p.next(),
            p.next(),
            p.list(chunk.len())
        );
        let mut q = batch_query(&sql, chunk.len() == per_statement)
            .bind(page.run.id)
            .bind(at)
            .bind(page.account_id);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes the columns of detail reads to `devices`. Writes whose indexed
/// projections are unchanged name only the others (see
/// [`Table::indexed_projections`]): on a first sync that is nearly every
/// device, and it spares two index pages per device.
async fn update_detailed_devices(
    tx: &mut Tx,
    backend: Backend,
    run_id: &str,
    at: &str,
    writes: &[DetailWrite],
) -> Result<(), StoreError> {
    let all = Table::Devices.projections();
    let (same, moved): (Vec<&DetailWrite>, Vec<&DetailWrite>) =
        writes.iter().partition(|w| w.indexed_unchanged);
    let indexed = Table::Devices.indexed_projections();
    let unindexed: Vec<usize> = (0..all.len())
        .filter(|&i| !indexed.contains(&all[i]))
        .collect();
    let every: Vec<usize> = (0..all.len()).collect();
    for (group, columns) in [(same, unindexed), (moved, every)] {
        update_devices_columns(tx, backend, run_id, at, &group, &columns).await?;
    }
    Ok(())
}

/// [`update_detailed_devices`] for one set of projection columns (indexes
/// into [`Table::projections`]).
async fn update_devices_columns(
    tx: &mut Tx,
    backend: Backend,
    run_id: &str,
    at: &str,
    writes: &[&DetailWrite],
    columns: &[usize],
) -> Result<(), StoreError> {
    let proj = Table::Devices.projections();
    // VALUES columns are `column1`... in both databases: the id, the
    // projections, the content hash, counts-as-update and the apps hash.
    let col = |i: usize| format!("v.column{}", i + 1);
    let per_row = columns.len() + 4;
    let sets: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, &c)| format!("{} = {}", proj[c], col(i + 1)))
        .collect();
    let per_statement = rows_per_statement(per_row, 3);
    for chunk in writes.chunks(per_statement) {
        let mut p = Params::new(backend);
        let sql = format!(
            "UPDATE devices SET {}, content_hash = {}, needs_details = 0, details_at = {}, \
             changed_run = CASE WHEN {u} = 1 THEN {} ELSE devices.changed_run END, \
             updated_at = CASE WHEN {u} = 1 THEN {} ELSE devices.updated_at END, \
             apps_hash = COALESCE({}, devices.apps_hash) \
             FROM (VALUES {}) AS v WHERE devices.id = v.column1",
            sets.join(", "),
            col(columns.len() + 1),
            p.next(),
            p.next(),
            p.next(),
            col(columns.len() + 3),
            p.tuples(chunk.len(), &vec![Slot::Bind; per_row]),
            u = col(columns.len() + 2),
        );
        let mut q = batch_query(&sql, chunk.len() == per_statement)
            .bind(at)
            .bind(run_id)
            .bind(at);
        for w in chunk {
            q = q.bind(&w.id);
            for &c in columns {
                q = q.bind(w.projections[c].as_deref());
            }
            q = q
                .bind(&w.content_hash)
                .bind(w.counts_as_update as i64)
                .bind(w.apps_hash.as_deref());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes the merged record and the detail JSON of detail reads.
async fn update_detail_data(
    tx: &mut Tx,
    backend: Backend,
    writes: &[DetailWrite],
) -> Result<(), StoreError> {
    let per_statement = rows_per_statement(4, 0);
    for chunk in writes.chunks(per_statement) {
        let sql = format!(
            "UPDATE device_data SET record = v.column2, detail = v.column3, \
             detail_remote_data = v.column4 FROM (VALUES {}) AS v \
             WHERE device_data.device_id = v.column1",
            Params::new(backend).tuples(chunk.len(), &[Slot::Bind; 4])
        );
        let mut q = batch_query(&sql, chunk.len() == per_statement);
        for w in chunk {
            q = q
                .bind(&w.id)
                .bind(&w.record)
                .bind(&w.detail)
                .bind(&w.detail_remote_data);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Replaces the stored apps of the devices whose app list is written.
async fn replace_apps(
    tx: &mut Tx,
    backend: Backend,
    account_id: &str,
    writes: &[DetailWrite],
    at: &str,
) -> Result<(), StoreError> {
    let devices: Vec<&DetailWrite> = writes.iter().filter(|w| w.apps.is_some()).collect();
    let per_statement = rows_per_statement(1, 0);
    for chunk in devices.chunks(per_statement) {
        let sql = format!(
            "DELETE FROM apps WHERE device_id IN ({})",
            Params::new(backend).list(chunk.len())
        );
        let mut q = batch_query(&sql, chunk.len() == per_statement);
        for w in chunk {
            q = q.bind(&w.id);
        }
        q.execute(&mut **tx).await?;
    }
    let apps: Vec<(&str, &AppWrite)> = devices
        .iter()
        .flat_map(|w| w.apps.iter().flatten().map(|a| (w.id.as_str(), a)))
        .collect();
    let per_statement = rows_per_statement(8, 0);
    for chunk in apps.chunks(per_statement) {
        let sql = format!(
            "INSERT INTO apps (id, account_id, device_id, remote_id, name, record, remote_data, \
             updated_at) VALUES {} ON CONFLICT (device_id, remote_id) DO NOTHING",
            Params::new(backend).tuples(chunk.len(), &[Slot::Bind; 8])
        );
        let mut q = batch_query(&sql, chunk.len() == per_statement);
        for (device_id, a) in chunk {
            q = q
                .bind(child_id("app", device_id, &a.remote_id))
                .bind(account_id)
                .bind(*device_id)
                .bind(&a.remote_id)
                .bind(&a.name)
                .bind(&a.record)
                .bind(&a.remote_data)
                .bind(at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_text_survives_any_remote_id() {
        // Vendor ids may hold the separator and multi-byte characters.
        let text = "dev_a h1 active run_1 f1 s1 1 0 5 a b c\
                    dev_b h2 removed    0 2 3 ü ";
        let rows = parse_existing(text).unwrap();
        assert_eq!(rows.len(), 2);
        let a = &rows["a b c"];
        assert_eq!(
            (a.id.as_str(), a.status.as_str(), a.needs_details),
            ("dev_a", "active", true)
        );
        assert_eq!(a.last_seen_run.as_deref(), Some("run_1"));
        assert_eq!(a.list_hash.as_deref(), Some("f1"));
        let b = &rows["ü "];
        assert_eq!(
            (b.last_seen_run.as_ref(), b.list_hash.as_ref()),
            (None, None)
        );
        assert_eq!(b.summary_hash, None);
        assert!(!b.needs_details);
        assert!(!a.missed && b.missed);
        assert!(parse_existing("dev_a h1 active run_1 f1 s1 1 0 9 short").is_none());
        assert!(parse_existing("").unwrap().is_empty());
        let pairs = parse_id_pairs("dev_a 5 a b cdev_b 2 ü").unwrap();
        assert_eq!(
            pairs,
            [
                ("dev_a".into(), "a b c".into()),
                ("dev_b".into(), "ü".into())
            ]
        );
        assert!(parse_id_pairs("dev_a 9 short").is_none());
    }
}
