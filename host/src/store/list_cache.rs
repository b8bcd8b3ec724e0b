//! The process's cache of stored records ready to list: [`Template`]s by
//! record id, each valid only at the content hash it was made from. A
//! list page reads its ids, mdmhub's fields and content hashes, and reads
//! the records themselves only for the ids not cached at that hash, so a
//! record changed by a sync (in this process or another replica) is
//! never served stale. Beside them, [`Snapshots`]: whole account lists
//! kept at the account's `list_generation`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::query::Listing;
use super::render::Template;

/// A record's template and the content hash it was made from.
#[derive(Debug)]
pub(crate) struct Cached {
    pub(crate) hash: Box<str>,
    pub(crate) template: Template,
}

/// Weighs entries by the bytes they hold.
#[derive(Debug, Clone)]
struct Bytes;

impl Weighter<Box<str>, Arc<Cached>> for Bytes {
    fn weight(&self, id: &Box<str>, c: &Arc<Cached>) -> u64 {
        // Keys, hashes and templates, plus the entry's and the Arc's
        // bookkeeping.
        (id.len() + c.hash.len() + c.template.size() + 96) as u64
    }
}

/// Record templates by id (ids are unique across listings: each table's
/// ids have their own prefix), bounded in bytes.
#[derive(Debug)]
pub(crate) struct ListCache {
    cache: Cache<Box<str>, Arc<Cached>, Bytes>,
    /// Whole account lists, within a budget of their own of the same size.
    pub(crate) snapshots: Snapshots,
}

/// A listed record's size, roughly: only sizes the cache's table.
const TYPICAL_ENTRY: u64 = 1_500;

impl ListCache {
    /// A cache of at most `bytes` of templates, and at most `bytes` of snapshots.
    pub(crate) fn new(bytes: u64) -> Self {
        let items = (bytes / TYPICAL_ENTRY).clamp(16, 1 << 22) as usize;
        Self {
            cache: Cache::with_weighter(items, bytes, Bytes),
            snapshots: Snapshots::new(bytes),
        }
    }

    /// Record `id`'s template if it was made at content hash `hash`.
    pub(crate) fn get(&self, id: &str, hash: &str) -> Option<Arc<Cached>> {
        self.cache.get(id).filter(|c| &*c.hash == hash)
    }

    /// Keeps record `id`'s template made at `hash`, and gives it back.
    pub(crate) fn insert(&self, id: &str, hash: &str, template: Template) -> Arc<Cached> {
        let cached = Arc::new(Cached {
            hash: hash.into(),
            template,
        });
        self.cache.insert(id.into(), cached.clone());
        cached
    }

    /// Bytes held (as weighed) and entries.
    pub(crate) fn usage(&self) -> (u64, usize) {
        (self.cache.weight(), self.cache.len())
    }
}

/// An account's list (of one listing) as it was at one `list_generation`:
/// its rows in id order, each with its template. Served for as long as
/// the account's generation is unchanged, so a page of a settled account
/// reads nothing but the account's generation.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The account's `list_generation` the rows were read at.
    pub(crate) generation: i64,
    /// The rows, by id.
    pub(crate) rows: Vec<SnapRow>,
}

/// A row of a [`Snapshot`].
#[derive(Debug)]
pub(crate) struct SnapRow {
    /// The row's id.
    pub(crate) id: Box<str>,
    /// Its fields as read (see `query::row_text`).
    pub(crate) text: Box<str>,
    /// Its record's template.
    pub(crate) cached: Arc<Cached>,
}

impl Snapshot {
    /// Bytes held, roughly (templates included: the snapshot keeps them
    /// alive whatever the template cache evicts).
    fn size(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| (r.id.len() + r.text.len() + r.cached.template.size() + 96) as u64)
            .sum()
    }
}

/// A snapshot's place: being read, or ready.
#[derive(Debug)]
enum Slot {
    Building,
    Ready(Arc<Snapshot>, u64),
}

/// Bytes the ready snapshots among `slots` hold.
fn used(slots: &HashMap<(Listing, String), Slot>) -> u64 {
    slots
        .values()
        .map(|s| match s {
            Slot::Ready(_, bytes) => *bytes,
            Slot::Building => 0,
        })
        .sum()
}

/// Account snapshots by listing and account, bounded in bytes.
#[derive(Debug, Default)]
pub(crate) struct Snapshots {
    slots: Mutex<HashMap<(Listing, String), Slot>>,
    budget: u64,
}

impl Snapshots {
    /// Snapshots of at most `budget` bytes in all.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            slots: Mutex::default(),
            budget,
        }
    }

    /// Account `account`'s snapshot of `listing` if it was read at `generation`.
    pub(crate) fn get(
        &self,
        listing: Listing,
        account: &str,
        generation: i64,
    ) -> Option<Arc<Snapshot>> {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.get(&(listing, account.to_owned())) {
            Some(Slot::Ready(s, _)) if s.generation == generation => Some(s.clone()),
            _ => None,
        }
    }

    /// Whether the caller should read a new snapshot of `account`'s
    /// `listing`: none is being read and the budget has room. Marks it
    /// being read; [`Snapshots::finish`] must follow.
    pub(crate) fn claim(&self, listing: Listing, account: &str) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let used = used(&slots);
        let key = (listing, account.to_owned());
        let own = match slots.get(&key) {
            Some(Slot::Building) => return false,
            Some(Slot::Ready(_, bytes)) => *bytes,
            None => 0,
        };
        if used - own >= self.budget {
            return false;
        }
        slots.insert(key, Slot::Building);
        true
    }

    /// Ends a [`Snapshots::claim`]: keeps `built` if there is one and it
    /// fits the budget.
    pub(crate) fn finish(&self, listing: Listing, account: &str, built: Option<Snapshot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let key = (listing, account.to_owned());
        slots.remove(&key);
        let Some(built) = built else { return };
        let bytes = built.size();
        let used = used(&slots);
        if used + bytes <= self.budget {
            slots.insert(key, Slot::Ready(Arc::new(built), bytes));
        }
    }

    /// Whether a snapshot is being read.
    pub(crate) fn reading(&self) -> bool {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.values().any(|s| matches!(s, Slot::Building))
    }

    /// Bytes held and snapshots ready.
    pub(crate) fn usage(&self) -> (u64, usize) {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.values().fold((0, 0), |(b, n), s| match s {
            Slot::Ready(_, bytes) => (b + bytes, n + 1),
            Slot::Building => (b, n),
        })
    }
}
