//! The card, loan and wealth agents: each answers an end user's query from the banking tables of
//! the platform database, and may change them (a card blocked, a dispute opened).
//!
//! An agent sees the raw query and the raw rows; its answer may hold the customer's card number,
//! e-mail or phone, exactly as a real answer would. Nothing an agent returns leaves the platform
//! before the governance gate has masked it (see [`crate::executor`]).
//!
//! ```
//! use eventline_model::events::AgentId;
//! use eventline_platform::agents::{self, AgentRequest};
//! # let dir = tempfile::tempdir().unwrap();
//! # let mut conn = eventline_platform::store::sqlite::open(&dir.path().join("db")).unwrap();
//! # eventline_platform::store::sqlite::migrate(&mut conn).unwrap();
//! eventline_platform::seed::seed_demo_bank(&mut conn, chrono::Utc::now()).unwrap();
//! let request = AgentRequest::new("u-1003", "How much do I still owe on my loan?");
//! let answer = agents::run(AgentId::LoanAgent, &mut conn, &request).unwrap();
//! assert_eq!(answer.output["intent"], "loan_balance");
//! ```

pub mod amortization;
pub mod card;
pub mod loan;
mod money;
mod text;
pub mod wealth;

use chrono::{DateTime, Utc};
use eventline_model::events::{AgentId, ExecutionStatus};
use rusqlite::Connection;
use serde_json::{Map, Value};

pub use money::{cents_to_amount, format_money};

/// What an agent is asked.
#[derive(Clone, Debug)]
pub struct AgentRequest<'a> {
    pub user_id: &'a str,
    pub query: &'a str,
    /// The agent's clock (tests fix it).
    pub now: DateTime<Utc>,
}

impl<'a> AgentRequest<'a> {
    pub fn new(user_id: &'a str, query: &'a str) -> Self {
        Self { user_id, query, now: Utc::now() }
    }
}

/// What an agent answered: `completed` with the answer, or `rejected` when the request cannot be
/// done as asked (the output says why, e.g. the card is already blocked).
#[derive(Clone, Debug, PartialEq)]
pub struct AgentAnswer {
    pub status: ExecutionStatus,
    pub output: Map<String, Value>,
}

impl AgentAnswer {
    fn completed(output: Value) -> Self {
        Self { status: ExecutionStatus::Completed, output: into_map(output) }
    }

    fn rejected(output: Value) -> Self {
        Self { status: ExecutionStatus::Rejected, output: into_map(output) }
    }
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("result".into(), other);
            m
        }
    }
}

/// An agent could not answer: the database failed under it.
#[derive(Debug, thiserror::Error)]
#[error("{agent} failed: {source}")]
pub struct AgentError {
    pub agent: &'static str,
    #[source]
    pub source: rusqlite::Error,
}

/// Runs `agent` on `request`.
pub fn run(agent: AgentId, conn: &mut Connection, request: &AgentRequest<'_>) -> Result<AgentAnswer, AgentError> {
    let result = match agent {
        AgentId::CardAgent => card::answer(conn, request),
        AgentId::LoanAgent => loan::answer(conn, request),
        AgentId::WealthAgent => wealth::answer(conn, request),
    };
    result.map_err(|source| AgentError { agent: agent.as_str(), source })
}

/// The customer's contact details, for confirmations an agent sends. (Not the name: the
/// detector does not recognise names, so an answer carries none.)
#[derive(Clone, Debug)]
struct Contact {
    email: String,
    phone: Option<String>,
}

fn contact(conn: &Connection, user_id: &str) -> rusqlite::Result<Option<Contact>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT Email, Phone FROM Users WHERE UserId = ?1", [user_id], |r| {
        Ok(Contact { email: r.get(0)?, phone: r.get(1)? })
    })
    .optional()
}

#[cfg(test)]
pub(crate) mod tests_support {
    use rusqlite::Connection;

    /// A migrated, seeded database in a fresh directory.
    pub fn bank() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::store::sqlite::open(&dir.path().join("eventline.db")).unwrap();
        crate::store::sqlite::migrate(&mut conn).unwrap();
        crate::seed::seed_demo_bank(&mut conn, chrono::Utc::now()).unwrap();
        (dir, conn)
    }
}
