//! The platform that produces the events: the planner that routes an end user's query to the card,
//! loan or wealth agent, the agents doing banking work on the data in the database, the memory
//! manager keeping conversations, and the CRM and market-data integrations.
//!
//! This build holds the planner and the database schema (`store`):
//!
//! ```
//! use eventline_platform::planner::{Planner, Route};
//! use eventline_model::events::AgentId;
//! let planner = Planner::default();
//! assert!(matches!(planner.route("Please block my credit card"), Route::Agent(AgentId::CardAgent, _)));
//! ```

pub mod planner;
pub mod store;
