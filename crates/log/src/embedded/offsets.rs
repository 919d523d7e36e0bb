//! Committed consumer-group offsets: one JSON file per group under `__consumer_offsets/`,
//! replaced atomically (write a temporary file, fsync it, rename it over the old one, fsync the
//! directory) so a crash leaves either the old or the new offsets, never a mix.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{LogError, Result};
use crate::port::validate_group;

/// topic → partition → next offset to read.
pub type GroupOffsets = BTreeMap<String, BTreeMap<u32, u64>>;

#[derive(Debug)]
pub struct OffsetStore {
    dir: PathBuf,
    cache: Mutex<BTreeMap<String, GroupOffsets>>,
}

impl OffsetStore {
    pub fn open(dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir).map_err(LogError::io(format!("create {}", dir.display())))?;
        let mut cache = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(LogError::io(format!("list {}", dir.display())))? {
            let path = entry.map_err(LogError::io("list offsets"))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if name.starts_with(".tmp-") {
                // A commit interrupted before its rename: the previous file is still the truth.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(group) = name.strip_suffix(".json") else { continue };
            let text = std::fs::read_to_string(&path).map_err(LogError::io(format!("read {}", path.display())))?;
            let offsets: GroupOffsets = serde_json::from_str(&text).map_err(|e| LogError::Corrupt {
                file: path.clone(),
                position: 0,
                reason: format!("committed offsets are not valid JSON: {e}"),
            })?;
            cache.insert(group.to_owned(), offsets);
        }
        Ok(Self { dir, cache: Mutex::new(cache) })
    }

    pub fn get(&self, group: &str) -> GroupOffsets {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(group).cloned().unwrap_or_default()
    }

    pub fn groups(&self) -> Vec<String> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Merges `updates` into the group's offsets and makes them durable before returning.
    pub fn commit(&self, group: &str, updates: &[(String, u32, u64)]) -> Result<()> {
        validate_group(group)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = cache.get(group).cloned().unwrap_or_default();
        for (topic, partition, offset) in updates {
            next.entry(topic.clone()).or_default().insert(*partition, *offset);
        }
        write_atomically(
            &self.dir,
            &format!("{group}.json"),
            &serde_json::to_vec_pretty(&next).expect("offsets serialise"),
        )?;
        cache.insert(group.to_owned(), next);
        Ok(())
    }

    /// Forgets a deleted topic's offsets in every group.
    pub fn drop_topic(&self, topic: &str) -> Result<()> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (group, offsets) in cache.iter_mut() {
            if offsets.remove(topic).is_some() {
                write_atomically(
                    &self.dir,
                    &format!("{group}.json"),
                    &serde_json::to_vec_pretty(offsets).expect("serialise"),
                )?;
            }
        }
        Ok(())
    }
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old or the new content.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let target = dir.join(name);
    let ctx = |what: &str| format!("{what} {}", target.display());
    let mut f = std::fs::File::create(&tmp).map_err(LogError::io(ctx("create temporary file for")))?;
    f.write_all(bytes).map_err(LogError::io(ctx("write")))?;
    f.sync_all().map_err(LogError::io(ctx("fsync")))?;
    drop(f);
    std::fs::rename(&tmp, &target).map_err(LogError::io(ctx("rename into place")))?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(LogError::io(ctx("fsync directory of")))?;
    Ok(())
}
