-- API list speed (same schema on SQLite and PostgreSQL).

-- A counter per account, bumped by every transaction that writes the
-- account's inventory rows: a server may keep the account's list in memory
-- and serve it for as long as the counter is what it was when read.
ALTER TABLE accounts ADD COLUMN list_generation BIGINT NOT NULL DEFAULT 0;
