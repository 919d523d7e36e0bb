//! Builds the governance gate from the configuration: the policy file, or the default policy
//! keyed with the data directory's hash key.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use eventline_governance::policy::HASH_KEY_ENV;
use eventline_governance::{Gate, Policy};

use crate::config::Config;

/// The configured policy, or the default one keyed with the data directory's hash key.
pub fn load(config: &Config) -> anyhow::Result<Gate> {
    let policy = match &config.governance.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read governance.policy_file {}", path.display()))?;
            Policy::from_toml_str(&text).with_context(|| format!("in governance.policy_file {}", path.display()))?
        }
        None if std::env::var(HASH_KEY_ENV).is_ok_and(|k| !k.is_empty()) => Policy::default(),
        None => Policy::default_with_key(hash_key(&config.data_dir)?),
    };
    Ok(Gate::new(policy, config.producer.clone()))
}

/// The data directory's key for the `hash` action: created once (32 random bytes, hex, mode 0600)
/// so that hashed values join across processes and restarts.
fn hash_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("pii-hash.key");
    let read = |path: &Path| -> anyhow::Result<Vec<u8>> {
        let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        let key = text.trim();
        anyhow::ensure!(
            key.len() >= 32,
            "{} is too short to be a hash key; delete it to make a new one",
            path.display()
        );
        Ok(key.as_bytes().to_vec())
    };
    if path.exists() {
        return read(&path);
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let key: String = (0..32).map(|_| format!("{:02x}", rand::random::<u8>())).collect();
    let created = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)
    };
    let mut f = match created {
        Ok(f) => f,
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return read(&path),
        Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
    };
    f.write_all(key.as_bytes())?;
    f.sync_all()?;
    Ok(key.into_bytes())
}
