-- Re-sync speed (same schema on SQLite and PostgreSQL): a re-sync of an
-- unchanged fleet writes one row a page and scans no table.

-- The remote ids a run saw unchanged, one row per stored page (a JSON
-- array), instead of rewriting every unchanged record's `last_seen_*`.
-- Read to resume a killed run and to find what a complete pass did not
-- see; deleted when the run ends.
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

-- Bumped by every transaction that changes the account's users: devices
-- are linked again only when a generation in their workspace moved.
ALTER TABLE accounts ADD COLUMN users_generation BIGINT NOT NULL DEFAULT 0;

-- Only the devices that await something, so that finding none reads an
-- index entry, not every device: an announcement (webhooks) ...
CREATE INDEX devices_unannounced ON devices (account_id, id)
    WHERE announced_hash IS NULL OR announced_hash <> content_hash
       OR announced_status <> status;
-- ... a detail read ...
CREATE INDEX devices_details_pending ON devices (account_id)
    WHERE status = 'active' AND (needs_details = 1 OR details_at IS NULL);
-- ... or a detail read because the last one is old (the pending ones
-- left out, so that each query has one index that serves it).
CREATE INDEX devices_details_age ON devices (account_id, details_at)
    WHERE status = 'active' AND needs_details = 0 AND details_at IS NOT NULL;
