//! The SIEM's format: one RFC 5424 syslog message per alert whose MSG is ArcSight CEF.
//!
//! ```text
//! <106>1 2026-11-30T17:00:00.123Z bank-host eventline 4242 PII_EXPOSURE [eventline@32473 alertId="…"] CEF:0|eventline|eventline|0.1.0|PII_EXPOSURE|PII exposure: SSN redacted in card_agent|8|externalId=… rt=… …
//! ```
//!
//! Facility 13 (log audit); the syslog severity follows the alert's (CRITICAL → 2 crit, HIGH → 3
//! err, MEDIUM → 4 warning, LOW → 5 notice); CEF severity LOW 3, MEDIUM 5, HIGH 8, CRITICAL 10.
//! Over TCP each message is octet-counted (RFC 6587: `LEN SP MSG`); over UDP one per datagram.
//! 32473 is the private enterprise number RFC 5612 reserves for documentation.

use eventline_model::events::{ComplianceAlert, Severity};

const FACILITY_LOG_AUDIT: u8 = 13;

fn syslog_severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// CEF's 0–10 severity of an alert.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// A CEF header field: `\` and `|` escaped, no line breaks.
fn header(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// A CEF extension value: `\` and `=` escaped, line breaks as `\n`/`\r`.
fn ext(text: &str) -> String {
    text.replace('\\', "\\\\").replace('=', "\\=").replace('\n', "\\n").replace('\r', "\\r")
}

/// RFC 5424 PRINTUSASCII without spaces, at most `max` characters (`-` when empty).
fn token(text: &str, max: usize) -> String {
    let t: String = text.chars().filter(|c| c.is_ascii_graphic()).take(max).collect();
    if t.is_empty() { "-".into() } else { t }
}

/// An SD-PARAM value: `"`, `\` and `]` escaped.
fn sd_value(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]")
}

/// The CEF line of `alert`.
pub fn cef(alert: &ComplianceAlert) -> String {
    let d = &alert.details;
    let action = serde_json::to_value(d.action).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let name = format!(
        "{}: {} {} in {}",
        alert.alert_type.replace('_', " ").to_lowercase(),
        d.field,
        action.to_lowercase(),
        d.component
    );
    let mut extension = vec![
        format!("externalId={}", ext(&alert.alert_id)),
        format!("rt={}", alert.timestamp.unix_millis()),
        format!("act={}", ext(&action)),
        format!("cs1Label=component cs1={}", ext(&d.component)),
        format!("cs2Label=field cs2={}", ext(&d.field)),
    ];
    if let Some(topic) = d.extra.get("topic").and_then(|v| v.as_str()) {
        extension.push(format!("cs3Label=topic cs3={}", ext(topic)));
    }
    if let Some(pii) = d.extra.get("pii_type").and_then(|v| v.as_str()) {
        extension.push(format!("cs4Label=piiType cs4={}", ext(pii)));
    }
    format!(
        "CEF:0|eventline|eventline|{}|{}|{}|{}|{}",
        header(env!("CARGO_PKG_VERSION")),
        header(&alert.alert_type),
        header(&name),
        cef_severity(alert.severity),
        extension.join(" ")
    )
}

/// The RFC 5424 message carrying `alert` as CEF.
pub fn syslog_message(alert: &ComplianceAlert, hostname: &str) -> String {
    let pri = FACILITY_LOG_AUDIT * 8 + syslog_severity(alert.severity);
    let ts = alert.timestamp.instant().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(
        "<{pri}>1 {ts} {} eventline {} {} [eventline@32473 alertId=\"{}\"] {}",
        token(hostname, 255),
        std::process::id(),
        token(&alert.alert_type, 32),
        sd_value(&alert.alert_id),
        cef(alert)
    )
}

/// `msg` framed for TCP (RFC 6587 octet counting).
pub fn octet_counted(msg: &str) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> ComplianceAlert {
        serde_json::from_value(serde_json::json!({
            "alert_id": "a-1", "alert_type": "PII_EXPOSURE", "severity": "HIGH",
            "details": {"component": "card|agent", "field": "output=message", "action": "REDACTED", "pii_type": "SSN"},
            "timestamp": "2026-11-30T17:00:00.123Z",
            "_metadata": {"timestamp": "2026-11-30T17:00:00.123Z", "message_id": "m", "producer": "eventline"}
        }))
        .unwrap()
    }

    #[test]
    fn a_message_is_rfc_5424_with_cef_inside_escaped() {
        let m = syslog_message(&alert(), "host one");
        assert!(m.starts_with("<107>1 2026-11-30T17:00:00.123Z hostone eventline "), "{m}");
        assert!(m.contains(" PII_EXPOSURE [eventline@32473 alertId=\"a-1\"] CEF:0|eventline|eventline|"), "{m}");
        let cef = &m[m.find("CEF:").unwrap()..];
        assert!(cef.contains("|PII_EXPOSURE|pii exposure: output=message redacted in card\\|agent|8|"), "{cef}");
        assert!(cef.contains("externalId=a-1 rt=1796058000123 act=REDACTED"), "{cef}");
        assert!(
            cef.contains("cs1=card|agent") && cef.contains("cs2=output\\=message") && cef.contains("cs4=SSN"),
            "{cef}"
        );
        assert_eq!(octet_counted("abc"), b"3 abc");
    }
}
