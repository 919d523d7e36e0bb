//! The command line: every command of the contract, with help that teaches.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use eventline_model::topics::{Acks, Compression};

use crate::config::Backend;

const ABOUT: &str = "eventline — the event-streaming backbone for AI-agent platforms.

Six topics carry every user and conversation change (CDC), agent execution, compliance alert
and external feed; consumers build analytics, a tamper-evident audit trail, notifications and
a Parquet data lake. The embedded log needs nothing installed; --backend kafka uses a Kafka cluster.";

const EXAMPLES: &str = "Examples:
  eventline topics list
  eventline schema agent.executions
  echo '{\"symbol\":\"AAPL\",\"price\":227.5,\"currency\":\"USD\"}' | eventline produce external.market.data --stamp
  eventline consume external.market.data --from-beginning --max 10
  eventline consume agent.executions --group analytics --follow
  echo '{\"text\":\"my SSN is 123-45-6789\"}' | eventline pii scan --redact
  eventline bench log --json";

#[derive(Debug, Parser)]
#[command(name = "eventline", version, about = ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the log, the database, the lake and admin.key live.
    #[arg(long, global = true, env = "EVENTLINE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (see eventline.example.toml for every key).
    #[arg(long, global = true, env = "EVENTLINE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log backend.
    #[arg(long, global = true, env = "EVENTLINE_BACKEND", value_enum)]
    pub backend: Option<Backend>,
    /// Kafka bootstrap servers for --backend kafka.
    #[arg(long, global = true, env = "EVENTLINE_KAFKA_BROKERS", value_name = "HOST:PORT,...")]
    pub kafka_brokers: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the platform: gateway on 127.0.0.1:8000 with the card, loan and wealth agents, governance, CDC.
    ///
    /// Opens the log (embedded, or --backend kafka), the SQLite database <data-dir>/eventline.db
    /// (seeding a demo bank at first start), captures Users and conversations into the log, and
    /// serves the HTTP API. The first start writes an admin API key to <data-dir>/admin.key.
    /// Ctrl-C or SIGTERM: requests in flight finish, capture drains, the log is flushed.
    Up(UpArgs),
    /// Create, list, describe and delete topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Append JSON lines from stdin to a topic; prints {"partition":P,"offset":O} per record as it is acknowledged.
    Produce(ProduceArgs),
    /// Print a topic's events as JSON lines.
    Consume(ConsumeArgs),
    /// Print the JSON Schema of a built-in topic.
    Schema {
        /// One of the six built-in topics.
        topic: String,
    },
    /// Check and query the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Per-agent executions, success rate and latency p50/p95/p99/max; events per second per topic;
    /// alerts by type and severity.
    ///
    /// With `eventline up` running, its analytics (group eventline-analytics) answer; otherwise
    /// the figures are computed from the log (the last hour).
    Analytics {
        /// 1m, 5m, 1h or all (since the analytics started).
        #[arg(long, default_value = "5m")]
        window: String,
        /// The report as one JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// The Parquet data lake: <data-dir>/lake/<topic>/date=YYYY-MM-DD/.
    #[command(subcommand)]
    Lake(LakeCommand),
    /// Recent compliance alerts with their delivery state per notification channel.
    Alerts {
        /// At most N alerts, newest first.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
        /// Only alerts of this type (e.g. PII_EXPOSURE).
        #[arg(long, value_name = "TYPE")]
        alert_type: Option<String>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// API keys of the running `eventline up`: list, create (optionally bound to one user or
    /// expiring), revoke. Uses the data directory's admin key (or --key) against up's gateway.
    Keys(KeysArgs),
    /// PII detection and redaction.
    #[command(subcommand)]
    Pii(PiiCommand),
    /// Change data capture from SQLite or PostgreSQL.
    #[command(subcommand)]
    Cdc(CdcCommand),
    /// Create or update eventline's platform tables (Users, conversations, the banking tables).
    ///
    /// `up` does this itself for its SQLite database. Capture never does: it reads the tables the
    /// application owns. Run this once for a database you want `cdc run` to capture and that does
    /// not have the tables yet. Idempotent: applied migrations are skipped.
    Migrate {
        /// Default: SQLite at <data-dir>/eventline.db. Also sqlite:///path/to.db or
        /// postgres://user:password@host:port/database.
        #[arg(long, env = "EVENTLINE_DATABASE_URL", value_name = "URL")]
        database: Option<String>,
    },
    /// Send realistic traffic through a running gateway: profile creates and updates, card, loan and
    /// wealth questions (some carrying PII), CRM events and market ticks, with a progress bar and a
    /// closing summary (requests by kind, errors, events per topic, p50/p99 latency).
    ///
    /// Without --url it finds the `eventline up` of the data directory and its admin key.
    Demo(DemoArgs),
    /// Benchmarks; with --json the last line is one JSON object of the figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Database: default SQLite at <data-dir>/eventline.db, or sqlite:///path/to.db. PostgreSQL
    /// (postgres://…) is refused by this build's `up`: the agents run on SQLite only.
    #[arg(long, env = "EVENTLINE_DATABASE_URL", value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// All topics with their partitions, retention, compression and record counts.
    List {
        /// One JSON object per topic instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A topic's settings and per-partition offsets.
    Describe {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Create a topic (defaults from the configuration: 3 partitions, 7 days, no compression).
    Create(CreateTopicArgs),
    /// Delete a topic and all its records.
    Delete {
        name: String,
        /// Required to delete one of the six built-in topics.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct CreateTopicArgs {
    /// ASCII letters, digits, '.', '_' and '-'; at most 249 characters.
    pub name: String,
    #[arg(long)]
    pub partitions: Option<u32>,
    /// How long records are kept, e.g. 7d, 36h, or "forever".
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// Per-partition size cap in bytes.
    #[arg(long, value_name = "BYTES")]
    pub retention_bytes: Option<u64>,
    #[arg(long, value_parser = parse_compression)]
    pub compression: Option<Compression>,
    /// Default acks for producers that do not choose: 0, 1 or all.
    #[arg(long, value_parser = parse_acks)]
    pub acks: Option<Acks>,
    /// JSON pointer to the key inside each event, used when `produce` gets no --key (e.g. /order_id).
    #[arg(long, value_name = "POINTER")]
    pub key_field: Option<String>,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse()
}

fn parse_acks(s: &str) -> Result<Acks, String> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    pub topic: String,
    /// Key for every record (default: the topic's key field, e.g. /data/UserId for db.changes.users).
    #[arg(long)]
    pub key: Option<String>,
    /// Acknowledgement level: 0, 1 (written to the OS) or all (fsynced). Default: the topic's.
    #[arg(long, value_parser = parse_acks)]
    pub acks: Option<Acks>,
    /// Write every record to this partition instead of hashing the key.
    #[arg(long)]
    pub partition: Option<u32>,
    /// A record header NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,
    /// Add `_metadata` (UUID v7 id, now, producer) and `timestamp` to events that lack them.
    #[arg(long)]
    pub stamp: bool,
}

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    pub topic: String,
    /// Consume as a member of this group: start at its committed offsets and commit as you go.
    #[arg(long)]
    pub group: Option<String>,
    /// Start at the oldest record (the default without --group).
    #[arg(long, conflicts_with_all = ["offset", "since"])]
    pub from_beginning: bool,
    /// Start at this offset on every partition (or on --partition).
    #[arg(long, conflicts_with = "since")]
    pub offset: Option<u64>,
    /// Start at the first record at or after TIME: RFC 3339 (2026-11-27T10:00:00Z) or an age (15m, 2h).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    pub max: Option<u64>,
    /// Keep waiting for new records (Ctrl-C to stop).
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum LakeCommand {
    /// Catch up: write every record the log holds (each topic up to its end at the start) to
    /// Parquet, commit, exit. Exactly once: files are written to a temporary name, fsynced and
    /// renamed, and a restart resumes after the highest complete file of each partition.
    ///
    /// Needs the log itself: stop `eventline up` first (it runs the same lake consumer).
    Sync {
        /// Keep going until Ctrl-C.
        #[arg(long)]
        follow: bool,
    },
    /// Merge the small files of each day and partition into one (same exactly-once guarantee).
    Compact {
        /// Only this topic (default: all).
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// Only this day, YYYY-MM-DD (default: all).
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the audit trail: every record's hash and link, the columns against the hashed record,
    /// every signed checkpoint. Exit 0 and a summary when intact; exit 1 and the first bad record
    /// when a record was altered, removed, inserted, reordered or the tail cut off.
    ///
    /// Works with or without `eventline up` running. Prints the trail's public key (Ed25519) so it
    /// can be kept elsewhere and given back with --public-key.
    Verify {
        /// Also check that every record still in the log (audited topics, up to the audit
        /// group's committed offset) is in the trail.
        #[arg(long)]
        against_log: bool,
        /// Trust this public key (64 hex digits) instead of the one derived from
        /// <data-dir>/audit-signing.key.
        #[arg(long, value_name = "HEX")]
        public_key: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Audit records as JSON lines, newest first (or --oldest-first).
    ///
    /// Each line: seq, topic, partition, offset, when, actor, subject, resource, action, outcome,
    /// hash and the record (who, what, when, outcome, origin, resource and the event).
    Query {
        /// A key id, user id, component or resource id: records where it acted, was concerned or
        /// was the resource.
        #[arg(long, value_name = "ID")]
        entity: Option<String>,
        /// Only records from this topic.
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        /// Records at or after this time: RFC 3339 (2026-11-30T10:00:00Z) or an age (15m, 2h, 7days).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Records before this time (same forms as --since).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// At most N records.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
        /// Oldest first instead of newest first.
        #[arg(long)]
        oldest_first: bool,
        /// Continue after this record (the seq of the last line of the previous page).
        #[arg(long, value_name = "SEQ")]
        cursor: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PiiCommand {
    /// Read {"text": ...} lines on stdin; print {"entities": [...], "redacted": ...} per line.
    Scan {
        /// Also print the text with every finding replaced by a typed mask.
        #[arg(long)]
        redact: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CdcCommand {
    /// Capture changes of Users and conversations into the log until Ctrl-C or SIGTERM.
    ///
    /// Changes made by any client (eventline, psql, the sqlite3 shell, another service) are
    /// captured. PostgreSQL: logical replication (pgoutput) through a publication and a slot that
    /// capture creates; the first run publishes the existing rows as SNAPSHOT events. The tables
    /// must exist: capture reads them and does not create them (`eventline migrate` does).
    Run {
        /// Default: SQLite at <data-dir>/eventline.db. Also sqlite:///path/to.db or
        /// postgres://user:password@host:port/database.
        #[arg(long, env = "EVENTLINE_DATABASE_URL", value_name = "URL")]
        database: Option<String>,
        /// PostgreSQL: the logical replication slot (and publication) name.
        #[arg(long, env = "EVENTLINE_CDC_SLOT", default_value = "eventline")]
        slot: String,
        /// PostgreSQL: drop and recreate the slot, then publish every row again as SNAPSHOT.
        /// The way back after `cdc run` reported that the slot was lost.
        #[arg(long)]
        resnapshot: bool,
    },
    /// Capture backlog and lag; for PostgreSQL also the slot's confirmed position and health.
    Status {
        #[arg(long, env = "EVENTLINE_DATABASE_URL", value_name = "URL")]
        database: Option<String>,
        /// PostgreSQL: the logical replication slot name.
        #[arg(long, env = "EVENTLINE_CDC_SLOT", default_value = "eventline")]
        slot: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    /// The gateway (default: the `eventline up` running on --data-dir, found in up.json).
    #[arg(long, global = true)]
    pub url: Option<String>,
    /// An admin key (default: <data-dir>/admin.key).
    #[arg(long, global = true, env = "EVENTLINE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key: id, role, bound user, created, expiry (never a secret).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// A new key; its secret is printed once (stdout), nowhere else.
    ///
    /// Roles: admin (everything), agent (the bank's front end: queries, profiles, conversations,
    /// user tokens), ingest (integration events), read (analytics, audit, alerts, topics, the
    /// dashboard), user (one customer's own queries, profile and conversations; needs --user).
    Create {
        /// admin, agent, ingest, read or user.
        #[arg(long)]
        role: String,
        /// The user a `user` key acts for.
        #[arg(long, value_name = "USER_ID")]
        user: Option<String>,
        /// Expire after this long, e.g. 30d, 12h (default: never).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// Revoke a key at once: its requests, dashboard sessions, open streams and the user tokens
    /// it issued stop working.
    Revoke {
        /// The key's id (elk_…, 12 characters), as `keys list` shows it.
        key_id: String,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The gateway (default: the `eventline up` running on --data-dir, found in up.json).
    #[arg(long)]
    pub url: Option<String>,
    /// An admin key (default: <data-dir>/admin.key). The demo makes an agent and an ingest key with it.
    #[arg(long, env = "EVENTLINE_API_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Requests per second.
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// How long, e.g. 30s, 5m.
    #[arg(long, default_value = "30s")]
    pub duration: String,
    /// Seed of the random traffic (the same seed sends the same requests); default: random.
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The log: produce and consume throughput, acks=all latency, peak memory.
    Log(BenchLogArgs),
    /// End to end: gateway → log → consumers.
    Pipeline {
        #[arg(long)]
        json: bool,
    },
    /// CDC: commit-to-event latency and bulk throughput, SQLite and PostgreSQL.
    Cdc(BenchCdcArgs),
    /// The consumer services: audit trail append and verify, webhook notification delivery.
    ///
    /// Audit: --records events on the audited topics go through the audit service (consumer group,
    /// chain, SQLite) — compared with plain SQLite inserts of the same rows without the chain; then
    /// the whole trail is verified. Webhook: --alerts alerts are delivered to a receiver in this
    /// process with durable per-alert state — compared with bare HTTP POSTs at the same concurrency.
    Services(BenchServicesArgs),
}

#[derive(Debug, Args)]
pub struct BenchServicesArgs {
    /// Events through the audit trail.
    #[arg(long, default_value_t = 200_000)]
    pub records: u64,
    /// Alerts through the webhook channel.
    #[arg(long, default_value_t = 20_000)]
    pub alerts: u64,
    /// The last line printed is one JSON object of the figures.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchCdcArgs {
    /// Commits per second in the latency phase.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Length of the latency phase.
    #[arg(long, default_value = "10s")]
    pub latency_duration: String,
    /// Rows in the bulk phase (written in transactions of --txn-rows, then captured).
    #[arg(long, default_value_t = 200_000)]
    pub bulk_rows: u64,
    #[arg(long, default_value_t = 1000)]
    pub txn_rows: u64,
    /// Print one JSON object of the figures as the last line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLogArgs {
    /// Records to produce and consume in the throughput phases.
    #[arg(long, default_value_t = 10_000_000)]
    pub records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 300)]
    pub record_bytes: usize,
    /// Distinct keys (users).
    #[arg(long, default_value_t = 10_000)]
    pub keys: u32,
    #[arg(long, default_value_t = 3)]
    pub partitions: u32,
    /// Records per produce call in the throughput phase.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Pace of the acks=all latency phase, records per second.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u32,
    /// Length of the latency phase.
    #[arg(long, default_value = "10s")]
    pub latency_duration: String,
    /// Where the benchmark's log lives (default: a fresh directory under the data dir, removed after).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print one JSON object of the figures as the last line.
    #[arg(long)]
    pub json: bool,
}
