//! Reading the inventory: filtered, keyset-paged lists of devices, users,
//! apps and organizations, as the normalized JSON callers see.

use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// What a list is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// An account's names, as records show them.
#[derive(Debug)]
struct AccountNames {
    id: String,
    name: String,
    connector: String,
}

/// More accounts than this in one list are read with one sorted query
/// rather than one ordered range per account.
const MAX_RANGES: usize = 64;

/// mdmhub's columns of each listing, as `(field, column)`, that records
/// show beside the stored record (with `account` and `connector`).
fn meta_columns(listing: Listing) -> &'static [(&'static str, &'static str)] {
    match listing {
        Listing::Devices => &[
            ("id", "r.id"),
            ("account_id", "r.account_id"),
            ("updated_at", "r.updated_at"),
            ("status", "r.status"),
            ("first_seen_at", "r.first_seen_at"),
            ("last_seen_at", "r.last_seen_at"),
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
            ("last_seen_at", "r.last_seen_at"),
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
    from_where: String,
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
        let Some(plan) = self.plan(listing, f).await? else {
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
        let workspace = f
            .workspace
            .as_deref()
            .unwrap_or(super::accounts::DEFAULT_WORKSPACE);
        let accounts = self.accounts_of(workspace, f.account.as_deref()).await?;
        if accounts.is_empty() {
            return Ok(None);
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
        // Devices keep their JSON in `device_data`.
        let join = match listing {
            Listing::Devices => " JOIN device_data d ON d.device_id = r.id",
            _ => "",
        };
        Ok(Some(Plan {
            from_where: format!("FROM {t} r{join} WHERE {wheres}"),
            binds,
            accounts,
            limit,
        }))
    }

    /// A page's rows (`record`, `remote_data` if asked for, and
    /// [`meta_columns`]) and the next cursor.
    async fn rows(
        &self,
        listing: Listing,
        f: &Filter,
        plan: &Plan,
    ) -> Result<(Vec<AnyRow>, Option<String>), StoreError> {
        let json = match listing {
            Listing::Devices => "d",
            _ => "r",
        };
        let remote = match (listing, f.omit_remote_data) {
            (_, true) => String::new(),
            (Listing::Devices, false) => ", d.remote_data, d.detail_remote_data".into(),
            (_, false) => ", r.remote_data".into(),
        };
        let meta = meta_columns(listing)
            .iter()
            .map(|(_, column)| *column)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {meta}, {json}.record{remote} {} ORDER BY r.id LIMIT {}",
            plan.from_where, plan.limit
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

    /// A page (without `remote_data`) read as one text: each row's
    /// [`meta_columns`] (`=` and the value, or nothing for NULL) and its
    /// record, joined by [`UNIT`], the rows by [`RECORD`] in id order.
    /// `None` if that text is not as expected (then the rows are read).
    async fn joined(&self, listing: Listing, plan: &Plan) -> Result<Option<TextPage>, StoreError> {
        let json = match listing {
            Listing::Devices => "d",
            _ => "r",
        };
        let unit = format!("${}", plan.binds.len() + 1);
        let record = format!("${}", plan.binds.len() + 2);
        let mut row = String::new();
        for (_, column) in meta_columns(listing) {
            row.push_str(&format!("COALESCE('=' || {column}, '') || {unit} || "));
        }
        row.push_str(&format!("{json}.record"));
        let sql = format!(
            "SELECT string_agg(p.x, {record} ORDER BY p.id) FROM \
             (SELECT r.id AS id, {row} AS x {} ORDER BY r.id LIMIT {}) p",
            plan.from_where, plan.limit
        );
        let mut q = sqlx::query_scalar::<_, Option<String>>(&sql);
        for b in &plan.binds {
            q = q.bind(b);
        }
        let text = q
            .bind(UNIT.to_string())
            .bind(RECORD.to_string())
            .fetch_one(self.reads())
            .await?
            .unwrap_or_default();
        let meta = meta_columns(listing);
        let page = plan.limit as usize - 1;
        let mut out = TextPage {
            records: Vec::with_capacity(text.len() + page * 256),
            ..TextPage::default()
        };
        let mut values: Vec<(&str, Option<&str>)> = Vec::with_capacity(meta.len());
        for row in text.split(RECORD).filter(|r| !r.is_empty()) {
            if out.count == page {
                out.next = values
                    .iter()
                    .find(|(k, _)| *k == "id")
                    .and_then(|(_, v)| v.map(str::to_owned));
                break;
            }
            values.clear();
            let mut parts = row.split(UNIT);
            for (field, _) in meta {
                match parts.next() {
                    Some("") => values.push((field, None)),
                    Some(v) if v.starts_with('=') => values.push((field, Some(&v[1..]))),
                    _ => return Ok(None),
                }
            }
            let (Some(record), None) = (parts.next(), parts.next()) else {
                return Ok(None);
            };
            let Some(account) = values
                .iter()
                .find(|(k, _)| *k == "account_id")
                .and_then(|(_, v)| *v)
                .and_then(|id| {
                    plan.accounts
                        .binary_search_by(|a| a.id.as_str().cmp(id))
                        .ok()
                })
            else {
                return Ok(None);
            };
            if out.count > 0 {
                out.records.push(b',');
            }
            render(
                record,
                &values,
                &plan.accounts[account],
                None,
                &mut out.records,
            );
            out.count += 1;
        }
        Ok(Some(out))
    }

    /// The accounts of `workspace` (only the one named or with id
    /// `account`, if given), by id.
    async fn accounts_of(
        &self,
        workspace: &str,
        account: Option<&str>,
    ) -> Result<Vec<AccountNames>, StoreError> {
        let sql = if account.is_some() {
            "SELECT id, name, connector FROM accounts WHERE workspace_id = $1 \
             AND (name = $2 OR id = $2) ORDER BY id"
        } else {
            "SELECT id, name, connector FROM accounts WHERE workspace_id = $1 ORDER BY id"
        };
        let mut q = sqlx::query(sql).bind(workspace);
        if let Some(a) = account {
            q = q.bind(a);
        }
        q.fetch_all(self.reads())
            .await?
            .iter()
            .map(|r| {
                Ok(AccountNames {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    connector: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// One device by mdmhub id, or by remote id or serial number, with
    /// `same_as`: the other records of the same physical device (same
    /// serial in another account, or re-enrolled under a new remote id).
    pub async fn device(&self, key: &str) -> Result<Option<Json>, StoreError> {
        let row = sqlx::query(
            "SELECT r.*, a.name AS account_name, a.connector AS connector, d.record AS record, \
             d.remote_data AS remote_data, d.detail_remote_data AS detail_remote_data \
             FROM devices r JOIN device_data d ON d.device_id = r.id \
             JOIN accounts a ON a.id = r.account_id \
             WHERE r.id = $1 OR r.remote_id = $1 OR UPPER(r.serial_number) = UPPER($1) \
             ORDER BY CASE WHEN r.status = 'active' THEN 0 ELSE 1 END, r.last_seen_at DESC LIMIT 1",
        )
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

/// The columns of a device as lists show it (without `remote_data`), with
/// every column of its row, for [`device_json`].
pub(crate) const DEVICE_SELECT: &str =
    "r.*, a.name AS account_name, a.connector AS account_connector, d.record AS record";
/// Where [`DEVICE_SELECT`] reads from.
pub(crate) const DEVICE_FROM: &str = "devices r JOIN device_data d ON d.device_id = r.id \
     JOIN accounts a ON a.id = r.account_id";

/// A device row read with [`DEVICE_SELECT`] as lists show it.
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

/// A value mdmhub adds to a stored record.
#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    /// A string, or null.
    Text(Option<&'a str>),
    /// `remote_data`.
    Json(&'a Value),
}

impl Field<'_> {
    fn value(self) -> Value {
        match self {
            Field::Text(t) => t.map_or(Value::Null, |t| Value::String(t.to_owned())),
            Field::Json(v) => v.clone(),
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        match self {
            Field::Text(t) => serde_json::to_writer(out, &t),
            Field::Json(v) => serde_json::to_writer(out, v),
        }
        .expect("values serialize")
    }
}

/// The fields mdmhub adds to a record, sorted by name: `values` (of
/// [`meta_columns`]), the account's name and connector, and `remote_data`
/// if given.
fn fields<'a>(
    values: &[(&'static str, Option<&'a str>)],
    account: &'a AccountNames,
    remote: Option<&'a Value>,
) -> Vec<(&'static str, Field<'a>)> {
    let mut out: Vec<(&'static str, Field<'a>)> = Vec::with_capacity(values.len() + 3);
    out.extend(values.iter().map(|(k, v)| (*k, Field::Text(*v))));
    out.push(("account", Field::Text(Some(&account.name))));
    out.push(("connector", Field::Text(Some(&account.connector))));
    if let Some(r) = remote {
        out.push(("remote_data", Field::Json(r)));
    }
    out.sort_unstable_by_key(|(k, _)| *k);
    out
}

/// A stored record with `fields`, as a map (`completeness` is left out).
fn record_json(record: &str, fields: &[(&str, Field<'_>)]) -> Result<Json, StoreError> {
    let mut out: Json = serde_json::from_str(record)
        .map_err(|e| StoreError::Corrupt(format!("stored record: {e}")))?;
    out.remove("completeness");
    for (k, v) in fields {
        out.insert((*k).into(), v.value());
    }
    Ok(out)
}

/// Writes a record as callers see it, the bytes `serde_json` makes of
/// [`record_json`], to `out`: the stored record's members (in key order,
/// as `serde_json` stored them) with mdmhub's fields merged in by key.
fn render(
    record: &str,
    values: &[(&'static str, Option<&str>)],
    account: &AccountNames,
    remote: Option<&Value>,
    out: &mut Vec<u8>,
) {
    let fields = fields(values, account, remote);
    if !splice(record, &fields, out) {
        // Not the text serde_json stores (never expected): the slow way,
        // and a corrupt record as its error (this page's other records
        // are still served).
        match record_json(record, &fields) {
            Ok(json) => serde_json::to_writer(out, &json).expect("maps serialize"),
            Err(e) => serde_json::to_writer(out, &serde_json::json!({"error": e.to_string()}))
                .expect("values serialize"),
        }
    }
}

/// Writes object `record` (compact JSON, keys sorted, as `serde_json`
/// writes a map) without its `completeness` member and with `fields`
/// (sorted by key; replacing members of the same name) merged in.
/// `false`, writing nothing, if `record` is not such an object.
fn splice(record: &str, fields: &[(&str, Field<'_>)], out: &mut Vec<u8>) -> bool {
    let Some(members) = members(record) else {
        return false;
    };
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, key: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
    };
    let mut fields = fields.iter().peekable();
    for (name, value) in members {
        let mut replaced = false;
        while let Some((k, v)) = fields.next_if(|(k, _)| *k <= name) {
            key(out, k);
            v.write(out);
            replaced |= *k == name;
        }
        if !replaced && name != "completeness" {
            key(out, name);
            out.extend_from_slice(value.as_bytes());
        }
    }
    for (k, v) in fields {
        key(out, k);
        v.write(out);
    }
    out.push(b'}');
    true
}

/// The members of a JSON object's text, `(key, value text)`, if it is
/// an object as `serde_json` writes a map: compact, keys without escapes
/// in ascending order.
fn members(text: &str) -> Option<Vec<(&str, &str)>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'{') {
        return None;
    }
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(32);
    let mut i = 1;
    if b.get(i) == Some(&b'}') {
        return (i + 1 == b.len()).then_some(out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(b, i)?;
        let key = &text[i + 1..key_end - 1];
        if key.contains('\\') || out.last().is_some_and(|(last, _)| *last >= key) {
            return None;
        }
        if b.get(key_end) != Some(&b':') {
            return None;
        }
        let value_start = key_end + 1;
        let value_end = skip_value(b, value_start)?;
        out.push((key, &text[value_start..value_end]));
        match b.get(value_end) {
            Some(b',') => i = value_end + 1,
            Some(b'}') if value_end + 1 == b.len() => return Some(out),
            _ => return None,
        }
    }
}

/// The end of the string starting at `b[i]` (a quote): the index after
/// its closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end of the compact JSON value starting at `b[i]`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    c if c.is_ascii_whitespace() => return None,
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let start = i;
            while let Some(c) = b.get(i) {
                if matches!(c, b',' | b'}' | b']') {
                    break;
                }
                if c.is_ascii_whitespace() || matches!(c, b'{' | b'[' | b'"' | b':') {
                    return None;
                }
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_records_are_the_bytes_serde_json_writes() {
        let record = serde_json::json!({
            "name": "Mac \"Pro\"\n\u{e9}\u{1}\u{1e}",
            "completeness": "full",
            "assigned_user": {"email": "a@b.c", "name": null},
            "extra": {"k": "v}{][", "n": [1, 2.5, -3e-7, {"x": []}]},
            "groups": [],
            "memory_bytes": 17179869184u64,
            "status": "stored status is replaced",
            "zz": true,
        })
        .to_string();
        let account = AccountNames {
            id: "acc_1".into(),
            name: "acme \u{1f}".into(),
            connector: "iru".into(),
        };
        let remote = serde_json::json!({"summary": {"a": 1}, "details": null});
        let values = [
            ("id", Some("dev_1")),
            ("removed_at", None),
            ("status", Some("active")),
        ];
        for remote in [None, Some(&remote)] {
            let fields = fields(&values, &account, remote);
            let slow = serde_json::to_vec(&record_json(&record, &fields).unwrap()).unwrap();
            let mut out = Vec::new();
            assert!(splice(&record, &fields, &mut out));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(slow).unwrap()
            );
            let mut out = Vec::new();
            render(&record, &values, &account, remote, &mut out);
            assert!(!out.iter().any(|b| [0x1e, 0x1f].contains(b)), "escaped");
        }
        let fields = fields(&values, &account, None);
        for bare in ["{}", r#"{"completeness":"summary"}"#] {
            let mut out = Vec::new();
            assert!(splice(bare, &fields, &mut out));
            assert_eq!(
                out,
                serde_json::to_vec(&record_json(bare, &fields).unwrap()).unwrap()
            );
        }
        // Anything serde_json would not have written is refused.
        for odd in [
            r#"{"b":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#"{"a":[1, 2]}"#,
            r#"{"a\"b":1}"#,
            r#"{"a":1"#,
            r#"{"a":}"#,
            r#"[1]"#,
            r#"{"a":1}x"#,
        ] {
            assert!(!splice(odd, &fields, &mut Vec::new()), "{odd}");
        }
    }
}
