//! Delivering one alert on one channel. Every delivery carries the alert id as its idempotency
//! key (webhook `Idempotency-Key`, e-mail `Message-ID`, syslog `alertId`), so a receiver can drop
//! the copy a retry after a crash may send. Errors never hold the channel's secret or URL query.

use std::sync::Arc;
use std::time::Duration;

use eventline_model::events::ComplianceAlert;
use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::config::{Channel, Target};
use super::siem;

/// The header carrying the body's HMAC.
pub const SIGNATURE_HEADER: &str = "X-Eventline-Signature";

/// `sha256=<hex HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", crate::audit::chain::hex(&mac.finalize().into_bytes()))
}

/// A channel ready to send.
pub struct Sender {
    pub name: String,
    kind: Kind,
}

enum Kind {
    Webhook {
        client: reqwest::Client,
        url: String,
        secret: Option<Vec<u8>>,
    },
    Email {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        from: String,
        to: Vec<String>,
    },
    Syslog {
        tcp: bool,
        addr: String,
        hostname: String,
        conn: Arc<Mutex<Option<tokio::net::TcpStream>>>,
        timeout: Duration,
    },
    Log,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("name", &self.name).finish_non_exhaustive()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "-".into())
}

impl Sender {
    pub fn new(channel: &Channel, timeout: Duration) -> Result<Self, String> {
        let kind = match &channel.target {
            Target::Webhook { url, secret } => Kind::Webhook {
                client: reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_max_idle_per_host(256)
                    .build()
                    .map_err(|e| format!("channel `{}`: {e}", channel.name))?,
                url: url.clone(),
                secret: secret.as_ref().map(|s| s.0.clone().into_bytes()),
            },
            Target::Email { host, port, from, to } => Kind::Email {
                mailer: AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .timeout(Some(timeout))
                    .build(),
                from: from.clone(),
                to: to.clone(),
            },
            Target::Syslog { tcp, addr } => Kind::Syslog {
                tcp: *tcp,
                addr: addr.clone(),
                hostname: hostname(),
                conn: Arc::new(Mutex::new(None)),
                timeout,
            },
            Target::Log => Kind::Log,
        };
        Ok(Self { name: channel.name.clone(), kind })
    }

    /// Sends `alert`, whose stored JSON is `body`. `Err` is the reason, for the delivery state.
    pub async fn send(&self, alert: &ComplianceAlert, body: &str) -> Result<(), String> {
        match &self.kind {
            Kind::Webhook { client, url, secret } => {
                let mut req = client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("Idempotency-Key", &alert.alert_id)
                    .body(body.to_owned());
                if let Some(secret) = secret {
                    req = req.header(SIGNATURE_HEADER, signature(secret, body.as_bytes()));
                }
                let resp = req.send().await.map_err(|e| describe_http_error(&e))?;
                let status = resp.status();
                if status.is_success() { Ok(()) } else { Err(format!("HTTP {status}")) }
            }
            Kind::Email { mailer, from, to } => {
                let message = email(alert, body, from, to)?;
                mailer.send(message).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
            }
            Kind::Syslog { tcp, addr, hostname, conn, timeout } => {
                let msg = siem::syslog_message(alert, hostname);
                if *tcp {
                    let mut guard = conn.lock().await;
                    // A connection the collector closed (it restarted) is replaced before writing.
                    if let Some(stream) = guard.as_ref() {
                        let mut probe = [0u8; 1];
                        match stream.try_read(&mut probe) {
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            _ => *guard = None,
                        }
                    }
                    if guard.is_none() {
                        let connect = tokio::time::timeout(*timeout, tokio::net::TcpStream::connect(addr))
                            .await
                            .map_err(|_| "syslog tcp: connect timed out".to_owned())?;
                        *guard = Some(connect.map_err(|e| format!("syslog tcp: {e}"))?);
                    }
                    let stream = guard.as_mut().expect("connected above");
                    match tokio::time::timeout(*timeout, stream.write_all(&siem::octet_counted(&msg))).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => {
                            *guard = None;
                            Err(format!("syslog tcp: {e}"))
                        }
                        Err(_) => {
                            *guard = None;
                            Err("syslog tcp: write timed out".into())
                        }
                    }
                } else {
                    let socket =
                        tokio::net::UdpSocket::bind(if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
                            .await
                            .map_err(|e| format!("syslog udp: {e}"))?;
                    socket.send_to(msg.as_bytes(), addr).await.map(|_| ()).map_err(|e| format!("syslog udp: {e}"))
                }
            }
            Kind::Log => {
                tracing::warn!(
                    target: "eventline::alerts",
                    alert_id = %alert.alert_id,
                    alert_type = %alert.alert_type,
                    severity = ?alert.severity,
                    component = %alert.details.component,
                    field = %alert.details.field,
                    action = ?alert.details.action,
                    "compliance alert"
                );
                Ok(())
            }
        }
    }
}

/// A reqwest error without its URL (which may carry a token).
fn describe_http_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() { kind.to_owned() } else { format!("{kind}: {detail}") }
}

fn email(alert: &ComplianceAlert, body: &str, from: &str, to: &[String]) -> Result<Message, String> {
    let d = &alert.details;
    let severity =
        serde_json::to_value(alert.severity).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let action = serde_json::to_value(d.action).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned());
    let text = format!(
        "eventline compliance alert\n\n\
         Alert:     {}\nType:      {}\nSeverity:  {severity}\nComponent: {}\nField:     {}\nAction:    {action}\nTime:      {}\n\n\
         The alert as JSON:\n\n{pretty}\n",
        alert.alert_id,
        alert.alert_type,
        d.component,
        d.field,
        alert.timestamp.as_str(),
    );
    let mut builder = Message::builder()
        .from(from.parse().map_err(|e| format!("email from: {e}"))?)
        .subject(format!("[eventline] {} {severity}: {} in {}", alert.alert_type, d.field, d.component))
        .message_id(Some(format!("<{}@eventline>", alert.alert_id)))
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        builder = builder.to(t.parse().map_err(|e| format!("email to: {e}"))?);
    }
    builder.body(text).map_err(|e| format!("email: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
