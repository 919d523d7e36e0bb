//! One module per resource.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod conversations;
pub mod health;
pub mod integrations;
pub mod keys;
pub mod query;
pub mod tokens;
pub mod topics;
pub mod users;

use crate::error::ApiError;
use crate::security::{Caller, SecurityEvent};
use crate::state::AppState;

/// Object-level authorisation: a caller bound to one user (role `user`) acts only on that user's
/// resources. Anything else is 403 and a security event.
pub(crate) fn require_own(state: &AppState, caller: &Caller, user_id: &str, resource: String) -> Result<(), ApiError> {
    if caller.key.may_act_for(user_id) {
        return Ok(());
    }
    state.inner.security.record(
        SecurityEvent::by(caller, "authz.denied", 403, "a user-bound caller acted on another user's resource")
            .resource(resource),
    );
    Err(ApiError::forbidden("this key or token acts for another user; it can reach only its own user's resources"))
}

/// Checks an identifier from a path or a body: 1 to `max` characters of ASCII letters, digits,
/// `.`, `_`, `-` and `:`.
pub(crate) fn check_id(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ApiError::invalid_field(field, format!("must be at most {max} characters")));
    }
    if let Some(c) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))) {
        return Err(ApiError::invalid_field(
            field,
            format!("contains {c:?}; use ASCII letters, digits, `.`, `_`, `-` and `:`"),
        ));
    }
    Ok(())
}
