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
    /// The runtime that reads snapshots: the API's (the one that turned
    /// the cache on), whoever asks, so a sync's lower-priority runtime
    /// never opens the API's read connections.
    pub(crate) runtime: tokio::runtime::Handle,
}

/// A listed record's size, roughly: only sizes the cache's table.
const TYPICAL_ENTRY: u64 = 1_500;

impl ListCache {
    /// A cache of at most `bytes` of templates, and at most `bytes` of
    /// snapshots; must be called on the runtime that reads snapshots.
    pub(crate) fn new(bytes: u64) -> Self {
        let items = (bytes / TYPICAL_ENTRY).clamp(16, 1 << 22) as usize;
        Self {
            cache: Cache::with_weighter(items, bytes, Bytes),
            snapshots: Snapshots::new(bytes),
            runtime: tokio::runtime::Handle::current(),
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

    /// Bytes held (as weighed).
    pub(crate) fn bytes(&self) -> u64 {
        self.cache.weight()
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
        self.rows.iter().map(SnapRow::size).sum()
    }
}

impl SnapRow {
    /// Bytes held, roughly.
    pub(crate) fn size(&self) -> u64 {
        (self.id.len() + self.text.len() + self.cached.template.size() + 96) as u64
    }
}

/// A snapshot's place: being read, ready, or too big for the budget at
/// a generation (not read again until the account's inventory changes).
#[derive(Debug)]
enum Slot {
    Building,
    Ready(Arc<Snapshot>, u64),
    TooBig(i64),
}

/// Bytes the ready snapshots among `slots` hold.
fn used(slots: &HashMap<(Listing, String), Slot>) -> u64 {
    slots
        .values()
        .map(|s| match s {
            Slot::Ready(_, bytes) => *bytes,
            Slot::Building | Slot::TooBig(_) => 0,
        })
        .sum()
}

/// Account snapshots by listing and account, bounded in bytes.
#[derive(Debug)]
pub(crate) struct Snapshots {
    slots: Mutex<HashMap<(Listing, String), Slot>>,
    budget: u64,
    /// One snapshot is read at a time: reading one holds its rows until
    /// they are counted, and takes a connection of the API's read pool.
    pub(crate) reading: tokio::sync::Semaphore,
}

impl Snapshots {
    /// Snapshots of at most `budget` bytes in all.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            slots: Mutex::default(),
            budget,
            reading: tokio::sync::Semaphore::new(1),
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
    /// `listing` (whose generation is `generation`, if known): none is
    /// being read, it was not found too big at that generation, and the
    /// budget has room. Marks it being read; [`Snapshots::finish`] must
    /// follow.
    pub(crate) fn claim(&self, listing: Listing, account: &str, generation: Option<i64>) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let key = (listing, account.to_owned());
        let own = match slots.get(&key) {
            Some(Slot::Building) => return false,
            Some(Slot::TooBig(g)) if generation.is_none_or(|now| now == *g) => return false,
            Some(Slot::Ready(_, bytes)) => *bytes,
            Some(Slot::TooBig(_)) | None => 0,
        };
        if used(&slots) - own >= self.budget {
            return false;
        }
        slots.insert(key, Slot::Building);
        true
    }

    /// The bytes a snapshot of `account`'s `listing` may take now.
    pub(crate) fn room(&self, listing: Listing, account: &str) -> u64 {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let own = match slots.get(&(listing, account.to_owned())) {
            Some(Slot::Ready(_, bytes)) => *bytes,
            _ => 0,
        };
        (self.budget + own).saturating_sub(used(&slots))
    }

    /// Ends a [`Snapshots::claim`]: keeps `built` if it fits the budget,
    /// or notes that the list is too big at generation `too_big`.
    pub(crate) fn finish(
        &self,
        listing: Listing,
        account: &str,
        built: Option<Snapshot>,
        too_big: Option<i64>,
    ) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let key = (listing, account.to_owned());
        slots.remove(&key);
        if let Some(built) = built {
            let bytes = built.size();
            if used(&slots) + bytes <= self.budget {
                slots.insert(key, Slot::Ready(Arc::new(built), bytes));
                return;
            }
            slots.insert(key, Slot::TooBig(built.generation));
        } else if let Some(generation) = too_big {
            slots.insert(key, Slot::TooBig(generation));
        }
    }

    /// Drops every snapshot of account `account` (it was removed).
    pub(crate) fn forget(&self, account: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|(_, a), s| a != account || matches!(s, Slot::Building));
    }

    /// Drops the snapshots of accounts for which `exists` is false (removed
    /// by another process); lists being read are left to finish.
    pub(crate) fn keep_accounts(&self, exists: impl Fn(&str) -> bool) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|(_, a), s| exists(a) || matches!(s, Slot::Building));
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
            Slot::Building | Slot::TooBig(_) => (b, n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(generation: i64, rows: usize) -> Snapshot {
        let cached = Arc::new(Cached {
            hash: "h".into(),
            template: Template::new("{}", &[]).unwrap(),
        });
        let rows = (0..rows)
            .map(|i| SnapRow {
                id: format!("dev_{i:04}").into(),
                text: "x".repeat(100).into(),
                cached: cached.clone(),
            })
            .collect();
        Snapshot { generation, rows }
    }

    #[test]
    fn snapshots_are_read_once_kept_within_budget_and_not_reread_when_too_big() {
        let row = snapshot(0, 1).size();
        let s = Snapshots::new(row * 10);
        let d = Listing::Devices;
        assert!(s.claim(d, "acc_a", Some(1)));
        assert!(s.reading());
        assert!(!s.claim(d, "acc_a", Some(1)), "one reader per list");
        assert_eq!(s.room(d, "acc_a"), row * 10);
        s.finish(d, "acc_a", Some(snapshot(1, 6)), None);
        assert!(!s.reading());
        assert_eq!(s.get(d, "acc_a", 1).unwrap().rows.len(), 6);
        assert!(s.get(d, "acc_a", 2).is_none(), "another generation");
        assert!(s.get(Listing::Users, "acc_a", 1).is_none());
        assert_eq!(s.usage(), (row * 6, 1));
        assert_eq!(s.room(d, "acc_b"), row * 4);

        // A list bigger than what is left is not kept, nor read again at
        // that generation.
        assert!(s.claim(d, "acc_b", Some(7)));
        s.finish(d, "acc_b", Some(snapshot(7, 5)), None);
        assert!(s.get(d, "acc_b", 7).is_none());
        assert!(!s.claim(d, "acc_b", Some(7)));
        assert!(!s.claim(d, "acc_b", None));
        assert!(s.claim(d, "acc_b", Some(8)), "changed since");
        s.finish(d, "acc_b", None, Some(8));
        assert!(!s.claim(d, "acc_b", Some(8)));

        // A stale list is replaced: its own bytes count as room.
        assert_eq!(s.room(d, "acc_a"), row * 10);
        assert!(s.claim(d, "acc_a", Some(2)));
        s.finish(d, "acc_a", Some(snapshot(2, 10)), None);
        assert_eq!(s.get(d, "acc_a", 2).unwrap().rows.len(), 10);

        // The budget spent, no other list is read; a removed account's go.
        assert!(!s.claim(d, "acc_c", Some(1)));
        s.forget("acc_a");
        assert_eq!(s.usage(), (0, 0));
        assert!(s.claim(d, "acc_c", Some(1)));

        // Accounts removed elsewhere lose theirs; lists being read stay.
        s.finish(d, "acc_c", Some(snapshot(1, 2)), None);
        assert!(s.claim(Listing::Users, "acc_c", Some(1)));
        s.keep_accounts(|a| a != "acc_c");
        assert_eq!(s.usage(), (0, 0));
        assert!(s.reading(), "the users being read are left to finish");
    }
}
