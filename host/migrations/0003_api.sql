-- API keys: bearer keys scoped to a workspace. Only the SHA-256 of a key is
-- stored (keys are 256 random bits, so a fast hash is enough); `prefix` is
-- its first characters, to tell keys apart in lists.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
-- One live key per name and workspace; revoked keys stay as a record.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (workspace_id, name)
WHERE revoked_at IS NULL;

-- API lists of sync runs: a workspace's runs, newest first.
CREATE INDEX sync_runs_started ON sync_runs (started_at, id);
