-- The audit trail (eventline_services::audit): one row per audited log record, in chain order.
-- `record` is the RFC 8785 canonical JSON of the audit record and the only hashed content:
-- hash = SHA-256(prev_hash bytes || seq as 8 big-endian bytes || record). The other columns
-- repeat fields of `record` for filtering; `audit verify` checks that they still agree with it.
CREATE TABLE IF NOT EXISTS audit_trail (
    seq         INTEGER PRIMARY KEY,
    topic       TEXT NOT NULL,
    partition   INTEGER NOT NULL,
    "offset"    INTEGER NOT NULL,
    event_time  TEXT NOT NULL,
    actor       TEXT,
    subject     TEXT,
    resource    TEXT,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    record      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX IF NOT EXISTS audit_trail_time ON audit_trail (event_time);
CREATE INDEX IF NOT EXISTS audit_trail_actor ON audit_trail (actor);
CREATE INDEX IF NOT EXISTS audit_trail_subject ON audit_trail (subject);
CREATE INDEX IF NOT EXISTS audit_trail_resource ON audit_trail (resource);

-- Signed heads of the trail (Ed25519, key <data-dir>/audit-signing.key). `kind` = 'head' (every
-- N records or T seconds) or 'pruned' (retention removed the records up to `seq`; the next
-- retained record must link to `hash`).
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL,
    signed_at   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
);

-- Alerts the notification service has taken in (eventline_services::notify), for
-- `GET /v1/alerts` and `eventline alerts`.
CREATE TABLE IF NOT EXISTS notification_alerts (
    alert_id    TEXT PRIMARY KEY NOT NULL,
    alert_type  TEXT NOT NULL,
    severity    TEXT NOT NULL,
    component   TEXT NOT NULL,
    field       TEXT NOT NULL,
    event_time  TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_alerts_time ON notification_alerts (event_time);
CREATE INDEX IF NOT EXISTS notification_alerts_same ON notification_alerts (alert_type, component, field, event_time);

-- Per alert and channel: where its delivery stands. `state` = pending | delivered | dead |
-- coalesced (an identical alert of the same route went out within the window: `coalesced_into`).
CREATE TABLE IF NOT EXISTS notification_deliveries (
    alert_id        TEXT NOT NULL,
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    coalesced_into  TEXT,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS notification_deliveries_due ON notification_deliveries (channel, state, next_attempt_at);
