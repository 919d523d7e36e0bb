//! Money in integer cents, shown the way a bank shows it.

/// `123456` → `"1,234.56"`; negative amounts get a leading `-`.
pub fn format_money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

/// Cents as a JSON number of the currency unit with two decimals (`123456` → `1234.56`).
pub fn cents_to_amount(cents: i64) -> serde_json::Value {
    serde_json::Number::from_f64(cents as f64 / 100.0).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(format_money(0), "0.00");
        assert_eq!(format_money(5), "0.05");
        assert_eq!(format_money(123_456), "1,234.56");
        assert_eq!(format_money(-100_000_000), "-1,000,000.00");
        assert_eq!(cents_to_amount(543_210), serde_json::json!(5432.1));
    }
}
