//! The memory manager: a conversation is one row of `conversations` whose `doc` holds its turns
//! (`{"turns": [...]}`). Only redacted text is ever written here; change data capture turns each
//! write into a `db.changes.conversations` event.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

/// The most turns a conversation keeps; older ones are dropped first.
pub const MAX_TURNS: usize = 100;

/// A conversation as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conversation {
    pub conversation_id: String,
    pub user_id: String,
    pub turns: Vec<Value>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// The conversation exists and belongs to another user.
    #[error("conversation {0} belongs to another user")]
    OtherUser(String),
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("conversation {0}: stored document is not a turn list: {1}")]
    BadDocument(String, serde_json::Error),
}

pub fn get(conn: &Connection, conversation_id: &str) -> Result<Option<Conversation>, ConversationError> {
    let row: Option<(String, String, String, String)> = conn
        .prepare_cached("SELECT user_id, doc, created_at, updated_at FROM conversations WHERE conversation_id = ?1")?
        .query_row([conversation_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((user_id, doc, created_at, updated_at)) = row else { return Ok(None) };
    let doc: Value =
        serde_json::from_str(&doc).map_err(|e| ConversationError::BadDocument(conversation_id.to_owned(), e))?;
    let turns = doc.get("turns").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(Some(Conversation { conversation_id: conversation_id.to_owned(), user_id, turns, created_at, updated_at }))
}

/// Appends `turn` to the conversation (created for `user_id` if new); returns whether it was
/// created.
pub fn append_turn(
    conn: &mut Connection,
    conversation_id: &str,
    user_id: &str,
    turn: Value,
) -> Result<bool, ConversationError> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let tx = crate::store::sqlite::write_transaction(conn)?;
    let existing: Option<(String, String)> = tx
        .prepare_cached("SELECT user_id, doc FROM conversations WHERE conversation_id = ?1")?
        .query_row([conversation_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let created = existing.is_none();
    let mut doc = match existing {
        Some((owner, _)) if owner != user_id => return Err(ConversationError::OtherUser(conversation_id.to_owned())),
        Some((_, doc)) => {
            serde_json::from_str(&doc).map_err(|e| ConversationError::BadDocument(conversation_id.to_owned(), e))?
        }
        None => json!({"turns": []}),
    };
    if !doc.get("turns").is_some_and(Value::is_array) {
        doc["turns"] = json!([]);
    }
    let turns = doc["turns"].as_array_mut().expect("made an array");
    turns.push(turn);
    if turns.len() > MAX_TURNS {
        let extra = turns.len() - MAX_TURNS;
        turns.drain(..extra);
    }
    let text = doc.to_string();
    if created {
        tx.prepare_cached(
            "INSERT INTO conversations (conversation_id, user_id, doc, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        )?
        .execute(params![conversation_id, user_id, text, now])?;
    } else {
        tx.prepare_cached("UPDATE conversations SET doc = ?1, updated_at = ?2 WHERE conversation_id = ?3")?
            .execute(params![text, now, conversation_id])?;
    }
    tx.commit()?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::tests_support::bank;

    #[test]
    fn turns_append_in_order_and_stay_with_their_user() {
        let (_dir, mut conn) = bank();
        assert!(append_turn(&mut conn, "c1", "u-1001", json!({"n": 1})).unwrap());
        assert!(!append_turn(&mut conn, "c1", "u-1001", json!({"n": 2})).unwrap());
        let c = get(&conn, "c1").unwrap().unwrap();
        assert_eq!(c.turns, vec![json!({"n": 1}), json!({"n": 2})]);
        assert!(matches!(append_turn(&mut conn, "c1", "u-1002", json!({})), Err(ConversationError::OtherUser(_))));
        for n in 0..MAX_TURNS {
            append_turn(&mut conn, "c1", "u-1001", json!({"n": n + 3})).unwrap();
        }
        let c = get(&conn, "c1").unwrap().unwrap();
        assert_eq!(c.turns.len(), MAX_TURNS);
        assert_eq!(c.turns[0], json!({"n": 3}), "oldest turns dropped first");
        assert!(get(&conn, "nope").unwrap().is_none());
    }
}
