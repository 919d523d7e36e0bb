//! Consumer-group members: a librdkafka consumer with automatic offset storing and committing
//! both off. A record's position is stored only once [`GroupConsumer::poll`] has handed it to
//! the service, and committed when the service calls [`GroupConsumer::commit`] (ack, then
//! commit) — or, during a rebalance, just before the partition is taken away, so the member that
//! gets it next resumes right after what this one delivered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use eventline_log::{GroupConsumer, LogError, OffsetReset, Record, Result};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::error::{backend, blocking};
use crate::log::TopicNames;
use crate::{KafkaOptions, record_from};

/// Commits the delivered positions of partitions that are about to be revoked.
pub(crate) struct GroupContext {
    group: String,
    /// Set once the first assignment (possibly empty) arrived: the member has joined.
    joined: Arc<AtomicBool>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                tracing::debug!(group = %self.group, partitions = tpl.count(), "partitions revoked; committing delivered positions");
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
                    && !is_nothing_to_commit(&e)
                {
                    tracing::warn!(group = %self.group, error = %e, "commit on revoke failed; the next owner may see records again");
                }
            }
            Rebalance::Assign(tpl) => {
                tracing::debug!(group = %self.group, partitions = tpl.count(), "partitions assigned");
                self.joined.store(true, Ordering::Release);
            }
            Rebalance::Error(e) => tracing::warn!(group = %self.group, error = %e, "rebalance failed"),
        }
    }
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
        let context = GroupContext { group: group.to_owned(), joined: joined.clone() };
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
        Ok(Self { consumer: Arc::new(consumer), early, member, names, timeout: opts.request_timeout })
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
        blocking(move || {
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
            // Handed out: store the position after each partition's last record, for the next commit.
            let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
            for r in &out {
                next.insert((&*r.topic, r.partition as i32), r.offset as i64 + 1);
            }
            if !next.is_empty() {
                let mut tpl = TopicPartitionList::with_capacity(next.len());
                for ((t, p), o) in next {
                    tpl.add_partition_offset(t, p, Offset::Offset(o))
                        .map_err(|e| backend(format!("bad offset for {t}/{p}: {e}")))?;
                }
                if let Err(e) = consumer.store_offsets(&tpl) {
                    // A partition revoked between the poll and here: its records are delivered
                    // again to the next owner, which is at-least-once as promised.
                    tracing::warn!(error = %e, "storing delivered positions failed");
                }
            }
            Ok(out)
        })
        .await
    }

    async fn commit(&mut self) -> Result<()> {
        let consumer = self.consumer.clone();
        blocking(move || match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(e) if is_nothing_to_commit(&e) => Ok(()),
            Err(e) => Err(backend(format!("commit failed: {e}"))),
        })
        .await
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
        blocking(move || {
            consumer
                .seek(&topic, partition as i32, Offset::Offset(offset as i64), timeout)
                .map_err(|e| backend(format!("seek {topic}/{partition} to {offset} failed: {e}")))?;
            // The next commit must not jump back past what is re-read.
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, partition as i32, Offset::Offset(offset as i64))
                .map_err(|e| backend(e.to_string()))?;
            let _ = consumer.store_offsets(&tpl);
            Ok(())
        })
        .await
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let consumer = self.consumer;
        blocking(move || {
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
                && !is_nothing_to_commit(&e)
            {
                tracing::warn!(error = %e, "final commit before leaving the group failed");
            }
            consumer.unsubscribe();
            // Dropping the last handle leaves the group (librdkafka's consumer close, which
            // serves the final revoke and commits in `pre_rebalance`).
            drop(consumer);
            Ok(())
        })
        .await
    }
}
