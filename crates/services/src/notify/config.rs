//! `[[notifications.channels]]` and `[[notifications.routes]]`: the operator's contract.
//!
//! ```toml
//! [[notifications.channels]]
//! name = "secops"                 # unique
//! type = "webhook"                # webhook | email | syslog | log
//! url = "https://hooks.bank.example/alerts"   # webhook: http(s)://…; syslog: udp:// or tcp://host:port; email: smtp://host:port
//! secret = "…"                    # webhook only: HMAC-SHA256 key (or secret_env = "VAR")
//! # email only: from = "eventline@bank.example", to = ["secops@bank.example"]
//!
//! [[notifications.routes]]
//! alert_types = ["PII_EXPOSURE"]  # or ["*"]
//! min_severity = "MEDIUM"         # LOW | MEDIUM | HIGH | CRITICAL
//! channels = ["secops"]
//! coalesce = "5m"                 # optional: identical alerts (type, component, field) within 5 min go out once
//! ```
//!
//! [`NotificationsConfig::resolve`] checks it all and names the key and the reason of the first
//! problem; secrets never appear in errors or in `Debug` output.

use std::collections::BTreeSet;
use std::time::Duration;

use eventline_model::events::Severity;
use serde::{Deserialize, Serialize};

/// A secret that `Debug` does not print.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelType {
    Webhook,
    Email,
    Syslog,
    Log,
}

/// One `[[notifications.channels]]` entry as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ChannelType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// One `[[notifications.routes]]` entry as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub alert_types: Vec<String>,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coalesce: Option<String>,
}

fn lowest() -> Severity {
    Severity::Low
}

/// The `[notifications]` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    pub channels: Vec<ChannelConfig>,
    pub routes: Vec<RouteConfig>,
    /// Attempts per alert and channel before it goes to `compliance.alerts.dlq`.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (with jitter) up to `backoff_max`.
    pub backoff_min: String,
    pub backoff_max: String,
    /// Per delivery attempt.
    pub timeout: String,
    /// Deliveries in flight per channel.
    pub concurrency: usize,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            routes: Vec::new(),
            max_attempts: 8,
            // 2 s doubling: the 8th attempt comes 127–254 s after the first (jitter 0.5–1), so a
            // receiver down for two minutes still gets every alert with the defaults.
            backoff_min: "2s".into(),
            backoff_max: "5m".into(),
            timeout: "10s".into(),
            concurrency: 64,
        }
    }
}

/// Where a channel delivers, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Webhook { url: String, secret: Option<Secret> },
    Email { host: String, port: u16, from: String, to: Vec<String> },
    Syslog { tcp: bool, addr: String },
    Log,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Empty means every type (`["*"]`).
    pub alert_types: BTreeSet<String>,
    pub min_severity: Severity,
    pub channels: Vec<String>,
    pub coalesce: Option<Duration>,
}

/// The checked configuration the service runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    pub channels: Vec<Channel>,
    pub routes: Vec<Route>,
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub timeout: Duration,
    pub concurrency: usize,
}

/// How one alert goes to one channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// Index into [`Routing::channels`].
    pub channel: usize,
    /// Coalesce with identical alerts within this window (every matching route asked for it).
    pub coalesce: Option<Duration>,
}

impl Routing {
    /// The channels `alert_type`/`severity` goes to, each once.
    pub fn select(&self, alert_type: &str, severity: Severity) -> Vec<Selected> {
        let mut out: Vec<Selected> = Vec::new();
        for route in &self.routes {
            if severity < route.min_severity
                || !(route.alert_types.is_empty() || route.alert_types.contains(alert_type))
            {
                continue;
            }
            for name in &route.channels {
                let Some(channel) = self.channels.iter().position(|c| &c.name == name) else { continue };
                match out.iter_mut().find(|s| s.channel == channel) {
                    // A route without coalescing wins: that route wants every alert.
                    Some(s) => {
                        s.coalesce = match (s.coalesce, route.coalesce) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            _ => None,
                        }
                    }
                    None => out.push(Selected { channel, coalesce: route.coalesce }),
                }
            }
        }
        out
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("invalid configuration `{key}` = \"{text}\": {e}; write e.g. 30s, 5m, 1h"))
}

fn host_port(key: &str, url: &str, scheme: &str) -> Result<(String, u16), String> {
    let rest =
        url.strip_prefix(scheme).ok_or_else(|| format!("invalid configuration `{key}`: must start with {scheme}"))?;
    let rest = rest.trim_end_matches('/');
    let (host, port) =
        rest.rsplit_once(':').ok_or_else(|| format!("invalid configuration `{key}`: must be {scheme}host:port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid configuration `{key}`: the port must be a number from 1 to 65535"))?;
    if host.is_empty() || host.contains(['/', '@', '?', '#']) {
        return Err(format!("invalid configuration `{key}`: must be {scheme}host:port"));
    }
    Ok((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
}

impl NotificationsConfig {
    /// Checks every channel and route; `env` looks up `secret_env` variables.
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Routing, String> {
        let mut names = BTreeSet::new();
        let mut channels = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            let key = |field: &str| format!("notifications.channels[{i}].{field}");
            if c.name.trim().is_empty() {
                return Err(format!("invalid configuration `{}`: must not be empty", key("name")));
            }
            if !names.insert(c.name.clone()) {
                return Err(format!(
                    "invalid configuration `{}` = \"{}\": another channel has this name; names are unique",
                    key("name"),
                    c.name
                ));
            }
            let not_for = |field: &str, set: bool| {
                if set {
                    Err(format!(
                        "invalid configuration `{}`: only {} channels take `{field}`",
                        key(field),
                        if field == "secret" || field == "secret_env" { "webhook" } else { "email" }
                    ))
                } else {
                    Ok(())
                }
            };
            if c.kind != ChannelType::Webhook {
                not_for("secret", c.secret.is_some())?;
                not_for("secret_env", c.secret_env.is_some())?;
            }
            if c.kind != ChannelType::Email {
                not_for("from", c.from.is_some())?;
                not_for("to", !c.to.is_empty())?;
            }
            let url = || {
                c.url.clone().ok_or_else(|| {
                    format!("invalid configuration `{}`: a {:?} channel needs a url", key("url"), c.kind).to_lowercase()
                })
            };
            let target = match c.kind {
                ChannelType::Webhook => {
                    let url = url()?;
                    let parsed = reqwest::Url::parse(&url)
                        .map_err(|e| format!("invalid configuration `{}`: not a URL ({e})", key("url")))?;
                    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                        return Err(format!(
                            "invalid configuration `{}`: a webhook url is http(s)://host/…",
                            key("url")
                        ));
                    }
                    let secret = match (&c.secret, &c.secret_env) {
                        (Some(_), Some(_)) => {
                            return Err(format!(
                                "invalid configuration `{}`: set `secret` or `secret_env`, not both",
                                key("secret")
                            ));
                        }
                        (Some(s), None) if s.0.is_empty() => {
                            return Err(format!("invalid configuration `{}`: must not be empty", key("secret")));
                        }
                        (Some(s), None) => Some(s.clone()),
                        (None, Some(var)) => Some(Secret(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                            format!(
                                "invalid configuration `{}` = \"{var}\": the environment variable {var} is not set",
                                key("secret_env")
                            )
                        })?)),
                        (None, None) => None,
                    };
                    Target::Webhook { url, secret }
                }
                ChannelType::Email => {
                    let (host, port) = host_port(&key("url"), &url()?, "smtp://")?;
                    let from = c.from.clone().filter(|f| f.contains('@')).ok_or_else(|| {
                        format!("invalid configuration `{}`: an email channel needs a sender address", key("from"))
                    })?;
                    if c.to.is_empty() || c.to.iter().any(|t| !t.contains('@')) {
                        return Err(format!(
                            "invalid configuration `{}`: an email channel needs one or more recipient addresses",
                            key("to")
                        ));
                    }
                    Target::Email { host, port, from, to: c.to.clone() }
                }
                ChannelType::Syslog => {
                    let url = url()?;
                    let tcp = url.starts_with("tcp://");
                    let (host, port) =
                        host_port(&key("url"), &url, if tcp { "tcp://" } else { "udp://" }).map_err(|_| {
                            format!(
                                "invalid configuration `{}`: a syslog url is udp://host:port or tcp://host:port",
                                key("url")
                            )
                        })?;
                    Target::Syslog { tcp, addr: format!("{host}:{port}") }
                }
                ChannelType::Log => {
                    if c.url.is_some() {
                        return Err(format!("invalid configuration `{}`: a log channel takes no url", key("url")));
                    }
                    Target::Log
                }
            };
            channels.push(Channel { name: c.name.clone(), target });
        }
        let mut routes = Vec::new();
        for (i, r) in self.routes.iter().enumerate() {
            let key = |field: &str| format!("notifications.routes[{i}].{field}");
            if r.alert_types.is_empty() {
                return Err(format!(
                    "invalid configuration `{}`: list alert types, or [\"*\"] for all",
                    key("alert_types")
                ));
            }
            let all = r.alert_types.iter().any(|t| t == "*");
            if let Some(bad) = r.alert_types.iter().find(|t| {
                *t != "*"
                    && !(t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                        && t.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            }) {
                return Err(format!(
                    "invalid configuration `{}`: `{bad}` is not an alert type (UPPER_SNAKE_CASE such as PII_EXPOSURE, or \"*\")",
                    key("alert_types")
                ));
            }
            if r.channels.is_empty() {
                return Err(format!("invalid configuration `{}`: name one or more channels", key("channels")));
            }
            if let Some(unknown) = r.channels.iter().find(|n| !names.contains(*n)) {
                return Err(format!(
                    "invalid configuration `{}`: no channel is named `{unknown}` (channels: {})",
                    key("channels"),
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let coalesce = match &r.coalesce {
                Some(t) => Some(duration(&key("coalesce"), t)?).filter(|d| !d.is_zero()),
                None => None,
            };
            routes.push(Route {
                alert_types: if all { BTreeSet::new() } else { r.alert_types.iter().cloned().collect() },
                min_severity: r.min_severity,
                channels: r.channels.clone(),
                coalesce,
            });
        }
        if self.max_attempts == 0 {
            return Err("invalid configuration `notifications.max_attempts` = 0: must be at least 1".into());
        }
        if self.concurrency == 0 {
            return Err("invalid configuration `notifications.concurrency` = 0: must be at least 1".into());
        }
        let backoff_min = duration("notifications.backoff_min", &self.backoff_min)?;
        let backoff_max = duration("notifications.backoff_max", &self.backoff_max)?;
        if backoff_max < backoff_min {
            return Err(
                "invalid configuration `notifications.backoff_max`: must not be shorter than backoff_min".into()
            );
        }
        let timeout = duration("notifications.timeout", &self.timeout)?;
        if timeout.is_zero() {
            return Err("invalid configuration `notifications.timeout`: must be longer than 0".into());
        }
        Ok(Routing {
            channels,
            routes,
            max_attempts: self.max_attempts,
            backoff_min,
            backoff_max,
            timeout,
            concurrency: self.concurrency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Routing, String> {
        #[derive(Deserialize)]
        struct File {
            notifications: NotificationsConfig,
        }
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        f.notifications.resolve(|v| (v == "HOOK_SECRET").then(|| "s3cr3t".to_owned()))
    }

    #[test]
    fn the_contract_shape_resolves_and_routes_by_type_and_severity() {
        let r = parse(
            r#"
            [[notifications.channels]]
            name = "secops"
            type = "webhook"
            url = "https://hooks.bank.example/alerts"
            secret_env = "HOOK_SECRET"
            [[notifications.channels]]
            name = "siem"
            type = "syslog"
            url = "tcp://127.0.0.1:6514"
            [[notifications.channels]]
            name = "mail"
            type = "email"
            url = "smtp://127.0.0.1:2525"
            from = "eventline@bank.example"
            to = ["secops@bank.example"]
            [[notifications.routes]]
            alert_types = ["PII_EXPOSURE"]
            min_severity = "MEDIUM"
            channels = ["secops", "mail"]
            coalesce = "5m"
            [[notifications.routes]]
            alert_types = ["*"]
            channels = ["siem"]
            "#,
        )
        .unwrap();
        assert_eq!(
            r.channels[0].target,
            Target::Webhook { url: "https://hooks.bank.example/alerts".into(), secret: Some(Secret("s3cr3t".into())) }
        );
        assert_eq!(r.channels[1].target, Target::Syslog { tcp: true, addr: "127.0.0.1:6514".into() });
        let names = |s: Vec<Selected>| s.iter().map(|s| r.channels[s.channel].name.clone()).collect::<Vec<_>>();
        assert_eq!(names(r.select("PII_EXPOSURE", Severity::High)), ["secops", "mail", "siem"]);
        assert_eq!(names(r.select("PII_EXPOSURE", Severity::Low)), ["siem"]);
        assert_eq!(names(r.select("OTHER", Severity::Critical)), ["siem"]);
        assert_eq!(r.select("PII_EXPOSURE", Severity::High)[0].coalesce, Some(Duration::from_secs(300)));
        assert!(!format!("{r:?}").contains("s3cr3t"), "Debug hides secrets");
    }

    #[test]
    fn mistakes_name_the_key_and_never_the_secret() {
        let bad = |t: &str, want: &str| {
            let e = parse(t).unwrap_err();
            assert!(e.contains(want), "{e}");
            assert!(!e.contains("topsecret"), "{e}");
        };
        bad(
            "[[notifications.channels]]\nname='a'\ntype='webhook'\nurl='ftp://x/'\nsecret='topsecret'",
            "notifications.channels[0].url",
        );
        bad("[[notifications.channels]]\nname='a'\ntype='syslog'\nurl='udp://x'", "notifications.channels[0].url");
        bad(
            "[[notifications.channels]]\nname='a'\ntype='log'\n[[notifications.channels]]\nname='a'\ntype='log'",
            "notifications.channels[1].name",
        );
        bad(
            "[[notifications.channels]]\nname='a'\ntype='webhook'\nurl='http://x/'\nsecret_env='NOPE'",
            "NOPE is not set",
        );
        bad(
            "[[notifications.channels]]\nname='a'\ntype='email'\nurl='smtp://x:25'\nfrom='e@x'",
            "notifications.channels[0].to",
        );
        bad("[[notifications.routes]]\nalert_types=['*']\nchannels=['ghost']", "no channel is named `ghost`");
        bad(
            "[[notifications.channels]]\nname='a'\ntype='log'\n[[notifications.routes]]\nalert_types=['*']\nchannels=['a']\ncoalesce='soon'",
            "notifications.routes[0].coalesce",
        );
        bad(
            "[[notifications.channels]]\nname='a'\ntype='log'\nsecret='topsecret'",
            "only webhook channels take `secret`",
        );
        let e = parse("[[notifications.channels]]\nname='a'\ntype='pager'").unwrap_err();
        assert!(e.contains("pager"), "{e}");
    }
}
