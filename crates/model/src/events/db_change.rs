use serde::{Deserialize, Serialize};

use super::{Event, key_of};
use crate::{Metadata, Timestamp};

/// A row as a JSON object of column name → value.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
    /// The row existed when capture started (initial snapshot).
    Snapshot,
}

/// The captured table, by its SQL name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceTable {
    Users,
    #[serde(rename = "conversations")]
    Conversations,
}

impl SourceTable {
    /// The topic its changes go to.
    pub fn topic(self) -> &'static str {
        match self {
            Self::Users => "db.changes.users",
            Self::Conversations => "db.changes.conversations",
        }
    }

    /// The key column.
    pub fn key_column(self) -> &'static str {
        match self {
            Self::Users => "UserId",
            Self::Conversations => "conversation_id",
        }
    }

    pub fn sql_name(self) -> &'static str {
        match self {
            Self::Users => "Users",
            Self::Conversations => "conversations",
        }
    }
}

/// A row change captured from the database (seed: "Database Change Event").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DbChange {
    pub event_type: ChangeKind,
    pub table: SourceTable,
    /// The full row after the change; for DELETE, the key columns.
    pub data: Row,
    /// UPDATE: prior values of the changed columns; DELETE: the full prior row; otherwise absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Row>,
    /// Commit time of the transaction that made the change.
    pub timestamp: Timestamp,
    #[serde(rename = "_metadata")]
    pub metadata: Metadata,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl DbChange {
    /// Builds the event for a change from the row images a capture source saw.
    ///
    /// `before`/`after` are full row images where the source has them. The contract's shapes are
    /// derived here once for every source: UPDATE keeps in `before` only the columns whose value
    /// changed; DELETE carries the key columns in `data` and the full prior row in `before`.
    pub fn from_images(
        kind: ChangeKind,
        table: SourceTable,
        before: Option<Row>,
        after: Option<Row>,
        commit_time: Timestamp,
        metadata: Metadata,
    ) -> Self {
        let (data, before) = match kind {
            ChangeKind::Insert | ChangeKind::Snapshot => (after.unwrap_or_default(), None),
            ChangeKind::Update => {
                let after = after.unwrap_or_default();
                let changed = before
                    .map(|prior| prior.into_iter().filter(|(col, old)| after.get(col) != Some(old)).collect::<Row>());
                (after, changed)
            }
            ChangeKind::Delete => {
                let prior = before.unwrap_or_default();
                let key = table.key_column();
                let mut data = Row::new();
                if let Some(v) = prior.get(key) {
                    data.insert(key.to_owned(), v.clone());
                }
                (data, Some(prior))
            }
        };
        Self { event_type: kind, table, data, before, timestamp: commit_time, metadata, extra: Default::default() }
    }
}

impl Event for DbChange {
    fn topic(&self) -> &'static str {
        self.table.topic()
    }

    fn key(&self) -> Option<String> {
        key_of(self.data.get(self.table.key_column()))
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn timestamp(&self) -> &Timestamp {
        &self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> Row {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn update_before_holds_only_changed_columns() {
        let before = row(json!({"UserId": "u1", "Email": "old@example.com", "Name": "Ann"}));
        let after = row(json!({"UserId": "u1", "Email": "new@example.com", "Name": "Ann"}));
        let ev = DbChange::from_images(
            ChangeKind::Update,
            SourceTable::Users,
            Some(before),
            Some(after.clone()),
            Timestamp::now(),
            Metadata::new("t"),
        );
        assert_eq!(ev.data, after);
        assert_eq!(ev.before, Some(row(json!({"Email": "old@example.com"}))));
        assert_eq!(ev.key().as_deref(), Some("u1"));
    }

    #[test]
    fn delete_carries_key_in_data_and_full_prior_row() {
        let prior = row(json!({"conversation_id": 7, "user_id": "u1", "doc": {"turns": []}}));
        let ev = DbChange::from_images(
            ChangeKind::Delete,
            SourceTable::Conversations,
            Some(prior.clone()),
            None,
            Timestamp::now(),
            Metadata::new("t"),
        );
        assert_eq!(ev.data, row(json!({"conversation_id": 7})));
        assert_eq!(ev.before, Some(prior));
        assert_eq!(ev.key().as_deref(), Some("7"));
    }
}
