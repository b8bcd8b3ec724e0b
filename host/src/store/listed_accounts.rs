//! The accounts each workspace's lists read, with what their state means
//! to the lists (`list_generation`, whether a sync is writing them), kept
//! for [`FRESH_FOR`]: otherwise every list page would first wait for a
//! query of them (on SQLite, for a reading connection's thread too),
//! which took most of a served page's time. Forgotten at once when this
//! process changes an account's inventory, lease or settings, so only
//! another process's writes (a replica's sync, the CLI) are seen up to
//! [`FRESH_FOR`] late.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::render::AccountNames;

/// How long a workspace's accounts as read are used for list pages.
pub const FRESH_FOR: Duration = Duration::from_millis(250);

/// What the state of an account means to its lists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountState {
    /// Its `list_generation`.
    pub(crate) generation: i64,
    /// Whether a sync holds its lease (its inventory is being written).
    pub(crate) syncing: bool,
}

/// A workspace's accounts by id, with their states.
pub(crate) type Accounts = (Vec<AccountNames>, Vec<AccountState>);

/// Workspaces' accounts as last read (see the module's docs).
#[derive(Debug, Default)]
pub(crate) struct ListedAccounts {
    /// Bumped by every change this process makes; an entry read before
    /// the last bump is not used.
    epoch: AtomicU64,
    seen: Mutex<HashMap<Box<str>, Seen>>,
}

#[derive(Debug)]
struct Seen {
    epoch: u64,
    at: Instant,
    accounts: Arc<Accounts>,
}

impl ListedAccounts {
    /// The epoch to tag a read with: taken before reading, so a change
    /// committed during the read leaves the read unused.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// `workspace`'s accounts, if read recently and since this process's
    /// last change.
    pub(crate) fn get(&self, workspace: &str) -> Option<Arc<Accounts>> {
        let epoch = self.epoch();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(workspace)
            .filter(|s| s.epoch == epoch && s.at.elapsed() < FRESH_FOR)
            .map(|s| s.accounts.clone())
    }

    /// Keeps `workspace`'s accounts as read from epoch `epoch`.
    pub(crate) fn put(&self, workspace: &str, epoch: u64, accounts: Arc<Accounts>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Workspaces no longer listed go with the first read after them.
        seen.retain(|_, s| s.at.elapsed() < FRESH_FOR);
        seen.insert(
            workspace.into(),
            Seen {
                epoch,
                at: Instant::now(),
                accounts,
            },
        );
    }

    /// Forgets every workspace's accounts: this process changed one (call
    /// it after the change commits).
    pub(crate) fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(generation: i64) -> Arc<Accounts> {
        Arc::new((
            vec![AccountNames {
                id: "acc_1".into(),
                name: "acme".into(),
                connector: "iru".into(),
            }],
            vec![AccountState {
                generation,
                syncing: false,
            }],
        ))
    }

    #[test]
    fn a_read_is_used_until_a_change_or_its_age() {
        let listed = ListedAccounts::default();
        let epoch = listed.epoch();
        listed.put("default", epoch, accounts(1));
        assert_eq!(listed.get("default").unwrap().1[0].generation, 1);
        assert!(listed.get("other").is_none());
        listed.changed();
        assert!(listed.get("default").is_none());

        // Read before a change that committed meanwhile: never used.
        let before = listed.epoch();
        listed.changed();
        listed.put("default", before, accounts(2));
        assert!(listed.get("default").is_none());

        listed.put("default", listed.epoch(), accounts(3));
        assert!(listed.get("default").is_some());
        std::thread::sleep(FRESH_FOR);
        assert!(listed.get("default").is_none());
    }
}
