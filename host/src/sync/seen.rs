//! What a run saw unchanged, by table: a set of 128-bit hashes of remote
//! ids (16 bytes each instead of a string), filled from the run's stored
//! seen sets when it starts or resumes and from each page it stores.

use std::collections::{HashMap, HashSet};

use xxhash_rust::xxh3::xxh3_128;

use crate::store::records::Table;

/// Remote ids a run saw, by table. A false "seen" needs two ids with the
/// same 128-bit hash.
#[derive(Debug, Default)]
pub struct Seen(HashMap<Table, HashSet<u128>>);

impl Seen {
    /// A set holding `ids`, by table.
    pub fn new(ids: HashMap<Table, Vec<String>>) -> Self {
        let mut seen = Self::default();
        for (table, ids) in ids {
            seen.add(table, ids.iter().map(String::as_str));
        }
        seen
    }

    /// Whether `remote_id` of `table` was seen.
    pub fn contains(&self, table: Table, remote_id: &str) -> bool {
        self.0
            .get(&table)
            .is_some_and(|s| s.contains(&xxh3_128(remote_id.as_bytes())))
    }

    /// Adds remote ids of `table`.
    pub fn add<'a>(&mut self, table: Table, ids: impl IntoIterator<Item = &'a str>) {
        let set = self.0.entry(table).or_default();
        set.extend(ids.into_iter().map(|id| xxh3_128(id.as_bytes())));
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
}
