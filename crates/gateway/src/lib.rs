//! The HTTP gateway. Every endpoint but `/healthz` and `/readyz` needs an API key
//! (`Authorization: Bearer <key>`); a key carries one role and a role allows the least it needs.
//!
//! - [`server::router`] / [`server::serve`]: the routes of this build (`/healthz`, `/readyz`,
//!   `POST /v1/query`, `GET/PUT/DELETE /v1/users/{id}`, `GET /v1/conversations/{id}`,
//!   `POST /v1/integrations/crm/events`, `POST /v1/integrations/market-data`, `POST /v1/keys`, and
//!   the log: `GET/POST /v1/topics`, `GET /v1/topics/{topic}`, `GET/POST /v1/topics/{topic}/records`,
//!   `GET /v1/topics/{topic}/stream`), auth per route, body limit, timeout, graceful shutdown.
//! - [`dashboard`]: the live dashboard at `/` (embedded assets, `GET /v1/dashboard/stream`);
//!   [`session`]: its login, a short-lived `HttpOnly`, `SameSite=Strict` cookie honoured on GETs.
//! - [`produce`]: one event on its way into a topic (schema, stamping, governance gate), shared
//!   by `POST /v1/topics/{topic}/records` and `eventline produce`.
//! - [`auth`]: keys and roles; [`keys`]: keys at rest and the `admin.key` bootstrap.
//! - [`error::ApiError`]: every error as `{"error": {"code", "message"}}`.
//!
//! ```
//! use eventline_gateway::auth::{ApiKey, KeyStore, Permission, Role};
//! let (secret, key) = ApiKey::generate(Role::Read);
//! let store = KeyStore::new(vec![key]);
//! let role = store.authenticate(&secret).unwrap();
//! assert!(role.allows(Permission::ReadAudit));
//! assert!(!role.allows(Permission::Query));
//! ```

pub mod auth;
pub mod dashboard;
pub mod error;
pub mod json;
pub mod keys;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod produce;
mod routes;
pub mod security;
pub mod server;
pub mod session;
pub mod state;
pub mod tokens;
pub mod wire;

pub use server::{router, serve, serve_tls};
pub use state::{AppState, GatewayOptions, Readiness};
