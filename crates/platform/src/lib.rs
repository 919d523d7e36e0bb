//! The platform that produces the events: the planner that routes an end user's query to the card,
//! loan or wealth agent, the agents doing banking work on the data in the database, the memory
//! manager keeping conversations, and the customer profiles.
//!
//! - [`store`]: the schema and migrations (SQLite and PostgreSQL); [`db::Database`] shares the
//!   SQLite connection with async code; [`seed`] writes the demo bank at first start.
//! - [`planner`]: which agent a query goes to. [`agents`]: the card, loan and wealth agents.
//! - [`executor::AgentExecutor`]: query → planner → agent → governance → `agent.executions`,
//!   `compliance.alerts` and the conversation.
//! - [`users`]: the `Users` profiles. [`conversations`]: the memory manager.
//! - [`integrations`]: inbound CRM events and market-data ticks (validated, governed, appended
//!   all-or-nothing) and the price feed that applies ticks to `prices`.
//!
//! ```
//! use eventline_platform::planner::{Planner, Route};
//! use eventline_model::events::AgentId;
//! let planner = Planner::default();
//! assert!(matches!(planner.route("Please block my credit card"), Route::Agent(AgentId::CardAgent, _)));
//! ```

pub mod agents;
pub mod cardvault;
pub mod conversations;
pub mod db;
pub mod executor;
pub mod integrations;
pub mod keyfile;
pub mod outbox;
pub mod planner;
pub mod prices;
pub mod seed;
pub mod store;
pub mod trace_context;
pub mod users;
