//! What a run saw unchanged, by table: a set of 128-bit hashes of remote
//! ids (16 bytes each instead of a string), filled from the run's stored
//! seen sets when it starts or resumes and from each page it stores.

use std::collections::{HashMap, HashSet};

use xxhash_rust::xxh3::xxh3_128;

use crate::store::records::Table;

/// Remote ids a run saw, by table. A false "seen" needs two ids with the
/// same 128-bit hash.
#[derive(Debug, Default)]
pub struct Seen {
    ids: HashMap<Table, HashSet<u128>>,
    /// Whether every id held is of a record this run has not written
    /// (see [`Seen::exact_len`]): true unless the run resumed with stored
    /// seen sets, which may hold records written after them.
    exact: bool,
}

impl Seen {
    /// A set holding `ids`, by table.
    pub fn new(ids: HashMap<Table, Vec<String>>) -> Self {
        let mut seen = Self {
            exact: ids.values().all(Vec::is_empty),
            ..Self::default()
        };
        for (table, ids) in ids {
            seen.add(table, ids.iter().map(String::as_str));
        }
        seen
    }

    /// Whether `remote_id` of `table` was seen.
    pub fn contains(&self, table: Table, remote_id: &str) -> bool {
        self.ids
            .get(&table)
            .is_some_and(|s| s.contains(&xxh3_128(remote_id.as_bytes())))
    }

    /// Adds remote ids of `table` whose records this run has not written.
    pub fn add<'a>(&mut self, table: Table, ids: impl IntoIterator<Item = &'a str>) {
        let set = self.ids.entry(table).or_default();
        set.extend(ids.into_iter().map(|id| xxh3_128(id.as_bytes())));
    }

    /// Takes out remote ids of `table` whose records this run wrote: their
    /// rows say they were seen.
    pub fn forget<'a>(&mut self, table: Table, ids: impl IntoIterator<Item = &'a str>) {
        if let Some(set) = self.ids.get_mut(&table).filter(|s| !s.is_empty()) {
            for id in ids {
                set.remove(&xxh3_128(id.as_bytes()));
            }
        }
    }

    /// How many records of `table` were seen and not written, when that is
    /// known exactly (a run that did not resume from stored seen sets).
    pub fn exact_len(&self, table: Table) -> Option<usize> {
        self.exact
            .then(|| self.ids.get(&table).map_or(0, HashSet::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_seen_per_table() {
        let mut seen = Seen::new(HashMap::from([(Table::Users, vec!["a".to_owned()])]));
        seen.add(Table::Devices, ["b", "c"]);
        assert!(seen.contains(Table::Users, "a"));
        assert!(!seen.contains(Table::Devices, "a"));
        assert!(seen.contains(Table::Devices, "c"));
        assert!(!seen.contains(Table::Organizations, "c"));
    }

    #[test]
    fn counts_are_exact_only_for_a_run_that_did_not_resume_with_seen_ids() {
        let mut fresh = Seen::new(HashMap::from([(Table::Users, Vec::new())]));
        fresh.add(Table::Devices, ["a", "b", "c"]);
        fresh.forget(Table::Devices, ["b", "z"]);
        assert_eq!(fresh.exact_len(Table::Devices), Some(2));
        assert!(!fresh.contains(Table::Devices, "b"));
        assert_eq!(fresh.exact_len(Table::Users), Some(0));
        let resumed = Seen::new(HashMap::from([(Table::Users, vec!["a".to_owned()])]));
        assert_eq!(resumed.exact_len(Table::Users), None);
    }
}
