-- Webhooks: subscriptions per workspace and a persistent outbox. An event
-- is written in the same transaction as the change it announces, with one
-- delivery row per matching subscription; a dispatcher claims due
-- deliveries under a lease, so a restart (or a killed process) delivers
-- every event at least once with the same id.

CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    url TEXT NOT NULL,
    -- The event types, comma-delimited with a leading and trailing comma
    -- (',device.created,sync.failed,') so one LIKE matches a type.
    events TEXT NOT NULL,
    description TEXT,
    sealed_secret TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    disabled_at TEXT,
    disabled_reason TEXT
);
CREATE INDEX webhook_subscriptions_workspace ON webhook_subscriptions (workspace_id);

-- An event's body is rendered once: every attempt sends the same bytes.
CREATE TABLE webhook_events (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    event_id TEXT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    -- pending, delivered, failed
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_holder TEXT,
    lease_expires_at TEXT,
    last_attempt_at TEXT,
    last_status BIGINT,
    last_error TEXT,
    finished_at TEXT,
    PRIMARY KEY (event_id, subscription_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, event_id);

-- What the last device event said about a device: changes are announced by
-- comparing the device with it, so events survive a killed sync and a
-- device changed twice in one run is announced once, in its final state.
-- The device's `is_compliant` ('true', 'false' or NULL), copied out of its
-- record like the other filter columns.
ALTER TABLE devices ADD COLUMN is_compliant TEXT;
ALTER TABLE devices ADD COLUMN announced_hash TEXT;
ALTER TABLE devices ADD COLUMN announced_status TEXT;
-- 'true', 'false' or 'unknown'; NULL before a device's first announcement.
ALTER TABLE devices ADD COLUMN announced_compliance TEXT;
UPDATE devices SET announced_hash = content_hash, announced_status = status;
