//! Column values from PostgreSQL's text format to JSON, chosen by type OID.
//!
//! Both the replication stream (pgoutput in text mode) and the initial snapshot read values in
//! text format from sessions with the same settings ([`SESSION_OPTIONS`]), so a row looks the
//! same whichever way it was captured.
//!
//! | type | JSON |
//! |---|---|
//! | `int2`, `int4`, `int8`, `oid` | number |
//! | `float4`, `float8` | number; `NaN` and `±Infinity` as the strings PostgreSQL prints |
//! | `numeric` | number when an `i64` or an `f64` reproduces the value exactly (the `f64`'s shortest decimal form is compared, digit for digit, with PostgreSQL's); otherwise the decimal text as a string, so no precision is ever lost (`NaN` too) |
//! | `bool` | `true` / `false` |
//! | `text`, `varchar`, `bpchar`, `name`, `char`, `uuid` and every type not listed | string, as PostgreSQL prints it |
//! | `timestamptz` | RFC 3339 in UTC with the stored precision, `2026-01-02T03:04:05.123456Z` |
//! | `timestamp` (no time zone) | read as UTC, same form (`infinity` / `-infinity` stay strings) |
//! | `date` | `YYYY-MM-DD` |
//! | `json`, `jsonb` | the JSON document itself, not a string |
//! | `bytea` | upper-case hexadecimal string without the `\x` prefix (what the SQLite capture's `hex()` gives) |
//! | arrays and other types | string, PostgreSQL's text form |

use serde_json::{Number, Value};

/// Session settings that fix the text form of values: ISO dates, UTC, round-trip floats, hex
/// bytea. Passed as the `options` startup parameter of both the replication session and the SQL
/// session the snapshot is read from.
pub const SESSION_OPTIONS: &str =
    "-c datestyle=ISO,YMD -c timezone=UTC -c extra_float_digits=3 -c bytea_output=hex -c intervalstyle=iso_8601";

pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const JSONB: u32 = 3802;
}

/// Converts one value in PostgreSQL text format to JSON.
pub fn text_to_json(type_oid: u32, text: &str) -> Value {
    let string = || Value::String(text.to_owned());
    match type_oid {
        oid::BOOL => Value::Bool(text == "t" || text == "true"),
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID => {
            text.parse::<i64>().map(Value::from).unwrap_or_else(|_| string())
        }
        oid::FLOAT4 | oid::FLOAT8 => {
            text.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or_else(string)
        }
        oid::NUMERIC => numeric(text).unwrap_or_else(string),
        oid::JSON | oid::JSONB => serde_json::from_str(text).unwrap_or_else(|_| string()),
        oid::TIMESTAMPTZ => timestamptz(text).map(Value::String).unwrap_or_else(string),
        oid::TIMESTAMP => timestamp(text).map(Value::String).unwrap_or_else(string),
        oid::BYTEA => Value::String(text.strip_prefix("\\x").unwrap_or(text).to_ascii_uppercase()),
        // date (ISO already), uuid, text types and everything else: PostgreSQL's own text.
        _ => string(),
    }
}

/// `numeric` as a JSON number only when nothing is lost.
fn numeric(text: &str) -> Option<Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    if normalize_decimal(&format!("{f}")) == normalize_decimal(text) {
        Number::from_f64(f).map(Value::Number)
    } else {
        None
    }
}

/// A decimal without sign noise, leading zeros or trailing fractional zeros: `-0012.50` → `-12.5`.
fn normalize_decimal(text: &str) -> String {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() { int.to_owned() } else { format!("{int}.{frac}") };
    if neg && body != "0" { format!("-{body}") } else { body }
}

/// `2026-01-02 03:04:05.123456+00` (timezone=UTC, DateStyle ISO) → `2026-01-02T03:04:05.123456Z`.
fn timestamptz(text: &str) -> Option<String> {
    let parsed = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z").ok()?;
    Some(parsed.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

fn timestamp(text: &str) -> Option<String> {
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(parsed.and_utc().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_keep_their_precision() {
        assert_eq!(text_to_json(oid::INT8, "9223372036854775807"), json!(9223372036854775807i64));
        assert_eq!(text_to_json(oid::NUMERIC, "12.50"), json!(12.5));
        assert_eq!(text_to_json(oid::NUMERIC, "-0.1"), json!(-0.1));
        assert_eq!(text_to_json(oid::NUMERIC, "100"), json!(100));
        // 20 significant digits do not fit an f64: kept as text
        assert_eq!(text_to_json(oid::NUMERIC, "12345678901234567890.5"), json!("12345678901234567890.5"));
        assert_eq!(text_to_json(oid::NUMERIC, "0.1000000000000000000001"), json!("0.1000000000000000000001"));
        assert_eq!(text_to_json(oid::NUMERIC, "NaN"), json!("NaN"));
        assert_eq!(text_to_json(oid::FLOAT8, "0.30000000000000004"), json!(0.30000000000000004));
        assert_eq!(text_to_json(oid::FLOAT8, "Infinity"), json!("Infinity"));
    }

    #[test]
    fn times_become_rfc3339_utc() {
        assert_eq!(
            text_to_json(oid::TIMESTAMPTZ, "2026-01-02 03:04:05.123456+00"),
            json!("2026-01-02T03:04:05.123456Z")
        );
        assert_eq!(text_to_json(oid::TIMESTAMPTZ, "2026-01-02 03:04:05+00"), json!("2026-01-02T03:04:05Z"));
        assert_eq!(text_to_json(oid::TIMESTAMPTZ, "2026-01-02 05:04:05.5+02"), json!("2026-01-02T03:04:05.500Z"));
        assert_eq!(text_to_json(oid::TIMESTAMP, "2026-01-02 03:04:05.1"), json!("2026-01-02T03:04:05.100Z"));
        assert_eq!(text_to_json(oid::TIMESTAMPTZ, "infinity"), json!("infinity"));
        assert_eq!(text_to_json(oid::DATE, "2026-01-02"), json!("2026-01-02"));
    }

    #[test]
    fn documents_bools_and_bytes() {
        assert_eq!(text_to_json(oid::JSONB, r#"{"turns": [1, "a"]}"#), json!({"turns": [1, "a"]}));
        assert_eq!(text_to_json(oid::BOOL, "t"), json!(true));
        assert_eq!(text_to_json(oid::BOOL, "f"), json!(false));
        assert_eq!(text_to_json(oid::BYTEA, "\\x0aff"), json!("0AFF"));
        assert_eq!(
            text_to_json(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        );
    }
}
