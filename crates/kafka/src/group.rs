//! Consumer-group members: a librdkafka consumer with automatic offset storing and committing
//! both off. Positions are committed only when the service says so: [`GroupConsumer::commit`]
//! (everything handed out so far) or [`GroupConsumer::commit_offsets`] (exactly what the service
//! finished). Nothing is committed on revoke: what a member was handed but did not finish is
//! delivered again to the next owner (at-least-once), never skipped.
//!
//! A partition whose committed offset lies beyond its end (a re-created topic, a restored
//! cluster) resumes at the end, with a warning, instead of librdkafka's reset to the beginning.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eventline_log::{GroupConsumer, LogError, OffsetReset, Rebalance as Moved, Record, Result};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::error::{backend, blocking};
use crate::log::TopicNames;
use crate::{KafkaOptions, record_from};

/// Notes partition moves for [`GroupConsumer::take_rebalance`] and keeps committed offsets
/// beyond a partition's end from restarting it at the beginning.
pub(crate) struct GroupContext {
    group: String,
    /// Set once the first assignment (possibly empty) arrived: the member has joined.
    joined: Arc<AtomicBool>,
    moved: Arc<Mutex<Option<Moved>>>,
    timeout: Duration,
    exact_watermarks: bool,
}

impl ClientContext for GroupContext {}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<(String, u32)> {
    tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition() as u32)).collect()
}

impl GroupContext {
    fn note(&self, revoked: Vec<(String, u32)>, assigned: Vec<(String, u32)>) {
        let mut moved = self.moved.lock().unwrap_or_else(|p| p.into_inner());
        let m = moved.get_or_insert_with(Moved::default);
        m.revoked.retain(|x| !assigned.contains(x));
        m.assigned.retain(|x| !revoked.contains(x));
        m.revoked.extend(revoked);
        m.assigned.extend(assigned);
    }

    /// Re-assigns partitions whose committed offset is beyond their end at the end.
    fn resume_beyond_end(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) {
        let Ok(committed) = consumer.committed_offsets(tpl.clone(), self.timeout) else { return };
        let mut fixed = TopicPartitionList::with_capacity(tpl.count());
        let mut changed = false;
        for e in committed.elements() {
            let (topic, partition) = (e.topic(), e.partition());
            let mut offset = Offset::Stored;
            if let Offset::Offset(c) = e.offset()
                && let Ok((_, high)) = consumer.fetch_watermarks(topic, partition, self.timeout)
                && c > high
            {
                tracing::warn!(group = %self.group, topic, partition, committed = c, end = high,
                    "committed offset is beyond the end of the partition; resuming at the end");
                offset = Offset::Offset(high);
                changed = true;
            }
            let _ = fixed.add_partition_offset(topic, partition, offset);
        }
        if changed && let Err(e) = consumer.assign(&fixed) {
            tracing::warn!(group = %self.group, error = %e, "could not resume at the end");
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                // Nothing is committed here: a position handed out is not a position finished.
                tracing::debug!(group = %self.group, partitions = tpl.count(), "partitions revoked");
                self.note(partitions_of(tpl), Vec::new());
            }
            Rebalance::Assign(tpl) => {
                tracing::debug!(group = %self.group, partitions = tpl.count(), "partitions assigned");
                self.note(Vec::new(), partitions_of(tpl));
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.group, error = %e, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if self.exact_watermarks {
                self.resume_beyond_end(consumer, tpl);
            }
            self.joined.store(true, Ordering::Release);
        }
    }
}

/// Errors of a commit that mean the group moved on without this member.
fn is_fencing(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::StaleMemberEpoch
        )
    )
}

fn is_nothing_to_commit(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset)
}

type Member = BaseConsumer<GroupContext>;

/// The consumer settings of a group member.
pub(crate) fn member_config(
    opts: &KafkaOptions,
    group: &str,
    client_id: &str,
    reset: OffsetReset,
) -> rdkafka::ClientConfig {
    let mut c = opts.base_config();
    let session_ms = opts.session_timeout.as_millis().max(1000);
    c.set("group.id", group)
        .set("client.id", client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match reset {
                OffsetReset::Earliest => "earliest",
                OffsetReset::Latest => "latest",
            },
        )
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", (session_ms / 3).to_string())
        .set("fetch.wait.max.ms", opts.fetch_wait.as_millis().to_string());
    opts.finish(c)
}

/// One member of a consumer group on Kafka.
pub struct KafkaGroupConsumer {
    consumer: Arc<Member>,
    group: String,
    /// Position after the last record handed out, per partition (what `commit` commits).
    delivered: BTreeMap<(String, u32), u64>,
    moved: Arc<Mutex<Option<Moved>>>,
    /// Records that arrived while joining, handed out by the next poll.
    early: Vec<Record>,
    member: String,
    names: Arc<TopicNames>,
    timeout: Duration,
}

impl std::fmt::Debug for KafkaGroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaGroupConsumer").field("member", &self.member).finish_non_exhaustive()
    }
}

impl KafkaGroupConsumer {
    /// Subscribes and waits (up to the session timeout plus two seconds) until the group
    /// coordinator has given this member its partitions, so `assignment()` and `seek()` are
    /// meaningful as soon as `subscribe` returns, as on the embedded log. Members already in the
    /// group must keep polling for the rebalance to complete.
    pub(crate) fn join(
        opts: &KafkaOptions,
        group: &str,
        topics: &[String],
        reset: OffsetReset,
        names: Arc<TopicNames>,
    ) -> Result<Self> {
        let member = format!("eventline-{group}-{:08x}", rand_u32());
        let config = member_config(opts, group, &member, reset);
        let joined = Arc::new(AtomicBool::new(false));
        let moved = Arc::new(Mutex::new(None));
        let context = GroupContext {
            group: group.to_owned(),
            joined: joined.clone(),
            moved: moved.clone(),
            timeout: opts.request_timeout,
            exact_watermarks: opts.exact_watermarks,
        };
        let consumer = Member::from_config_and_context(&config, context)
            .map_err(|e| backend(format!("cannot create a consumer for group {group}: {e}")))?;
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| backend(format!("group {group} cannot subscribe to {topics:?}: {e}")))?;
        let deadline = std::time::Instant::now() + opts.session_timeout + Duration::from_secs(2);
        let mut early = Vec::new();
        while !joined.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => early.push(record_from(&m, names.get(m.topic()))),
                Some(Err(e)) => tracing::warn!(group, error = %e, "consumer error while joining"),
                None => {}
            }
        }
        if !joined.load(Ordering::Acquire) {
            tracing::warn!(group, "no partitions assigned yet; the member keeps joining while it polls");
        }
        Ok(Self {
            consumer: Arc::new(consumer),
            group: group.to_owned(),
            delivered: BTreeMap::new(),
            moved,
            early,
            member,
            names,
            timeout: opts.request_timeout,
        })
    }
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

#[async_trait]
impl GroupConsumer for KafkaGroupConsumer {
    /// The client id this member joined with; the broker's member id starts with it.
    fn member_id(&self) -> &str {
        &self.member
    }

    fn assignment(&self) -> Vec<(String, u32)> {
        self.consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition() as u32)).collect())
            .unwrap_or_default()
    }

    async fn poll(&mut self, max_records: usize, timeout: Duration) -> Result<Vec<Record>> {
        let consumer = self.consumer.clone();
        let names = self.names.clone();
        let mut early = std::mem::take(&mut self.early);
        if early.len() > max_records {
            self.early = early.split_off(max_records);
        }
        let records = blocking(move || {
            let mut out: Vec<Record> = early;
            let deadline = std::time::Instant::now() + timeout;
            while out.len() < max_records {
                // Wait for the first record; after that take only what is already there.
                let wait = if out.is_empty() {
                    deadline.saturating_duration_since(std::time::Instant::now())
                } else {
                    Duration::ZERO
                };
                match consumer.poll(wait) {
                    // librdkafka also returns early after serving a rebalance: keep waiting for
                    // the first record until the caller's timeout.
                    None if out.is_empty() && std::time::Instant::now() < deadline => continue,
                    None => break,
                    Some(Ok(m)) => out.push(record_from(&m, names.get(m.topic()))),
                    Some(Err(e)) => {
                        // librdkafka reports transient trouble (a broker restarting, a rebalance
                        // in progress) as events and recovers by itself.
                        tracing::warn!(error = %e, "consumer error");
                        if out.is_empty() && std::time::Instant::now() >= deadline {
                            break;
                        }
                        if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                            return Err(backend(format!("fatal consumer error: {e}")));
                        }
                    }
                }
            }
            Ok(out)
        })
        .await?;
        for r in &records {
            self.delivered.insert((r.topic.to_string(), r.partition), r.offset + 1);
        }
        Ok(records)
    }

    async fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(String, u32, u64)> = self.delivered.iter().map(|((t, p), o)| (t.clone(), *p, *o)).collect();
        self.commit_offsets(&offsets).await
    }

    async fn commit_offsets(&mut self, offsets: &[(String, u32, u64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let owned = self.assignment();
        if let Some((t, p, _)) = offsets.iter().find(|(t, p, _)| !owned.iter().any(|(x, y)| x == t && y == p)) {
            return Err(LogError::Fenced {
                group: self.group.clone(),
                reason: format!("member {} does not own {t}/{p}", self.member),
            });
        }
        let mut tpl = TopicPartitionList::with_capacity(offsets.len());
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p as i32, Offset::Offset(*o as i64))
                .map_err(|e| backend(format!("bad offset for {t}/{p}: {e}")))?;
        }
        let consumer = self.consumer.clone();
        let group = self.group.clone();
        blocking(move || match consumer.commit(&tpl, CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(e) if is_nothing_to_commit(&e) => Ok(()),
            Err(e) if is_fencing(&e) => Err(LogError::Fenced { group, reason: e.to_string() }),
            Err(e) => Err(backend(format!("commit failed: {e}"))),
        })
        .await
    }

    fn take_rebalance(&mut self) -> Option<Moved> {
        let moved = self.moved.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        for (t, p) in &moved.revoked {
            self.delivered.remove(&(t.clone(), *p));
        }
        Some(moved)
    }

    async fn seek(&mut self, topic: &str, partition: u32, offset: u64) -> Result<()> {
        let owned = self.assignment().iter().any(|(t, p)| t == topic && *p == partition);
        if !owned {
            return Err(LogError::InvalidGroup(format!(
                "this member does not own {topic}/{partition}; it owns {:?}",
                self.assignment()
            )));
        }
        let consumer = self.consumer.clone();
        let (topic, timeout) = (topic.to_owned(), self.timeout);
        let topic_name = topic.clone();
        blocking(move || {
            consumer
                .seek(&topic, partition as i32, Offset::Offset(offset as i64), timeout)
                .map_err(|e| backend(format!("seek {topic}/{partition} to {offset} failed: {e}")))?;
            Ok(())
        })
        .await?;
        // The next commit must not jump back past what is re-read.
        self.delivered.insert((topic_name, partition), offset);
        Ok(())
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let consumer = self.consumer;
        blocking(move || {
            consumer.unsubscribe();
            // Dropping the last handle leaves the group (librdkafka's consumer close, which
            // serves the final revoke). What was handed out and not committed is delivered again.
            drop(consumer);
            Ok(())
        })
        .await
    }
}
