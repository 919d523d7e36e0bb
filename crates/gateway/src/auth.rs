//! API keys and roles. Keys are stored only as SHA-256 digests; the secret is shown once.

use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a key may do (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including key and topic administration.
    Admin,
    /// End-user queries, profiles and conversations.
    Agent,
    /// Inbound integration events (CRM, market data).
    Ingest,
    /// Analytics, audit, alerts and read access to the log.
    Read,
    /// One end user (a key bound to a `user_id`, or a signed user token): queries, the profile
    /// and the conversations of that user only.
    User,
}

/// An action behind an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    Query,
    ReadProfiles,
    WriteProfiles,
    /// Deleting a customer: admin only.
    DeleteProfiles,
    /// `POST /v1/users/{id}/tokens`: the bank's front end signs its users in.
    IssueUserTokens,
    ReadConversations,
    Ingest,
    ReadTopics,
    ReadAnalytics,
    ReadAudit,
    ReadAlerts,
    ReadMetrics,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Agent, Role::Ingest, Role::Read, Role::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::User => "user",
        }
    }

    /// The role named `name` (`admin`, `agent`, `ingest`, `read`, `user`).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Least privilege: each role gets only what its callers need.
    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Agent => matches!(p, Query | ReadProfiles | WriteProfiles | IssueUserTokens | ReadConversations),
            Role::Ingest => matches!(p, Ingest),
            Role::Read => matches!(p, ReadTopics | ReadAnalytics | ReadAudit | ReadAlerts | ReadMetrics),
            // Only for its own user: the handlers check which user an action is about.
            Role::User => matches!(p, Query | ReadProfiles | WriteProfiles | ReadConversations),
        }
    }
}

impl Permission {
    /// What the permission lets a caller do, for error messages.
    pub fn describe(self) -> &'static str {
        use Permission::*;
        match self {
            Query => "query the agents",
            ReadProfiles => "read user profiles",
            WriteProfiles => "create or change user profiles",
            DeleteProfiles => "delete customers",
            IssueUserTokens => "issue user tokens",
            ReadConversations => "read conversations",
            Ingest => "send integration events",
            ReadTopics => "read topics",
            ReadAnalytics => "read analytics",
            ReadAudit => "read the audit trail",
            ReadAlerts => "read compliance alerts",
            ReadMetrics => "read metrics",
            Admin => "administer keys and topics",
        }
    }

    /// The roles that hold this permission.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.allows(self)).collect()
    }
}

/// A stored key: its id (shown in logs instead of the secret), digest and role; a `user` key is
/// bound to one user; a key may expire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub sha256: String,
    pub role: Role,
    /// The one user this caller acts for (role `user`).
    #[serde(default)]
    pub user_id: Option<String>,
    /// When it stops working (ms since the epoch).
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

const PREFIX: &str = "elk_";

impl ApiKey {
    /// Whether its time is up.
    pub fn expired(&self) -> bool {
        self.expires_at_ms.is_some_and(|at| chrono::Utc::now().timestamp_millis() >= at)
    }

    /// May this caller act on `user_id`'s resources? Every caller but one bound to another user.
    pub fn may_act_for(&self, user_id: &str) -> bool {
        self.user_id.as_deref().is_none_or(|own| own == user_id)
    }

    /// A new random key (256 bits): returns the secret to hand out once, and what to store.
    pub fn generate(role: Role) -> (String, ApiKey) {
        let bytes: [u8; 32] = rand::rng().random();
        let secret = format!("{PREFIX}{}", eventline_platform::keyfile::hex(&bytes));
        let key = ApiKey {
            id: secret[..PREFIX.len() + 8].to_owned(),
            sha256: digest(&secret),
            role,
            user_id: None,
            expires_at_ms: None,
        };
        (secret, key)
    }
}

/// The keys the gateway accepts.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    keys: Vec<ApiKey>,
}

impl KeyStore {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        Self { keys }
    }

    /// The role of `secret`, if it is a known key. Compares digests in constant time.
    pub fn authenticate(&self, secret: &str) -> Option<Role> {
        self.authenticate_key(secret).map(|k| k.role)
    }

    /// The key `secret` is, if it is a known key that has not expired. Compares digests in
    /// constant time, against every stored key.
    pub fn authenticate_key(&self, secret: &str) -> Option<&ApiKey> {
        let d = digest(secret);
        let mut found = None;
        for k in &self.keys {
            if constant_time_eq(k.sha256.as_bytes(), d.as_bytes()) {
                found = Some(k);
            }
        }
        found.filter(|k| !k.expired())
    }

    /// Every key (for listing: ids, roles, users, expiry — never digests).
    pub fn all(&self) -> &[ApiKey] {
        &self.keys
    }

    /// The live key with id `id`.
    pub fn by_id(&self, id: &str) -> Option<&ApiKey> {
        self.keys.iter().find(|k| k.id == id).filter(|k| !k.expired())
    }

    /// Adds a key (or replaces the one with the same id).
    pub fn insert(&mut self, key: ApiKey) {
        self.keys.retain(|k| k.id != key.id);
        self.keys.push(key);
    }

    /// Forgets key `id` (revoked).
    pub fn remove(&mut self, id: &str) {
        self.keys.retain(|k| k.id != id);
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The secret of an `Authorization: Bearer <key>` header value, or why it is not one.
pub fn bearer(header: &str) -> Result<&str, &'static str> {
    let (scheme, rest) = header.trim().split_once(' ').ok_or("the Authorization header must be `Bearer <key>`")?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err("the Authorization header must use the Bearer scheme: `Bearer <key>`");
    }
    let secret = rest.trim();
    if secret.is_empty() {
        return Err("the Authorization header has no key after `Bearer`");
    }
    Ok(secret)
}

/// The SHA-256 digest (hex) under which a key's secret is stored.
pub fn digest(secret: &str) -> String {
    eventline_platform::keyfile::hex(&Sha256::digest(secret.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_to_their_role_and_only_them() {
        let (admin_secret, admin) = ApiKey::generate(Role::Admin);
        let (ingest_secret, ingest) = ApiKey::generate(Role::Ingest);
        let store = KeyStore::new(vec![admin.clone(), ingest]);
        assert_eq!(store.authenticate(&admin_secret), Some(Role::Admin));
        assert_eq!(store.authenticate(&ingest_secret), Some(Role::Ingest));
        assert_eq!(store.authenticate("elk_guess"), None);
        assert_eq!(store.authenticate(""), None);
        assert!(!admin.sha256.contains(&admin_secret[4..]), "the secret is not stored");
        assert!(admin_secret.starts_with(&admin.id));
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer elk_abc"), Ok("elk_abc"));
        assert_eq!(bearer("bearer   elk_abc "), Ok("elk_abc"));
        assert!(bearer("Basic dXNlcjpwdw==").is_err());
        assert!(bearer("Bearer ").is_err());
        assert!(bearer("elk_abc").is_err());
        assert_eq!(Permission::Query.roles(), vec![Role::Admin, Role::Agent, Role::User]);
        assert_eq!(Permission::DeleteProfiles.roles(), vec![Role::Admin]);
        assert_eq!(Role::parse("ingest"), Some(Role::Ingest));
    }

    #[test]
    fn roles_get_least_privilege() {
        use Permission::*;
        assert!(Role::Agent.allows(Query) && !Role::Agent.allows(Ingest) && !Role::Agent.allows(ReadAudit));
        assert!(Role::Ingest.allows(Ingest) && !Role::Ingest.allows(Query) && !Role::Ingest.allows(ReadTopics));
        assert!(Role::Read.allows(ReadAudit) && !Role::Read.allows(Query) && !Role::Read.allows(Admin));
        assert!([Query, Ingest, ReadAudit, Admin].iter().all(|p| Role::Admin.allows(*p)));
    }
}
