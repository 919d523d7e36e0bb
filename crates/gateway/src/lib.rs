//! The HTTP gateway. Every endpoint but `/healthz` and `/readyz` needs an API key
//! (`Authorization: Bearer <key>`); a key carries one role and a role allows the least it needs.
//!
//! This build holds the key and role model the server is built on:
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
