use std::time::Duration;

/// Tuning of the embedded log. Defaults follow Kafka's where they exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// Roll to a new segment when the active one would exceed this size (default 256 MiB).
    pub segment_bytes: u64,
    /// Roll when the active segment's first record is older than this (default 7 days).
    pub segment_age: Duration,
    /// One sparse index entry per this many bytes of log (default 4 KiB).
    pub index_interval_bytes: u32,
    /// The largest record accepted (default 1 MiB, like Kafka's `message.max.bytes`).
    pub max_record_bytes: usize,
    /// Records are grouped into batches of at most this many uncompressed bytes (default 1 MiB).
    pub max_batch_bytes: usize,
    /// How often retention runs (default 60 s).
    pub retention_check_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 256 << 20,
            segment_age: Duration::from_secs(7 * 24 * 3600),
            index_interval_bytes: 4096,
            max_record_bytes: 1 << 20,
            max_batch_bytes: 1 << 20,
            retention_check_interval: Duration::from_secs(60),
        }
    }
}

impl EmbeddedOptions {
    /// Checks the values, naming the option at fault.
    pub fn validate(&self) -> Result<(), String> {
        if !(1 << 16..=1 << 31).contains(&self.segment_bytes) {
            return Err(format!("log.segment_bytes = {}: must be between 65536 and 2147483648", self.segment_bytes));
        }
        if self.index_interval_bytes == 0 {
            return Err("log.index_interval_bytes = 0: must be at least 1".into());
        }
        let cap = crate::codec::MAX_BATCH_BYTES / 2;
        if self.max_record_bytes == 0 || self.max_record_bytes > cap {
            return Err(format!("log.max_record_bytes = {}: must be between 1 and {cap}", self.max_record_bytes));
        }
        if self.max_batch_bytes == 0 || self.max_batch_bytes > cap {
            return Err(format!("log.max_batch_bytes = {}: must be between 1 and {cap}", self.max_batch_bytes));
        }
        if self.segment_age.is_zero() {
            return Err("log.segment_age = 0s: must be positive".into());
        }
        Ok(())
    }
}
