//! The writer's trace context, for the change data capture hop. A write the platform makes under
//! a trace (a profile update, a conversation turn) sets the one row of `_eventline_trace_context`
//! to its W3C `traceparent` for the duration of the change; capture's triggers copy it into the
//! outbox row of each change, and the relay puts it in the `traceparent` header of the
//! `db.changes.*` event. The row is deleted before the transaction commits, so a later writer
//! without a trace (another application) is not attributed to this one.

use rusqlite::Connection;

/// The table the triggers read.
pub const TABLE: &str = "_eventline_trace_context";

/// Its definition (created by the platform's migrations, and by capture for other databases).
pub const DDL: &str = "CREATE TABLE IF NOT EXISTS _eventline_trace_context (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    traceparent TEXT NOT NULL
)";

/// Makes `traceparent` the trace context of the changes that follow on `conn` (inside the
/// writer's transaction); nothing without one, or for a trace that is not recorded.
pub fn set(conn: &Connection, traceparent: Option<&str>) -> rusqlite::Result<()> {
    if let Some(tp) = traceparent.filter(|tp| eventline_telemetry::sampled(tp)) {
        conn.prepare_cached("INSERT OR REPLACE INTO _eventline_trace_context (id, traceparent) VALUES (1, ?1)")?
            .execute([tp])?;
    }
    Ok(())
}

/// Ends what [`set`] began (before the transaction commits).
pub fn clear(conn: &Connection, traceparent: Option<&str>) -> rusqlite::Result<()> {
    if traceparent.is_some_and(eventline_telemetry::sampled) {
        conn.prepare_cached("DELETE FROM _eventline_trace_context WHERE id = 1")?.execute([])?;
    }
    Ok(())
}

/// Runs `write` with `traceparent` as the trace context of the changes it makes.
pub fn traced<T, E: From<rusqlite::Error>>(
    conn: &mut Connection,
    traceparent: Option<&str>,
    write: impl FnOnce(&mut Connection) -> Result<T, E>,
) -> Result<T, E> {
    set(conn, traceparent)?;
    let result = write(conn);
    clear(conn, traceparent)?;
    result
}
