//! Workspaces and their API keys. A key is shown once when it is made and
//! stored only as its SHA-256: keys carry 256 random bits, so a fast hash
//! resists guessing as well as a slow one, and lets a request's key be
//! found by an indexed equality lookup.
//!
//! A checked key is trusted for [`GRANT_TTL`] without asking the database
//! again, and its use is written at most once a minute: a read of the API
//! costs no key query and no write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;
use sha2::Digest as _;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, new_id, now, stamp};

/// What every key starts with, so leaked keys are easy to search for.
pub const KEY_PREFIX: &str = "mdmh_";

/// How many characters of a key lists show.
const SHOWN: usize = KEY_PREFIX.len() + 6;

/// How long a checked key's grant is used without asking the database
/// again. Revocations through this process's store take effect at once;
/// those made by another process (`mdmhub keys revoke` beside a running
/// server, another replica) within this time.
pub const GRANT_TTL: Duration = Duration::from_secs(2);

/// How often this process writes a key's `last_used_at` (the database
/// refuses more than once a minute as well, for other processes).
const USE_WRITTEN_EVERY: Duration = Duration::from_secs(60);

/// Cached entries beyond which expired ones are dropped.
const CACHE_SWEEP: usize = 1024;

/// Where a cached entry is valid: a pool (by identity) and a key's SHA-256.
type Slot = (usize, [u8; 32]);

/// A grant as last read from the database.
struct Checked {
    grant: Grant,
    at: Instant,
}

/// Grants recently read, by pool and key hash (live keys only: an unknown
/// or revoked key is asked about every time).
static GRANTS: LazyLock<Mutex<HashMap<Slot, Checked>>> = LazyLock::new(Default::default);

/// Bumped by every revocation in this process: a grant read before one
/// is not cached after it.
static REVOCATIONS: AtomicU64 = AtomicU64::new(0);

/// When this process last wrote each key's use, by pool and key id.
static USES: LazyLock<Mutex<HashMap<(usize, String), Instant>>> = LazyLock::new(Default::default);

/// A workspace: the boundary of accounts, their records and API keys.
#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    /// Id (`default` for the default workspace).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Created.
    pub created_at: String,
}

/// An API key as lists show it (never the key itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    /// Id.
    pub id: String,
    /// Workspace name.
    pub workspace: String,
    /// Name, unique among the workspace's live keys.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// Created.
    pub created_at: String,
    /// Last used (updated at most once a minute).
    pub last_used_at: Option<String>,
    /// Revoked, if it was.
    pub revoked_at: Option<String>,
}

/// What a valid key grants: its workspace.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The key's id.
    pub key_id: String,
    /// The workspace's id.
    pub workspace_id: String,
}

/// Why a key or workspace operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A workspace or key name with characters mdmhub does not allow.
    #[error("{what} name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`")]
    InvalidName {
        /// `workspace` or `key`.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// The store failed, or the name is taken or unknown.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new random key: the prefix and 32 random bytes in base64url.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a key: its SHA-256 in hex.
pub fn hash(key: &str) -> String {
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Checks a workspace or key name: letters, digits, `-`, `_`, `.`.
pub fn check_name(what: &'static str, name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

const KEY_COLUMNS: &str = "k.id, w.name AS workspace, k.name, k.prefix, k.created_at, \
    k.last_used_at, k.revoked_at";

fn key_from_row(r: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: r.try_get("id")?,
        workspace: r.try_get("workspace")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// The workspace named `name`, if any.
    pub async fn workspace(&self, name: &str) -> Result<Option<Workspace>, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM workspaces WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Workspace {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// The workspace named `name`, created if missing.
    pub async fn ensure_workspace(&self, name: &str) -> Result<Workspace, KeyError> {
        check_name("workspace", name)?;
        // Two processes may create it at once: the loser's insert does nothing.
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(new_id("ws"))
        .bind(name)
        .bind(now())
        .execute(self.pool())
        .await
        .map_err(StoreError::from)?;
        self.workspace(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("workspace `{name}` vanished")).into())
    }

    /// Makes a key named `name` in `workspace` (created if missing) and
    /// returns it with the key itself, which is not stored.
    pub async fn create_key(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<(ApiKey, String), KeyError> {
        check_name("key", name)?;
        let ws = self.ensure_workspace(workspace).await?;
        let key = generate();
        let id = new_id("key");
        let inserted = sqlx::query(
            "INSERT INTO api_keys (id, workspace_id, name, prefix, key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&ws.id)
        .bind(name)
        .bind(&key[..SHOWN])
        .bind(hash(&key))
        .bind(now())
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => {}
            // The live-name index: the name is taken.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "workspace `{workspace}` already has a key named `{name}`; revoke it first or pick another name"
                ))
                .into());
            }
            Err(e) => return Err(StoreError::from(e).into()),
        }
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
             WHERE k.id = $1"
        ))
        .bind(&id)
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::from)?;
        Ok((key_from_row(&row)?, key))
    }

    /// Every key (of `workspace` if given), revoked ones included, by
    /// workspace, name and creation.
    pub async fn api_keys(&self, workspace: Option<&str>) -> Result<Vec<ApiKey>, StoreError> {
        let filter = if workspace.is_some() {
            "WHERE w.name = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
             {filter} ORDER BY w.name, k.name, k.created_at"
        );
        let mut q = sqlx::query(&sql);
        if let Some(w) = workspace {
            q = q.bind(w);
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes the live key `name` of `workspace`; it stops working at once.
    pub async fn revoke_key(&self, workspace: &str, name: &str) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_at = $3 WHERE name = $2 AND revoked_at IS NULL \
             AND workspace_id IN (SELECT id FROM workspaces WHERE name = $1)",
        )
        .bind(workspace)
        .bind(name)
        .bind(now())
        .execute(self.pool())
        .await?
        .rows_affected();
        // Every cached grant goes: which one was revoked is not known here.
        REVOCATIONS.fetch_add(1, Ordering::SeqCst);
        GRANTS.lock().expect("never poisoned").clear();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "no live key named `{name}` in workspace `{workspace}` (see `mdmhub keys list`)"
            )));
        }
        Ok(())
    }

    /// What the presented `key` grants, if it is a live key (from the
    /// database at most [`GRANT_TTL`] ago).
    pub async fn authenticate(&self, key: &str) -> Result<Option<Grant>, StoreError> {
        if !key.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        let digest: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
        let slot = (self.identity(), digest);
        if let Some(c) = GRANTS.lock().expect("never poisoned").get(&slot)
            && c.at.elapsed() < GRANT_TTL
        {
            return Ok(Some(c.grant.clone()));
        }
        let revocations = REVOCATIONS.load(Ordering::SeqCst);
        let at = Instant::now();
        let row = sqlx::query(
            "SELECT id, workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hex::encode(digest))
        .fetch_optional(self.pool())
        .await?;
        let grant = row
            .map(|r| {
                Ok::<_, StoreError>(Grant {
                    key_id: r.try_get("id")?,
                    workspace_id: r.try_get("workspace_id")?,
                })
            })
            .transpose()?;
        let mut grants = GRANTS.lock().expect("never poisoned");
        match &grant {
            Some(g) if REVOCATIONS.load(Ordering::SeqCst) == revocations => {
                if grants.len() >= CACHE_SWEEP {
                    grants.retain(|_, c| c.at.elapsed() < GRANT_TTL);
                }
                grants.insert(
                    slot,
                    Checked {
                        grant: g.clone(),
                        at,
                    },
                );
            }
            _ => {
                grants.remove(&slot);
            }
        }
        Ok(grant)
    }

    /// Whether key `key_id`'s use is to be written now ([`Store::touch_key`]):
    /// once a minute per key from this process.
    pub fn key_use_due(&self, key_id: &str) -> bool {
        let now = Instant::now();
        let mut uses = USES.lock().expect("never poisoned");
        let slot = (self.identity(), key_id.to_owned());
        if uses
            .get(&slot)
            .is_some_and(|at| now.duration_since(*at) < USE_WRITTEN_EVERY)
        {
            return false;
        }
        if uses.len() >= CACHE_SWEEP {
            uses.retain(|_, at| now.duration_since(*at) < USE_WRITTEN_EVERY);
        }
        uses.insert(slot, now);
        true
    }

    /// This store's pool, as a number that differs between live pools.
    fn identity(&self) -> usize {
        Arc::as_ptr(&self.pool().connect_options()) as usize
    }

    /// Notes that key `key_id` was used; writes at most once a minute per
    /// key so that reads do not each cost a write.
    pub async fn touch_key(&self, key_id: &str) -> Result<(), StoreError> {
        let minute_ago = stamp(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(key_id)
        .bind(now())
        .bind(minute_ago)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43, "32 bytes in base64url");
        assert_eq!(hash(&a), hash(&a));
        assert_eq!(hash(&a).len(), 64);
        assert!(check_name("key", "ci-reader_1").is_ok());
        assert!(check_name("key", "a b").is_err());
        assert!(check_name("key", "").is_err());
    }

    #[tokio::test]
    async fn keys_grant_their_workspace_until_revoked() {
        let dir = std::env::temp_dir().join(format!("mdmhub-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_in(&dir).await.unwrap();
        let (key, secret) = store.create_key("acme", "ci").await.unwrap();
        assert_eq!(key.workspace, "acme");
        assert!(secret.starts_with(&key.prefix));
        let grant = store.authenticate(&secret).await.unwrap().unwrap();
        let ws = store.workspace("acme").await.unwrap().unwrap();
        assert_eq!(grant.workspace_id, ws.id);
        assert!(matches!(
            store.create_key("acme", "ci").await,
            Err(KeyError::Store(StoreError::Conflict(_)))
        ));
        assert!(store.authenticate("mdmh_nope").await.unwrap().is_none());
        // Cached now; the use is written once a minute.
        assert_eq!(
            store.authenticate(&secret).await.unwrap().unwrap().key_id,
            grant.key_id
        );
        assert!(store.key_use_due(&grant.key_id));
        assert!(!store.key_use_due(&grant.key_id));
        store.touch_key(&grant.key_id).await.unwrap();
        store.revoke_key("acme", "ci").await.unwrap();
        assert!(store.authenticate(&secret).await.unwrap().is_none());
        assert!(matches!(
            store.revoke_key("acme", "ci").await,
            Err(StoreError::NotFound(_))
        ));
        // The name is free again once its key is revoked.
        store.create_key("acme", "ci").await.unwrap();
        let listed = store.api_keys(Some("acme")).await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().any(|k| k.revoked_at.is_some()));
        assert!(listed[0].last_used_at.is_some() || listed[1].last_used_at.is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
