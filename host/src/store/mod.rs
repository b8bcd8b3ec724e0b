//! The inventory store: one code path over sqlx's `Any` driver for SQLite
//! (the embedded default, a WAL file in the data directory) and PostgreSQL
//! (`--database-url postgres://...`, for several replicas). The schema
//! (`host/migrations`) uses only types both share.
//!
//! The store never calls connectors or the network; sync decides what to
//! write and the store writes it.

pub mod accounts;
pub mod audit;
pub mod keys;
mod list_cache;
pub mod listed_accounts;
pub mod query;
pub mod records;
mod render;
pub mod runs;
pub mod webhooks;

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions};
use sqlx::query::Query;
use sqlx::{AnyPool, ConnectOptions, Executor};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The database file's name in the data directory.
pub const SQLITE_FILE: &str = "mdmhub.db";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names a database mdmhub does not support.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name is taken, or a similar conflict.
    #[error("{0}")]
    Conflict(String),
    /// The run's lease passed to another process; this one must stop.
    #[error("sync run {0} is now run by another process")]
    LeaseLost(String),
    /// Stored data is not what this version expects.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A connection pool with the schema applied.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Inventory reads (the API's lists): on SQLite their own read-only
    /// connections, so callers never queue behind a sync's writes, with the
    /// file memory-mapped (no copy of each page read); the pool otherwise.
    reads: AnyPool,
    /// Writing transactions ([`Store::write_tx`]): on SQLite one connection
    /// of their own, whose page cache stays valid from one transaction to
    /// the next (SQLite drops a connection's whole cache when another
    /// connection wrote since its last transaction); the pool otherwise.
    writer: AnyPool,
    backend: Backend,
    /// Records ready to list, once [`Store::cache_lists`] turns it on.
    list_cache: Arc<OnceLock<list_cache::ListCache>>,
    /// This store's turn to write (SQLite; see [`Store::write_tx`]).
    write_turn: Arc<tokio::sync::Semaphore>,
    /// Where it was opened.
    url: ConnectUrl,
}

/// A database URL, shown without its password.
#[derive(Clone)]
struct ConnectUrl(Arc<str>);

impl std::fmt::Debug for ConnectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

impl Store {
    /// Opens `url` (`sqlite://PATH` or `postgres://...`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        let pool = write_pool(backend, POOL_CACHE_KIB)
            .connect_with(connect_options(url)?)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writer = writer_pool(backend, &pool, url)?;
        let reads = match backend {
            Backend::Postgres => pool.clone(),
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .min_connections(0)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA query_only = ON",
                                "PRAGMA busy_timeout = 30000",
                                "PRAGMA cache_size = -16384",
                                "PRAGMA mmap_size = 4294967296",
                            ] {
                                conn.execute(pragma).await?;
                            }
                            Ok(())
                        })
                    })
                    // Lazily: commands that never list open no connection.
                    .connect_lazy_with(connect_options(url)?)
            }
        };
        Ok(Self {
            pool,
            reads,
            writer,
            backend,
            list_cache: Arc::default(),
            write_turn: Arc::new(tokio::sync::Semaphore::new(1)),
            url: ConnectUrl(url.into()),
        })
    }

    /// Opens (creating it) the SQLite database in `data_dir`.
    pub async fn open_in(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Db(sqlx::Error::Configuration(
                format!("creating {}: {e}", data_dir.display()).into(),
            ))
        })?;
        Self::open(&sqlite_url(&data_dir.join(SQLITE_FILE))).await
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that writes. On SQLite it takes the write lock
    /// at once (`BEGIN IMMEDIATE`): a deferred one that reads first fails
    /// with "database is locked" at its first write when another writer
    /// (a sync) committed in between, whatever the busy timeout. And it
    /// waits for its turn among this store's writers first (a fair queue
    /// shared by its clones: the API's and every sync's): SQLite's busy
    /// handler polls with growing sleeps, so a writer that arrives while
    /// others write back to back could wait past the timeout and fail.
    pub(crate) async fn write_tx(&self) -> Result<WriteTx, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self
                    .write_turn
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the write turn is never closed");
                WriteTx {
                    tx: self.writer.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// On SQLite, copies what the WAL holds into the database file without
    /// waiting for readers, so that the next write starts the WAL over: a
    /// read looks each page up among the WAL's frames first, and a sync
    /// leaves up to 256 MiB of them (the next sync reads every row of its
    /// account). Nothing to do on PostgreSQL.
    pub async fn settle_wal(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            let _turn = self
                .write_turn
                .clone()
                .acquire_owned()
                .await
                .expect("the write turn is never closed");
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }

    /// The pool for inventory reads.
    pub fn reads(&self) -> &AnyPool {
        &self.reads
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Keeps up to `bytes` of records ready to list in memory for every
    /// clone of this store (a server's lists; a one-shot CLI list gains
    /// nothing from it), and up to `bytes` more of whole account lists.
    /// Records are read from the database again when their content hash
    /// changed, account lists when the account's inventory was written.
    /// The first call decides the size; 0 keeps none.
    pub fn cache_lists(&self, bytes: u64) {
        if bytes > 0 {
            self.list_cache
                .get_or_init(|| list_cache::ListCache::new(bytes));
        }
    }

    /// Bytes and records held by the list cache, if it is on.
    pub fn list_cache_usage(&self) -> Option<(u64, usize)> {
        self.list_cache.get().map(|c| c.usage())
    }

    /// This store reading and writing through a pool of its own that
    /// connects when first used: a sync on the lower-priority runtime
    /// opens those connections, so SQLite's threads for them (and, on
    /// PostgreSQL, the I/O of their sockets) run at its priority, and the
    /// API's connections are never opened or driven by it.
    pub fn with_own_pool(&self) -> Result<Self, StoreError> {
        let pool = write_pool(self.backend, POOL_CACHE_KIB)
            .max_connections(match self.backend {
                Backend::Sqlite => 2,
                Backend::Postgres => 4,
            })
            .min_connections(0)
            .connect_lazy_with(self.url.0.parse()?);
        Ok(Self {
            reads: pool.clone(),
            writer: writer_pool(self.backend, &pool, &self.url.0)?,
            pool,
            ..self.clone()
        })
    }

    /// Tells the list cache that this process changed an account's
    /// inventory, lease or settings (committed): lists read the accounts'
    /// states again.
    pub(crate) fn accounts_changed(&self) {
        if let Some(cache) = self.list_cache.get() {
            cache.accounts.changed();
        }
    }

    /// Drops the lists of account `account` kept in memory (it is being removed).
    fn forget_lists(&self, account: &str) {
        if let Some(cache) = self.list_cache.get() {
            cache.snapshots.forget(account);
        }
    }

    /// Whether account lists are being read into memory.
    pub fn list_snapshots_reading(&self) -> bool {
        self.list_cache.get().is_some_and(|c| c.snapshots.reading())
    }

    /// Account lists read into memory in full, and brought up to date by
    /// reading only the records written since, if the list cache is on.
    pub fn list_snapshot_reads(&self) -> Option<(u64, u64)> {
        self.list_cache.get().map(|c| c.snapshots.reads())
    }

    /// Bytes and account lists held as snapshots, if the list cache is on.
    pub fn list_snapshot_usage(&self) -> Option<(u64, usize)> {
        self.list_cache.get().map(|c| c.snapshots.usage())
    }
}

/// A transaction that writes (see [`Store::write_tx`]); rolled back if
/// dropped uncommitted. It derefs to its connection.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    /// On SQLite, the store's turn to write, given back when this ends.
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl WriteTx {
    /// Commits; the turn to write passes on after.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Page cache of each pooled connection, in KiB.
const POOL_CACHE_KIB: i64 = 16 << 10;
/// Page cache of the one SQLite connection that runs writing transactions,
/// in KiB: it holds the random-key indexes a sync inserts into (ids are
/// hashes), so a transaction finds the pages it dirties in memory. 32 MiB:
/// 64 measured no faster on a 100k-device first sync, and SQLite's cache is
/// a quarter of that sync's peak RSS budget.
const WRITER_CACHE_KIB: i64 = 32 << 10;

/// The pool that runs writing transactions: on SQLite a lazy one of a
/// single connection (writers take turns anyway); `pool` itself otherwise.
fn writer_pool(backend: Backend, pool: &AnyPool, url: &str) -> Result<AnyPool, StoreError> {
    Ok(match backend {
        Backend::Postgres => pool.clone(),
        Backend::Sqlite => write_pool(backend, WRITER_CACHE_KIB)
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(connect_options(url)?),
    })
}

/// A statement slower than this is logged as a warning. Above sqlx's 1 s:
/// a large sync's bulk statements take seconds by design (linking 100,000
/// devices to their users, about 1.3 s here).
const SLOW_STATEMENT: Duration = Duration::from_secs(10);

/// Connection options from `url`, with mdmhub's statement logging.
fn connect_options(url: &str) -> Result<AnyConnectOptions, sqlx::Error> {
    let options: AnyConnectOptions = url.parse()?;
    Ok(options.log_slow_statements(log::LevelFilter::Warn, SLOW_STATEMENT))
}

/// The options of a store's pool of writing connections, each with
/// `cache_kib` of page cache on SQLite.
fn write_pool(backend: Backend, cache_kib: i64) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL: readers never block the one writer; NORMAL
                    // sync is durable across a process kill.
                    let cache = format!("PRAGMA cache_size = -{cache_kib}");
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 30000",
                        // More page cache than the default 2 MiB: inserts
                        // into large random-key indexes (apps, devices)
                        // otherwise reread pages from the OS.
                        &cache,
                        // Statement journals of multi-row writes stay
                        // in memory instead of a temporary file.
                        "PRAGMA temp_store = MEMORY",
                        // Checkpoint every 256 MiB of WAL (default 4):
                        // pages written again in between (indexes, the
                        // rows a page and its details both write) are
                        // copied to the database once, with fewer fsyncs
                        // (100k devices' first walks: users 5.9 -> 4.2 s,
                        // devices 15.6 -> 10.6 s).
                        "PRAGMA wal_autocheckpoint = 65536",
                        // ...and the file shrinks back to 64 MiB after a
                        // checkpoint, so a quiet store keeps no large WAL.
                        "PRAGMA journal_size_limit = 67108864",
                    ] {
                        conn.execute(pragma).await?;
                    }
                }
                Ok(())
            })
        })
}

/// The `sqlite://` URL of a database file, created if missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Now, as stored: fixed-width RFC 3339 UTC with microseconds, so that
/// times compare correctly as text in both databases.
pub fn now() -> String {
    stamp(OffsetDateTime::now_utc())
}

/// `t` as stored (see [`now`]).
pub fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&fmt).expect("a UTC time formats")
}

/// Parses a stored time.
pub fn parse_stamp(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// A new random id with a kind prefix, e.g. `acc_3f9a...`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{:032x}", rand::random::<u128>())
}

/// The stable id of a record: the same account and remote id always give
/// the same id, so upserts never need to read it back.
pub fn record_id(prefix: &str, account_id: &str, remote_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(account_id.as_bytes())
        .chain_update([0])
        .chain_update(remote_id.as_bytes())
        .finalize();
    format!("{prefix}_{}", hex::encode(&digest[..12]))
}

/// The stable id of a record that belongs to another (an app of a device):
/// the parent's id comes first, so that a parent's records sort, and are
/// inserted, next to each other instead of at random places in the index.
pub fn child_id(prefix: &str, parent_id: &str, remote_id: &str) -> String {
    let own = record_id(prefix, parent_id, remote_id);
    format!("{prefix}_{parent_id}_{}", &own[prefix.len() + 1..][..16])
}

/// Bind parameters one statement may carry on both databases: SQLite's
/// limit (PostgreSQL allows 65535).
const MAX_BINDS: usize = 32766;

/// Rows per multi-row statement: few statements (each one a round trip to
/// sqlx's SQLite worker), within the bind limit, and short enough SQL to
/// keep prepared statements small.
pub(crate) fn rows_per_statement(binds_per_row: usize, other_binds: usize) -> usize {
    ((MAX_BINDS - other_binds) / binds_per_row.max(1)).clamp(1, 500)
}

/// A statement whose text grows with its row count. Only `full`-sized
/// ones are kept prepared: odd sizes would fill sqlx's statement cache (100
/// per connection) with large prepared statements, and the process's memory.
pub(crate) fn batch_query(sql: &str, full: bool) -> Query<'_, sqlx::Any, AnyArguments<'_>> {
    sqlx::query(sql).persistent(full)
}

/// One value of a multi-row statement's tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Bound, per row.
    Bind,
    /// The same SQL literal in every row.
    Sql(&'static str),
}

/// The placeholders of one statement, handed out in the order they appear
/// in its text (which must be the order values are bound in). SQLite gets
/// anonymous `?`: sqlx resolves each `$n` by name, which makes binding
/// quadratic in the number of values; PostgreSQL gets `$1`, `$2`, ...
#[derive(Debug)]
pub(crate) struct Params {
    numbered: bool,
    count: usize,
}

impl Params {
    /// Placeholders for `backend`.
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            numbered: backend == Backend::Postgres,
            count: 0,
        }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.count += 1;
        if self.numbered {
            format!("${}", self.count)
        } else {
            "?".to_owned()
        }
    }

    /// `n` placeholders, comma-separated.
    pub(crate) fn list(&mut self, n: usize) -> String {
        (0..n).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }

    /// `(...), (...)`: `rows` tuples of `slots`.
    pub(crate) fn tuples(&mut self, rows: usize, slots: &[Slot]) -> String {
        (0..rows)
            .map(|_| {
                let items: Vec<String> = slots
                    .iter()
                    .map(|s| match s {
                        Slot::Bind => self.next(),
                        Slot::Sql(sql) => (*sql).to_owned(),
                    })
                    .collect();
                format!("({})", items.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_fixed_width_and_sort() {
        let a = stamp(OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap());
        assert_eq!(a, "2023-11-14T22:13:20.000000Z");
        assert!(parse_stamp(&a).is_some());
        assert_eq!(now().len(), a.len());
        assert_eq!(
            record_id("dev", "a", "1"),
            record_id("dev", "a", "1"),
            "stable"
        );
        assert_ne!(record_id("dev", "a", "1"), record_id("dev", "a1", ""));
        let app = child_id("app", "dev_1", "7");
        assert!(app.starts_with("app_dev_1_") && app.len() == "app_dev_1_".len() + 16);
        assert_ne!(app, child_id("app", "dev_1", "8"));
        let slots = [Slot::Bind, Slot::Sql("0"), Slot::Bind];
        let mut pg = Params::new(Backend::Postgres);
        assert_eq!(pg.list(2), "$1, $2");
        assert_eq!(pg.tuples(2, &slots), "($3, 0, $4), ($5, 0, $6)");
        let mut lite = Params::new(Backend::Sqlite);
        assert_eq!(lite.tuples(1, &slots), "(?, 0, ?)");
        assert_eq!(rows_per_statement(20, 2), 500);
        assert_eq!(rows_per_statement(100, 2), 327);
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }

    /// Writers of one store wait for their turn without holding a
    /// connection, and write in the order they came: SQLite's busy
    /// handler alone would let them race for the lock.
    #[tokio::test]
    async fn writers_take_turns_in_order() {
        let dir = std::env::temp_dir().join(format!("mdmhub-turns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open_in(&dir).await.unwrap();
        sqlx::query("CREATE TABLE turns (n INTEGER)")
            .execute(store.pool())
            .await
            .unwrap();
        let first = store.write_tx().await.unwrap();
        let mut writers = Vec::new();
        for n in 0..12i64 {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let mut tx = store.write_tx().await.unwrap();
                sqlx::query("INSERT INTO turns (n) VALUES ($1)")
                    .bind(n)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }));
            // Each one queued before the next comes.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let in_use = |pool: &AnyPool| pool.size() - pool.num_idle() as u32;
        assert_eq!(
            in_use(&store.writer),
            1,
            "only the writer holds a connection"
        );
        assert_eq!(in_use(store.pool()), 0, "queued writers hold none");
        first.commit().await.unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let order: Vec<i64> = sqlx::query_scalar("SELECT n FROM turns ORDER BY rowid")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(order, (0..12).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
