//! Device actions run through the API: the audit log (who ran what on which
//! device, and what came of it) and idempotency keys (a retried request
//! answers with the first one's stored response instead of acting twice).
//! Callers redact secrets and sensitive values before anything reaches here.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::webhooks::{NewEvent, emit_in};
use super::{Store, StoreError, now, stamp};

/// One action in the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Id.
    pub id: String,
    /// The workspace of the key that asked.
    pub workspace_id: String,
    /// The API key's id.
    pub key_id: String,
    /// The API key's name (filled in on insert).
    pub key_name: String,
    /// When it ran.
    pub at: String,
    /// mdmhub's device id.
    pub device_id: String,
    /// The device's account.
    pub account_id: String,
    /// The action as the API names it (`lock`, `vendor:blankpush`, ...).
    pub action: String,
    /// Parameters as JSON, secrets redacted.
    pub params: String,
    /// `running`, then `accepted`, `completed` or `failed`; or `refused`.
    pub status: String,
    /// The vendor's command id.
    pub command_id: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What an `Idempotency-Key` already stands for.
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The key is new (or its first request was abandoned): run the request.
    Fresh,
    /// A request with this key is still running.
    Running {
        /// Its request hash.
        request_hash: String,
    },
    /// A request with this key was answered.
    Answered {
        /// Its request hash.
        request_hash: String,
        /// Its HTTP status.
        status: u16,
        /// Its stored (redacted) JSON body.
        response: String,
    },
}

const COLUMNS: &str = "id, workspace_id, key_id, key_name, at, device_id, account_id, action, \
    params, status, command_id, error";

fn from_row(r: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        key_id: r.try_get("key_id")?,
        key_name: r.try_get("key_name")?,
        at: r.try_get("at")?,
        device_id: r.try_get("device_id")?,
        account_id: r.try_get("account_id")?,
        action: r.try_get("action")?,
        params: r.try_get("params")?,
        status: r.try_get("status")?,
        command_id: r.try_get("command_id")?,
        error: r.try_get("error")?,
    })
}

impl Store {
    /// Appends `e` to the audit log, naming its key by `e.key_id`.
    pub async fn insert_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO action_audit ({COLUMNS}) VALUES ($1, $2, $3, \
             COALESCE((SELECT name FROM api_keys WHERE id = $3), $4), \
             $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&e.id)
        .bind(&e.workspace_id)
        .bind(&e.key_id)
        .bind(&e.key_name)
        .bind(&e.at)
        .bind(&e.device_id)
        .bind(&e.account_id)
        .bind(&e.action)
        .bind(&e.params)
        .bind(&e.status)
        .bind(&e.command_id)
        .bind(&e.error)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records how the action of entry `id` ended, storing the events
    /// `announce` renders from the finished entry in the same transaction.
    pub async fn finish_audit(
        &self,
        id: &str,
        status: &str,
        command_id: Option<&str>,
        error: Option<&str>,
        announce: impl FnOnce(&AuditEntry) -> Vec<NewEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE action_audit SET status = $2, command_id = $3, error = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(command_id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM action_audit WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        let entry = from_row(&row)?;
        let events = announce(&entry);
        emit_in(&mut tx, &entry.workspace_id, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` audit entries of `workspace` (of one device if given),
    /// newest first, strictly after the `(at, id)` position `after`.
    pub async fn audit_in(
        &self,
        workspace: &str,
        device: Option<&str>,
        after: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM action_audit WHERE workspace_id = $1");
        let mut n = 1;
        if device.is_some() {
            n += 1;
            sql.push_str(&format!(" AND device_id = ${n}"));
        }
        if after.is_some() {
            sql.push_str(&format!(
                " AND (at < ${} OR (at = ${} AND id < ${}))",
                n + 1,
                n + 1,
                n + 2
            ));
            n += 2;
        }
        sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT ${}", n + 1));
        let mut q = sqlx::query(&sql).bind(workspace);
        if let Some(d) = device {
            q = q.bind(d);
        }
        if let Some((at, id)) = after {
            q = q.bind(at).bind(id);
        }
        let rows = q.bind(limit).fetch_all(self.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Claims `key` of `workspace` for a request hashing to `request_hash`,
    /// or says what the key already stands for. A claim whose request has
    /// not answered for `abandon_after` (its process died) is taken over.
    pub async fn reserve_idempotency_key(
        &self,
        workspace: &str,
        key: &str,
        request_hash: &str,
        abandon_after: std::time::Duration,
    ) -> Result<Reservation, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (workspace_id, idem_key, request_hash, status, created_at) \
             VALUES ($1, $2, $3, 0, $4) ON CONFLICT (workspace_id, idem_key) DO NOTHING",
        )
        .bind(workspace)
        .bind(key)
        .bind(request_hash)
        .bind(now())
        .execute(self.pool())
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Reservation::Fresh);
        }
        let cutoff = stamp(time::OffsetDateTime::now_utc() - abandon_after);
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET created_at = $4 WHERE workspace_id = $1 \
             AND idem_key = $2 AND request_hash = $3 AND status = 0 AND created_at < $5",
        )
        .bind(workspace)
        .bind(key)
        .bind(request_hash)
        .bind(now())
        .bind(cutoff)
        .execute(self.pool())
        .await?
        .rows_affected();
        if taken == 1 {
            return Ok(Reservation::Fresh);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys \
             WHERE workspace_id = $1 AND idem_key = $2",
        )
        .bind(workspace)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            // Released between the insert and this read: claim it again.
            return Box::pin(self.reserve_idempotency_key(
                workspace,
                key,
                request_hash,
                abandon_after,
            ))
            .await;
        };
        let request_hash: String = row.try_get("request_hash")?;
        let status: i64 = row.try_get("status")?;
        let response: Option<String> = row.try_get("response")?;
        Ok(match (status, response) {
            (0, _) | (_, None) => Reservation::Running { request_hash },
            (status, Some(response)) => Reservation::Answered {
                request_hash,
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("idempotent status {status}")))?,
                response,
            },
        })
    }

    /// Stores the answer to the request that claimed `key`.
    pub async fn answer_idempotency_key(
        &self,
        workspace: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $3, response = $4 \
             WHERE workspace_id = $1 AND idem_key = $2",
        )
        .bind(workspace)
        .bind(key)
        .bind(i64::from(status))
        .bind(response)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Frees `key` (its request certainly did nothing), so a retry runs.
    pub async fn release_idempotency_key(
        &self,
        workspace: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE workspace_id = $1 AND idem_key = $2")
            .bind(workspace)
            .bind(key)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::accounts::DEFAULT_WORKSPACE;
    use crate::store::new_id;

    fn entry(device: &str, at: &str) -> AuditEntry {
        AuditEntry {
            id: new_id("act"),
            workspace_id: DEFAULT_WORKSPACE.into(),
            key_id: "key_gone".into(),
            key_name: "(deleted)".into(),
            at: at.into(),
            device_id: device.into(),
            account_id: "acc".into(),
            action: "lock".into(),
            params: "{}".into(),
            status: "accepted".into(),
            command_id: None,
            error: None,
        }
    }

    #[tokio::test]
    async fn audit_pages_newest_first_and_keys_replay() {
        let dir = std::env::temp_dir().join(format!("mdmhub-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_in(&dir).await.unwrap();
        for (device, at) in [
            ("d1", "2024-01-01T00:00:01.000000Z"),
            ("d2", "2024-01-01T00:00:02.000000Z"),
            ("d1", "2024-01-01T00:00:03.000000Z"),
        ] {
            store.insert_audit(&entry(device, at)).await.unwrap();
        }
        let ws = DEFAULT_WORKSPACE;
        let first = store.audit_in(ws, None, None, 2).await.unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].at, "2024-01-01T00:00:03.000000Z");
        assert_eq!(first[0].key_name, "(deleted)");
        let last = &first[1];
        let rest = store
            .audit_in(ws, None, Some((&last.at, &last.id)), 2)
            .await
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(
            store.audit_in(ws, Some("d1"), None, 9).await.unwrap().len(),
            2
        );
        assert!(
            store
                .audit_in("other", None, None, 9)
                .await
                .unwrap()
                .is_empty()
        );

        let long = Duration::from_secs(600);
        let reserve = |hash: &'static str| store.reserve_idempotency_key(ws, "k1", hash, long);
        assert_eq!(reserve("h").await.unwrap(), Reservation::Fresh);
        assert!(matches!(
            reserve("h").await.unwrap(),
            Reservation::Running { .. }
        ));
        store
            .answer_idempotency_key(ws, "k1", 202, "{\"ok\":1}")
            .await
            .unwrap();
        assert_eq!(
            reserve("other").await.unwrap(),
            Reservation::Answered {
                request_hash: "h".into(),
                status: 202,
                response: "{\"ok\":1}".into()
            }
        );
        store.release_idempotency_key(ws, "k1").await.unwrap();
        assert_eq!(reserve("h").await.unwrap(), Reservation::Fresh);
        // A claim whose process died is taken over.
        let instant = store
            .reserve_idempotency_key(ws, "k1", "h", Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(instant, Reservation::Fresh);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
