//! A member of a consumer group on the embedded log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use eventline_model::topics::Acks;

use super::Inner;
use super::groups::Assignment;
use crate::error::{LogError, Result};
use crate::port::{GroupConsumer, OffsetReset, Rebalance};
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
    /// Partition moves not yet taken by [`GroupConsumer::take_rebalance`].
    pub(super) pending: Option<Rebalance>,
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
                None => {
                    let (start, end) = self.inner.partition(topic, *p)?.watermarks();
                    match committed.get(&**topic).and_then(|m| m.get(p)) {
                        Some(&c) if c > end => {
                            tracing::warn!(group = %self.group, topic = %topic, partition = p, committed = c, end,
                                "committed offset is beyond the end of the partition (restored or re-created log?); resuming at the end");
                            end
                        }
                        Some(&c) => c,
                        None if self.reset == OffsetReset::Earliest => start,
                        None => end,
                    }
                }
            };
            positions.insert(key, pos);
        }
        let owned = |a: &Assignment, t: &Arc<str>, p: u32| a.iter().any(|(x, y)| x == t && *y == p);
        let moved = Rebalance {
            revoked: self
                .assignment
                .iter()
                .filter(|(t, p)| !owned(&assignment, t, *p))
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
            assigned: assignment
                .iter()
                .filter(|(t, p)| !owned(&self.assignment, t, *p))
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
        };
        if !moved.is_empty() || self.generation == 0 {
            let pending = self.pending.get_or_insert_with(Rebalance::default);
            pending.revoked.retain(|x| !moved.assigned.contains(x));
            pending.assigned.retain(|x| !moved.revoked.contains(x));
            pending.revoked.extend(moved.revoked);
            pending.assigned.extend(moved.assigned);
        }
        self.committed.retain(|k, _| positions.contains_key(k));
        self.generation = generation;
        self.assignment = assignment;
        self.positions = positions;
        Ok(())
    }

    async fn poll_once(&mut self, max_records: usize) -> Result<Vec<Record>> {
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
            // On an acks=all topic a record is visible once it is durable, so nothing a service
            // acted on can be taken back by a power loss.
            let visible =
                if self.inner.topic(&topic)?.spec.acks == Acks::All { partition.durable_end() } else { u64::MAX };
            let room = (max_records - out.len()).min(visible.saturating_sub(pos).min(usize::MAX as u64) as usize);
            if room == 0 {
                continue;
            }
            let max_bytes = self.inner.fetch_max_bytes;
            let records = match super::blocking(move || partition.read(pos, room, max_bytes)).await {
                Ok(r) => r,
                // Retention removed what we were about to read: continue where the reset policy
                // says (Kafka's auto.offset.reset); a position beyond the end resumes at the end.
                Err(LogError::OffsetOutOfRange { start, end, .. }) if pos < start || pos > end => {
                    let to = if pos > end || self.reset == OffsetReset::Latest { end } else { start };
                    tracing::warn!(group = %self.group, topic = %topic, partition = p, from = pos, to,
                        "position no longer in the log; resuming as the reset policy says");
                    self.positions.insert(key, to);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let records: Vec<Record> = records.into_iter().filter(|r| r.offset < visible).collect();
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
            let records = self.poll_once(max_records.max(1)).await?;
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
        self.commit_offsets(&updates).await
    }

    async fn commit_offsets(&mut self, offsets: &[(String, u32, u64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        // Fencing by ownership in the group's current generation: partitions move the moment a
        // member joins or leaves, so a member that has not polled since may no longer own what it
        // commits; a partition it still owns is still its to commit.
        let (generation, assignment) = self.inner.groups.assignment(&self.group, &self.member);
        if self.closed || generation == 0 {
            return Err(LogError::Fenced {
                group: self.group.clone(),
                reason: format!("member {} has left the group", self.member),
            });
        }
        if let Some((t, p, _)) = offsets.iter().find(|(t, p, _)| !assignment.iter().any(|(x, y)| &**x == t && y == p)) {
            return Err(LogError::Fenced {
                group: self.group.clone(),
                reason: format!(
                    "member {} (generation {}) does not own {t}/{p} in generation {generation}",
                    self.member, self.generation
                ),
            });
        }
        self.inner.offsets.commit(&self.group, offsets)?;
        for (t, p, o) in offsets {
            if let Some(k) = self.positions.keys().find(|(x, y)| &**x == t && y == p).cloned() {
                self.committed.insert(k, *o);
            }
        }
        Ok(())
    }

    fn take_rebalance(&mut self) -> Option<Rebalance> {
        self.pending.take()
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
