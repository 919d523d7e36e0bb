-- The transactional outbox of the platform's own events (agent executions and their alerts):
-- written in the same transaction as the change they describe, relayed to the log with
-- acks=all in `seq` order, then deleted. `partition` is fixed at write time so a relay that
-- restarts after a crash can tell exactly which rows the log already holds.
CREATE TABLE IF NOT EXISTS _eventline_event_outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic      TEXT NOT NULL,
    partition  INTEGER NOT NULL,
    key        BLOB,
    value      BLOB NOT NULL,
    headers    TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL
);

-- Facts about this database that eventline keeps (the outbox's source id).
CREATE TABLE IF NOT EXISTS _eventline_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Answers to requests sent with an `Idempotency-Key` (integration endpoints): a retried request
-- with the same key and body gets the first answer again instead of appending twice.
CREATE TABLE IF NOT EXISTS _eventline_idempotency (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
