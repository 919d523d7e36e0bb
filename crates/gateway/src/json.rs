//! [`ApiJson`]: a JSON request body whose errors name the field and the reason — 400 when the
//! body is not JSON, 422 when it is JSON of the wrong shape, 413 when it is over the limit, 415
//! when it says it is something else.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A request body parsed as `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !(essence == "application/json" || essence.ends_with("+json")) {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("Content-Type `{essence}`: send application/json"),
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is over the limit")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as `T`, naming the field on a shape error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", "the body is empty; send a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                let reason = message.split(" at line ").next().unwrap_or(&message).to_owned();
                let field = if path == "." || path.is_empty() {
                    // `missing field `query``, `unknown field `foo`, expected ...`
                    reason.split('`').nth(1).map(str::to_owned).unwrap_or_else(|| "(body)".to_owned())
                } else {
                    path
                };
                ApiError::invalid_field(field_name(&field), without_value(&reason))
            }
            _ => {
                ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {inner}"))
            }
        }
    })?;
    // Trailing garbage after the value is malformed too.
    de.end().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    Ok(value)
}

/// A field name as the caller wrote it, if it looks like one: a key of the caller's JSON may itself
/// be a PII value, and an error must never repeat that.
pub(crate) fn field_name(field: &str) -> String {
    let plain = field.len() <= 64
        && field.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']'))
        && field.bytes().filter(u8::is_ascii_digit).count() < 6;
    if plain { field.to_owned() } else { "(a field whose name is not shown)".to_owned() }
}

/// serde's reason without the offending value: `invalid type: string "219-09-9999", expected
/// u32` → `invalid type: expected u32`; `unknown variant `x`, expected one of …` → `unknown value,
/// expected one of …`; `unknown field `x`, expected …` → `unknown field, expected …`.
fn without_value(reason: &str) -> String {
    for (prefix, plain) in [
        ("invalid type: ", "invalid type"),
        ("invalid value: ", "invalid value"),
        ("invalid length ", "invalid length"),
        ("unknown variant ", "unknown value"),
        ("unknown field ", "unknown field"),
    ] {
        if reason.starts_with(prefix) {
            return match reason.rfind(", expected") {
                Some(at) => format!("{plain}{}", &reason[at..]),
                None => plain.to_owned(),
            };
        }
    }
    reason.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        query: String,
        n: Option<u32>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Body>(br#"{"n": 1}"#).unwrap_err();
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("query")));
        assert!(e.message.contains("missing field"), "{}", e.message);
        let e = parse::<Body>(br#"{"query": 5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("query"));
        assert!(e.message.contains("expected a string"), "{}", e.message);
        let e = parse::<Body>(br#"{"query": "x", "bogus": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("bogus"));
        let e = parse::<Body>(br#"{"query": "#).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "malformed_json"));
        assert_eq!(parse::<Body>(b"  ").unwrap_err().status, StatusCode::BAD_REQUEST);
        assert!(parse::<Body>(br#"{"query": "x"} trailing"#).is_err());
    }

    #[test]
    fn errors_never_repeat_the_offending_value() {
        let e = parse::<Body>(br#"{"query": "x", "n": "219-09-9999"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("n"));
        assert!(!e.message.contains("219-09-9999") && e.message.contains("expected u32"), "{}", e.message);
        let e = parse::<Body>(br#"{"query": "x", "n": -4111111111111111}"#).unwrap_err();
        assert!(!e.message.contains("4111111111111111"), "{}", e.message);
        // A key that is a value: neither the field nor the message repeats it.
        let e = parse::<Body>(br#"{"query": "x", "4111111111111111": 1}"#).unwrap_err();
        assert!(!format!("{e:?}").contains("4111111111111111"), "{e:?}");
        let e = parse::<Body>(br#"{"query": "x", "jane.doe@example.com": 1}"#).unwrap_err();
        assert!(!format!("{e:?}").contains("jane.doe"), "{e:?}");
    }
}
