-- API keys bound to one end user (role `user`) and keys that expire. SQLite cannot change a
-- CHECK constraint in place: the table is rebuilt with the same rows.
CREATE TABLE api_keys_new (
    key_id     TEXT PRIMARY KEY NOT NULL,
    sha256     TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'agent', 'ingest', 'read', 'user')),
    user_id    TEXT,
    bootstrap  INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at TEXT,
    CHECK ((role = 'user') = (user_id IS NOT NULL))
);
INSERT INTO api_keys_new (key_id, sha256, role, bootstrap, created_at)
    SELECT key_id, sha256, role, bootstrap, created_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
