-- Sync speed, part 3 (same schema on SQLite and PostgreSQL).

-- The remote ids a run saw unchanged, one row per stored page (a JSON
-- array): a re-sync writes one row a page instead of rewriting every
-- unchanged record's `last_seen_*`. Read to resume a killed run and to
-- find what a complete pass did not see; deleted when the run ends.
CREATE TABLE run_seen (
    run_id TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    table_name TEXT NOT NULL,
    remote_ids TEXT NOT NULL
);
CREATE INDEX run_seen_run ON run_seen (run_id, table_name);

-- When the account's last complete sync started: every active record that
-- missed no pass was seen at or after it, so its `last_seen_at` as shown is
-- the later of this and its own (frozen when it misses a pass or goes).
ALTER TABLE accounts ADD COLUMN seen_through_at TEXT;
