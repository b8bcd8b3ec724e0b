-- One schema for SQLite and PostgreSQL: TEXT, BIGINT and nothing
-- dialect-specific. Times are fixed-width RFC 3339 UTC text (they sort),
-- flags are 0/1, lists and objects are JSON text, ids are made by the host.

CREATE TABLE workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
INSERT INTO workspaces (id, name, created_at)
VALUES ('default', 'default', '1970-01-01T00:00:00.000000Z');

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL,
    connector TEXT NOT NULL,
    config TEXT NOT NULL,
    sealed_secrets TEXT NOT NULL,
    endpoints TEXT NOT NULL,
    rate_limit TEXT,
    sync_interval_secs BIGINT NOT NULL,
    next_sync_at TEXT NOT NULL,
    lease_holder TEXT,
    lease_expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (workspace_id, name)
);

CREATE TABLE sync_runs (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    trigger TEXT NOT NULL,
    phase TEXT,
    holder TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    pages BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    unchanged BIGINT NOT NULL DEFAULT 0,
    removed BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    details BIGINT NOT NULL DEFAULT 0,
    rate_limit_waits BIGINT NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX sync_runs_account ON sync_runs (account_id, started_at);

-- Where a run's walk of one resource stands; written in the same
-- transaction as the page it follows.
CREATE TABLE checkpoints (
    run_id TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    cursor TEXT,
    complete BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, kind)
);

-- Records a connector could not map, per run.
CREATE TABLE sync_errors (
    run_id TEXT NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    remote_id TEXT,
    message TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX sync_errors_run ON sync_errors (run_id);

-- Devices are narrow rows: what sync compares and updates on every pass
-- (hashes, seen state) never shares a row with the large JSON, which SQLite
-- would otherwise read and rewrite through overflow pages.
CREATE TABLE devices (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    summary_hash TEXT NOT NULL,
    list_hash TEXT NOT NULL,
    needs_details BIGINT NOT NULL DEFAULT 1,
    details_at TEXT,
    status TEXT NOT NULL,
    missed_passes BIGINT NOT NULL DEFAULT 0,
    last_seen_run TEXT,
    changed_run TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    removed_at TEXT,
    updated_at TEXT NOT NULL,
    name TEXT,
    serial_number TEXT,
    device_type TEXT,
    platform TEXT,
    management_state TEXT,
    assigned_user_email TEXT,
    user_id TEXT,
    organization_remote_id TEXT,
    organization_id TEXT,
    last_check_in_at TEXT,
    UNIQUE (account_id, remote_id)
);
CREATE INDEX devices_serial ON devices (serial_number);
CREATE INDEX devices_details ON devices (account_id, needs_details);
CREATE INDEX devices_email ON devices (assigned_user_email);

-- A device's JSON: the merged record, the listed summary, the last detail
-- read, and the vendor's text of both.
CREATE TABLE device_data (
    device_id TEXT PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    record TEXT NOT NULL,
    summary TEXT NOT NULL,
    detail TEXT,
    remote_data TEXT NOT NULL,
    detail_remote_data TEXT
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    email TEXT,
    name TEXT,
    record TEXT NOT NULL,
    remote_data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    missed_passes BIGINT NOT NULL DEFAULT 0,
    last_seen_run TEXT,
    changed_run TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    removed_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, remote_id)
);
CREATE INDEX users_email ON users (email);

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    name TEXT,
    record TEXT NOT NULL,
    remote_data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    missed_passes BIGINT NOT NULL DEFAULT 0,
    last_seen_run TEXT,
    changed_run TEXT,
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    removed_at TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, remote_id)
);

-- Installed apps: each device's list is replaced whole when it is read.
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    name TEXT,
    record TEXT NOT NULL,
    remote_data TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (device_id, remote_id)
);
CREATE INDEX apps_account ON apps (account_id);
