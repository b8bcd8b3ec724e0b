//! The process's cache of stored records ready to list: [`Template`]s by
//! record id, each valid only at the content hash it was made from. A
//! list page reads its ids, mdmhub's fields and content hashes, and reads
//! the records themselves only for the ids not cached at that hash, so a
//! record changed by a sync (in this process or another replica) is
//! never served stale.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

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
}

/// A listed record's size, roughly: only sizes the cache's table.
const TYPICAL_ENTRY: u64 = 1_500;

impl ListCache {
    /// A cache of at most `bytes`.
    pub(crate) fn new(bytes: u64) -> Self {
        let items = (bytes / TYPICAL_ENTRY).clamp(16, 1 << 22) as usize;
        Self {
            cache: Cache::with_weighter(items, bytes, Bytes),
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
