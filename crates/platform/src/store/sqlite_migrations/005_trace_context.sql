-- The trace context of the transaction writing now (W3C traceparent), read by capture's triggers
-- so that a change eventline makes carries its writer's trace into db.changes.* (one row at most;
-- a writer sets it before its change and deletes it before it commits).
CREATE TABLE IF NOT EXISTS _eventline_trace_context (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    traceparent TEXT NOT NULL
);

-- The trace an alert belongs to, so its deliveries join it.
ALTER TABLE notification_alerts ADD COLUMN traceparent TEXT;
