//! A member of a consumer group on the embedded log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::Inner;
use super::groups::Assignment;
use crate::error::{LogError, Result};
use crate::port::{GroupConsumer, OffsetReset};
use crate::record::Record;

#[derive(Debug)]
pub struct EmbeddedConsumer {
    pub(super) inner: Arc<Inner>,
    pub(super) group: String,
    pub(super) member: String,
    pub(super) reset: OffsetReset,
    pub(super) generation: u64,
    pub(super) assignment: Assignment,
    /// Next offset to return per owned partition.
    pub(super) positions: HashMap<(Arc<str>, u32), u64>,
    /// Positions last made durable, to skip commits that change nothing.
    pub(super) committed: HashMap<(Arc<str>, u32), u64>,
    pub(super) next_partition: usize,
    pub(super) closed: bool,
}

impl EmbeddedConsumer {
    /// Adopts the group's current assignment if it changed since the last look.
    fn refresh(&mut self) -> Result<()> {
        let (generation, assignment) = self.inner.groups.assignment(&self.group, &self.member);
        if generation == self.generation {
            return Ok(());
        }
        let committed = self.inner.offsets.get(&self.group);
        let mut positions = HashMap::new();
        for (topic, p) in &assignment {
            let key = (topic.clone(), *p);
            // Keep our own progress on partitions we still own; otherwise start where the group
            // committed, or where the reset policy says.
            let pos = match self.positions.get(&key) {
                Some(pos) => *pos,
                None => match committed.get(&**topic).and_then(|m| m.get(p)) {
                    Some(c) => *c,
                    None => {
                        let (start, end) = self.inner.partition(topic, *p)?.watermarks();
                        if self.reset == OffsetReset::Earliest { start } else { end }
                    }
                },
            };
            positions.insert(key, pos);
        }
        self.generation = generation;
        self.assignment = assignment;
        self.positions = positions;
        Ok(())
    }

    fn poll_once(&mut self, max_records: usize) -> Result<Vec<Record>> {
        self.refresh()?;
        let mut out = Vec::new();
        let n = self.assignment.len();
        for i in 0..n {
            if out.len() >= max_records {
                break;
            }
            let (topic, p) = self.assignment[(self.next_partition + i) % n].clone();
            let key = (topic.clone(), p);
            let pos = self.positions[&key];
            let partition = self.inner.partition(&topic, p)?;
            let records = match partition.read(pos, max_records - out.len(), self.inner.fetch_max_bytes) {
                Ok(r) => r,
                // Retention removed what we were about to read: continue at the log start, as
                // Kafka's auto.offset.reset=earliest does, and say so.
                Err(LogError::OffsetOutOfRange { start, end, .. }) if pos < start || pos > end => {
                    tracing::warn!(group = %self.group, topic = %topic, partition = p, from = pos, to = start,
                        "committed position no longer in the log; resetting to the log start");
                    self.positions.insert(key, start);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(last) = records.last() {
                self.positions.insert(key, last.offset + 1);
            }
            out.extend(records);
        }
        if n > 0 {
            self.next_partition = (self.next_partition + 1) % n;
        }
        Ok(out)
    }
}

#[async_trait]
impl GroupConsumer for EmbeddedConsumer {
    fn member_id(&self) -> &str {
        &self.member
    }

    fn assignment(&self) -> Vec<(String, u32)> {
        let (_, a) = self.inner.groups.assignment(&self.group, &self.member);
        a.into_iter().map(|(t, p)| (t.to_string(), p)).collect()
    }

    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register interest before looking, so an append between the look and the wait wakes us.
            let inner = self.inner.clone();
            let notified = inner.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let records = self.poll_once(max_records.max(1))?;
            if !records.is_empty() {
                return Ok(records);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self) -> Result<()> {
        let updates: Vec<(String, u32, u64)> = self
            .positions
            .iter()
            .filter(|(k, v)| self.committed.get(*k) != Some(*v))
            .map(|((t, p), o)| (t.to_string(), *p, *o))
            .collect();
        if updates.is_empty() {
            return Ok(());
        }
        self.inner.offsets.commit(&self.group, &updates)?;
        self.committed.extend(self.positions.iter().map(|(k, v)| (k.clone(), *v)));
        Ok(())
    }

    async fn seek(&mut self, topic: &str, partition: u32, offset: u64) -> Result<()> {
        self.refresh()?;
        let key = self.positions.keys().find(|(t, p)| &**t == topic && *p == partition).cloned();
        match key {
            Some(k) => {
                let (start, end) = self.inner.partition(topic, partition)?.watermarks();
                if offset < start || offset > end {
                    return Err(LogError::OffsetOutOfRange { topic: topic.into(), partition, offset, start, end });
                }
                self.positions.insert(k, offset);
                Ok(())
            }
            None => Err(LogError::InvalidGroup(format!(
                "member {} of group `{}` does not own {topic}/{partition}; it owns {:?}",
                self.member,
                self.group,
                self.assignment.iter().map(|(t, p)| format!("{t}/{p}")).collect::<Vec<_>>()
            ))),
        }
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        self.closed = true;
        self.inner.groups.leave(&self.group, &self.member);
        self.inner.appended.notify_waiters();
        Ok(())
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        if !self.closed {
            self.inner.groups.leave(&self.group, &self.member);
            self.inner.appended.notify_waiters();
        }
    }
}
