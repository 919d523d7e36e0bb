//! API keys at rest: digests in the `api_keys` table of the platform database, and the admin key
//! that `eventline up` creates at first start in `<data-dir>/admin.key` (mode 0600). The secret
//! is written only to that file and returned once by `POST /v1/keys`; logs show key ids.

use std::path::{Path, PathBuf};

use eventline_platform::keyfile;
use rusqlite::{Connection, params};

use crate::auth::{ApiKey, KeyStore, Role, digest};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("api_keys: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The admin key of the data directory.
#[derive(Clone, Debug)]
pub struct AdminKey {
    pub path: PathBuf,
    pub key_id: String,
    /// Made now (first start, or the file was deleted to rotate it).
    pub created: bool,
}

const FILE: &str = "admin.key";

/// Makes sure `<data_dir>/admin.key` holds an admin key the gateway accepts: reads it if it is
/// there, else creates it (0600). A key from an earlier admin.key that is gone is revoked, so
/// deleting the file and restarting rotates the admin key.
pub fn bootstrap_admin(conn: &mut Connection, data_dir: &Path) -> Result<AdminKey, KeyError> {
    let path = data_dir.join(FILE);
    let file_err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
    let (secret, created) = match std::fs::read_to_string(&path) {
        Ok(text) => (text.trim().to_owned(), false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (secret, _) = ApiKey::generate(Role::Admin);
            keyfile::write_new(&path, &secret).map_err(|e| file_err(e.to_string()))?;
            (secret, true)
        }
        Err(e) => return Err(file_err(format!("cannot read: {e}"))),
    };
    if !secret.starts_with("elk_") || secret.len() < 40 {
        return Err(file_err("is not an eventline key (elk_…); delete it and restart to make a new one".into()));
    }
    check_mode(&path)?;
    let key = ApiKey {
        id: secret[..12].to_owned(),
        sha256: digest(&secret),
        role: Role::Admin,
        user_id: None,
        expires_at_ms: None,
    };
    let tx = eventline_platform::store::sqlite::write_transaction(conn)?;
    tx.execute("DELETE FROM api_keys WHERE bootstrap = 1 AND sha256 <> ?1", [&key.sha256])?;
    tx.execute(
        "INSERT INTO api_keys (key_id, sha256, role, bootstrap) VALUES (?1, ?2, 'admin', 1)
         ON CONFLICT (sha256) DO NOTHING",
        params![key.id, key.sha256],
    )?;
    tx.commit()?;
    Ok(AdminKey { path, key_id: key.id, created })
}

/// Refuses a key file other users may read or that another user owns: whoever can read it is
/// admin. The message says how to fix it.
fn check_mode(path: &Path) -> Result<(), KeyError> {
    keyfile::check_private(path, "the admin key")
        .map_err(|reason| KeyError::File { path: path.display().to_string(), reason })
}

/// Every key the gateway accepts (expired ones too: they are refused when used, and listed).
pub fn load(conn: &Connection) -> Result<KeyStore, KeyError> {
    let keys = conn
        .prepare("SELECT key_id, sha256, role, user_id, expires_at FROM api_keys ORDER BY created_at")?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|(id, sha256, role, user_id, expires_at)| {
            let expires_at_ms =
                expires_at.and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.timestamp_millis());
            Role::parse(&role).map(|role| ApiKey { id, sha256, role, user_id, expires_at_ms })
        })
        .collect();
    Ok(KeyStore::new(keys))
}

/// One key as `GET /v1/keys` and `eventline keys list` show it (never the digest).
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    pub key_id: String,
    pub role: Role,
    pub user_id: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub expired: bool,
    /// The data directory's `admin.key` (rotated by deleting the file, not revoked).
    pub bootstrap: bool,
}

/// Every stored key, oldest first.
pub fn list(conn: &Connection) -> Result<Vec<KeyInfo>, KeyError> {
    let now = chrono::Utc::now();
    let rows = conn
        .prepare(
            "SELECT key_id, role, user_id, created_at, expires_at, bootstrap FROM api_keys ORDER BY created_at, key_id",
        )?
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .filter_map(|(key_id, role, user_id, created_at, expires_at, bootstrap)| {
            let expired = expires_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .is_some_and(|t| t <= now);
            Role::parse(&role).map(|role| KeyInfo { key_id, role, user_id, created_at, expires_at, expired, bootstrap })
        })
        .collect())
}

/// Makes and stores a new key with `role` (bound to `user_id` for role `user`), expiring at
/// `expires_at_ms` if given; returns the secret (shown once) and the stored key.
pub fn create(
    conn: &Connection,
    role: Role,
    user_id: Option<&str>,
    expires_at_ms: Option<i64>,
) -> Result<(String, ApiKey), KeyError> {
    let (secret, mut key) = ApiKey::generate(role);
    key.user_id = user_id.map(str::to_owned);
    key.expires_at_ms = expires_at_ms;
    let expires_at = expires_at_ms
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    conn.execute(
        "INSERT INTO api_keys (key_id, sha256, role, user_id, bootstrap, expires_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)",
        params![key.id, key.sha256, role.as_str(), key.user_id, expires_at],
    )?;
    Ok((secret, key))
}

/// Deletes every key bound to `user_id` (the customer is deleted); returns their ids.
pub fn revoke_user(conn: &Connection, user_id: &str) -> Result<Vec<String>, KeyError> {
    let ids: Vec<String> = conn
        .prepare("SELECT key_id FROM api_keys WHERE user_id = ?1")?
        .query_map([user_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    conn.execute("DELETE FROM api_keys WHERE user_id = ?1", [user_id])?;
    Ok(ids)
}

/// What revoking a key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    NotFound,
    /// The key of `admin.key`: it would come back at the next start; rotate it instead.
    Bootstrap,
}

/// Deletes key `key_id`, unless it is the data directory's bootstrap admin key.
pub fn revoke(conn: &Connection, key_id: &str) -> Result<Revoked, KeyError> {
    let bootstrap: Option<bool> = conn
        .query_row("SELECT bootstrap FROM api_keys WHERE key_id = ?1", [key_id], |r| r.get(0))
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
    Ok(match bootstrap {
        None => Revoked::NotFound,
        Some(true) => Revoked::Bootstrap,
        Some(false) => {
            conn.execute("DELETE FROM api_keys WHERE key_id = ?1", [key_id])?;
            Revoked::Revoked
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> Connection {
        let mut conn = eventline_platform::store::sqlite::open(&dir.join("eventline.db")).unwrap();
        eventline_platform::store::sqlite::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn admin_key_is_made_once_0600_and_rotates_when_deleted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = db(dir.path());
        let first = bootstrap_admin(&mut conn, dir.path()).unwrap();
        assert!(first.created);
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let secret = std::fs::read_to_string(&first.path).unwrap().trim().to_owned();
        assert_eq!(load(&conn).unwrap().authenticate(&secret), Some(Role::Admin));
        let again = bootstrap_admin(&mut conn, dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(load(&conn).unwrap().len(), 1);
        let (read_secret, _) = create(&conn, Role::Read, None, None).unwrap();
        std::fs::remove_file(&first.path).unwrap();
        let rotated = bootstrap_admin(&mut conn, dir.path()).unwrap();
        assert!(rotated.created);
        let store = load(&conn).unwrap();
        assert_eq!(store.authenticate(&secret), None, "the old admin key is revoked");
        assert_eq!(store.authenticate(&read_secret), Some(Role::Read), "other keys stay");
    }
}
