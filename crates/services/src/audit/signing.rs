//! The trail's signing key and its checkpoints: an Ed25519 signature over the head (sequence
//! number and hash) of the trail, so that a trail cut short, or rewritten from some record on by
//! someone who recomputed every hash after it, no longer matches what was signed.
//!
//! The key is `<data-dir>/audit-signing.key` (32 random bytes as hex, mode 0600), made on first
//! use. `audit verify` trusts the public key derived from that file (or one given with
//! `--public-key`), never the one stored next to a checkpoint.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::chain::{decode_hash, hex};

/// The key file's name in the data directory.
pub const KEY_FILE: &str = "audit-signing.key";
/// The last checkpoint, also kept outside the database (`<data-dir>/audit-head.json`): a trail
/// cut short together with its checkpoints table is still found.
pub const HEAD_FILE: &str = "audit-head.json";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// The signing key of a data directory.
#[derive(Clone)]
pub struct AuditSigner {
    key: SigningKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSigner").field("public_key", &self.public_key_hex()).finish()
    }
}

impl AuditSigner {
    /// Reads `<data_dir>/audit-signing.key`, creating it (0600) if it is not there.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let path = data_dir.join(KEY_FILE);
        if let Some(key) = read_key(&path)? {
            return Ok(Self { key });
        }
        let seed: [u8; 32] = rand::random();
        let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
        // Written whole to a temporary file, fsynced, then linked into place (which fails if
        // another process made the key first) and the directory fsynced: the key file is never
        // seen empty, and a key that signed a checkpoint survives a power loss.
        let tmp = data_dir.join(format!(".{KEY_FILE}.{}.{}.tmp", std::process::id(), hex(&rand::random::<[u8; 4]>())));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(|e| err(format!("cannot create: {e}")))?;
            f.write_all(hex(&seed).as_bytes()).and_then(|()| f.sync_all()).map_err(|e| err(e.to_string()))?;
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                std::fs::File::open(data_dir).and_then(|d| d.sync_all()).map_err(|e| err(e.to_string()))?;
                Ok(Self { key: SigningKey::from_bytes(&seed) })
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(Self { key: read_key(&path)?.ok_or_else(|| err("vanished while being read".into()))? })
            }
            Err(e) => Err(err(format!("cannot create: {e}"))),
        }
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    pub fn public_key_hex(&self) -> String {
        hex(self.public_key().as_bytes())
    }

    /// Signs the head `seq`/`hash` of kind `kind` (`head` or `pruned`) at `signed_at`.
    pub fn sign(&self, kind: &str, seq: u64, hash: &[u8; 32], signed_at: &str) -> Checkpoint {
        let signature = self.key.sign(&message(kind, seq, hash, signed_at));
        Checkpoint {
            kind: kind.to_owned(),
            seq,
            hash: hex(hash),
            signed_at: signed_at.to_owned(),
            public_key: self.public_key_hex(),
            signature: hex(&signature.to_bytes()),
        }
    }
}

/// The public key of the data directory's signing key, if the key file is there.
pub fn public_key_of(data_dir: &Path) -> Result<Option<VerifyingKey>, KeyError> {
    Ok(read_key(&data_dir.join(KEY_FILE))?.map(|k| k.verifying_key()))
}

/// A public key given as 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes = decode_hash(text.trim()).ok_or("a public key is 64 hex digits")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an Ed25519 public key: {e}"))
}

fn read_key(path: &PathBuf) -> Result<Option<SigningKey>, KeyError> {
    let err = |reason: String| KeyError::File { path: path.display().to_string(), reason };
    match std::fs::read_to_string(path) {
        Ok(text) => decode_hash(text.trim())
            .map(|seed| Some(SigningKey::from_bytes(&seed)))
            .ok_or_else(|| err("is not an audit signing key (64 hex digits); restore it from a backup".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

fn message(kind: &str, seq: u64, hash: &[u8; 32], signed_at: &str) -> Vec<u8> {
    format!("eventline-audit-checkpoint/v1\n{kind}\n{seq}\n{}\n{signed_at}", hex(hash)).into_bytes()
}

/// A signed head of the trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `head` or `pruned`.
    pub kind: String,
    pub seq: u64,
    pub hash: String,
    pub signed_at: String,
    pub public_key: String,
    pub signature: String,
}

impl Checkpoint {
    /// Whether `key` signed this checkpoint as it reads now.
    pub fn verify(&self, key: &VerifyingKey) -> Result<[u8; 32], String> {
        let hash = decode_hash(&self.hash).ok_or("its hash is not 64 hex digits")?;
        let sig = hex_bytes::<64>(&self.signature).ok_or("its signature is not 128 hex digits")?;
        key.verify(&message(&self.kind, self.seq, &hash, &self.signed_at), &Signature::from_bytes(&sig))
            .map_err(|_| "its signature does not verify with the trail's public key".to_owned())?;
        Ok(hash)
    }

    /// Writes this checkpoint to `<data_dir>/audit-head.json` (temporary file, fsync, rename).
    pub fn write_head_file(&self, data_dir: &Path) -> std::io::Result<()> {
        let path = data_dir.join(HEAD_FILE);
        // A name of this writer's own: several audit members may sign.
        let tmp = data_dir.join(format!(".{HEAD_FILE}.{}.{}.tmp", std::process::id(), hex(&rand::random::<[u8; 4]>())));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(serde_json::to_string(self).map_err(std::io::Error::other)?.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(dir) = std::fs::File::open(data_dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The checkpoint in `<data_dir>/audit-head.json`, if there is one.
    pub fn read_head_file(data_dir: &Path) -> Result<Option<Checkpoint>, String> {
        let path = data_dir.join(HEAD_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_only_as_signed_and_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let signer = AuditSigner::load_or_create(dir.path()).unwrap();
        let again = AuditSigner::load_or_create(dir.path()).unwrap();
        assert_eq!(signer.public_key_hex(), again.public_key_hex(), "the key is kept");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let cp = signer.sign("head", 41, &[7; 32], "2026-11-30T18:00:00.000Z");
        assert_eq!(cp.verify(&signer.public_key()).unwrap(), [7; 32]);
        let mut moved = cp.clone();
        moved.seq = 40;
        assert!(moved.verify(&signer.public_key()).is_err());
        let other = tempfile::tempdir().unwrap();
        let stranger = AuditSigner::load_or_create(other.path()).unwrap();
        assert!(cp.verify(&stranger.public_key()).is_err());
        cp.write_head_file(dir.path()).unwrap();
        assert_eq!(Checkpoint::read_head_file(dir.path()).unwrap(), Some(cp));
    }
}
