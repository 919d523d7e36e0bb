//! Card numbers at rest (PCI DSS 3.5). A card's full number (PAN) is stored only encrypted with
//! AES-256-GCM (`cards.pan_enc`: a random 12-byte nonce, then ciphertext and tag; the card id is
//! the associated data, so a sealed number cannot be moved to another card). What the agents
//! need — the first six digits (`bin`), the last four (`last4`) and a token (`ctok_…`, kept in
//! the `pan` column) — is stored beside it. The key is 256 random bits: `EVENTLINE_CARD_DATA_KEY`
//! (64 hex digits) or `<data-dir>/card-data.key` (0600, made at first start).
//!
//! [`CardVault::protect`] seals every card still held in clear (a database from before, a card
//! written by another client) with SQLite's `secure_delete` on, so the clear bytes are
//! overwritten, and checkpoints the WAL.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::Rng;
use rusqlite::{Connection, params};

const FILE: &str = "card-data.key";
/// The environment variable that may hold the key instead of the file.
pub const KEY_ENV: &str = "EVENTLINE_CARD_DATA_KEY";

/// What could not be done with the key.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{0}")]
    Key(String),
    #[error("a sealed card number does not open with this key (wrong key, or the data was altered)")]
    Open,
    #[error("cards: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// Seals and opens card numbers.
#[derive(Clone)]
pub struct CardVault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for CardVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CardVault(<key>)")
    }
}

impl CardVault {
    pub fn from_key(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// The key from `EVENTLINE_CARD_DATA_KEY` (`env`), else `<data_dir>/card-data.key`, made if
    /// missing (0600, fsynced).
    pub fn load_or_create(data_dir: &Path, env: Option<String>) -> Result<Self, VaultError> {
        if let Some(text) = env {
            let key = crate::keyfile::parse_key(&text)
                .ok_or_else(|| VaultError::Key(format!("{KEY_ENV} must be 64 hex digits (256 bits)")))?;
            return Ok(Self::from_key(&key));
        }
        let path = data_dir.join(FILE);
        let key = crate::keyfile::load_or_create_key(&path, "the card data key")
            .map_err(|reason| VaultError::Key(format!("{} {reason}", path.display())))?;
        Ok(Self::from_key(&key))
    }

    /// `pan` sealed for card `card_id`.
    pub fn seal(&self, card_id: &str, pan: &str) -> Vec<u8> {
        let nonce: [u8; 12] = rand::rng().random();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: pan.as_bytes(), aad: card_id.as_bytes() })
            .expect("AES-GCM encryption does not fail for short inputs");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    /// The number sealed in `blob` for card `card_id`.
    pub fn open(&self, card_id: &str, blob: &[u8]) -> Result<String, VaultError> {
        if blob.len() < 12 + 16 {
            return Err(VaultError::Open);
        }
        let (nonce, sealed) = blob.split_at(12);
        let clear = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: card_id.as_bytes() })
            .map_err(|_| VaultError::Open)?;
        String::from_utf8(clear).map_err(|_| VaultError::Open)
    }

    /// Seals every card whose number is still in clear; returns how many. One transaction.
    pub fn protect(&self, conn: &mut Connection) -> Result<usize, VaultError> {
        conn.pragma_update(None, "secure_delete", true)?;
        let tx = crate::store::sqlite::write_transaction(conn)?;
        let clear: Vec<(String, String)> = tx
            .prepare("SELECT card_id, pan FROM cards WHERE pan_enc IS NULL")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (card_id, pan) in &clear {
            let digits: String = pan.chars().filter(char::is_ascii_digit).collect();
            let bin = digits.get(..6).unwrap_or(&digits).to_owned();
            let last4 = digits.get(digits.len().saturating_sub(4)..).unwrap_or("").to_owned();
            let token_bytes: [u8; 12] = rand::rng().random();
            let token = format!("ctok_{}", crate::keyfile::hex(&token_bytes));
            tx.execute(
                "UPDATE cards SET pan = ?2, pan_enc = ?3, bin = ?4, last4 = ?5 WHERE card_id = ?1",
                params![card_id, token, self.seal(card_id, pan), bin, last4],
            )?;
        }
        tx.commit()?;
        if !clear.is_empty() {
            // The pages that held the numbers: overwritten (secure_delete), and out of the WAL.
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy != 0 {
                tracing::warn!("a reader held the WAL: the cleared card numbers leave it at the next checkpoint");
            }
        }
        Ok(clear.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_sealed_in_place_and_open_only_with_the_key_for_their_card() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eventline.db");
        let mut conn = crate::store::sqlite::open(&path).unwrap();
        crate::store::sqlite::migrate(&mut conn).unwrap();
        crate::seed::seed_demo_bank(&mut conn, chrono::Utc::now()).unwrap();
        let clear: Vec<String> = conn
            .prepare("SELECT pan FROM cards")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let vault = CardVault::load_or_create(dir.path(), None).unwrap();
        assert_eq!(vault.protect(&mut conn).unwrap(), clear.len());
        assert_eq!(vault.protect(&mut conn).unwrap(), 0, "idempotent");
        let (card_id, token, blob, bin, last4): (String, String, Vec<u8>, String, String) = conn
            .query_row("SELECT card_id, pan, pan_enc, bin, last4 FROM cards ORDER BY card_id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert!(token.starts_with("ctok_"));
        let pan = vault.open(&card_id, &blob).unwrap();
        assert!(clear.contains(&pan));
        assert_eq!((bin.as_str(), last4.as_str()), (&pan[..6], &pan[pan.len() - 4..]));
        assert!(vault.open("another-card", &blob).is_err(), "bound to its card");
        assert!(CardVault::from_key(&[7; 32]).open(&card_id, &blob).is_err(), "another key");
        drop(conn);
        // No clear number anywhere in the database files.
        for f in ["eventline.db", "eventline.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
                for pan in &clear {
                    assert!(!bytes.windows(pan.len()).any(|w| w == pan.as_bytes()), "{pan} in clear in {f}");
                }
            }
        }
        // The same key after a restart; a bad environment key is refused.
        let again = CardVault::load_or_create(dir.path(), None).unwrap();
        assert_eq!(again.open(&card_id, &blob).unwrap(), pan);
        assert!(CardVault::load_or_create(dir.path(), Some("abc".into())).is_err());
        let env_key = "11".repeat(32);
        assert!(CardVault::load_or_create(dir.path(), Some(env_key)).is_ok());
    }
}
