-- Removal checks by count (same schema on SQLite and PostgreSQL): after a
-- complete pass, the active records it did not write are counted from
-- these alone, and read only when the count differs from the records the
-- run saw unchanged. New rows land at the end of the index (one run's
-- rows share a key), so a first sync pays little for it.
CREATE INDEX devices_unmarked ON devices (account_id, last_seen_run) WHERE status = 'active';
CREATE INDEX users_unmarked ON users (account_id, last_seen_run) WHERE status = 'active';
CREATE INDEX organizations_unmarked ON organizations (account_id, last_seen_run)
    WHERE status = 'active';
