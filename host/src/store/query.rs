//! Reading the inventory: filtered, keyset-paged lists of devices, users,
//! apps and organizations, as the normalized JSON callers see.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use std::sync::Arc;

use super::list_cache::{Cached, Claimed, ListCache, SnapRow, Snapshot, merged};
use super::listed_accounts::{AccountState, Accounts};
use super::render::{AccountNames, Template, fields, record_json, render};
use super::{Store, StoreError};

/// What a list is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listing {
    /// Devices.
    Devices,
    /// Users.
    Users,
    /// Installed apps.
    Apps,
    /// Organizations.
    Organizations,
}

impl Listing {
    fn table(self) -> &'static str {
        match self {
            Listing::Devices => "devices",
            Listing::Users => "users",
            Listing::Apps => "apps",
            Listing::Organizations => "organizations",
        }
    }

    /// The table alias whose `record` column holds the listing's JSON.
    fn json(self) -> &'static str {
        match self {
            Listing::Devices => "d",
            _ => "r",
        }
    }

    /// The column that changes whenever the stored record does (what
    /// [`ListCache`] entries are valid for), if the listing has one.
    fn version(self) -> Option<&'static str> {
        match self {
            Listing::Apps => None,
            _ => Some("r.content_hash"),
        }
    }
}

/// Filters; each applies where the listing has the field.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Account name or id.
    pub account: Option<String>,
    /// `active` (default for lists), `removed`, or `None` for both.
    pub status: Option<String>,
    /// Device platform (`macos`, ...).
    pub platform: Option<String>,
    /// Device type (`laptop`, ...).
    pub device_type: Option<String>,
    /// Serial number (exact, case-insensitive).
    pub serial: Option<String>,
    /// Assigned user's or user's email (exact, case-insensitive).
    pub email: Option<String>,
    /// Apps of this device (mdmhub id or remote id).
    pub device: Option<String>,
    /// Only ids after this one (keyset cursor).
    pub after: Option<String>,
    /// At most this many.
    pub limit: i64,
    /// Workspace id; `None` is the default workspace (the CLI's).
    pub workspace: Option<String>,
    /// Only the record with this mdmhub id (a single read).
    pub id: Option<String>,
    /// Only records updated at or after this stored time (see [`super::stamp`]).
    pub updated_since: Option<String>,
    /// Leave `remote_data` out: it is most of a record's size.
    pub omit_remote_data: bool,
}

/// One stored record in the shape callers see.
pub type Json = Map<String, Value>;

/// A page of records as JSON text (see [`Store::list_text`]).
#[derive(Debug, Default)]
pub struct TextPage {
    /// The records, comma-separated: the inside of a JSON array.
    pub records: Vec<u8>,
    /// How many records `records` holds.
    pub count: usize,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// More accounts than this in one list are read with one sorted query
/// rather than one ordered range per account.
const MAX_RANGES: usize = 64;

/// A listed record's `last_seen_at` (see `last_seen_shown!`).
const LAST_SEEN: &str = super::records::last_seen_shown!("r");

/// mdmhub's columns of each listing, as `(field, column)`, that records
/// show beside the stored record (with `account` and `connector`); `id`
/// and `account_id` first.
fn meta_columns(listing: Listing) -> &'static [(&'static str, &'static str)] {
    match listing {
        Listing::Devices => &[
            ("id", "r.id"),
            ("account_id", "r.account_id"),
            ("updated_at", "r.updated_at"),
            ("status", "r.status"),
            ("first_seen_at", "r.first_seen_at"),
            ("last_seen_at", LAST_SEEN),
            ("removed_at", "r.removed_at"),
            ("user_id", "r.user_id"),
            ("organization_id", "r.organization_id"),
        ],
        Listing::Apps => &[
            ("id", "r.id"),
            ("account_id", "r.account_id"),
            ("updated_at", "r.updated_at"),
            ("device_id", "r.device_id"),
        ],
        Listing::Users | Listing::Organizations => &[
            ("id", "r.id"),
            ("account_id", "r.account_id"),
            ("updated_at", "r.updated_at"),
            ("status", "r.status"),
            ("first_seen_at", "r.first_seen_at"),
            ("last_seen_at", LAST_SEEN),
            ("removed_at", "r.removed_at"),
        ],
    }
}

/// Separates the rows of a page read as one text (see
/// [`Store::list_text`]); like [`UNIT`], a control character that
/// `serde_json` never leaves unescaped in the text it writes.
const RECORD: char = '\u{1e}';
/// Separates the values of a row read as text.
const UNIT: char = '\u{1f}';

/// A page's query: its `FROM ... WHERE` (with `r` the listing's table),
/// bound values, and the accounts its rows may belong to.
struct Plan {
    /// `FROM` the listing's table, aliased `r`.
    from: String,
    /// The join that reads the listing's JSON (devices keep it in `device_data`).
    join: &'static str,
    /// `WHERE` and its conditions.
    wheres: String,
    binds: Vec<String>,
    accounts: Vec<AccountNames>,
    /// Rows read: one more than the page, to tell if another follows.
    limit: i64,
}

impl Store {
    /// A filtered page of `listing`, in id order, and the cursor of the next page.
    pub async fn list(
        &self,
        listing: Listing,
        f: &Filter,
    ) -> Result<(Vec<Json>, Option<String>), StoreError> {
        let Some(plan) = self.plan(listing, f).await? else {
            return Ok((Vec::new(), None));
        };
        let (rows, next) = self.rows(listing, f, &plan).await?;
        let out = rows
            .iter()
            .map(|r| {
                row_json(
                    listing,
                    r,
                    account_of(&plan.accounts, r)?,
                    !f.omit_remote_data,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((out, next))
    }

    /// [`Store::list`] as JSON text: the same bytes `serde_json` makes of
    /// [`Store::list`]'s records, made without parsing the stored records
    /// (each is its stored text with mdmhub's fields spliced in).
    ///
    /// Without `remote_data`, the page is read as one text value (rows and
    /// values joined by control characters): one row from the database
    /// instead of one per record, each of which would cost a hand-over
    /// between the database's thread and the caller's.
    pub async fn list_text(&self, listing: Listing, f: &Filter) -> Result<TextPage, StoreError> {
        let (names, states) = self.listed_accounts(f).await?;
        if f.omit_remote_data
            && let (Some(cache), Some(version)) = (self.list_cache.get(), listing.version())
            && !names.is_empty()
            && let Some(page) = self
                .cached(listing, f, (&names, &states), cache, version)
                .await?
        {
            return Ok(page);
        }
        let Some(plan) = plan_for(listing, f, names, None) else {
            return Ok(TextPage::default());
        };
        if f.omit_remote_data
            && let Some(page) = self.joined(listing, &plan).await?
        {
            return Ok(page);
        }
        let (rows, next) = self.rows(listing, f, &plan).await?;
        let mut records = Vec::with_capacity(rows.len() * 1536);
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                records.push(b',');
            }
            let values = meta_columns(listing)
                .iter()
                .map(|(field, _)| Ok((*field, r.try_get::<Option<String>, _>(*field)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let values: Vec<(&str, Option<&str>)> =
                values.iter().map(|(k, v)| (*k, v.as_deref())).collect();
            let remote = match f.omit_remote_data {
                true => None,
                false => Some(remote_value(listing, r)?),
            };
            let record: String = r.try_get("record")?;
            render(
                &record,
                &values,
                account_of(&plan.accounts, r)?,
                remote.as_ref(),
                &mut records,
            );
        }
        Ok(TextPage {
            records,
            count: rows.len(),
            next,
        })
    }

    /// The query of a page, or `None` if the caller's workspace has no
    /// account to list.
    ///
    /// The workspace's accounts are read first, so that the page is read
    /// in id order from an `(account_id, id)` index: one range for one
    /// account, ranges merged for several. Joining `accounts` and sorting
    /// instead would read (and sort) every record of the workspace for
    /// each page.
    async fn plan(&self, listing: Listing, f: &Filter) -> Result<Option<Plan>, StoreError> {
        let (names, _) = self.listed_accounts(f).await?;
        Ok(plan_for(listing, f, names, None))
    }

    /// The accounts a list reads (the caller's workspace's, or the one
    /// named), by id.
    async fn listed_accounts(&self, f: &Filter) -> Result<Accounts, StoreError> {
        let workspace = f
            .workspace
            .as_deref()
            .unwrap_or(super::accounts::DEFAULT_WORKSPACE);
        self.accounts_of(workspace, f.account.as_deref()).await
    }

    /// A page's rows (`record`, `remote_data` if asked for, and
    /// [`meta_columns`]) and the next cursor.
    async fn rows(
        &self,
        listing: Listing,
        f: &Filter,
        plan: &Plan,
    ) -> Result<(Vec<AnyRow>, Option<String>), StoreError> {
        let remote = match (listing, f.omit_remote_data) {
            (_, true) => String::new(),
            (Listing::Devices, false) => ", d.remote_data, d.detail_remote_data".into(),
            (_, false) => ", r.remote_data".into(),
        };
        let meta = meta_select(listing);
        let sql = format!(
            "SELECT {meta}, {}.record{remote} {}{} {} ORDER BY r.id LIMIT {}",
            listing.json(),
            plan.from,
            plan.join,
            plan.wheres,
            plan.limit
        );
        let mut q = sqlx::query(&sql);
        for b in &plan.binds {
            q = q.bind(b);
        }
        let mut rows = q.fetch_all(self.reads()).await?;
        let page = plan.limit as usize - 1;
        let next = if rows.len() > page {
            rows.truncate(page);
            match rows.last() {
                Some(r) => Some(r.try_get::<String, _>("id")?),
                None => None,
            }
        } else {
            None
        };
        Ok((rows, next))
    }

    /// The rows `sql` selects as `x` (each a [`row_text`]) read as one
    /// text, the rows joined by [`RECORD`] in no particular order: one row
    /// from the database instead of one per record, each of which would
    /// cost a hand-over between the database's thread and the caller's.
    /// `sql` names the separators `$n+1` ([`UNIT`]) and `$n+2` ([`RECORD`])
    /// after its `n` bound values.
    async fn aggregated(&self, sql: &str, binds: &[&str]) -> Result<String, StoreError> {
        let sql = format!(
            "SELECT string_agg(p.x, ${}) FROM ({sql}) p",
            binds.len() + 2
        );
        let mut q = sqlx::query_scalar::<_, Option<String>>(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        Ok(q.bind(UNIT.to_string())
            .bind(RECORD.to_string())
            .fetch_one(self.reads())
            .await?
            .unwrap_or_default())
    }

    /// A page's rows as one text (see [`Store::aggregated`]): each row's
    /// [`row_text`] with `extra` columns, read with the listing's JSON
    /// joined if `join`.
    async fn page_text(
        &self,
        listing: Listing,
        plan: &Plan,
        extra: &[&str],
        join: bool,
    ) -> Result<String, StoreError> {
        let unit = format!("${}", plan.binds.len() + 1);
        let sql = format!(
            "SELECT {} AS x {}{} {} ORDER BY r.id LIMIT {}",
            row_text(listing, &unit, extra),
            plan.from,
            if join { plan.join } else { "" },
            plan.wheres,
            plan.limit
        );
        let binds: Vec<&str> = plan.binds.iter().map(String::as_str).collect();
        self.aggregated(&sql, &binds).await
    }

    /// A page (without `remote_data`) read as one text (see
    /// [`Store::aggregated`]): each row's [`row_text`] with its record.
    /// `None` if that text is not as expected (then the rows are read).
    async fn joined(&self, listing: Listing, plan: &Plan) -> Result<Option<TextPage>, StoreError> {
        let record = format!("{}.record", listing.json());
        let text = self.page_text(listing, plan, &[&record], true).await?;
        let Some((rows, next)) = parse_page(listing, &text, 1, plan.limit as usize - 1) else {
            return Ok(None);
        };
        let mut out = TextPage {
            records: Vec::with_capacity(text.len() + rows.len() * 256),
            next,
            ..TextPage::default()
        };
        for row in &rows {
            let Some(account) = account_named(&plan.accounts, row) else {
                return Ok(None);
            };
            if out.count > 0 {
                out.records.push(b',');
            }
            render(row.extra[0], &row.values, account, None, &mut out.records);
            out.count += 1;
        }
        Ok(Some(out))
    }

    /// A page (without `remote_data`) written from the list cache:
    /// settled accounts' rows from their [`Snapshot`]s (for the filters a
    /// snapshot answers), the other accounts' rows read without their
    /// records, then the records not cached at their content hash read
    /// (with their fields again, so each record is written with fields
    /// read in the same statement) and cached. `None` if a text is not as
    /// expected.
    async fn cached(
        &self,
        listing: Listing,
        f: &Filter,
        (accounts, states): (&[AccountNames], &[AccountState]),
        cache: &ListCache,
        version: &'static str,
    ) -> Result<Option<TextPage>, StoreError> {
        let page = f.limit.clamp(1, 10_000) as usize;
        let in_memory = snapshot_answers(f);
        let mut snapshots = Vec::new();
        let mut read = Vec::new();
        for (a, state) in accounts.iter().zip(states) {
            let snapshot = match in_memory {
                true => cache.snapshots.get(listing, &a.id, state.generation),
                false => None,
            };
            match snapshot {
                Some(s) => snapshots.push(s),
                None => {
                    if in_memory {
                        let at = Some(state.generation);
                        self.start_snapshot(listing, &a.id, at, state.syncing, version);
                    }
                    read.push(a.clone());
                }
            }
        }
        // Declared first: the page's entries borrow from them.
        let (text, fetched_text);
        let names = field_names(listing);
        let mut entries: Vec<(ParsedRow<'_>, Body<'_>)> = Vec::with_capacity(page + 1);
        for s in &snapshots {
            let start = f
                .after
                .as_deref()
                .map_or(0, |after| s.rows.partition_point(|r| &*r.id <= after));
            let mut taken = 0;
            for r in &s.rows[start..] {
                if taken > page {
                    break;
                }
                let Some(row) = parse_row(listing, &r.text, 1) else {
                    return Ok(None);
                };
                if f.status.is_some() && row.value("status") != f.status.as_deref() {
                    continue;
                }
                entries.push((row, Body::Template(r.cached.clone())));
                taken += 1;
            }
        }
        // The page ends at or before the (page+1)-th of the snapshots' rows:
        // the other accounts (one being synced, say) are read only up to it.
        entries.sort_unstable_by(|a, b| a.0.id().cmp(b.0.id()));
        entries.truncate(page + 1);
        let remembered = entries.len();
        let until = (entries.len() > page).then(|| entries[page].0.id().to_owned());
        text = match plan_for(listing, f, read, until.as_deref()) {
            Some(plan) => self.page_text(listing, &plan, &[version], false).await?,
            None => String::new(),
        };
        let Some(rows) = parse_rows(listing, &text, 1) else {
            return Ok(None);
        };
        let (hits, missing) = lookups(cache, &rows);
        fetched_text = self.records_of(listing, version, &missing).await?;
        let Some(fetched) = parse_rows(listing, &fetched_text, 2) else {
            return Ok(None);
        };
        let mut fetched = by_id(fetched);
        crate::metrics::list_cache(
            remembered + rows.len() - missing.len(),
            missing.len(),
            cache.bytes(),
        );
        for (row, hit) in rows.into_iter().zip(hits) {
            let entry = match hit {
                Some(c) => (row, Body::Template(c)),
                // Written since the page was read (gone, or no longer
                // matching): the page would be short and its cursor
                // wrong, so it is read again the plain way.
                None => match fetched.remove(row.id()) {
                    None => return Ok(None),
                    Some(fresh) if fresh.value("status") != row.value("status") => return Ok(None),
                    Some(fresh) => {
                        let body = match Template::new(fresh.extra[1], &names) {
                            Some(t) => Body::Template(cache.insert(fresh.id(), fresh.extra[0], t)),
                            None => Body::Text(fresh.extra[1]),
                        };
                        (fresh, body)
                    }
                },
            };
            entries.push(entry);
        }
        entries.sort_unstable_by(|a, b| a.0.id().cmp(b.0.id()));
        let next = match entries.len() > page {
            true => {
                entries.truncate(page);
                entries.last().map(|(r, _)| r.id().to_owned())
            }
            false => None,
        };
        let mut out = TextPage {
            records: Vec::with_capacity(entries.len() * 1536),
            next,
            ..TextPage::default()
        };
        let mut buf = Vec::with_capacity(names.len());
        for (row, body) in &entries {
            let Some(account) = account_named(accounts, row) else {
                return Ok(None);
            };
            if out.count > 0 {
                out.records.push(b',');
            }
            match body {
                Body::Template(c) => {
                    buf.clear();
                    buf.extend(fields(&row.values, account, None));
                    c.template.write(&buf, &mut out.records);
                }
                // Not the text serde_json stores: written the slow way.
                Body::Text(record) => render(record, &row.values, account, None, &mut out.records),
            }
            out.count += 1;
        }
        Ok(Some(out))
    }

    /// The [`row_text`]s with `version` and record of `listing`'s records
    /// `ids`, as one text (see [`Store::aggregated`]); none for no ids.
    async fn records_of(
        &self,
        listing: Listing,
        version: &str,
        ids: &[&str],
    ) -> Result<String, StoreError> {
        if ids.is_empty() {
            return Ok(String::new());
        }
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let record = format!("{}.record", listing.json());
        let sql = format!(
            "SELECT {} AS x FROM {} r{} WHERE r.id IN ({list})",
            row_text(listing, &format!("${}", ids.len() + 1), &[version, &record]),
            listing.table(),
            json_join(listing),
        );
        self.aggregated(&sql, ids).await
    }

    /// The accounts of `workspace` (only the one named or with id
    /// `account`, if given), by id: as read within
    /// [`FRESH_FOR`](super::listed_accounts::FRESH_FOR) if the list cache
    /// is on.
    async fn accounts_of(
        &self,
        workspace: &str,
        account: Option<&str>,
    ) -> Result<Accounts, StoreError> {
        let listed = self.list_cache.get().map(|c| &c.accounts);
        let all = match listed.and_then(|l| l.get(workspace)) {
            Some(all) => all,
            None => {
                let epoch = listed.map(|l| l.epoch());
                let all = Arc::new(self.read_accounts_of(workspace).await?);
                if let (Some(l), Some(epoch)) = (listed, epoch) {
                    l.put(workspace, epoch, all.clone());
                }
                all
            }
        };
        Ok(match account {
            None => (*all).clone(),
            Some(a) => all
                .0
                .iter()
                .zip(&all.1)
                .filter(|(n, _)| n.name == a || n.id == a)
                .map(|(n, s)| (n.clone(), *s))
                .unzip(),
        })
    }

    /// The accounts of `workspace` as the database has them, by id.
    async fn read_accounts_of(&self, workspace: &str) -> Result<Accounts, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, connector, list_generation, lease_holder FROM accounts \
             WHERE workspace_id = $1 ORDER BY id",
        )
        .bind(workspace)
        .fetch_all(self.reads())
        .await?;
        let mut out = (
            Vec::with_capacity(rows.len()),
            Vec::with_capacity(rows.len()),
        );
        for r in &rows {
            out.0.push(AccountNames {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                connector: r.try_get(2)?,
            });
            out.1.push(AccountState {
                generation: r.try_get(3)?,
                syncing: r.try_get::<Option<String>, _>(4)?.is_some(),
            });
        }
        Ok(out)
    }

    /// Account `account`'s `list_generation`, if it still exists.
    async fn list_generation(&self, account: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT list_generation FROM accounts WHERE id = $1")
                .bind(account)
                .fetch_optional(self.reads())
                .await?,
        )
    }

    /// Reads the lists of account `account` (of every workspace's
    /// accounts not being synced, if `None`) into memory in the
    /// background, if the list cache is on: a server does it when it
    /// starts and after each sync, so callers seldom wait for the
    /// database.
    pub async fn warm_lists(&self, account: Option<&str>) -> Result<(), StoreError> {
        if self.list_cache.get().is_none() {
            return Ok(());
        }
        let sql = match account {
            Some(_) => {
                "SELECT id, list_generation FROM accounts WHERE id = $1 AND lease_holder IS NULL"
            }
            None => {
                "SELECT id, list_generation FROM accounts WHERE lease_holder IS NULL ORDER BY id"
            }
        };
        let mut q = sqlx::query_as::<_, (String, i64)>(sql);
        if let Some(id) = account {
            q = q.bind(id);
        }
        for (id, generation) in q.fetch_all(self.reads()).await? {
            for listing in [Listing::Devices, Listing::Users, Listing::Organizations] {
                if let Some(version) = listing.version() {
                    self.start_snapshot(listing, &id, Some(generation), false, version);
                }
            }
        }
        Ok(())
    }

    /// Tells the lists held in memory that the write transaction of
    /// account `account` that made its `list_generation` `generation`
    /// (committed) wrote the records `ids` of `table`, and no other
    /// record a list shows: a list is then brought up to date by reading
    /// those alone. Every transaction that bumps the generation should
    /// say so; one that does not makes older lists be read in full again.
    pub(crate) fn note_written(
        &self,
        account: &str,
        generation: i64,
        table: super::records::Table,
        ids: impl IntoIterator<Item = Box<str>>,
    ) {
        self.accounts_changed();
        if let Some(cache) = self.list_cache.get() {
            let ids = ids.into_iter().collect();
            cache
                .snapshots
                .note(account, generation, table.listing(), ids);
        }
    }

    /// Drops the lists held in memory of accounts that no longer exist: one
    /// removed through this store drops its own at once, one removed by
    /// another process (a replica, the CLI) is found here. A server calls
    /// it on every scheduler tick.
    pub async fn prune_lists(&self) -> Result<(), StoreError> {
        let Some(cache) = self.list_cache.get() else {
            return Ok(());
        };
        let ids: std::collections::HashSet<String> = sqlx::query_scalar("SELECT id FROM accounts")
            .fetch_all(self.reads())
            .await?
            .into_iter()
            .collect();
        cache.snapshots.keep_accounts(|a| ids.contains(a));
        Ok(())
    }

    /// Brings account `account`'s list of `listing` (at `generation`, if
    /// known) into memory in the background on the API's runtime, if
    /// [`Snapshots::claim`](super::list_cache::Snapshots::claim) says
    /// what to read: the records written since its snapshot, or the whole
    /// list (one at a time).
    fn start_snapshot(
        &self,
        listing: Listing,
        account: &str,
        generation: Option<i64>,
        syncing: bool,
        version: &'static str,
    ) {
        let Some(cache) = self.list_cache.get() else {
            return;
        };
        let Some(claimed) = cache.snapshots.claim(listing, account, generation, syncing) else {
            return;
        };
        let mut claim = Claim {
            store: self.clone(),
            listing,
            account: account.to_owned(),
            read: Read::Nothing,
        };
        cache.runtime.spawn(async move {
            let store = claim.store.clone();
            let Some(cache) = store.list_cache.get() else {
                return;
            };
            let updated = matches!(claimed, Claimed::Changes { .. });
            let read = match claimed {
                Claimed::Changes { base, ids, to } => {
                    store
                        .update_snapshot(listing, version, &base, &ids, to)
                        .await
                }
                Claimed::Full => {
                    let Ok(_one) = cache.snapshots.reading.acquire().await else {
                        return;
                    };
                    store.read_snapshot(listing, &claim.account, version).await
                }
            };
            match read {
                Ok(Read::Built(s)) if updated => claim.read = Read::Updated(s),
                Ok(read) => claim.read = read,
                Err(e) => {
                    tracing::warn!(error = %e, account = claim.account, "reading an account's list into memory")
                }
            }
            drop(claim);
        });
    }

    /// Account `account`'s rows of `listing` with their templates, in id
    /// order, read a chunk at a time, then the records written meanwhile
    /// read again; nothing if a write meanwhile was not noted or a record
    /// is not the text `serde_json` stores, and no more than the budget's
    /// room.
    async fn read_snapshot(
        &self,
        listing: Listing,
        account: &str,
        version: &str,
    ) -> Result<Read, StoreError> {
        const CHUNK: usize = 2000;
        let Some(cache) = self.list_cache.get() else {
            return Ok(Read::Nothing);
        };
        let Some(generation) = self.list_generation(account).await? else {
            return Ok(Read::Nothing);
        };
        let room = cache.snapshots.room(listing, account);
        let mut bytes = 0;
        let names = field_names(listing);
        let sql = format!(
            "SELECT {} AS x FROM {} r WHERE r.account_id = $1 AND r.id > $2 ORDER BY r.id LIMIT {CHUNK}",
            row_text(listing, "$3", &[version]),
            listing.table(),
        );
        let mut rows = Vec::new();
        let mut skipped = false;
        let mut after = String::new();
        loop {
            let text = self.aggregated(&sql, &[account, &after]).await?;
            let Some((chunk, _)) = parse_page(listing, &text, 1, CHUNK) else {
                return Ok(Read::Skipped(generation));
            };
            let Some(last) = chunk.last() else { break };
            after = last.id().to_owned();
            let (hits, missing) = lookups(cache, &chunk);
            let fetched_text = self.records_of(listing, version, &missing).await?;
            let Some(fetched) = parse_rows(listing, &fetched_text, 2) else {
                return Ok(Read::Skipped(generation));
            };
            let fetched = by_id(fetched);
            for (row, hit) in chunk.iter().zip(hits) {
                let cached = match hit {
                    Some(c) => c,
                    None => {
                        // Written since this chunk was read: read again
                        // below, as a noted write.
                        let Some(f) = fetched.get(row.id()).filter(|f| f.extra[0] == row.extra[0])
                        else {
                            skipped = true;
                            continue;
                        };
                        let Some(t) = Template::new(f.extra[1], &names) else {
                            return Ok(Read::Skipped(generation));
                        };
                        cache.insert(f.id(), f.extra[0], t)
                    }
                };
                let row = SnapRow {
                    id: row.id().into(),
                    text: row.raw.into(),
                    cached,
                };
                bytes += row.size();
                if bytes > room {
                    return Ok(Read::Skipped(generation));
                }
                rows.push(Arc::new(row));
            }
            if chunk.len() < CHUNK {
                break;
            }
        }
        let Some(now) = self.list_generation(account).await? else {
            return Ok(Read::Nothing);
        };
        let base = Snapshot {
            generation,
            rows: rows.into(),
        };
        if now == generation {
            return Ok(match skipped {
                true => Read::Skipped(generation),
                false => Read::Built(base),
            });
        }
        // Written meanwhile: the chunks read before a write may miss its
        // records, those read after have them; reading the records every
        // write since `generation` wrote makes the list right at `now`.
        match cache.snapshots.changes(listing, account, generation, now) {
            Some(ids) => {
                self.update_snapshot(listing, version, &base, &ids, now)
                    .await
            }
            None => Ok(Read::Skipped(now)),
        }
    }

    /// Snapshot `base` brought to generation `to` by reading again the
    /// records `ids` (every record written since `base` was read, sorted);
    /// nothing if one is not the text `serde_json` stores.
    async fn update_snapshot(
        &self,
        listing: Listing,
        version: &str,
        base: &Snapshot,
        ids: &[Box<str>],
        to: i64,
    ) -> Result<Read, StoreError> {
        /// Records read by one statement.
        const CHUNK: usize = 500;
        let Some(cache) = self.list_cache.get() else {
            return Ok(Read::Nothing);
        };
        let names = field_names(listing);
        let mut fresh = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let chunk: Vec<&str> = chunk.iter().map(|i| &**i).collect();
            let text = self.records_of(listing, version, &chunk).await?;
            let Some(rows) = parse_rows(listing, &text, 2) else {
                return Ok(Read::Skipped(to));
            };
            for row in rows {
                let (hash, record) = (row.extra[0], row.extra[1]);
                let cached = match cache.get(row.id(), hash) {
                    Some(c) => c,
                    None => match Template::new(record, &names) {
                        Some(t) => cache.insert(row.id(), hash, t),
                        None => return Ok(Read::Skipped(to)),
                    },
                };
                // The row as a snapshot keeps it: its fields and version,
                // without the record that ends it.
                let text = &row.raw[..row.raw.len() - record.len() - UNIT.len_utf8()];
                fresh.push(Arc::new(SnapRow {
                    id: row.id().into(),
                    text: text.into(),
                    cached,
                }));
            }
        }
        fresh.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        // Weighed against the budget once, when it is kept (`finish`).
        Ok(Read::Built(Snapshot {
            generation: to,
            rows: merged(&base.rows, ids, fresh).into(),
        }))
    }

    /// One device by mdmhub id, or by remote id or serial number, with
    /// `same_as`: the other records of the same physical device (same
    /// serial in another account, or re-enrolled under a new remote id).
    pub async fn device(&self, key: &str) -> Result<Option<Json>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {}, a.name AS account_name, a.connector AS connector, d.record AS record, \
             d.remote_data AS remote_data, d.detail_remote_data AS detail_remote_data \
             FROM devices r JOIN device_data d ON d.device_id = r.id \
             JOIN accounts a ON a.id = r.account_id \
             WHERE r.id = $1 OR r.remote_id = $1 OR UPPER(r.serial_number) = UPPER($1) \
             ORDER BY CASE WHEN r.status = 'active' THEN 0 ELSE 1 END, {LAST_SEEN} DESC LIMIT 1",
            meta_select(Listing::Devices)
        ))
        .bind(key)
        .fetch_optional(self.reads())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let account = AccountNames {
            id: row.try_get("account_id")?,
            name: row.try_get("account_name")?,
            connector: row.try_get("connector")?,
        };
        let mut device = row_json(Listing::Devices, &row, &account, true)?;
        self.add_same_as(None, &mut device).await?;
        Ok(Some(device))
    }

    /// Adds `same_as` to a device read: the other records with its serial
    /// number, only among `workspace`'s accounts when one is given.
    pub async fn add_same_as(
        &self,
        workspace: Option<&str>,
        device: &mut Json,
    ) -> Result<(), StoreError> {
        let serial = device.get("serial_number").and_then(Value::as_str);
        let id = device.get("id").and_then(Value::as_str);
        let same_as: Vec<Value> = match (serial, id) {
            (Some(serial), Some(id)) => {
                let scope = if workspace.is_some() {
                    " AND r.account_id IN (SELECT id FROM accounts WHERE workspace_id = $3)"
                } else {
                    ""
                };
                let sql = format!(
                    "SELECT r.id, r.account_id, r.remote_id, r.status FROM devices r \
                     WHERE UPPER(r.serial_number) = UPPER($1) AND r.id <> $2{scope} ORDER BY r.id"
                );
                let mut q = sqlx::query(&sql).bind(serial).bind(id);
                if let Some(w) = workspace {
                    q = q.bind(w);
                }
                q.fetch_all(self.reads())
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(serde_json::json!({
                            "id": r.try_get::<String, _>(0)?,
                            "account_id": r.try_get::<String, _>(1)?,
                            "remote_id": r.try_get::<String, _>(2)?,
                            "status": r.try_get::<String, _>(3)?,
                        }))
                    })
                    .collect::<Result<_, StoreError>>()?
            }
            _ => Vec::new(),
        };
        device.insert("same_as".into(), Value::Array(same_as));
        Ok(())
    }

    /// Rows in a table for an account (tests, reports).
    pub async fn count(
        &self,
        listing: Listing,
        account_id: &str,
        status: Option<&str>,
    ) -> Result<i64, StoreError> {
        let t = listing.table();
        let (sql, with_status) = match (listing, status) {
            (Listing::Apps, _) | (_, None) => (
                format!("SELECT COUNT(*) FROM {t} WHERE account_id = $1"),
                false,
            ),
            _ => (
                format!("SELECT COUNT(*) FROM {t} WHERE account_id = $1 AND status = $2"),
                true,
            ),
        };
        let mut q = sqlx::query_scalar(&sql).bind(account_id);
        if with_status {
            q = q.bind(status);
        }
        Ok(q.fetch_one(self.reads()).await?)
    }
}

/// [`meta_columns`] as a select list, each named for its field.
fn meta_select(listing: Listing) -> String {
    meta_columns(listing)
        .iter()
        .map(|(field, column)| format!("{column} AS {field}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query of a page of `listing` for `f` over `accounts` (by id), or
/// `None` if there is no account to list; with `until`, only ids before it
/// (the caller has the page's rows from there on).
fn plan_for(
    listing: Listing,
    f: &Filter,
    accounts: Vec<AccountNames>,
    until: Option<&str>,
) -> Option<Plan> {
    if accounts.is_empty() {
        return None;
    }
    let t = listing.table();
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    let mut add = |cond: &str, value: &str| {
        binds.push(value.to_owned());
        conds.push(cond.replace('?', &format!("${}", binds.len())));
    };
    // Filters that an index of their own serves better than id order.
    let mut selective = false;
    if listing != Listing::Apps
        && let Some(s) = &f.status
    {
        add("r.status = ?", s);
    }
    if listing == Listing::Devices {
        if let Some(p) = &f.platform {
            add("r.platform = ?", &p.to_lowercase());
        }
        if let Some(d) = &f.device_type {
            add("r.device_type = ?", &d.to_lowercase());
        }
        if let Some(s) = &f.serial {
            add("UPPER(r.serial_number) = ?", &s.to_uppercase());
            selective = true;
        }
        if let Some(e) = &f.email {
            add("r.assigned_user_email = ?", &e.to_lowercase());
            selective = true;
        }
    }
    if listing == Listing::Users
        && let Some(e) = &f.email
    {
        add("r.email = ?", &e.to_lowercase());
        selective = true;
    }
    if listing == Listing::Apps
        && let Some(d) = &f.device
    {
        add(
            "r.device_id IN (SELECT id FROM devices WHERE id = ? OR remote_id = ?)",
            d,
        );
        selective = true;
    }
    if let Some(id) = &f.id {
        add("r.id = ?", id);
        selective = true;
    }
    if let Some(since) = &f.updated_since {
        add("r.updated_at >= ?", since);
    }
    if let Some(after) = &f.after {
        add("r.id > ?", after);
    }
    if let Some(until) = until {
        add("r.id < ?", until);
    }
    let limit = f.limit.clamp(1, 10_000) + 1;
    let mut ids = Vec::with_capacity(accounts.len());
    for a in &accounts {
        binds.push(a.id.clone());
        ids.push(format!("${}", binds.len()));
    }
    let own = |account: &str| {
        let mut c = conds.clone();
        c.push(format!("r.account_id = {account}"));
        c.join(" AND ")
    };
    let wheres = if accounts.len() == 1 {
        own(&ids[0])
    } else if selective || accounts.len() > MAX_RANGES {
        let mut c = conds.clone();
        c.push(format!("r.account_id IN ({})", ids.join(", ")));
        c.join(" AND ")
    } else {
        // The first `limit` ids of each account, merged: each range
        // is read in order from the index, nothing is sorted but
        // those ids.
        let ranges = ids
            .iter()
            .enumerate()
            .map(|(i, a)| {
                format!(
                    "SELECT id FROM (SELECT r.id FROM {t} r WHERE {} ORDER BY r.id LIMIT {limit}) s{i}",
                    own(a),
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        format!("r.id IN (SELECT id FROM ({ranges}) u ORDER BY id LIMIT {limit})")
    };
    Some(Plan {
        from: format!("FROM {t} r"),
        join: json_join(listing),
        wheres: format!("WHERE {wheres}"),
        binds,
        accounts,
        limit,
    })
}

/// The join that reads `listing`'s JSON (devices keep it in `device_data`).
fn json_join(listing: Listing) -> &'static str {
    match listing {
        Listing::Devices => " JOIN device_data d ON d.device_id = r.id",
        _ => "",
    }
}

/// SQL of a row read as text: each of [`meta_columns`] (`=` and the
/// value, or nothing for NULL), then the `extra` expressions (never
/// NULL), joined by the separator `unit` names.
fn row_text(listing: Listing, unit: &str, extra: &[&str]) -> String {
    let mut row: Vec<String> = meta_columns(listing)
        .iter()
        .map(|(_, column)| format!("COALESCE('=' || {column}, '')"))
        .collect();
    row.extend(extra.iter().map(|e| e.to_string()));
    row.join(&format!(" || {unit} || "))
}

/// A row read by [`row_text`].
#[derive(Debug)]
struct ParsedRow<'a> {
    /// The row's whole text.
    raw: &'a str,
    /// [`meta_columns`]' values, by field.
    values: Vec<(&'static str, Option<&'a str>)>,
    /// The extra columns.
    extra: Vec<&'a str>,
}

/// What reading a snapshot gave.
enum Read {
    /// The account's list.
    Built(Snapshot),
    /// The account's list, brought up to date from the one it had.
    Updated(Snapshot),
    /// Not kept at this generation: more than the budget's room, a record
    /// not the text `serde_json` stores, or written by a transaction that
    /// was not noted.
    Skipped(i64),
    /// Nothing to keep (the account is gone, or the read failed).
    Nothing,
}

/// A snapshot being read (see `Snapshots::claim`): when dropped, it
/// finishes with what was read, or with nothing if its task was dropped
/// first (a runtime shutting down), so the list can be read again.
struct Claim {
    store: Store,
    listing: Listing,
    account: String,
    read: Read,
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(cache) = self.store.list_cache.get() else {
            return;
        };
        let (built, skipped) = match std::mem::replace(&mut self.read, Read::Nothing) {
            Read::Built(s) => (Some((s, false)), None),
            Read::Updated(s) => (Some((s, true)), None),
            Read::Skipped(generation) => (None, Some(generation)),
            Read::Nothing => (None, None),
        };
        cache
            .snapshots
            .finish(self.listing, &self.account, built, skipped);
    }
}

/// What a listed record is written from.
enum Body<'a> {
    /// Its template.
    Template(Arc<Cached>),
    /// Its stored text (not the text `serde_json` stores).
    Text(&'a str),
}

/// Whether a [`Snapshot`] answers `f`: no filter but status and cursor.
fn snapshot_answers(f: &Filter) -> bool {
    f.platform.is_none()
        && f.device_type.is_none()
        && f.serial.is_none()
        && f.email.is_none()
        && f.device.is_none()
        && f.id.is_none()
        && f.updated_since.is_none()
}

impl<'a> ParsedRow<'a> {
    /// Field `name`'s value.
    fn value(&self, name: &str) -> Option<&'a str> {
        self.values
            .iter()
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| *v)
    }

    fn id(&self) -> &'a str {
        self.values[0].1.unwrap_or_default()
    }

    fn account_id(&self) -> &'a str {
        self.values[1].1.unwrap_or_default()
    }
}

/// The rows of a text read by [`Store::aggregated`], each with `extra`
/// columns after its fields; `None` if it is not such a text.
fn parse_rows(listing: Listing, text: &str, extra: usize) -> Option<Vec<ParsedRow<'_>>> {
    text.split(RECORD)
        .filter(|r| !r.is_empty())
        .map(|row| parse_row(listing, row, extra))
        .collect()
}

/// One row's text (see [`parse_rows`]).
fn parse_row(listing: Listing, row: &str, extra: usize) -> Option<ParsedRow<'_>> {
    let meta = meta_columns(listing);
    let mut parts = row.split(UNIT);
    let mut values = Vec::with_capacity(meta.len());
    for (field, _) in meta {
        match parts.next()? {
            "" => values.push((*field, None)),
            v => values.push((*field, Some(v.strip_prefix('=')?))),
        }
    }
    let extras: Vec<&str> = parts.collect();
    (values[0].1.is_some() && extras.len() == extra).then_some(ParsedRow {
        raw: row,
        values,
        extra: extras,
    })
}

/// A page's rows (at most `page` of them, in id order) from a text read
/// by [`Store::page_text`] with `limit` one more than `page`, and the
/// cursor of the next page if there is one.
fn parse_page(
    listing: Listing,
    text: &str,
    extra: usize,
    page: usize,
) -> Option<(Vec<ParsedRow<'_>>, Option<String>)> {
    let mut rows = parse_rows(listing, text, extra)?;
    // The aggregate keeps no order: sorting a page's ids is cheaper than
    // having the database sort its rows' text.
    rows.sort_unstable_by(|a, b| a.id().cmp(b.id()));
    let next = match rows.len() > page {
        true => {
            rows.truncate(page);
            rows.last().map(|r| r.id().to_owned())
        }
        false => None,
    };
    Some((rows, next))
}

/// The cached templates of rows read with their content hash (by row),
/// and the ids of the rows not cached at that hash.
fn lookups<'a>(
    cache: &ListCache,
    rows: &[ParsedRow<'a>],
) -> (Vec<Option<Arc<Cached>>>, Vec<&'a str>) {
    let hits: Vec<_> = rows.iter().map(|r| cache.get(r.id(), r.extra[0])).collect();
    let missing = rows
        .iter()
        .zip(&hits)
        .filter(|(_, hit)| hit.is_none())
        .map(|(r, _)| r.id())
        .collect();
    (hits, missing)
}

/// Parsed rows by id.
fn by_id(rows: Vec<ParsedRow<'_>>) -> std::collections::HashMap<&str, ParsedRow<'_>> {
    rows.into_iter().map(|r| (r.id(), r)).collect()
}

/// The account of a parsed row among `accounts` (sorted by id).
fn account_named<'a>(
    accounts: &'a [AccountNames],
    row: &ParsedRow<'_>,
) -> Option<&'a AccountNames> {
    accounts
        .binary_search_by(|a| a.id.as_str().cmp(row.account_id()))
        .ok()
        .map(|i| &accounts[i])
}

/// The names of the fields [`fields`] adds to `listing`'s records
/// without `remote_data`, in its order: what [`Template`]s are cut for.
fn field_names(listing: Listing) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = meta_columns(listing).iter().map(|(f, _)| *f).collect();
    names.extend(["account", "connector"]);
    names.sort_unstable();
    names
}

/// The columns of a device as lists show it (without `remote_data`), for
/// [`device_json`], with the columns its announcements compare.
pub(crate) fn device_select() -> String {
    format!(
        "{}, r.content_hash, r.announced_hash, r.announced_status, r.announced_compliance, \
         r.is_compliant, a.name AS account_name, a.connector AS account_connector, \
         d.record AS record",
        meta_select(Listing::Devices)
    )
}
/// Where [`device_select`] reads from.
pub(crate) const DEVICE_FROM: &str = "devices r JOIN device_data d ON d.device_id = r.id \
     JOIN accounts a ON a.id = r.account_id";

/// A device row read with [`device_select`] as lists show it.
pub(crate) fn device_json(r: &AnyRow) -> Result<Json, StoreError> {
    let account = AccountNames {
        id: r.try_get("account_id")?,
        name: r.try_get("account_name")?,
        connector: r.try_get("account_connector")?,
    };
    row_json(Listing::Devices, r, &account, false)
}

/// The account of row `r` among `accounts` (sorted by id).
fn account_of<'a>(
    accounts: &'a [AccountNames],
    r: &AnyRow,
) -> Result<&'a AccountNames, StoreError> {
    let id: String = r.try_get("account_id")?;
    accounts
        .binary_search_by(|a| a.id.as_str().cmp(&id))
        .map(|i| &accounts[i])
        .map_err(|_| StoreError::Corrupt(format!("a record of unknown account {id}")))
}

/// A row's `remote_data` as callers see it (devices: `{"summary": ...,
/// "details": ...}`); vendor text that is not JSON is a string.
fn remote_value(listing: Listing, r: &AnyRow) -> Result<Value, StoreError> {
    let raw: String = r.try_get("remote_data")?;
    let raw = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
    if listing != Listing::Devices {
        return Ok(raw);
    }
    let details = match r.try_get::<Option<String>, _>("detail_remote_data")? {
        Some(d) if !d.is_empty() => serde_json::from_str(&d).unwrap_or(Value::String(d)),
        _ => Value::Null,
    };
    Ok(serde_json::json!({"summary": raw, "details": details}))
}

/// A row as callers see it: the normalized record plus mdmhub's fields
/// (`account` and `connector` are the account's name and connector).
fn row_json(
    listing: Listing,
    r: &AnyRow,
    account: &AccountNames,
    remote_data: bool,
) -> Result<Json, StoreError> {
    let record: String = r.try_get("record")?;
    let values = meta_columns(listing)
        .iter()
        .map(|(field, _)| Ok((*field, r.try_get::<Option<String>, _>(*field)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let values: Vec<(&str, Option<&str>)> =
        values.iter().map(|(k, v)| (*k, v.as_deref())).collect();
    let remote = match remote_data {
        true => Some(remote_value(listing, r)?),
        false => None,
    };
    record_json(&record, &fields(&values, account, remote.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_cut_for_the_fields_in_the_order_they_are_written() {
        let account = AccountNames {
            id: "acc_1".into(),
            name: "acme".into(),
            connector: "iru".into(),
        };
        for listing in [
            Listing::Devices,
            Listing::Users,
            Listing::Apps,
            Listing::Organizations,
        ] {
            let values: Vec<(&'static str, Option<&str>)> = meta_columns(listing)
                .iter()
                .map(|(f, _)| (*f, Some("v")))
                .collect();
            let written: Vec<&str> = fields(&values, &account, None)
                .iter()
                .map(|(k, _)| *k)
                .collect();
            assert_eq!(written, field_names(listing), "{listing:?}");
            assert_eq!(meta_columns(listing)[0].0, "id");
            assert_eq!(meta_columns(listing)[1].0, "account_id");
        }
    }

    #[test]
    fn aggregated_pages_are_sorted_and_cut_after_the_page() {
        let row = |id: &str| {
            let mut fields: Vec<String> = meta_columns(Listing::Users)
                .iter()
                .map(|(f, _)| match *f {
                    "id" => format!("={id}"),
                    "account_id" => "=acc_1".into(),
                    "removed_at" => String::new(),
                    _ => "=x".into(),
                })
                .collect();
            fields.push(format!("{{\"n\":\"{id}\"}}"));
            fields.join(&UNIT.to_string())
        };
        let text = ["usr_c", "usr_a", "usr_b"]
            .map(row)
            .join(&RECORD.to_string());
        let (rows, next) = parse_page(Listing::Users, &text, 1, 2).unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id()).collect();
        assert_eq!(ids, ["usr_a", "usr_b"]);
        assert_eq!(next.as_deref(), Some("usr_b"));
        assert_eq!(rows[0].extra, [r#"{"n":"usr_a"}"#]);
        assert_eq!(rows[0].account_id(), "acc_1");
        let removed = rows[0].values.iter().find(|(k, _)| *k == "removed_at");
        assert_eq!(removed, Some(&("removed_at", None)));
        let (rows, next) = parse_page(Listing::Users, &text, 1, 3).unwrap();
        assert_eq!((rows.len(), next), (3, None));
        assert!(
            parse_page(Listing::Users, &text, 2, 3).is_none(),
            "extra columns"
        );
        assert!(
            parse_page(Listing::Users, "=usr_a", 1, 3).is_none(),
            "short row"
        );
        assert_eq!(parse_page(Listing::Users, "", 1, 3).unwrap().0.len(), 0);
    }
}
