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

impl Store {
    /// A filtered page of `listing`, in id order, and the cursor of the next page.
    pub async fn list(
        &self,
        listing: Listing,
        f: &Filter,
    ) -> Result<(Vec<Json>, Option<String>), StoreError> {
        let t = listing.table();
        let mut conds = vec!["a.workspace_id = $1".to_owned()];
        let workspace = f
            .workspace
            .as_deref()
            .unwrap_or(super::accounts::DEFAULT_WORKSPACE);
        let mut binds: Vec<String> = vec![workspace.into()];
        let mut add = |cond: &str, value: &str| {
            binds.push(value.to_owned());
            conds.push(cond.replace('?', &format!("${}", binds.len())));
        };
        if let Some(a) = &f.account {
            add("(a.name = ? OR a.id = ?)", a);
        }
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
            }
            if let Some(e) = &f.email {
                add("r.assigned_user_email = ?", &e.to_lowercase());
            }
        }
        if listing == Listing::Users
            && let Some(e) = &f.email
        {
            add("r.email = ?", &e.to_lowercase());
        }
        if listing == Listing::Apps
            && let Some(d) = &f.device
        {
            add(
                "r.device_id IN (SELECT id FROM devices WHERE id = ? OR remote_id = ?)",
                d,
            );
        }
        if let Some(id) = &f.id {
            add("r.id = ?", id);
        }
        if let Some(since) = &f.updated_since {
            add("r.updated_at >= ?", since);
        }
        if let Some(after) = &f.after {
            add("r.id > ?", after);
        }
        let limit = f.limit.clamp(1, 10_000);
        // Devices keep their JSON in `device_data`.
        let data = match (listing, f.omit_remote_data) {
            (Listing::Devices, false) => ", d.record AS record, d.remote_data AS remote_data, \
                 d.detail_remote_data AS detail_remote_data FROM devices r \
                 JOIN device_data d ON d.device_id = r.id"
                .to_owned(),
            (Listing::Devices, true) => {
                ", d.record AS record FROM devices r JOIN device_data d ON d.device_id = r.id"
                    .to_owned()
            }
            // Other tables hold `remote_data` in the row; leaving it out
            // of the JSON is enough.
            _ => format!(" FROM {t} r"),
        };
        let sql = format!(
            "SELECT r.*, a.name AS account_name, a.connector AS connector{data} \
             JOIN accounts a ON a.id = r.account_id WHERE {} ORDER BY r.id LIMIT {}",
            conds.join(" AND "),
            limit + 1
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = rows
            .iter()
            .map(|r| to_json(listing, r, !f.omit_remote_data))
            .collect::<Result<Vec<_>, _>>()?;
        let next = if out.len() as i64 > limit {
            out.truncate(limit as usize);
            out.last()
                .and_then(|r| r.get("id")?.as_str().map(str::to_owned))
        } else {
            None
        };
        Ok((out, next))
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
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut device = to_json(Listing::Devices, &row, true)?;
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
                q.fetch_all(self.pool())
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
        Ok(q.fetch_one(self.pool()).await?)
    }
}

/// The columns of a device as lists show it (without `remote_data`), with
/// every column of its row, for [`device_json`].
pub(crate) const DEVICE_SELECT: &str =
    "r.*, a.name AS account_name, a.connector AS connector, d.record AS record";
/// Where [`DEVICE_SELECT`] reads from.
pub(crate) const DEVICE_FROM: &str = "devices r JOIN device_data d ON d.device_id = r.id \
     JOIN accounts a ON a.id = r.account_id";

/// A device row read with [`DEVICE_SELECT`] as lists show it.
pub(crate) fn device_json(r: &AnyRow) -> Result<Json, StoreError> {
    to_json(Listing::Devices, r, false)
}

/// A row as callers see it: the normalized record plus mdmhub's fields.
fn to_json(listing: Listing, r: &AnyRow, remote_data: bool) -> Result<Json, StoreError> {
    let text: String = r.try_get("record")?;
    let mut out: Json = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("stored record: {e}")))?;
    out.remove("completeness");
    let mut put = |k: &str, v: Value| {
        out.insert(k.into(), v);
    };
    let s = |col: &str| -> Result<Value, StoreError> {
        Ok(r.try_get::<Option<String>, _>(col)?
            .map(Value::String)
            .unwrap_or(Value::Null))
    };
    put("id", s("id")?);
    put("account_id", s("account_id")?);
    put("account", s("account_name")?);
    put("connector", s("connector")?);
    put("updated_at", s("updated_at")?);
    match listing {
        Listing::Apps => {
            put("device_id", s("device_id")?);
        }
        _ => {
            put("status", s("status")?);
            put("first_seen_at", s("first_seen_at")?);
            put("last_seen_at", s("last_seen_at")?);
            put("removed_at", s("removed_at")?);
        }
    }
    if listing == Listing::Devices {
        put("user_id", s("user_id")?);
        put("organization_id", s("organization_id")?);
    }
    if !remote_data {
        return Ok(out);
    }
    let raw: String = r.try_get("remote_data")?;
    let raw = serde_json::from_str(&raw).unwrap_or(Value::String(raw));
    if listing == Listing::Devices {
        let details = s("detail_remote_data")?;
        let details = match details {
            Value::String(d) if !d.is_empty() => {
                serde_json::from_str(&d).unwrap_or(Value::String(d))
            }
            _ => Value::Null,
        };
        put(
            "remote_data",
            serde_json::json!({"summary": raw, "details": details}),
        );
    } else {
        put("remote_data", raw);
    }
    Ok(out)
}
