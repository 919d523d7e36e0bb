//! The platform's database: `Users`, `conversations` and what the agents work on, as versioned
//! migrations for SQLite (the embedded default, `<data-dir>/eventline.db`) and PostgreSQL.
//! Column names are the contract's: `Users.UserId`, `Email`, `Name`, `Phone`, `CreatedAt`,
//! `UpdatedAt` (quoted identifiers in PostgreSQL); `conversations.conversation_id`, `user_id`,
//! `doc` (the turns, JSON), `created_at`, `updated_at`. SQLite also holds the banking tables the
//! agents work on (`sqlite_migrations/002_banking.sql`) and the gateway's API key digests.

pub mod pg_tls;
pub mod postgres;
pub mod sqlite;

/// PostgreSQL migrations, applied in order inside one transaction each. `REPLICA IDENTITY FULL`
/// makes UPDATE and DELETE carry the whole old row, which change data capture needs for `before`.
pub const POSTGRES_MIGRATIONS: &[(u32, &str)] = &[(
    1,
    r#"
CREATE TABLE IF NOT EXISTS "Users" (
    "UserId"    text PRIMARY KEY,
    "Email"     text NOT NULL,
    "Name"      text NOT NULL DEFAULT '',
    "Phone"     text,
    "CreatedAt" timestamptz NOT NULL DEFAULT now(),
    "UpdatedAt" timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id text PRIMARY KEY,
    user_id         text NOT NULL,
    doc             jsonb NOT NULL DEFAULT '{"turns": []}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS conversations_user_id ON conversations (user_id);
ALTER TABLE "Users" REPLICA IDENTITY FULL;
ALTER TABLE conversations REPLICA IDENTITY FULL;
"#,
)];

/// SQLite migrations, applied in order inside one transaction each: the contract tables, then the
/// banking data of the agents and the gateway's API keys.
pub const SQLITE_MIGRATIONS: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE TABLE IF NOT EXISTS Users (
    UserId    TEXT PRIMARY KEY NOT NULL,
    Email     TEXT NOT NULL,
    Name      TEXT NOT NULL DEFAULT '',
    Phone     TEXT,
    CreatedAt TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UpdatedAt TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL,
    doc             TEXT NOT NULL DEFAULT '{"turns":[]}' CHECK (json_valid(doc)),
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS conversations_user_id ON conversations (user_id);
"#,
    ),
    (2, include_str!("sqlite_migrations/002_banking.sql")),
    (3, include_str!("sqlite_migrations/003_event_outbox.sql")),
    (4, include_str!("sqlite_migrations/004_audit_and_notifications.sql")),
    (5, include_str!("sqlite_migrations/005_trace_context.sql")),
    (6, include_str!("sqlite_migrations/006_user_keys.sql")),
    (7, include_str!("sqlite_migrations/007_card_vault.sql")),
];

/// Columns holding JSON documents, per table: capture emits them as JSON, not as strings.
pub const JSON_COLUMNS: &[(&str, &str)] = &[("conversations", "doc")];
