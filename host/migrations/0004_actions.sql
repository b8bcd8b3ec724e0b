-- Device actions run through the API: an audit log and idempotency keys.

-- One row per action request that reached a connector (or was refused by
-- it). No foreign keys to devices or accounts: the log outlives them.
-- `params` and `values` are JSON with secrets and sensitive values redacted.
CREATE TABLE action_audit (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    key_id TEXT NOT NULL,
    key_name TEXT NOT NULL,
    at TEXT NOT NULL,
    device_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    command_id TEXT,
    error TEXT
);
CREATE INDEX action_audit_workspace ON action_audit (workspace_id, at, id);
CREATE INDEX action_audit_device ON action_audit (device_id, at, id);

-- A caller's `Idempotency-Key` per workspace: the request's hash and, once
-- answered, the response (sensitive values redacted). `status` is 0 while
-- the first request is still running.
CREATE TABLE idempotency_keys (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, idem_key)
);
