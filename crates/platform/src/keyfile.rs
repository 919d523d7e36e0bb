//! Secrets kept in files of the data directory (`admin.key`, `user-token.key`, `card-data.key`):
//! written once, mode 0600, fsynced with their directory; refused when other users may read them
//! or another user owns them, with the fix in the message.

use std::io::Write;
use std::path::Path;

use rand::Rng;

/// `bytes` as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `text` and a newline to a new file at `path` (0600; an existing file is an error).
pub fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Why the file at `path`, which holds `what` (e.g. "the admin key"), may not be used: readable by
/// others or owned by another user. The reason says how to fix it.
pub fn check_private(path: &Path, what: &str) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by other users (mode {mode:o}); it holds {what}: run `chmod 600 {}` and start again",
            path.display()
        ));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(format!(
            "is owned by another user (uid {}, this process runs as uid {me}): run `chown {me} {}` or start eventline as its owner",
            meta.uid(),
            path.display()
        ));
    }
    Ok(())
}

/// This process's effective user id (Linux: the owner of `/proc/self`).
fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(0)
}

/// The 256-bit key kept as 64 hex digits at `path` (holding `what`), made if missing. The error
/// is the reason, to be put after the path.
pub fn load_or_create_key(path: &Path, what: &str) -> Result<[u8; 32], String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::rng().random();
            let text = hex(&bytes);
            write_new(path, &text).map_err(|e| e.to_string())?;
            text
        }
        Err(e) => return Err(format!("cannot read: {e}")),
    };
    check_private(path, what)?;
    parse_key(&text).ok_or_else(|| format!("is not {what} (64 hex digits)"))
}

/// 64 hex digits (surrounding white space aside) as 32 bytes.
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_0600_and_refused_when_others_can_read_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.key");
        let first = load_or_create_key(&path, "the x key").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create_key(&path, "the x key").unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_key(&path, "the x key").unwrap_err();
        assert!(e.contains("it holds the x key") && e.contains("chmod 600"), "{e}");
        assert_eq!(parse_key(&format!(" {} \n", "ab".repeat(32))), Some([0xab; 32]));
        assert_eq!(parse_key("abc"), None);
    }
}
