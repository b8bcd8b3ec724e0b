//! Webhook subscriptions and the outbox. An event is stored in the same
//! transaction as the change it announces, with one delivery per matching
//! subscription (an event nobody subscribed to is not stored); dispatchers
//! claim due deliveries under a lease, so every event is delivered at least
//! once, with the same id, across restarts and replicas. The store never
//! sends anything: `webhooks` does.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, now};

/// A subscription: where a workspace wants which events.
#[derive(Debug, Clone)]
pub struct SubscriptionRow {
    /// Id (`whk_...`).
    pub id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// The caller's note.
    pub description: Option<String>,
    /// The signing secret, sealed with the master key.
    pub sealed_secret: String,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: String,
    /// When it stopped receiving events (by the caller, or a 410 answer).
    pub disabled_at: Option<String>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
}

/// An event to store: its id (the `webhook-id`), type and rendered body.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `msg_...`, stable across every attempt.
    pub id: String,
    /// `device.created`, ...
    pub event_type: &'static str,
    /// The JSON body sent.
    pub body: String,
}

/// A delivery claimed for sending.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The event id.
    pub event_id: String,
    /// The subscription.
    pub subscription_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The event's body.
    pub body: String,
    /// The subscription's URL.
    pub url: String,
    /// The subscription's sealed secret.
    pub sealed_secret: String,
}

/// A delivery as callers see it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    /// The event id.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// When the event happened.
    pub created_at: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    /// The last attempt's time.
    pub last_attempt_at: Option<String>,
    /// The last answer's HTTP status.
    pub last_status: Option<i64>,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// How one attempt ended, as stored.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<&'a str>,
    /// What becomes of the delivery.
    pub next: Next<'a>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// It arrived.
    Delivered,
    /// Attempted again at this stored time.
    RetryAt(&'a str),
    /// No more attempts.
    Failed,
}

impl Next<'_> {
    /// The name metrics and logs use.
    pub fn name(self) -> &'static str {
        match self {
            Next::Delivered => "delivered",
            Next::RetryAt(_) => "retrying",
            Next::Failed => "failed",
        }
    }
}

/// A device whose state differs from what was last announced about it.
#[derive(Debug, Clone)]
pub struct Unannounced {
    /// The row as the API shows it (without `remote_data`).
    pub device: super::query::Json,
    /// Its current content hash.
    pub content_hash: String,
    /// `active` or `removed`.
    pub status: String,
    /// The hash last announced (`None`: never announced).
    pub announced_hash: Option<String>,
    /// The status last announced.
    pub announced_status: Option<String>,
    /// The compliance last announced (`true`, `false`, `unknown`).
    pub announced_compliance: Option<String>,
    /// Its current compliance (`true`, `false`, or `None`: unknown).
    pub is_compliant: Option<String>,
}

/// What an announcement marks on a device: the state its events describe.
#[derive(Debug, Clone)]
pub struct Announced {
    /// Device id.
    pub id: String,
    /// The hash the marks were computed from (the row must still have it).
    pub content_hash: String,
    /// The status announced.
    pub status: String,
    /// The compliance announced.
    pub compliance: String,
    /// The previous announced hash (the row must still have it).
    pub previous_hash: Option<String>,
}

const SUB_COLUMNS: &str = "id, workspace_id, url, events, description, sealed_secret, \
    created_at, updated_at, disabled_at, disabled_reason";

fn sub_from_row(r: &AnyRow) -> Result<SubscriptionRow, StoreError> {
    let events: String = r.try_get("events")?;
    Ok(SubscriptionRow {
        id: r.try_get("id")?,
        workspace_id: r.try_get("workspace_id")?,
        url: r.try_get("url")?,
        events: split_events(&events),
        description: r.try_get("description")?,
        sealed_secret: r.try_get("sealed_secret")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        disabled_at: r.try_get("disabled_at")?,
        disabled_reason: r.try_get("disabled_reason")?,
    })
}

/// `,a,b,`: every type delimited on both sides, so `LIKE '%,a,%'` matches.
fn join_events(events: &[String]) -> String {
    format!(",{},", events.join(","))
}

fn split_events(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Store {
    /// Saves a new subscription.
    pub async fn insert_subscription(&self, s: &SubscriptionRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO webhook_subscriptions ({SUB_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&s.id)
        .bind(&s.workspace_id)
        .bind(&s.url)
        .bind(join_events(&s.events))
        .bind(&s.description)
        .bind(&s.sealed_secret)
        .bind(&s.created_at)
        .bind(&s.updated_at)
        .bind(&s.disabled_at)
        .bind(&s.disabled_reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Saves a subscription's changed fields (not its secret).
    pub async fn update_subscription(&self, s: &SubscriptionRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_subscriptions SET url = $3, events = $4, description = $5, \
             updated_at = $6, disabled_at = $7, disabled_reason = $8 \
             WHERE id = $1 AND workspace_id = $2",
        )
        .bind(&s.id)
        .bind(&s.workspace_id)
        .bind(&s.url)
        .bind(join_events(&s.events))
        .bind(&s.description)
        .bind(&s.updated_at)
        .bind(&s.disabled_at)
        .bind(&s.disabled_reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The workspace's subscriptions, oldest first.
    pub async fn subscriptions_in(
        &self,
        workspace: &str,
    ) -> Result<Vec<SubscriptionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE workspace_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(workspace)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(sub_from_row).collect()
    }

    /// One subscription of the workspace.
    pub async fn subscription_in(
        &self,
        workspace: &str,
        id: &str,
    ) -> Result<Option<SubscriptionRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SUB_COLUMNS} FROM webhook_subscriptions WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace)
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(sub_from_row).transpose()
    }

    /// Deletes a subscription and its pending deliveries; false if absent.
    pub async fn delete_subscription_in(
        &self,
        workspace: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE subscription_id = $1 AND subscription_id IN \
             (SELECT id FROM webhook_subscriptions WHERE workspace_id = $2)",
        )
        .bind(id)
        .bind(workspace)
        .execute(&mut *tx)
        .await?;
        let gone =
            sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1 AND workspace_id = $2")
                .bind(id)
                .bind(workspace)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// Stops a subscription (the receiver answered 410 Gone).
    pub async fn disable_subscription(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query(
            "UPDATE webhook_subscriptions SET disabled_at = $2, disabled_reason = $3, \
             updated_at = $2 WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(&at)
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether an enabled subscription of `workspace` takes any event whose
    /// type starts with `prefix` (`device.`): without one, changes are
    /// marked announced without rendering events.
    pub async fn subscribed(&self, workspace: &str, prefix: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_subscriptions WHERE workspace_id = $1 \
             AND disabled_at IS NULL AND events LIKE $2",
        )
        .bind(workspace)
        .bind(format!("%,{prefix}%"))
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Up to `limit` devices of the account after `after_id` (id order)
    /// whose state differs from their last announcement.
    pub async fn unannounced_devices(
        &self,
        account_id: &str,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<Unannounced>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM {} WHERE r.account_id = $1 AND r.id > $2 \
             AND (r.announced_hash IS NULL OR r.announced_hash <> r.content_hash \
                  OR r.announced_status <> r.status) \
             ORDER BY r.id LIMIT $3",
            super::query::device_select(),
            super::query::DEVICE_FROM,
        ))
        .bind(account_id)
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Unannounced {
                    device: super::query::device_json(r)?,
                    content_hash: r.try_get("content_hash")?,
                    status: r.try_get("status")?,
                    announced_hash: r.try_get("announced_hash")?,
                    announced_status: r.try_get("announced_status")?,
                    announced_compliance: r.try_get("announced_compliance")?,
                    is_compliant: r.try_get("is_compliant")?,
                })
            })
            .collect()
    }

    /// Marks devices announced and stores the events that announce them, in
    /// one transaction. A device changed (or announced by someone else)
    /// since it was read keeps its marks and gets no event now: it is
    /// announced on the next pass. Returns how many were marked.
    pub async fn announce_devices(
        &self,
        workspace: &str,
        marks: &[(Announced, Vec<NewEvent>)],
    ) -> Result<usize, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut marked = 0;
        let mut events = Vec::new();
        for (m, evs) in marks {
            let done = sqlx::query(
                "UPDATE devices SET announced_hash = $2, announced_status = $3, \
                 announced_compliance = $4 WHERE id = $1 AND content_hash = $2 AND status = $3 \
                 AND (announced_hash = $5 OR (announced_hash IS NULL AND $5 IS NULL))",
            )
            .bind(&m.id)
            .bind(&m.content_hash)
            .bind(&m.status)
            .bind(&m.compliance)
            .bind(&m.previous_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                marked += 1;
                events.extend(evs.iter().cloned());
            }
        }
        emit_in(&mut tx, workspace, &events).await?;
        tx.commit().await?;
        Ok(marked)
    }

    /// Marks every device of the account announced as it is, without
    /// events (nobody subscribed).
    pub async fn announce_silently(&self, account_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE devices SET announced_hash = content_hash, announced_status = status, \
             announced_compliance = COALESCE(is_compliant, 'unknown') \
             WHERE account_id = $1 AND (announced_hash IS NULL \
             OR announced_hash <> content_hash OR announced_status <> status)",
        )
        .bind(account_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims up to `limit` due deliveries for `holder` until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        holder: &str,
        lease_until: &str,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let at = now();
        // The outer conditions repeat the inner ones: on PostgreSQL a row
        // another dispatcher claimed first is re-checked and skipped.
        let free = "status = 'pending' AND next_attempt_at <= $3 \
                    AND (lease_holder IS NULL OR lease_expires_at < $3)";
        sqlx::query(&format!(
            "UPDATE webhook_deliveries SET lease_holder = $1, lease_expires_at = $2 \
             WHERE {free} AND (event_id, subscription_id) IN (SELECT event_id, subscription_id \
             FROM webhook_deliveries WHERE {free} ORDER BY next_attempt_at, event_id LIMIT $4)"
        ))
        .bind(holder)
        .bind(lease_until)
        .bind(&at)
        .bind(limit)
        .execute(self.pool())
        .await?;
        let rows = sqlx::query(
            "SELECT d.event_id, d.subscription_id, d.attempts, e.body, s.url, s.sealed_secret \
             FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.lease_holder = $1 AND d.status = 'pending' AND d.lease_expires_at = $2 \
             ORDER BY d.next_attempt_at, d.event_id",
        )
        .bind(holder)
        .bind(lease_until)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueDelivery {
                    event_id: r.try_get("event_id")?,
                    subscription_id: r.try_get("subscription_id")?,
                    attempts: r.try_get("attempts")?,
                    body: r.try_get("body")?,
                    url: r.try_get("url")?,
                    sealed_secret: r.try_get("sealed_secret")?,
                })
            })
            .collect()
    }

    /// Records an attempt of a delivery `holder` claimed; false if the
    /// claim was lost (another dispatcher now owns it).
    pub async fn record_attempt(
        &self,
        d: &DueDelivery,
        holder: &str,
        a: &Attempt<'_>,
    ) -> Result<bool, StoreError> {
        let at = now();
        let (status, next, finished) = match a.next {
            Next::Failed => ("failed", at.as_str(), Some(at.as_str())),
            Next::RetryAt(retry) => ("pending", retry, None),
            Next::Delivered => ("delivered", at.as_str(), Some(at.as_str())),
        };
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = $4, attempts = attempts + 1, \
             next_attempt_at = $5, finished_at = $6, last_attempt_at = $7, last_status = $8, \
             last_error = $9, lease_holder = NULL, lease_expires_at = NULL \
             WHERE event_id = $1 AND subscription_id = $2 AND lease_holder = $3",
        )
        .bind(&d.event_id)
        .bind(&d.subscription_id)
        .bind(holder)
        .bind(status)
        .bind(next)
        .bind(finished)
        .bind(&at)
        .bind(a.status.map(i64::from))
        .bind(a.error)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives up the claims of `holder` (shutting down, or a holder proven
    /// dead): those deliveries are due again at once.
    pub async fn release_deliveries(&self, holder: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE webhook_deliveries SET lease_holder = NULL, lease_expires_at = NULL \
             WHERE lease_holder = $1 AND status = 'pending'",
        )
        .bind(holder)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// The holders of current delivery claims.
    pub async fn delivery_holders(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_holder FROM webhook_deliveries \
             WHERE status = 'pending' AND lease_holder IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// A subscription's deliveries, newest event first, before `before`.
    pub async fn deliveries_of(
        &self,
        subscription_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT d.event_id, e.type, e.created_at, d.status, d.attempts, d.next_attempt_at, \
             d.last_attempt_at, d.last_status, d.last_error FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id \
             WHERE d.subscription_id = $1 AND ($2 IS NULL OR d.event_id < $2) \
             ORDER BY d.event_id DESC LIMIT $3",
        )
        .bind(subscription_id)
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let next: String = r.try_get("next_attempt_at")?;
                Ok(DeliveryRow {
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("type")?,
                    created_at: r.try_get("created_at")?,
                    next_attempt_at: (status == "pending").then_some(next),
                    status,
                    attempts: r.try_get("attempts")?,
                    last_attempt_at: r.try_get("last_attempt_at")?,
                    last_status: r.try_get("last_status")?,
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    /// Deletes finished deliveries older than `before`, and events left
    /// without deliveries. Returns the deliveries deleted.
    pub async fn prune_outbox(&self, before: &str) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND finished_at < $1",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM webhook_events WHERE created_at < $1 AND NOT EXISTS \
             (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Stores `events` with a delivery for each enabled subscription of
/// `workspace` that takes its type, inside `tx`: the outbox half of a
/// change. Events no subscription takes are not stored.
pub(crate) async fn emit_in(
    tx: &mut super::WriteTx,
    workspace: &str,
    events: &[NewEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let subs: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, events FROM webhook_subscriptions \
         WHERE workspace_id = $1 AND disabled_at IS NULL",
    )
    .bind(workspace)
    .fetch_all(&mut **tx)
    .await?;
    if subs.is_empty() {
        return Ok(());
    }
    let at = now();
    for e in events {
        let wanted = format!(",{},", e.event_type);
        let takers: Vec<&str> = subs
            .iter()
            .filter(|(_, types)| types.contains(&wanted))
            .map(|(id, _)| id.as_str())
            .collect();
        if takers.is_empty() {
            continue;
        }
        sqlx::query(
            "INSERT INTO webhook_events (id, workspace_id, type, body, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&e.id)
        .bind(workspace)
        .bind(e.event_type)
        .bind(&e.body)
        .bind(&at)
        .execute(&mut **tx)
        .await?;
        for sub in takers {
            sqlx::query(
                "INSERT INTO webhook_deliveries (event_id, subscription_id, status, next_attempt_at) \
                 VALUES ($1, $2, 'pending', $3)",
            )
            .bind(&e.id)
            .bind(sub)
            .bind(&at)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
