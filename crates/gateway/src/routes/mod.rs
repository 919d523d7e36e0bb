//! One module per resource.

pub mod alerts;
pub mod analytics;
pub mod audit;
pub mod conversations;
pub mod health;
pub mod integrations;
pub mod keys;
pub mod query;
pub mod topics;
pub mod users;

use crate::error::ApiError;

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
