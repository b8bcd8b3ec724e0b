//! Stored accounts: a connector, its config, sealed secrets, endpoint and
//! rate overrides, the sync interval, and the sync lease.

use std::collections::BTreeMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now};

/// The workspace accounts go to until workspaces are managed (issue: API).
pub const DEFAULT_WORKSPACE: &str = "default";

/// One stored account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// mdmhub's id (also the secrets' associated data).
    pub id: String,
    /// Workspace id.
    pub workspace_id: String,
    /// Unique name within the workspace.
    pub name: String,
    /// Connector id.
    pub connector: String,
    /// Non-secret config.
    pub config: BTreeMap<String, String>,
    /// Secrets sealed by the master key.
    pub sealed_secrets: String,
    /// Endpoint overrides (`[HOST=]URL`).
    pub endpoints: Vec<String>,
    /// Rate override (`N/s|m|h`).
    pub rate_limit: Option<String>,
    /// Seconds between scheduled syncs.
    pub sync_interval_secs: i64,
    /// When the scheduler next runs it.
    pub next_sync_at: String,
    /// Who holds the sync lease, if anyone.
    pub lease_holder: Option<String>,
    /// When that lease ends unless renewed.
    pub lease_expires_at: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
}

const COLUMNS: &str = "id, workspace_id, name, connector, config, sealed_secrets, endpoints, \
    rate_limit, sync_interval_secs, next_sync_at, lease_holder, lease_expires_at, created_at, updated_at";

fn from_row(r: &AnyRow) -> Result<AccountRow, StoreError> {
    let json = |col: &str| -> Result<String, StoreError> { Ok(r.try_get::<String, _>(col)?) };
    let config: BTreeMap<String, String> = serde_json::from_str(&json("config")?)
        .map_err(|e| StoreError::Corrupt(format!("account config: {e}")))?;
    let endpoints: Vec<String> = serde_json::from_str(&json("endpoints")?)
        .map_err(|e| StoreError::Corrupt(format!("account endpoints: {e}")))?;
    Ok(AccountRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        name: r.try_get("name")?,
        connector: r.try_get("connector")?,
        config,
        sealed_secrets: r.try_get("sealed_secrets")?,
        endpoints,
        rate_limit: r.try_get("rate_limit")?,
        sync_interval_secs: r.try_get("sync_interval_secs")?,
        next_sync_at: r.try_get("next_sync_at")?,
        lease_holder: r.try_get("lease_holder")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Saves a new account; its name must be free in the workspace.
    pub async fn insert_account(&self, a: &AccountRow) -> Result<(), StoreError> {
        if self
            .find_account_in(&a.workspace_id, &a.name)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "an account named `{}` already exists",
                a.name
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO accounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $11)"
        ))
        .bind(&a.id)
        .bind(&a.workspace_id)
        .bind(&a.name)
        .bind(&a.connector)
        .bind(serde_json::to_string(&a.config).expect("a map serializes"))
        .bind(&a.sealed_secrets)
        .bind(serde_json::to_string(&a.endpoints).expect("a list serializes"))
        .bind(&a.rate_limit)
        .bind(a.sync_interval_secs)
        .bind(&a.next_sync_at)
        .bind(now())
        .execute(self.pool())
        .await?;
        self.accounts_changed();
        Ok(())
    }

    /// Saves an account's changed settings (not its lease).
    pub async fn update_account(&self, a: &AccountRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE accounts SET config = $2, sealed_secrets = $3, endpoints = $4, rate_limit = $5, \
             sync_interval_secs = $6, next_sync_at = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(&a.id)
        .bind(serde_json::to_string(&a.config).expect("a map serializes"))
        .bind(&a.sealed_secrets)
        .bind(serde_json::to_string(&a.endpoints).expect("a list serializes"))
        .bind(&a.rate_limit)
        .bind(a.sync_interval_secs)
        .bind(&a.next_sync_at)
        .bind(now())
        .execute(self.pool())
        .await?;
        self.accounts_changed();
        Ok(())
    }

    /// The account named (or with id) `name`, if any.
    pub async fn find_account(&self, name: &str) -> Result<Option<AccountRow>, StoreError> {
        self.find_account_in(DEFAULT_WORKSPACE, name).await
    }

    /// The account of `workspace` named (or with id) `name`, if any.
    pub async fn find_account_in(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<Option<AccountRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE workspace_id = $1 AND (name = $2 OR id = $2)"
        ))
        .bind(workspace)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The account named `name`, or a not-found error naming it.
    pub async fn account(&self, name: &str) -> Result<AccountRow, StoreError> {
        self.find_account(name).await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no account named `{name}` (see `mdmhub accounts list`)"
            ))
        })
    }

    /// Every account, by name.
    pub async fn accounts(&self) -> Result<Vec<AccountRow>, StoreError> {
        self.accounts_in(DEFAULT_WORKSPACE).await
    }

    /// Every account of `workspace`, by name.
    pub async fn accounts_in(&self, workspace: &str) -> Result<Vec<AccountRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE workspace_id = $1 ORDER BY name"
        ))
        .bind(workspace)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Accounts whose scheduled sync is due at `at`.
    pub async fn due_accounts(&self, at: &str) -> Result<Vec<AccountRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE next_sync_at <= $1 ORDER BY next_sync_at"
        ))
        .bind(at)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Whether the account has finished a complete sync.
    pub async fn synced_before(&self, account_id: &str) -> Result<bool, StoreError> {
        let at: Option<Option<String>> =
            sqlx::query_scalar("SELECT seen_through_at FROM accounts WHERE id = $1")
                .bind(account_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(matches!(at, Some(Some(_))))
    }

    /// Sets when the account next syncs.
    pub async fn set_next_sync(&self, account_id: &str, at: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET next_sync_at = $2 WHERE id = $1")
            .bind(account_id)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes an account and, by cascade, everything synced from it.
    /// Returns the number of devices that went with it.
    pub async fn remove_account(&self, account_id: &str) -> Result<i64, StoreError> {
        self.forget_lists(account_id);
        let mut tx = self.write_tx().await?;
        let devices: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
        // Children first: SQLite only cascades with foreign keys enabled per
        // connection, so the order is explicit rather than trusted.
        sqlx::query(
            "DELETE FROM device_data WHERE device_id IN (SELECT id FROM devices WHERE account_id = $1)",
        )
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
        for table in [
            "apps",
            "devices",
            "users",
            "organizations",
            "sync_errors",
            "checkpoints",
        ] {
            let sql = match table {
                "sync_errors" | "checkpoints" => format!(
                    "DELETE FROM {table} WHERE run_id IN (SELECT id FROM sync_runs WHERE account_id = $1)"
                ),
                _ => format!("DELETE FROM {table} WHERE account_id = $1"),
            };
            sqlx::query(&sql).bind(account_id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM sync_runs WHERE account_id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.accounts_changed();
        Ok(devices)
    }

    /// Marks every device of the account for a fresh detail read (after
    /// its credentials or endpoint changed).
    pub async fn refetch_account(&self, account_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE devices SET needs_details = 1 WHERE account_id = $1")
            .bind(account_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
