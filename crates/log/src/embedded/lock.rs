//! The data directory belongs to one process at a time: an exclusive `flock` on `LOCK`, which the
//! kernel releases when the holder exits, even by SIGKILL. The holder writes its pid into the file
//! so a second process can say who has it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{LogError, Result};

#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(LogError::io(format!("open {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = if pid.trim().is_empty() { "unknown".to_owned() } else { pid.trim().to_owned() };
                return Err(LogError::Locked { path: dir.to_owned(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(LogError::io(format!("lock {}", path.display()))(e)),
        }
        file.set_len(0).map_err(LogError::io("truncate LOCK"))?;
        file.seek(SeekFrom::Start(0)).map_err(LogError::io("seek LOCK"))?;
        writeln!(file, "{}", std::process::id()).map_err(LogError::io("write LOCK"))?;
        Ok(Self { _file: file })
    }
}
