//! Signed user tokens for front ends: `POST /v1/users/{id}/tokens` (role `agent` or `admin`)
//! returns a short-lived JWT (HS256, `sub` = the user, `aud` = `eventline-api`, `iss` =
//! `eventline`, `iby` = the issuing key's id) that the front end hands to its signed-in customer's
//! session; sent as `Authorization: Bearer <token>` it acts as role `user` for that user only.
//! The signing key is 256 random bits in `<data-dir>/user-token.key` (0600), made at first start;
//! deleting it and restarting invalidates every token. A token also stops working when the key
//! that issued it is revoked.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::auth::{ApiKey, Role};
use crate::keys::KeyError;

const FILE: &str = "user-token.key";
const AUDIENCE: &str = "eventline-api";
const ISSUER: &str = "eventline";

/// The longest a token may live.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// When the request does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
    /// The key that issued it.
    iby: String,
    /// The user's `CreatedAt` when it was issued: a user deleted and made again is another user.
    #[serde(default)]
    uct: String,
}

/// Issues and checks user tokens.
#[derive(Clone)]
pub struct UserTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserTokens(<signing key>)")
    }
}

/// A token that checked out.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The caller as a key: id `utk_<8 hex of the token id>`, role `user`, bound to the user.
    pub key: ApiKey,
    /// The key that issued it (it must still exist).
    pub issued_by: String,
    /// The `CreatedAt` of the user it was issued for (a user deleted and made again is not it).
    pub user_created_at: String,
}

impl UserTokens {
    fn from_secret(secret: &[u8]) -> Self {
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret) }
    }

    /// A key that lives as long as the process (tests, a gateway without a data directory).
    pub fn ephemeral() -> Self {
        let secret: [u8; 32] = rand::rng().random();
        Self::from_secret(&secret)
    }

    /// The data directory's signing key, made (0600) if missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(FILE);
        let key = eventline_platform::keyfile::load_or_create_key(&path, "the user-token signing key")
            .map_err(|reason| KeyError::File { path: path.display().to_string(), reason })?;
        Ok(Self::from_secret(&key))
    }

    /// A token for `user_id` (whose profile was created at `user_created_at`), issued by `issuer`,
    /// valid for `ttl`; returns it and its expiry (s).
    pub fn issue(&self, user_id: &str, user_created_at: &str, issuer: &str, ttl: Duration) -> (String, i64) {
        let now = chrono::Utc::now().timestamp();
        let jti: [u8; 16] = rand::rng().random();
        let claims = Claims {
            sub: user_id.to_owned(),
            aud: AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            jti: eventline_platform::keyfile::hex(&jti),
            iby: issuer.to_owned(),
            uct: user_created_at.to_owned(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing does not fail");
        (token, claims.exp)
    }

    /// Checks signature, algorithm, audience, issuer and expiry (no leeway).
    pub fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        v.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the user token expired; get a new one",
            _ => "invalid user token",
        })?;
        let c = data.claims;
        Ok(Verified {
            key: ApiKey {
                id: format!("utk_{}", c.jti.get(..8).unwrap_or("")),
                sha256: String::new(),
                role: Role::User,
                user_id: Some(c.sub),
                expires_at_ms: Some(c.exp * 1000),
            },
            issued_by: c.iby,
            user_created_at: c.uct,
        })
    }
}

/// Whether a bearer credential is a JWT rather than an API key (`elk_…`).
pub fn is_token(bearer: &str) -> bool {
    bearer.starts_with("eyJ") && bearer.bytes().filter(|b| *b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user_and_fails_when_tampered_expired_or_foreign() {
        let t = UserTokens::ephemeral();
        let (token, _) = t.issue("u-1001", "2026-01-01T00:00:00.000Z", "elk_abcd1234", Duration::from_secs(60));
        assert!(is_token(&token));
        let v = t.verify(&token).unwrap();
        assert_eq!(
            (v.key.role, v.key.user_id.as_deref(), v.issued_by.as_str()),
            (Role::User, Some("u-1001"), "elk_abcd1234")
        );
        assert!(v.key.id.starts_with("utk_"));
        // Another signer's token, a changed payload, an expired one.
        let (other, _) = UserTokens::ephemeral().issue(
            "u-1001",
            "2026-01-01T00:00:00.000Z",
            "elk_abcd1234",
            Duration::from_secs(60),
        );
        assert!(t.verify(&other).is_err());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(t.verify(&parts.join(".")).is_err());
        let (old, _) = t.issue("u-1001", "2026-01-01T00:00:00.000Z", "elk_abcd1234", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(t.verify(&old).unwrap_err(), "the user token expired; get a new one");
    }

    #[test]
    fn the_signing_key_is_made_once_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = UserTokens::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (token, _) = a.issue("u-1", "2026-01-01T00:00:00.000Z", "elk_x", Duration::from_secs(60));
        let b = UserTokens::load_or_create(dir.path()).unwrap();
        assert!(b.verify(&token).is_ok(), "the same key after a restart");
    }
}
