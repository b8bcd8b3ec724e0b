-- Faster syncs of large fleets (same schema on SQLite and PostgreSQL).

-- Apps are read per device or listed through their account's row, never
-- looked up by account_id alone: that index only slowed every insert.
DROP INDEX apps_account;

-- The detail and removal passes page through an account's devices in id
-- order; (account_id, needs_details) served neither, so each page sorted
-- every device of the account.
DROP INDEX devices_details;
CREATE INDEX devices_account ON devices (account_id, id);

-- Hash of a device's app list as last stored: an unchanged list read again
-- is not deleted and written again.
ALTER TABLE devices ADD COLUMN apps_hash TEXT;
