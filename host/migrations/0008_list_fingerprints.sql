-- Sync speed, part 2 (same schema on SQLite and PostgreSQL).

-- Users and organizations keep the fingerprint of their last listing, as
-- devices do in `list_hash`: a re-sync recognizes an unchanged record
-- without normalizing it. Devices' `list_hash` now holds that fingerprint
-- too; the hashes of older versions simply differ once.
ALTER TABLE users ADD COLUMN list_hash TEXT;
ALTER TABLE organizations ADD COLUMN list_hash TEXT;

-- What the account's devices were last linked against (the workspace's
-- user count and newest user change): a run that changed nothing skips
-- relinking every device when the users are as they were.
ALTER TABLE accounts ADD COLUMN link_signature TEXT;
