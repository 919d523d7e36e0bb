//! `eventline pii scan`: one JSON line in, one JSON line out (SPEC §3).
//!
//! Input: `{"text": "..."}` (other fields are ignored). Output:
//! `{"entities": [{"type", "start", "end", "score"}, ...]}` and, when `redact` is set, also
//! `"redacted": "<text with typed masks>"`. Without `redact` the `redacted` key is omitted, so the
//! output never repeats the raw text.

use serde_json::{Value, json};

use crate::{Detector, redact};

/// Why an input line was refused. The message names the field and the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScanError {
    #[error("line: not valid JSON: {0}")]
    Json(String),
    #[error("(root): must be a JSON object with a \"text\" field")]
    NotAnObject,
    #[error("text: missing")]
    MissingText,
    #[error("text: must be a string, got {0}")]
    TextNotString(&'static str),
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Scans one input line as `eventline pii scan [--redact]` does.
pub fn scan_line(detector: &Detector, json_line: &str, redact_text: bool) -> Result<Value, ScanError> {
    let input: Value = serde_json::from_str(json_line).map_err(|e| ScanError::Json(e.to_string()))?;
    let Value::Object(map) = input else { return Err(ScanError::NotAnObject) };
    let text = match map.get("text") {
        None => return Err(ScanError::MissingText),
        Some(Value::String(s)) => s,
        Some(other) => return Err(ScanError::TextNotString(type_name(other))),
    };
    let entities = detector.detect(text);
    let mut out = json!({ "entities": entities });
    if redact_text {
        out["redacted"] = Value::String(redact(text, &entities));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_matches_the_spec_shape() {
        let d = Detector::new();
        let out = scan_line(&d, r#"{"text": "Mon SSN: 123-45-6789 ✅"}"#, true).unwrap();
        assert_eq!(out["entities"][0]["type"], "SSN");
        assert_eq!(out["entities"][0]["start"], 9);
        assert_eq!(out["entities"][0]["end"], 20);
        assert!(out["entities"][0]["score"].as_f64().unwrap() > 0.5);
        assert_eq!(out["redacted"], "Mon SSN: [SSN] ✅");
        let plain = scan_line(&d, r#"{"text": "Mon SSN: 123-45-6789"}"#, false).unwrap();
        assert!(plain.get("redacted").is_none());
        assert_eq!(scan_line(&d, r#"{"text": "hello"}"#, false).unwrap(), json!({"entities": []}));
    }

    #[test]
    fn bad_input_names_field_and_reason() {
        let d = Detector::new();
        assert_eq!(scan_line(&d, r#"{"txt": "x"}"#, false).unwrap_err().to_string(), "text: missing");
        assert_eq!(
            scan_line(&d, r#"{"text": 5}"#, false).unwrap_err().to_string(),
            "text: must be a string, got a number"
        );
        assert_eq!(scan_line(&d, "[1]", false).unwrap_err(), ScanError::NotAnObject);
        assert!(scan_line(&d, "{", false).unwrap_err().to_string().starts_with("line: not valid JSON"));
    }
}
