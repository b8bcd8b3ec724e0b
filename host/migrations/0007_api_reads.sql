-- API lists (same schema on SQLite and PostgreSQL).

-- Lists page through an account's records in id order (one range per
-- account, merged): devices have had (account_id, id) since 0005; without
-- it, each page of users or organizations sorted every record of the
-- account. Apps go without: their ids start with their device's, so the
-- primary key already walks them in order, and an account index would
-- slow every app write.
CREATE INDEX users_account ON users (account_id, id);
CREATE INDEX organizations_account ON organizations (account_id, id);
