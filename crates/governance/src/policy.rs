//! Field policies: what happens to PII in an event at produce time.
//!
//! A policy is TOML. Every section is optional; unknown keys are errors that name the key.
//!
//! ```toml
//! [hash]
//! key = "a long random secret"          # HMAC-SHA256 key for `hash`; or:
//! # key_env = "EVENTLINE_PII_HASH_KEY"  # read the key from this environment variable
//!
//! [free_text]
//! action = "mask"                       # PII found inside any other string field
//!
//! [tables.Users.columns]                # CDC events of table Users: /data/<col> and /before/<col>
//! SSN = "hash"
//! Email = "hash"
//!
//! [topics."agent.executions"]
//! free_text = "mask"                    # per-topic override of [free_text]
//! fields = { "/output/debug" = "drop", "input.query" = "mask" }
//!
//! [topics."*".fields]                   # every topic (a topic's own rules win)
//! "customer.tax_id" = "hash"
//! ```
//!
//! Actions: `allow` (left as is and not scanned), `mask` (alias `redact`: typed masks, a whole field
//! becomes its mask or `[REDACTED]`), `hash` (keyed HMAC-SHA256, `hmac-sha256:<hex>`), `drop` (the
//! field is removed; for free text, the string field holding PII is removed). Fields are named by
//! JSON pointer (`/data/SSN`) or by a dotted path (`data.SSN`; numeric segments index arrays).

use std::collections::BTreeMap;

use eventline_model::events::AlertAction;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use crate::redaction::{mask_value, redact, redact_with};
use crate::{Detector, Entity, PiiKind};

/// What to do with a field or with free-text PII.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    #[serde(alias = "redact")]
    Mask,
    Hash,
    Drop,
}

/// A policy that cannot be used; the message names the key and the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("policy: {key}: {reason}")]
pub struct PolicyError {
    pub key: String,
    pub reason: String,
}

impl PolicyError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    hash: Option<HashSection>,
    free_text: Option<FreeTextSection>,
    #[serde(default)]
    tables: BTreeMap<String, TableSection>,
    #[serde(default)]
    topics: BTreeMap<String, TopicSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashSection {
    key: Option<String>,
    key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FreeTextSection {
    action: Action,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableSection {
    #[serde(default)]
    columns: BTreeMap<String, Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicSection {
    free_text: Option<Action>,
    #[serde(default)]
    fields: BTreeMap<String, Action>,
}

#[derive(Clone, Debug)]
struct FieldRule {
    path: Vec<String>,
    action: Action,
}

#[derive(Clone, Debug, Default)]
struct TopicRules {
    free_text: Option<Action>,
    fields: Vec<FieldRule>,
}

/// One thing the policy did (or, for `allow`, saw) in one field. Never holds the value itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// JSON pointer of the field, e.g. `/data/SSN` or `/output/message`.
    pub field: String,
    /// The kind of PII, when it was recognised (a configured column may hold a value the detector
    /// cannot classify on its own).
    pub kind: Option<PiiKind>,
    pub action: AlertAction,
    /// How many entities of this kind the field held (1 for field rules).
    pub count: usize,
}

/// Per-topic and per-field PII handling. `Send + Sync`; apply it from many threads.
#[derive(Clone)]
pub struct Policy {
    hash_key: Vec<u8>,
    free_text: Action,
    tables: BTreeMap<String, Vec<(String, Action)>>,
    topics: BTreeMap<String, TopicRules>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("hash_key", &"<redacted>")
            .field("free_text", &self.free_text)
            .field("tables", &self.tables)
            .field("topics", &self.topics)
            .finish()
    }
}

/// Environment variable holding the hash key of the default policy.
pub const HASH_KEY_ENV: &str = "EVENTLINE_PII_HASH_KEY";

fn random_key() -> Vec<u8> {
    // Two UUID v7 carry 148 random bits; hashed, they make a per-process key.
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(uuid::Uuid::now_v7().as_bytes());
    h.update(uuid::Uuid::now_v7().as_bytes());
    h.update(format!("{:?}", std::time::SystemTime::now()).as_bytes());
    h.finalize().to_vec()
}

impl Default for Policy {
    /// Masks free-text PII in every string field of every topic and hashes the `SSN`, `Email` and
    /// `Phone` columns of `Users` CDC events. The hash key comes from `EVENTLINE_PII_HASH_KEY`; without
    /// it a random per-process key is used (hashes then only join within one process).
    fn default() -> Self {
        let hash_key = std::env::var(HASH_KEY_ENV).ok().filter(|k| !k.is_empty()).map(String::into_bytes);
        Self::default_with_key(hash_key.unwrap_or_else(random_key))
    }
}

impl Policy {
    /// The default rules (see [`Policy::default`]) with a given hash key, e.g. one kept in the data
    /// directory so hashes join across processes and restarts.
    pub fn default_with_key(hash_key: Vec<u8>) -> Self {
        let mut tables = BTreeMap::new();
        tables.insert(
            "users".to_owned(),
            vec![
                ("SSN".to_owned(), Action::Hash),
                ("Email".to_owned(), Action::Hash),
                ("Phone".to_owned(), Action::Hash),
            ],
        );
        Self { hash_key, free_text: Action::Mask, tables, topics: BTreeMap::new() }
    }
}

/// Parses a field selector: a JSON pointer (`/a/b`, with `~0`/`~1` escapes) or a dotted path (`a.b`).
pub fn parse_selector(selector: &str) -> Result<Vec<String>, String> {
    if selector.is_empty() {
        return Err("empty field selector".into());
    }
    if let Some(rest) = selector.strip_prefix('/') {
        return rest
            .split('/')
            .map(|seg| {
                let mut out = String::with_capacity(seg.len());
                let mut chars = seg.chars();
                while let Some(c) = chars.next() {
                    match (c, c == '~') {
                        (_, true) => match chars.next() {
                            Some('0') => out.push('~'),
                            Some('1') => out.push('/'),
                            _ => return Err(format!("bad escape in JSON pointer segment `{seg}` (use ~0 or ~1)")),
                        },
                        (c, false) => out.push(c),
                    }
                }
                Ok(out)
            })
            .collect();
    }
    let segs: Vec<String> = selector.split('.').map(str::to_owned).collect();
    if segs.iter().any(String::is_empty) {
        return Err(format!("empty segment in path `{selector}`"));
    }
    Ok(segs)
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1"))).collect()
}

impl Policy {
    /// Parses and checks a TOML policy.
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        let de = toml::Deserializer::parse(text).map_err(|e| PolicyError::new("(document)", e.message()))?;
        let file: PolicyFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." || path.is_empty() { "(document)".to_owned() } else { path };
            PolicyError::new(key, e.into_inner().message())
        })?;
        let mut uses_hash = file.free_text.as_ref().is_some_and(|f| f.action == Action::Hash);
        let mut tables = BTreeMap::new();
        for (table, section) in file.tables {
            if table.is_empty() {
                return Err(PolicyError::new("tables", "empty table name"));
            }
            let cols: Vec<(String, Action)> = section.columns.into_iter().collect();
            uses_hash |= cols.iter().any(|(_, a)| *a == Action::Hash);
            tables.insert(table.to_lowercase(), cols);
        }
        let mut topics = BTreeMap::new();
        for (topic, section) in file.topics {
            if topic.is_empty() {
                return Err(PolicyError::new("topics", "empty topic name"));
            }
            let mut fields = Vec::new();
            for (selector, action) in section.fields {
                let path = parse_selector(&selector)
                    .map_err(|reason| PolicyError::new(format!("topics.{topic}.fields.{selector}"), reason))?;
                uses_hash |= action == Action::Hash;
                fields.push(FieldRule { path, action });
            }
            uses_hash |= section.free_text == Some(Action::Hash);
            topics.insert(topic, TopicRules { free_text: section.free_text, fields });
        }
        let hash_key = match file.hash {
            Some(HashSection { key: Some(_), key_env: Some(_) }) => {
                return Err(PolicyError::new("hash", "set either key or key_env, not both"));
            }
            Some(HashSection { key: Some(k), .. }) if k.len() < 16 => {
                return Err(PolicyError::new("hash.key", "must be at least 16 bytes"));
            }
            Some(HashSection { key: Some(k), .. }) => Some(k.into_bytes()),
            Some(HashSection { key_env: Some(var), .. }) => match std::env::var(&var) {
                Ok(k) if k.len() >= 16 => Some(k.into_bytes()),
                Ok(_) => return Err(PolicyError::new("hash.key_env", format!("${var} must hold at least 16 bytes"))),
                Err(_) => return Err(PolicyError::new("hash.key_env", format!("${var} is not set"))),
            },
            Some(HashSection { key: None, key_env: None }) => {
                return Err(PolicyError::new("hash", "needs key or key_env"));
            }
            None => None,
        };
        let hash_key = match hash_key {
            Some(k) => k,
            None if uses_hash => {
                return Err(PolicyError::new("hash", "a rule uses `hash` but no [hash] key or key_env is configured"));
            }
            None => random_key(),
        };
        let free_text = file.free_text.map_or(Action::Mask, |f| f.action);
        Ok(Self { hash_key, free_text, tables, topics })
    }

    /// The keyed hash written for `value` by the `hash` action: `hmac-sha256:<64 hex digits>`.
    pub fn hash_value(&self, value: &Value) -> String {
        let bytes = match value {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.hash_key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(&bytes);
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The field rules for `topic` and, for CDC events, for the event's `table`.
    fn rules_for(&self, topic: &str, event: &Value) -> (Vec<FieldRule>, Action) {
        let mut rules: Vec<FieldRule> = Vec::new();
        let mut add = |rule: FieldRule| {
            rules.retain(|r| r.path != rule.path);
            rules.push(rule);
        };
        if let Some(table) = event.get("table").and_then(Value::as_str)
            && let Some(cols) = self.tables.get(&table.to_lowercase())
        {
            for (col, action) in cols {
                for top in ["data", "before"] {
                    let actual = event
                        .get(top)
                        .and_then(Value::as_object)
                        .and_then(|o| o.keys().find(|k| k.eq_ignore_ascii_case(col)).cloned())
                        .unwrap_or_else(|| col.clone());
                    add(FieldRule { path: vec![top.to_owned(), actual], action: *action });
                }
            }
        }
        let mut free_text = self.free_text;
        for name in ["*", topic] {
            if let Some(t) = self.topics.get(name) {
                for r in &t.fields {
                    add(r.clone());
                }
                if let Some(a) = t.free_text {
                    free_text = a;
                }
            }
        }
        (rules, free_text)
    }

    /// Applies the policy to `event` (a JSON event about to be appended to `topic`) in place and
    /// returns what it found and did. Field rules run first; then every other string field is scanned
    /// for free-text PII.
    pub fn apply(&self, topic: &str, event: &mut Value, detector: &Detector) -> Vec<Finding> {
        let (rules, free_text) = self.rules_for(topic, event);
        let mut findings = Vec::new();
        let mut skip: Vec<Vec<String>> = Vec::new();
        for rule in &rules {
            skip.push(rule.path.clone());
            if rule.action == Action::Allow {
                continue;
            }
            let Some(slot) = lookup_mut(event, &rule.path) else { continue };
            if slot.is_null() {
                continue;
            }
            let name = rule.path.last().map_or("", String::as_str);
            let kind = match slot {
                Value::String(s) => whole_kind(detector, name, s),
                Value::Number(n) => whole_kind(detector, name, &n.to_string()),
                _ => None,
            };
            let action = match rule.action {
                Action::Mask => {
                    *slot = Value::String(match (&*slot, kind) {
                        (Value::String(s), Some(k)) => mask_value(k, s),
                        _ => "[REDACTED]".to_owned(),
                    });
                    AlertAction::Masked
                }
                Action::Hash => {
                    *slot = Value::String(self.hash_value(slot));
                    AlertAction::Hashed
                }
                Action::Drop => {
                    remove(event, &rule.path);
                    AlertAction::Dropped
                }
                Action::Allow => continue,
            };
            findings.push(Finding { field: pointer(&rule.path), kind, action, count: 1 });
        }
        let mut path = Vec::new();
        let mut drops = Vec::new();
        self.scan_strings(event, &mut path, &skip, free_text, detector, &mut findings, &mut drops);
        for p in drops.iter().rev() {
            remove(event, p);
        }
        findings
    }

    #[allow(clippy::too_many_arguments)]
    fn scan_strings(
        &self,
        value: &mut Value,
        path: &mut Vec<String>,
        skip: &[Vec<String>],
        action: Action,
        detector: &Detector,
        findings: &mut Vec<Finding>,
        drops: &mut Vec<Vec<String>>,
    ) {
        if skip.iter().any(|s| s == path) {
            return;
        }
        match value {
            Value::Object(map) => {
                // A key can be a value too (`{"219-09-9999": …}`): it is renamed (masked or
                // hashed) or its entry dropped, like a string.
                let suspicious: Vec<(String, Vec<Entity>)> = map
                    .keys()
                    .filter_map(|k| Some(detector.detect(k)).filter(|e| !e.is_empty()).map(|e| (k.clone(), e)))
                    .collect();
                for (k, entities) in suspicious {
                    let (acted, alert_action) = self.act(action, &k, &entities);
                    let mut field_path = path.clone();
                    match acted {
                        Acted::Remove => {
                            map.remove(&k);
                            field_path.push("(key)".to_owned());
                        }
                        Acted::Replace(mut new) => {
                            let v = map.remove(&k).unwrap_or(Value::Null);
                            let base = new.clone();
                            let mut n = 2;
                            while map.contains_key(&new) {
                                new = format!("{base}#{n}");
                                n += 1;
                            }
                            field_path.push(new.clone());
                            map.insert(new, v);
                        }
                        Acted::Keep => field_path.push("(key)".to_owned()),
                    }
                    push_findings(findings, pointer(&field_path), &entities, alert_action);
                }
                for (k, v) in map.iter_mut() {
                    path.push(k.clone());
                    self.scan_strings(v, path, skip, action, detector, findings, drops);
                    path.pop();
                }
            }
            // A number is scanned as its digits (a card number sent as a JSON number); a string as
            // it is. A masked or hashed number becomes a string.
            Value::Number(_) | Value::String(_) => {
                let text = match &*value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let name = path.last().map_or("", String::as_str);
                let entities = detect_field(detector, name, &text);
                if entities.is_empty() {
                    return;
                }
                let (acted, alert_action) = self.act(action, &text, &entities);
                match acted {
                    Acted::Keep => {}
                    Acted::Replace(t) => *value = Value::String(t),
                    Acted::Remove => drops.push(path.clone()),
                }
                push_findings(findings, pointer(path), &entities, alert_action);
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    path.push(i.to_string());
                    self.scan_strings(v, path, skip, action, detector, findings, drops);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// What the free-text `action` makes of `text`, whose PII is `entities`, and how its alert
    /// names that.
    fn act(&self, action: Action, text: &str, entities: &[Entity]) -> (Acted, AlertAction) {
        match action {
            Action::Allow => (Acted::Keep, AlertAction::Allowed),
            Action::Mask => (Acted::Replace(redact(text, entities)), AlertAction::Redacted),
            Action::Hash => (Acted::Replace(self.hash_text(text, entities)), AlertAction::Hashed),
            Action::Drop => (Acted::Remove, AlertAction::Dropped),
        }
    }

    /// `text` with each entity replaced by its kind and a keyed hash (`[SSN:0123456789abcdef]`):
    /// the same value always gives the same text, without revealing it.
    fn hash_text(&self, text: &str, entities: &[Entity]) -> String {
        redact_with(text, entities, |k, v| {
            let h = self.hash_value(&Value::String(v.to_owned()));
            format!("[{}:{}]", k.as_str(), &h["hmac-sha256:".len()..][..16])
        })
    }

    /// Scans a part of a record outside the event — its key, a header value — named `field` (e.g.
    /// `(record key)`), and applies `topic`'s free-text action to it in place. A record key is
    /// always hashed rather than masked (`hash_always`), so records of one entity still share a
    /// partition. Returns what it found; `None` in `value` means drop the part.
    pub fn apply_side(
        &self,
        topic: &str,
        field: &str,
        value: &mut Option<String>,
        hash_always: bool,
        detector: &Detector,
    ) -> Vec<Finding> {
        let Some(text) = value.as_deref() else { return Vec::new() };
        let entities = detector.detect(text);
        if entities.is_empty() {
            return Vec::new();
        }
        let (_, free_text) = self.rules_for(topic, &Value::Null);
        let action = if hash_always && free_text != Action::Allow { Action::Hash } else { free_text };
        let (acted, alert_action) = self.act(action, text, &entities);
        match acted {
            Acted::Keep => {}
            Acted::Replace(t) => *value = Some(t),
            Acted::Remove => *value = None,
        }
        let mut findings = Vec::new();
        push_findings(&mut findings, field.to_owned(), &entities, alert_action);
        findings
    }
}

/// What becomes of a text that holds PII: kept, replaced (masked or hashed), or removed.
enum Acted {
    Keep,
    Replace(String),
    Remove,
}

/// One finding per PII kind among `entities` of `field`.
fn push_findings(findings: &mut Vec<Finding>, field: String, entities: &[Entity], action: AlertAction) {
    let mut per_kind: BTreeMap<PiiKind, usize> = BTreeMap::new();
    for e in entities {
        *per_kind.entry(e.kind).or_default() += 1;
    }
    for (kind, count) in per_kind {
        findings.push(Finding { field: field.clone(), kind: Some(kind), action, count });
    }
}

/// Detects PII in a field value, using the field's name as context (`ssn: 078051120`).
pub fn detect_field(detector: &Detector, name: &str, value: &str) -> Vec<Entity> {
    if name.is_empty() || name.parse::<usize>().is_ok() {
        return detector.detect(value);
    }
    let prefix = format!("{name}: ");
    let shift = prefix.chars().count();
    let mut text = prefix;
    text.push_str(value);
    detector
        .detect(&text)
        .into_iter()
        .filter(|e| e.start >= shift)
        .map(|e| Entity { start: e.start - shift, end: e.end - shift, ..e })
        .collect()
}

/// The kind of a value that is one entity from end to end (surrounding spaces aside).
fn whole_kind(detector: &Detector, name: &str, value: &str) -> Option<PiiKind> {
    let trimmed = value.trim();
    match detect_field(detector, name, trimmed).as_slice() {
        [e] if e.start == 0 && e.end == trimmed.chars().count() => Some(e.kind),
        _ => None,
    }
}

fn lookup_mut<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, seg| match v {
        Value::Object(m) => m.get_mut(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
        _ => None,
    })
}

/// Removes the field at `path` (array elements become `null` so later indexes keep their meaning).
fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else { return };
    match lookup_mut(value, parent) {
        Some(Value::Object(m)) => {
            m.remove(last);
        }
        Some(Value::Array(a)) => {
            if let Some(slot) = last.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                *slot = Value::Null;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &str = "0123456789abcdef-test-key";

    fn policy(extra: &str) -> Policy {
        Policy::from_toml_str(&format!("[hash]\nkey = \"{KEY}\"\n{extra}")).unwrap()
    }

    #[test]
    fn cdc_users_ssn_is_hashed_in_data_and_before() {
        let p = policy("[tables.Users.columns]\nSSN = \"hash\"\n");
        let mut ev = json!({"event_type": "UPDATE", "table": "Users",
            "data": {"UserId": "u1", "SSN": "123-45-6789"}, "before": {"SSN": "219-09-9999"}});
        let findings = p.apply("db.changes.users", &mut ev, &Detector::new());
        let h = ev["data"]["SSN"].as_str().unwrap();
        assert!(h.starts_with("hmac-sha256:") && h.len() == 12 + 64, "{h}");
        assert_eq!(h, p.hash_value(&json!("123-45-6789")), "keyed hash is deterministic");
        assert_ne!(ev["before"]["SSN"], ev["data"]["SSN"]);
        assert!(!ev.to_string().contains("123-45-6789") && !ev.to_string().contains("219-09-9999"));
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.action == AlertAction::Hashed && f.kind == Some(PiiKind::Ssn)));
        assert_eq!(findings[0].field, "/data/SSN");
        // a different key gives a different hash
        let other = Policy::from_toml_str("[hash]\nkey = \"another-key-of-16-bytes\"").unwrap();
        assert_ne!(other.hash_value(&json!("123-45-6789")), h);
    }

    #[test]
    fn field_rules_by_pointer_and_path_and_free_text_default() {
        let p = policy(
            "[topics.\"agent.executions\"]\nfields = { \"/output/debug\" = \"drop\", \"input.query\" = \"mask\", \"output.card\" = \"mask\" }\n",
        );
        let mut ev = json!({"input": {"query": "my ssn is 123-45-6789"},
            "output": {"debug": "x", "card": "4111 1111 1111 1111", "message": "Reach me at jane@example.com"}});
        let f = p.apply("agent.executions", &mut ev, &Detector::new());
        assert_eq!(ev["input"]["query"], "[REDACTED]");
        assert!(ev["output"].get("debug").is_none());
        assert_eq!(ev["output"]["card"], "411111******1111");
        assert_eq!(ev["output"]["message"], "Reach me at [EMAIL]");
        let free = f.iter().find(|f| f.field == "/output/message").unwrap();
        assert_eq!((free.kind, free.action), (Some(PiiKind::Email), AlertAction::Redacted));
        // rules of another topic do not apply
        let mut ev2 = json!({"output": {"debug": "x"}});
        assert!(p.apply("other.topic", &mut ev2, &Detector::new()).is_empty());
        assert_eq!(ev2["output"]["debug"], "x");
    }

    #[test]
    fn allow_skips_and_drop_free_text_removes() {
        let p = policy("[free_text]\naction = \"drop\"\n[topics.\"*\".fields]\n\"notes\" = \"allow\"\n");
        let mut ev = json!({"notes": "ssn 123-45-6789", "comment": "card 4111111111111111", "ok": "hello"});
        let f = p.apply("t", &mut ev, &Detector::new());
        assert_eq!(ev, json!({"notes": "ssn 123-45-6789", "ok": "hello"}));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].action, AlertAction::Dropped);
    }

    #[test]
    fn field_name_gives_context() {
        let p = policy("");
        let mut ev = json!({"customer": {"ssn": "078051120", "order": "078051120"}});
        p.apply("t", &mut ev, &Detector::new());
        assert_eq!(ev["customer"]["ssn"], "[SSN]");
        assert_eq!(ev["customer"]["order"], "078051120");
    }

    #[test]
    fn errors_name_the_key_and_reason() {
        let err = Policy::from_toml_str("[tables.Users.columns]\nSSN = \"hsh\"\n").unwrap_err();
        assert_eq!(err.key, "tables.Users.columns.SSN", "{err}");
        assert!(err.reason.contains("unknown variant"), "{err}");
        let err = Policy::from_toml_str("[free_text]\naction = \"mask\"\nfoo = 1\n").unwrap_err();
        assert!(err.to_string().contains("foo"), "{err}");
        let err = Policy::from_toml_str("[tables.Users.columns]\nSSN = \"hash\"\n").unwrap_err();
        assert_eq!(err.key, "hash");
        let err = Policy::from_toml_str("[hash]\nkey = \"short\"\n").unwrap_err();
        assert_eq!(err.key, "hash.key");
        let err = Policy::from_toml_str("[topics.t.fields]\n\"a..b\" = \"mask\"\n").unwrap_err();
        assert_eq!(err.key, "topics.t.fields.a..b");
        let err = Policy::from_toml_str("[topics.t.fields]\n\"/a/~2\" = \"mask\"\n").unwrap_err();
        assert!(err.reason.contains("escape"), "{err}");
    }

    #[test]
    fn default_policy_masks_free_text_and_hashes_users_columns() {
        let p = Policy::default();
        let mut ev = json!({"table": "Users", "data": {"UserId": "u1", "Email": "a@example.com", "Bio": "call +1 212 555 0147"}});
        p.apply("db.changes.users", &mut ev, &Detector::new());
        assert!(ev["data"]["Email"].as_str().unwrap().starts_with("hmac-sha256:"));
        assert_eq!(ev["data"]["Bio"], "call [PHONE]");
        assert_eq!(ev["data"]["UserId"], "u1");
    }

    #[test]
    fn selectors() {
        assert_eq!(parse_selector("/data/SSN").unwrap(), ["data", "SSN"]);
        assert_eq!(parse_selector("/a~1b/c~0d").unwrap(), ["a/b", "c~d"]);
        assert_eq!(parse_selector("data.SSN").unwrap(), ["data", "SSN"]);
        assert!(parse_selector("").is_err());
        assert_eq!(pointer(&["a/b".into(), "c~d".into()]), "/a~1b/c~0d");
    }
}
