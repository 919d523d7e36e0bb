//! The SQL side of PostgreSQL capture: connection settings from a `postgres://` URL, the checks
//! and objects capture needs (REPLICA IDENTITY FULL, the publication, eventline's slot state
//! table) and the slot health read from `pg_replication_slots`.

use std::time::Duration;

use eventline_model::events::SourceTable;
use pgwire_replication::ReplicationConfig;
use tokio_postgres::Client;
use tokio_postgres::config::Host;

use super::values::SESSION_OPTIONS;
use crate::error::{CdcError, Result};
use crate::lsn::Lsn;

/// eventline's record of its slots: which capture source a slot feeds and whether its initial
/// snapshot completed (written only after every snapshot record is durable in the log).
pub const STATE_TABLE: &str = "_eventline_cdc_slots";

/// Connection settings parsed from a `postgres://` URL.
#[derive(Clone)]
pub struct ConnInfo {
    pub pg: tokio_postgres::Config,
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    pub dbname: String,
    /// `sslmode` / `sslrootcert` of the URL.
    pub tls: eventline_platform::store::pg_tls::PgTls,
}

impl std::fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "postgres://{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

impl ConnInfo {
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |why: String| CdcError::Config(format!("--database {}: {why}", redact(url)));
        let (rest, tls) = eventline_platform::store::pg_tls::split(url).map_err(bad)?;
        let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
        let host = match pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "127.0.0.1".to_owned(),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let user = pg.get_user().map(str::to_owned).ok_or_else(|| bad("no user name in the URL".into()))?;
        let password = pg.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        let dbname = pg.get_dbname().map(str::to_owned).unwrap_or_else(|| user.clone());
        pg.options(SESSION_OPTIONS).application_name("eventline-cdc").connect_timeout(Duration::from_secs(10));
        Ok(Self { pg, host, port, user, password, dbname, tls })
    }

    /// A regular SQL session (its connection task runs in the background).
    pub async fn connect(&self) -> Result<Client> {
        use eventline_platform::store::pg_tls::{ConnectError, connect};
        connect(&self.pg, &self.tls, "capture").await.map_err(|e| match e {
            ConnectError::Postgres(e) => CdcError::Postgres(e),
            ConnectError::Tls(why) => CdcError::Config(why),
        })
    }

    /// Settings of a replication session on `slot` streaming `publication`.
    pub fn replication(&self, slot: &str, publication: &str, status_interval: Duration) -> ReplicationConfig {
        ReplicationConfig::new(&self.host, &self.user, &self.password, &self.dbname, slot, publication)
            .with_port(self.port)
            .with_options(SESSION_OPTIONS)
            .with_application_name(format!("eventline-cdc/{slot}"))
            .with_status_interval(status_interval)
            .with_wakeup_interval(Duration::from_secs(5))
            .with_buffer_size(16_384)
            .with_tls(self.replication_tls())
    }

    /// The replication session's TLS, as the URL's `sslmode` asks.
    fn replication_tls(&self) -> pgwire_replication::TlsConfig {
        use eventline_platform::store::pg_tls::SslMode;
        use pgwire_replication::TlsConfig;
        match self.tls.mode {
            SslMode::Disable => TlsConfig::disabled(),
            SslMode::Prefer | SslMode::Require => TlsConfig::require(),
            SslMode::VerifyCa => TlsConfig::verify_ca(self.tls.root_cert.clone()),
            // The host as the name to check, an IP address included (its certificate's IP SAN).
            SslMode::VerifyFull => {
                TlsConfig::verify_full(self.tls.root_cert.clone()).with_sni_hostname(self.host.clone())
            }
        }
    }
}

/// The URL without its password (userinfo or `password=` parameters), for messages.
pub fn redact(url: &str) -> String {
    eventline_model::secrets::redact_url(url)
}

pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Slot and publication names are used unquoted in replication commands: keep them to what
/// PostgreSQL allows for slots (lower-case letters, digits, underscore, at most 63 bytes).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok { Ok(()) } else { Err(CdcError::Config(format!("{what} `{name}`: use 1–63 of a-z, 0-9 and _"))) }
}

/// Fails unless every captured table has REPLICA IDENTITY FULL. eventline's migrations set it
/// when they create the tables; capture checks rather than alters, so that a deliberate change by
/// an operator is reported instead of silently undone.
/// Capture reads the application's tables; it does not create them (that is the application's
/// migrations' job). Each captured table must exist with its key column.
pub async fn check_tables(sql: &Client, info: &ConnInfo, tables: &[SourceTable]) -> Result<()> {
    for table in tables {
        let found = sql
            .query_opt(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1 AND column_name = $2",
                &[&table.sql_name(), &table.key_column()],
            )
            .await?;
        if found.is_none() {
            return Err(CdcError::Config(format!(
                "database {}: table `{}` with key column `{}` does not exist; capture reads the application's tables \
                 and does not create them. Create the platform's schema first (eventline's PostgreSQL migrations), \
                 or create the table",
                info.dbname,
                table.sql_name(),
                table.key_column()
            )));
        }
    }
    Ok(())
}

pub async fn check_replica_identity(sql: &Client, tables: &[SourceTable]) -> Result<()> {
    for table in tables {
        let name = quote_ident(table.sql_name());
        let row = sql
            .query_one(&format!("SELECT relreplident::text FROM pg_class WHERE oid = '{name}'::regclass"), &[])
            .await?;
        let ident: String = row.get(0);
        if ident != "f" {
            let current = match ident.as_str() {
                "d" => "DEFAULT",
                "n" => "NOTHING",
                "i" => "USING INDEX",
                other => other,
            }
            .to_owned();
            return Err(CdcError::ReplicaIdentity { table: table.sql_name().to_owned(), current });
        }
    }
    Ok(())
}

/// Creates the publication if missing and adds any captured table it lacks.
pub async fn ensure_publication(sql: &Client, publication: &str, tables: &[SourceTable]) -> Result<()> {
    let names: Vec<String> = tables.iter().map(|t| quote_ident(t.sql_name())).collect();
    let exists = sql.query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication]).await?.is_some();
    if !exists {
        let created =
            sql.batch_execute(&format!("CREATE PUBLICATION {publication} FOR TABLE {}", names.join(", "))).await;
        match created {
            Ok(()) => return Ok(()),
            // Created by a concurrent start: fall through to the membership check.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_OBJECT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for table in tables {
        let member = sql
            .query_opt(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND tablename = $2",
                &[&publication, &table.sql_name()],
            )
            .await?
            .is_some();
        if !member {
            sql.batch_execute(&format!("ALTER PUBLICATION {publication} ADD TABLE {}", quote_ident(table.sql_name())))
                .await?;
        }
    }
    Ok(())
}

/// A row of [`STATE_TABLE`].
#[derive(Clone, Debug)]
pub struct SlotState {
    pub source_id: String,
    pub snapshot_lsn: Option<Lsn>,
    pub snapshot_done: bool,
}

pub async fn ensure_state_table(sql: &Client) -> Result<()> {
    let r = sql
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {STATE_TABLE} (
                 slot_name        text PRIMARY KEY,
                 source_id        text NOT NULL,
                 publication      text NOT NULL,
                 snapshot_lsn     pg_lsn,
                 snapshot_done_at timestamptz,
                 created_at       timestamptz NOT NULL DEFAULT now()
             )"
        ))
        .await;
    match r {
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => Ok(()),
        other => Ok(other?),
    }
}

pub async fn read_state(sql: &Client, slot: &str) -> Result<Option<SlotState>> {
    let row = sql
        .query_opt(
            &format!(
                "SELECT source_id, snapshot_lsn::text, snapshot_done_at IS NOT NULL FROM {STATE_TABLE} WHERE slot_name = $1"
            ),
            &[&slot],
        )
        .await?;
    Ok(row.map(|r| SlotState {
        source_id: r.get(0),
        snapshot_lsn: r.get::<_, Option<String>>(1).and_then(|t| t.parse().ok()),
        snapshot_done: r.get(2),
    }))
}

pub async fn write_state(sql: &Client, slot: &str, publication: &str, state: &SlotState) -> Result<()> {
    sql.execute(
        &format!(
            "INSERT INTO {STATE_TABLE} (slot_name, source_id, publication, snapshot_lsn, snapshot_done_at)
             VALUES ($1, $2, $3, $4::text::pg_lsn, CASE WHEN $5 THEN now() END)
             ON CONFLICT (slot_name) DO UPDATE SET source_id = excluded.source_id, publication = excluded.publication,
                 snapshot_lsn = excluded.snapshot_lsn,
                 snapshot_done_at = CASE WHEN $5 THEN coalesce({STATE_TABLE}.snapshot_done_at, now()) END"
        ),
        &[&slot, &state.source_id, &publication, &state.snapshot_lsn.map(|l| l.to_string()), &state.snapshot_done],
    )
    .await?;
    Ok(())
}

/// What `pg_replication_slots` says about a slot.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SlotRow {
    pub plugin: Option<String>,
    pub database: Option<String>,
    pub active: bool,
    pub active_pid: Option<i32>,
    #[serde(serialize_with = "ser_opt_lsn")]
    pub restart_lsn: Option<Lsn>,
    #[serde(serialize_with = "ser_opt_lsn")]
    pub confirmed_flush_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost`.
    pub wal_status: Option<String>,
    /// Bytes of WAL that can still be written before the slot is in danger of losing what it
    /// needs (`None` when `max_slot_wal_keep_size` is -1, unlimited).
    pub safe_wal_size: Option<i64>,
}

pub async fn read_slot(sql: &Client, slot: &str) -> Result<Option<SlotRow>> {
    let row = sql
        .query_opt(
            "SELECT plugin::text, database::text, active, active_pid, restart_lsn::text, confirmed_flush_lsn::text,
                    wal_status, safe_wal_size
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    let lsn = |t: Option<String>| t.and_then(|t| t.parse().ok());
    Ok(row.map(|r| SlotRow {
        plugin: r.get(0),
        database: r.get(1),
        active: r.get(2),
        active_pid: r.get(3),
        restart_lsn: lsn(r.get(4)),
        confirmed_flush_lsn: lsn(r.get(5)),
        wal_status: r.get(6),
        safe_wal_size: r.get(7),
    }))
}

/// Drops `slot`, waiting up to `patience` for a session that still holds it (a killed
/// capture's walsender notices the dead connection within moments).
pub async fn drop_slot(sql: &Client, slot: &str, patience: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match sql.execute("SELECT pg_drop_replication_slot($1)", &[&slot]).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_OBJECT) => return Ok(()),
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE)
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Position, lag and health of a capture slot, for `eventline cdc status` and the capture's own
/// warnings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PgStatus {
    pub database: String,
    pub slot: String,
    /// `None`: the slot does not exist.
    pub slot_row: Option<SlotRow>,
    pub snapshot_done: bool,
    #[serde(serialize_with = "ser_lsn")]
    pub current_wal_lsn: Lsn,
    /// WAL bytes between the server's current position and what capture confirmed.
    pub lag_bytes: Option<u64>,
    /// The server's view of how long confirmed positions lag behind (`pg_stat_replication.flush_lag`,
    /// only while capture is connected and has confirmed something recently).
    pub flush_lag_ms: Option<f64>,
    /// `max_slot_wal_keep_size` in bytes (`None`: unlimited).
    pub max_slot_wal_keep_bytes: Option<i64>,
    /// Set when the slot is close to or past the point where PostgreSQL removes WAL it needs.
    pub warning: Option<String>,
}

pub async fn status(sql: &Client, info: &ConnInfo, slot: &str) -> Result<PgStatus> {
    let slot_row = read_slot(sql, slot).await?;
    let has_state = sql.query_one("SELECT to_regclass($1) IS NOT NULL", &[&STATE_TABLE]).await?.get::<_, bool>(0);
    let snapshot_done = if has_state { read_state(sql, slot).await?.is_some_and(|s| s.snapshot_done) } else { false };
    let current: String = sql.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);
    let current_wal_lsn: Lsn = current.parse().map_err(|e| CdcError::Config(format!("{e}")))?;
    let keep: i64 = sql
        .query_one("SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'", &[])
        .await?
        .get(0);
    let max_slot_wal_keep_bytes = (keep >= 0).then_some(keep * 1024 * 1024);
    let flush_lag_ms: Option<f64> = match slot_row.as_ref().and_then(|s| s.active_pid) {
        Some(pid) => sql
            .query_opt(
                "SELECT extract(epoch FROM flush_lag)::float8 * 1000 FROM pg_stat_replication WHERE pid = $1",
                &[&pid],
            )
            .await?
            .and_then(|r| r.get(0)),
        None => None,
    };
    let lag_bytes = slot_row.as_ref().and_then(|s| s.confirmed_flush_lsn).map(|c| current_wal_lsn.bytes_after(c));
    let warning = slot_row.as_ref().and_then(|s| health_warning(slot, s, max_slot_wal_keep_bytes));
    Ok(PgStatus {
        database: format!("{info:?}"),
        slot: slot.to_owned(),
        slot_row,
        snapshot_done,
        current_wal_lsn,
        lag_bytes,
        flush_lag_ms,
        max_slot_wal_keep_bytes,
        warning,
    })
}

/// A warning when the slot nears `max_slot_wal_keep_size` (less than a fifth of it left) or the
/// server already marked its WAL `unreserved`/`lost`.
pub fn health_warning(slot: &str, s: &SlotRow, max_keep: Option<i64>) -> Option<String> {
    match s.wal_status.as_deref() {
        Some("lost") => {
            return Some(format!(
                "replication slot {slot} is lost: the WAL it needed was removed; run `eventline cdc run --resnapshot`"
            ));
        }
        Some("unreserved") => {
            return Some(format!(
                "replication slot {slot} retains more WAL than max_slot_wal_keep_size: it will be lost at the next checkpoint unless capture catches up"
            ));
        }
        _ => {}
    }
    match (s.safe_wal_size, max_keep) {
        (Some(safe), Some(max)) if max > 0 && safe < max / 5 => Some(format!(
            "replication slot {slot} has {safe} bytes of WAL left before max_slot_wal_keep_size ({max} bytes) is reached"
        )),
        _ => None,
    }
}

/// LSNs appear in JSON as PostgreSQL prints them (`16/B374D848`).
pub fn ser_lsn<S: serde::Serializer>(lsn: &Lsn, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(lsn)
}

pub fn ser_opt_lsn<S: serde::Serializer>(lsn: &Option<Lsn>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match lsn {
        Some(l) => s.collect_str(l),
        None => s.serialize_none(),
    }
}

/// Whether a walsender streams from `slot` (its session has run START_REPLICATION), so that every
/// commit from now on reaches capture through the stream. `pg_replication_slots.active` alone is
/// also true while the slot is being created, before its consistent point, when a commit still
/// lands in the initial snapshot; and `pg_stat_replication.state` is hidden from roles without
/// `pg_read_all_stats`. The walsender's last command in `pg_stat_activity` is visible to its role.
pub async fn slot_is_streaming(
    sql: &tokio_postgres::Client,
    slot: &str,
) -> std::result::Result<bool, tokio_postgres::Error> {
    let row = sql
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
              WHERE s.slot_name = $1 AND a.query LIKE 'START_REPLICATION%')",
            &[&slot],
        )
        .await?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_passwords_stay_out_of_messages() {
        let i = ConnInfo::parse("postgres://ann:s3cret@127.0.0.1:15432/shop").unwrap();
        assert_eq!((i.host.as_str(), i.port, i.user.as_str(), i.dbname.as_str()), ("127.0.0.1", 15432, "ann", "shop"));
        assert!(!format!("{i:?}").contains("s3cret"));
        assert_eq!(redact("postgres://ann:s3cret@h/db"), "postgres://ann:***@h/db");
        assert!(ConnInfo::parse("postgres://127.0.0.1/db").is_err(), "no user");
        assert!(check_name("slot", "eventline_1").is_ok());
        assert!(check_name("slot", "Bad-Name").is_err());
    }

    #[test]
    fn warns_before_the_wal_keep_limit() {
        let row = |status: &str, safe: Option<i64>| SlotRow {
            plugin: None,
            database: None,
            active: true,
            active_pid: None,
            restart_lsn: None,
            confirmed_flush_lsn: None,
            wal_status: Some(status.into()),
            safe_wal_size: safe,
        };
        assert!(health_warning("s", &row("reserved", Some(900)), Some(1000)).is_none());
        assert!(health_warning("s", &row("extended", Some(100)), Some(1000)).unwrap().contains("100 bytes"));
        assert!(health_warning("s", &row("unreserved", Some(0)), Some(1000)).is_some());
        assert!(health_warning("s", &row("lost", None), None).unwrap().contains("--resnapshot"));
        assert!(health_warning("s", &row("reserved", None), None).is_none());
    }
}
