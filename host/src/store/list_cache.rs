//! The process's cache of stored records ready to list: [`Template`]s by
//! record id, each valid only at the content hash it was made from. A
//! list page reads its ids, mdmhub's fields and content hashes, and reads
//! the records themselves only for the ids not cached at that hash, so a
//! record changed by a sync (in this process or another replica) is
//! never served stale. Beside them, [`Snapshots`]: whole account lists
//! kept at the account's `list_generation` (as last read: another
//! process's writes show within `listed_accounts::FRESH_FOR`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::listed_accounts::ListedAccounts;
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
    /// The accounts each workspace lists, as read a moment ago.
    pub(crate) accounts: ListedAccounts,
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
            accounts: ListedAccounts::default(),
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
/// reads nothing but the account's generation; brought up to date by
/// re-reading only the records written since (see [`Snapshots::note`]).
/// A row re-read may be newer than the generation, never older.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The account's `list_generation` the rows were read at.
    pub(crate) generation: i64,
    /// The rows, by id; shared by the snapshots made from this one.
    pub(crate) rows: Arc<[Arc<SnapRow>]>,
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
        self.rows.iter().map(|r| r.size()).sum()
    }
}

impl SnapRow {
    /// Bytes held, roughly.
    pub(crate) fn size(&self) -> u64 {
        (self.id.len() + self.text.len() + self.cached.template.size() + 112) as u64
    }
}

/// `base`'s rows with `fresh` (the records `changed` as re-read, in id
/// order) in place of theirs; a changed id not among `fresh` is gone.
pub(crate) fn merged(
    base: &[Arc<SnapRow>],
    changed: &[Box<str>],
    fresh: Vec<Arc<SnapRow>>,
) -> Vec<Arc<SnapRow>> {
    let changed: std::collections::HashSet<&str> = changed.iter().map(|c| &**c).collect();
    let mut out = Vec::with_capacity(base.len() + fresh.len());
    let mut fresh = fresh.into_iter().peekable();
    for row in base.iter().filter(|r| !changed.contains(&*r.id)) {
        while let Some(f) = fresh.next_if(|f| f.id < row.id) {
            out.push(f);
        }
        out.push(row.clone());
    }
    out.extend(fresh);
    out
}

/// A snapshot's place: being read, ready, or not kept at a generation
/// (too big for the budget, or its text not as expected; not read in full
/// again until the account's inventory changes and no sync is writing it).
#[derive(Debug)]
enum Slot {
    Building,
    Ready(Arc<Snapshot>, u64),
    Skipped(i64),
}

/// What one write transaction of an account wrote: records of a listing.
#[derive(Debug)]
struct Note {
    listing: Listing,
    /// Their ids; `None` once every snapshot of the listing is past it.
    ids: Option<Box<[Box<str>]>>,
}

/// An account's notes by the `list_generation` their transactions made.
#[derive(Debug, Default)]
struct Notes {
    by_generation: BTreeMap<i64, Note>,
    /// Ids held, bounded by [`MAX_NOTED_IDS`].
    ids: usize,
}

/// Ids noted per account at most (a few MiB): older notes are dropped,
/// and a snapshot older than the oldest is read in full again.
const MAX_NOTED_IDS: usize = 200_000;
/// Notes kept per account at most.
const MAX_NOTES: usize = 20_000;

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<(Listing, String), Slot>,
    notes: HashMap<String, Notes>,
}

impl Inner {
    /// Bytes the ready snapshots hold.
    fn used(&self) -> u64 {
        self.slots
            .values()
            .map(|s| match s {
                Slot::Ready(_, bytes) => *bytes,
                Slot::Building | Slot::Skipped(_) => 0,
            })
            .sum()
    }

    /// The ids of `listing`'s records that `account`'s transactions
    /// from generation `from` (excluded) to `to` wrote, if every one of
    /// them was noted.
    fn changes(
        &self,
        listing: Listing,
        account: &str,
        from: i64,
        to: i64,
    ) -> Option<Vec<Box<str>>> {
        if to <= from {
            return Some(Vec::new());
        }
        let notes = self.notes.get(account)?;
        let mut ids = Vec::new();
        let mut count = 0;
        for note in notes.by_generation.range(from + 1..=to).map(|(_, n)| n) {
            count += 1;
            if note.listing == listing {
                ids.extend(note.ids.as_ref()?.iter().cloned());
            }
        }
        if count != to - from {
            return None;
        }
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }

    /// Drops what no snapshot of `account` needs: every note when it has
    /// none; the ids of a listing's notes its snapshot is past; notes
    /// every snapshot is past (while none is being read in full).
    fn prune(&mut self, account: &str) {
        // Per listing: the generation of its ready snapshot, or `None`
        // while it is being read.
        let mut needs: HashMap<Listing, Option<i64>> = HashMap::new();
        for ((listing, a), slot) in &self.slots {
            match slot {
                _ if a != account => {}
                Slot::Ready(s, _) => {
                    needs.insert(*listing, Some(s.generation));
                }
                Slot::Building => {
                    needs.insert(*listing, None);
                }
                Slot::Skipped(_) => {}
            }
        }
        if needs.is_empty() {
            self.notes.remove(account);
            return;
        }
        let Some(notes) = self.notes.get_mut(account) else {
            return;
        };
        for (generation, note) in notes.by_generation.iter_mut() {
            let needed = match needs.get(&note.listing) {
                Some(Some(at)) => generation > at,
                Some(None) => true,
                None => false,
            };
            if !needed && let Some(ids) = note.ids.take() {
                notes.ids -= ids.len();
            }
        }
        // Every generation a snapshot may still have to pass is kept, so
        // that a gap means a transaction that was not noted.
        let floor = needs
            .values()
            .try_fold(i64::MAX, |min, at| at.map(|at| min.min(at)));
        if let Some(floor) = floor {
            while let Some(entry) = notes.by_generation.first_entry()
                && *entry.key() <= floor
            {
                notes.ids -= entry.remove().ids.map_or(0, |i| i.len());
            }
        }
    }
}

/// Account snapshots by listing and account, bounded in bytes, and the
/// records each write transaction wrote since (so a snapshot is brought
/// up to date by reading those alone, also while a sync writes).
#[derive(Debug)]
pub(crate) struct Snapshots {
    inner: Mutex<Inner>,
    budget: u64,
    /// One snapshot is read in full at a time: reading one holds its rows
    /// until they are counted, and takes a connection of the API's read pool.
    pub(crate) reading: tokio::sync::Semaphore,
    /// Snapshots kept after a full read, and after reading written records.
    kept: [AtomicU64; 2],
}

/// What a [`Snapshots::claim`] asks the caller to read.
#[derive(Debug)]
pub(crate) enum Claimed {
    /// The whole list.
    Full,
    /// The records `ids`, to merge into `base`, making the snapshot of
    /// generation `to`.
    Changes {
        base: Arc<Snapshot>,
        ids: Vec<Box<str>>,
        to: i64,
    },
}

impl Snapshots {
    /// Snapshots of at most `budget` bytes in all.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            inner: Mutex::default(),
            budget,
            reading: tokio::sync::Semaphore::new(1),
            kept: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Account `account`'s snapshot of `listing` if it is good for
    /// generation `generation`: read at it or after, or before it by
    /// transactions that wrote none of the listing's records (then kept
    /// at `generation`).
    pub(crate) fn get(
        &self,
        listing: Listing,
        account: &str,
        generation: i64,
    ) -> Option<Arc<Snapshot>> {
        let mut inner = self.lock();
        let key = (listing, account.to_owned());
        let (snapshot, bytes) = match inner.slots.get(&key) {
            Some(Slot::Ready(s, bytes)) => (s.clone(), *bytes),
            _ => return None,
        };
        if snapshot.generation >= generation {
            return Some(snapshot);
        }
        if !inner
            .changes(listing, account, snapshot.generation, generation)?
            .is_empty()
        {
            return None;
        }
        let moved = Arc::new(Snapshot {
            generation,
            rows: snapshot.rows.clone(),
        });
        inner.slots.insert(key, Slot::Ready(moved.clone(), bytes));
        inner.prune(account);
        Some(moved)
    }

    /// What the caller should read to have `account`'s snapshot of
    /// `listing` at `generation` (if known), if anything; marks it being
    /// read, and [`Snapshots::finish`] must follow. A ready snapshot whose
    /// later writes were all noted is brought up to date by reading the
    /// records they wrote; otherwise the list is read in full, unless one
    /// is being read, a sync is writing it (`syncing`) and it was read
    /// before (a full read would be stale before it ends), it was skipped
    /// at that generation, or the budget has no room.
    pub(crate) fn claim(
        &self,
        listing: Listing,
        account: &str,
        generation: Option<i64>,
        syncing: bool,
    ) -> Option<Claimed> {
        let mut inner = self.lock();
        let key = (listing, account.to_owned());
        let own = match inner.slots.get(&key) {
            Some(Slot::Building) => return None,
            Some(Slot::Skipped(g)) if syncing || generation.is_none_or(|now| now == *g) => {
                return None;
            }
            Some(Slot::Ready(base, bytes)) => {
                if let Some(to) = generation
                    && let Some(ids) = inner.changes(listing, account, base.generation, to)
                {
                    if ids.is_empty() {
                        return None; // good at `to` already (see `get`)
                    }
                    let base = base.clone();
                    inner.slots.insert(key, Slot::Building);
                    return Some(Claimed::Changes { base, ids, to });
                }
                if syncing {
                    return None;
                }
                *bytes
            }
            Some(Slot::Skipped(_)) | None => 0,
        };
        if inner.used() - own >= self.budget {
            return None;
        }
        inner.slots.insert(key, Slot::Building);
        Some(Claimed::Full)
    }

    /// The ids of `listing`'s records that `account`'s transactions after
    /// generation `from` up to `to` wrote, if every one was noted.
    pub(crate) fn changes(
        &self,
        listing: Listing,
        account: &str,
        from: i64,
        to: i64,
    ) -> Option<Vec<Box<str>>> {
        self.lock().changes(listing, account, from, to)
    }

    /// Notes that `account`'s write transaction that made generation
    /// `generation` wrote records `ids` of `listing` (and nothing else any
    /// snapshot holds). Called after it commits; a transaction not noted
    /// makes older snapshots of the account be read in full again.
    pub(crate) fn note(
        &self,
        account: &str,
        generation: i64,
        listing: Listing,
        ids: Vec<Box<str>>,
    ) {
        let mut inner = self.lock();
        let held = |slot: &Slot| matches!(slot, Slot::Ready(..) | Slot::Building);
        if !inner
            .slots
            .iter()
            .any(|((_, a), slot)| a == account && held(slot))
        {
            return; // no snapshot to bring up to date
        }
        // The ids only if a snapshot of their listing may need them.
        let ids = inner
            .slots
            .get(&(listing, account.to_owned()))
            .is_some_and(held)
            .then(|| ids.into_boxed_slice());
        let notes = inner.notes.entry(account.to_owned()).or_default();
        notes.ids += ids.as_ref().map_or(0, |i| i.len());
        let old = notes
            .by_generation
            .insert(generation, Note { listing, ids });
        notes.ids -= old.and_then(|n| n.ids).map_or(0, |i| i.len());
        while notes.ids > MAX_NOTED_IDS || notes.by_generation.len() > MAX_NOTES {
            let Some((_, oldest)) = notes.by_generation.pop_first() else {
                break;
            };
            notes.ids -= oldest.ids.map_or(0, |i| i.len());
        }
    }

    /// The bytes a snapshot of `account`'s `listing` may take now.
    pub(crate) fn room(&self, listing: Listing, account: &str) -> u64 {
        let inner = self.lock();
        let own = match inner.slots.get(&(listing, account.to_owned())) {
            Some(Slot::Ready(_, bytes)) => *bytes,
            _ => 0,
        };
        (self.budget + own).saturating_sub(inner.used())
    }

    /// Ends a [`Snapshots::claim`]: keeps `built` (read in full, or
    /// `updated` from a snapshot) if it fits the budget, or notes that the
    /// list was skipped at generation `skipped`.
    pub(crate) fn finish(
        &self,
        listing: Listing,
        account: &str,
        built: Option<(Snapshot, bool)>,
        skipped: Option<i64>,
    ) {
        let mut inner = self.lock();
        let key = (listing, account.to_owned());
        inner.slots.remove(&key);
        if let Some((built, updated)) = built {
            let bytes = built.size();
            if inner.used() + bytes <= self.budget {
                self.kept[usize::from(updated)].fetch_add(1, Ordering::Relaxed);
                inner.slots.insert(key, Slot::Ready(Arc::new(built), bytes));
            } else {
                inner.slots.insert(key, Slot::Skipped(built.generation));
            }
        } else if let Some(generation) = skipped {
            inner.slots.insert(key, Slot::Skipped(generation));
        }
        inner.prune(account);
    }

    /// Drops every snapshot of account `account` (it was removed).
    pub(crate) fn forget(&self, account: &str) {
        let mut inner = self.lock();
        inner
            .slots
            .retain(|(_, a), s| a != account || matches!(s, Slot::Building));
        inner.prune(account);
    }

    /// Drops the snapshots of accounts for which `exists` is false (removed
    /// by another process); lists being read are left to finish.
    pub(crate) fn keep_accounts(&self, exists: impl Fn(&str) -> bool) {
        let mut inner = self.lock();
        inner
            .slots
            .retain(|(_, a), s| exists(a) || matches!(s, Slot::Building));
        let gone: Vec<String> = inner.notes.keys().filter(|a| !exists(a)).cloned().collect();
        for account in gone {
            inner.prune(&account);
        }
    }

    /// Whether a snapshot is being read.
    pub(crate) fn reading(&self) -> bool {
        self.lock()
            .slots
            .values()
            .any(|s| matches!(s, Slot::Building))
    }

    /// Snapshots kept after a full read, and after reading written records.
    pub(crate) fn reads(&self) -> (u64, u64) {
        let [full, updated] = &self.kept;
        (
            full.load(Ordering::Relaxed),
            updated.load(Ordering::Relaxed),
        )
    }

    /// Bytes held and snapshots ready.
    pub(crate) fn usage(&self) -> (u64, usize) {
        self.lock()
            .slots
            .values()
            .fold((0, 0), |(b, n), s| match s {
                Slot::Ready(_, bytes) => (b + bytes, n + 1),
                Slot::Building | Slot::Skipped(_) => (b, n),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, text: &str) -> Arc<SnapRow> {
        Arc::new(SnapRow {
            id: id.into(),
            text: text.repeat(100).into(),
            cached: Arc::new(Cached {
                hash: "h".into(),
                template: Template::new("{}", &[]).unwrap(),
            }),
        })
    }

    fn snapshot(generation: i64, rows: usize) -> Snapshot {
        let rows: Vec<_> = (0..rows)
            .map(|i| row(&format!("dev_{i:04}"), "x"))
            .collect();
        Snapshot {
            generation,
            rows: rows.into(),
        }
    }

    fn ids(list: &[&str]) -> Vec<Box<str>> {
        list.iter().map(|i| (*i).into()).collect()
    }

    #[test]
    fn snapshots_are_read_once_kept_within_budget_and_not_reread_when_skipped() {
        let row = snapshot(0, 1).size();
        let s = Snapshots::new(row * 10);
        let d = Listing::Devices;
        let full = |c: Option<Claimed>| matches!(c, Some(Claimed::Full));
        assert!(full(s.claim(d, "acc_a", Some(1), false)));
        assert!(s.reading());
        assert!(
            s.claim(d, "acc_a", Some(1), false).is_none(),
            "one reader per list"
        );
        assert_eq!(s.room(d, "acc_a"), row * 10);
        s.finish(d, "acc_a", Some((snapshot(1, 6), false)), None);
        assert!(!s.reading());
        assert_eq!(s.get(d, "acc_a", 1).unwrap().rows.len(), 6);
        assert!(s.get(d, "acc_a", 2).is_none(), "written since, not noted");
        assert!(s.get(Listing::Users, "acc_a", 1).is_none());
        assert_eq!(s.usage(), (row * 6, 1));
        assert_eq!(s.room(d, "acc_b"), row * 4);

        // A list bigger than what is left is not kept, nor read again at
        // that generation, nor at all while a sync writes it.
        assert!(full(s.claim(d, "acc_b", Some(7), false)));
        s.finish(d, "acc_b", Some((snapshot(7, 5), false)), None);
        assert!(s.get(d, "acc_b", 7).is_none());
        assert!(s.claim(d, "acc_b", Some(7), false).is_none());
        assert!(s.claim(d, "acc_b", None, false).is_none());
        assert!(s.claim(d, "acc_b", Some(8), true).is_none(), "syncing");
        assert!(full(s.claim(d, "acc_b", Some(8), false)), "changed since");
        s.finish(d, "acc_b", None, Some(8));
        assert!(s.claim(d, "acc_b", Some(8), false).is_none());

        // A stale list is replaced: its own bytes count as room; not while
        // a sync writes it (unless its writes were noted).
        assert_eq!(s.room(d, "acc_a"), row * 10);
        assert!(s.claim(d, "acc_a", Some(2), true).is_none());
        assert!(full(s.claim(d, "acc_a", Some(2), false)));
        s.finish(d, "acc_a", Some((snapshot(2, 10), false)), None);
        assert_eq!(s.get(d, "acc_a", 2).unwrap().rows.len(), 10);
        assert!(s.get(d, "acc_a", 1).is_some(), "newer serves older");

        // The budget spent, no other list is read; a removed account's go.
        assert!(s.claim(d, "acc_c", Some(1), false).is_none());
        s.forget("acc_a");
        assert_eq!(s.usage(), (0, 0));
        assert!(
            full(s.claim(d, "acc_c", Some(1), true)),
            "never read: read once"
        );

        // Accounts removed elsewhere lose theirs; lists being read stay.
        s.finish(d, "acc_c", Some((snapshot(1, 2), false)), None);
        assert!(full(s.claim(Listing::Users, "acc_c", Some(1), false)));
        s.keep_accounts(|a| a != "acc_c");
        assert_eq!(s.usage(), (0, 0));
        assert!(s.reading(), "the users being read are left to finish");
    }

    #[test]
    fn noted_writes_bring_a_snapshot_up_to_date_by_their_records_alone() {
        let s = Snapshots::new(1 << 30);
        let (d, u) = (Listing::Devices, Listing::Users);
        s.note("acc", 1, d, ids(&["dev_0000"])); // no snapshot yet: dropped
        assert!(matches!(
            s.claim(d, "acc", Some(1), true),
            Some(Claimed::Full)
        ));
        s.finish(d, "acc", Some((snapshot(1, 4), false)), None);
        assert!(matches!(
            s.claim(u, "acc", Some(1), true),
            Some(Claimed::Full)
        ));
        s.finish(u, "acc", Some((snapshot(1, 2), false)), None);

        s.note("acc", 2, d, ids(&["dev_0002", "dev_0009"]));
        s.note("acc", 3, u, ids(&["dev_0001"]));
        s.note("acc", 4, d, ids(&["dev_0002"]));
        assert!(s.get(d, "acc", 4).is_none(), "devices were written");
        assert!(s.get(d, "acc", 5).is_none());
        assert!(
            s.claim(d, "acc", Some(5), true).is_none(),
            "5 was not noted"
        );
        // The users' list is good at 2 (devices only), not at 3.
        assert_eq!(s.get(u, "acc", 2).unwrap().generation, 2);
        assert!(s.get(u, "acc", 3).is_none());

        let Some(Claimed::Changes {
            base,
            ids: changed,
            to,
        }) = s.claim(d, "acc", Some(4), true)
        else {
            panic!("the writes since 1 were noted");
        };
        assert_eq!((base.generation, to), (1, 4));
        assert_eq!(changed, ids(&["dev_0002", "dev_0009"]), "sorted, once each");
        assert!(s.claim(d, "acc", Some(4), true).is_none(), "being read");
        s.note("acc", 5, d, ids(&["dev_0003"])); // while it is read
        // dev_0002 changed, dev_0009 is new; as if dev_0000 had been noted
        // and is gone.
        let fresh = vec![row("dev_0002", "y"), row("dev_0009", "z")];
        let rows = merged(
            &base.rows,
            &ids(&["dev_0000", "dev_0002", "dev_0009"]),
            fresh,
        );
        let listed: Vec<(&str, char)> = rows
            .iter()
            .map(|r| (&*r.id, r.text.chars().next().unwrap()))
            .collect();
        assert_eq!(
            listed,
            [
                ("dev_0001", 'x'),
                ("dev_0002", 'y'),
                ("dev_0003", 'x'),
                ("dev_0009", 'z')
            ]
        );
        s.finish(
            d,
            "acc",
            Some((
                Snapshot {
                    generation: 4,
                    rows: rows.into(),
                },
                true,
            )),
            None,
        );
        let Some(Claimed::Changes { ids: changed, .. }) = s.claim(d, "acc", Some(5), true) else {
            panic!("5 was noted while 4 was read");
        };
        assert_eq!(changed, ids(&["dev_0003"]));
        s.finish(d, "acc", None, None);
        assert_eq!(s.reads(), (2, 1));

        // A removed account's notes go with its lists.
        s.forget("acc");
        assert!(s.lock().notes.is_empty());
    }

    #[test]
    fn notes_are_bounded_and_a_gap_means_a_full_read() {
        let s = Snapshots::new(1 << 30);
        let d = Listing::Devices;
        assert!(s.claim(d, "acc", Some(0), false).is_some());
        s.finish(d, "acc", Some((snapshot(0, 1), false)), None);
        let page: Vec<String> = (0..1000).map(|i| format!("dev_{i:06}")).collect();
        let page: Vec<&str> = page.iter().map(String::as_str).collect();
        for generation in 1..=(MAX_NOTED_IDS / 1000 + 5) as i64 {
            s.note("acc", generation, d, ids(&page));
        }
        assert!(s.lock().notes["acc"].ids <= MAX_NOTED_IDS);
        let last = (MAX_NOTED_IDS / 1000 + 5) as i64;
        assert!(
            s.changes(d, "acc", 0, last).is_none(),
            "the oldest were dropped"
        );
        assert!(matches!(
            s.claim(d, "acc", Some(last), false),
            Some(Claimed::Full)
        ));
        s.finish(d, "acc", Some((snapshot(last, 1), false)), None);
        assert!(s.lock().notes["acc"].by_generation.is_empty(), "all passed");
    }
}
