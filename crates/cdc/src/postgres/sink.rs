//! The sink: decoded rows become records through the produce pipeline (skipping what the log
//! already holds), and batches of whole transactions are appended with acks=all before their LSN
//! may be confirmed.

use super::*;

/// Turns decoded rows into records: event JSON, governance, key, partition, headers, and the
/// skip of what the log already holds.
pub(super) struct Builder {
    pub(super) pipeline: Pipeline,
    pub(super) source_id: String,
    pub(super) partitions: HashMap<&'static str, u32>,
    pub(super) relayed: HashMap<(&'static str, u32), Position>,
}

/// Records of whole transactions, appended together.
#[derive(Default)]
pub(super) struct Batch {
    pub(super) by_topic: Vec<(&'static str, Vec<ProduceRecord>)>,
    pub(super) alerts: Vec<Alert>,
    pub(super) records: usize,
    /// LSN to confirm once everything above is durable.
    pub(super) confirm: Option<u64>,
    pub(super) snapshot_rows: u64,
}

impl Batch {
    pub(super) fn push(&mut self, topic: &'static str, record: ProduceRecord) {
        self.records += 1;
        match self.by_topic.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, v)) => v.push(record),
            None => self.by_topic.push((topic, vec![record])),
        }
    }

    pub(super) fn append(&mut self, other: Batch) {
        for (topic, records) in other.by_topic {
            self.records += records.len();
            match self.by_topic.iter_mut().find(|(t, _)| *t == topic) {
                Some((_, v)) => v.extend(records),
                None => self.by_topic.push((topic, records)),
            }
        }
        self.alerts.extend(other.alerts);
        self.snapshot_rows += other.snapshot_rows;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.records == 0 && self.alerts.is_empty() && self.confirm.is_none()
    }
}

impl Builder {
    /// Appends the event for one change to `batch`, unless the log already holds it; returns
    /// the (topic, partition) and position to note once the batch is durable.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        &self,
        batch: &mut Batch,
        table: SourceTable,
        kind: ChangeKind,
        before: Option<Row>,
        after: Option<Row>,
        commit: &Timestamp,
        pos: Position,
    ) -> Result<Option<((&'static str, u32), Position)>> {
        let topic = table.topic();
        let event = DbChange::from_images(
            kind,
            table,
            before,
            after,
            commit.clone(),
            Metadata {
                timestamp: Timestamp::now(),
                message_id: message_id(&self.source_id, pos, commit.unix_millis()),
                producer: self.pipeline.producer().to_owned(),
                extra: Default::default(),
            },
        );
        let mut draft = Draft::typed(&event, "cdc", Location::Event)
            .system_header(SOURCE_HEADER, self.source_id.clone())
            .system_header(LSN_HEADER, Lsn(pos.lsn).to_string())
            .system_header(INDEX_HEADER, pos.index.to_string());
        if pos.phase == 0 {
            draft = draft.system_header(SNAPSHOT_HEADER, "1");
        }
        let prepared = self.pipeline.prepare(&TopicSpec::new(topic), draft).map_err(|e| {
            CdcError::Config(format!("a {} change at {} is not a valid event: {e}", table.sql_name(), Lsn(pos.lsn)))
        })?;
        // The key is read after the policy ran, so a hashed key column never leaks raw.
        let key =
            prepared.record.key.clone().ok_or_else(|| {
                CdcError::Config(format!("a {} row without {}", table.sql_name(), table.key_column()))
            })?;
        let partition = partition_for_key(&key, self.partitions[topic]);
        // Alerts are raised again for a change the log already holds (a crash may have come
        // between its append and its alerts'): they carry the same ids.
        batch.alerts.extend(prepared.alerts);
        if pos <= self.relayed.get(&(topic, partition)).copied().unwrap_or_default() {
            return Ok(None); // appended before a crash that came before the confirm
        }
        let mut record = prepared.record;
        record.partition = Some(partition);
        batch.push(topic, record);
        Ok(Some(((topic, partition), pos)))
    }
}

/// Appends batches in order with acks=all, then publishes the LSN they make safe to confirm.
pub(super) async fn run_sink(
    pipeline: Pipeline,
    mut rx: mpsc::Receiver<Batch>,
    confirmed: watch::Sender<u64>,
    stats: Arc<Mutex<Stats>>,
    durable: Arc<watch::Sender<u64>>,
) -> Result<()> {
    while let Some(mut batch) = rx.recv().await {
        let records = batch.records as u64;
        append(&pipeline, std::mem::take(&mut batch.by_topic), std::mem::take(&mut batch.alerts)).await?;
        if let Some(lsn) = batch.confirm {
            confirmed.send_if_modified(|c| {
                let raise = lsn > *c;
                if raise {
                    *c = lsn;
                }
                raise
            });
            let mut s = stats.lock().expect("stats lock");
            s.durable_lsn = s.durable_lsn.max(lsn);
            while s.undurable.front().is_some_and(|(l, _)| *l <= lsn) {
                s.undurable.pop_front();
            }
        }
        stats.lock().expect("stats lock").changes += records;
        durable.send_modify(|c| *c += records);
    }
    Ok(())
}

pub(super) async fn append(
    pipeline: &Pipeline,
    by_topic: Vec<(&'static str, Vec<ProduceRecord>)>,
    alerts: Vec<Alert>,
) -> Result<()> {
    let appends = by_topic.into_iter().map(|(topic, records)| pipeline.append_records(topic, records, Acks::All));
    futures_util::future::try_join_all(appends).await?;
    pipeline.append_alerts(&alerts).await?;
    Ok(())
}

/// A UUID v7 for a captured change (see [`crate::capture::message_id`]): identity is (source,
/// position), order is the change's index in its transaction.
pub(super) fn message_id(source_id: &str, pos: Position, unix_ms: i64) -> MessageId {
    let identity: [&[u8]; 4] = [source_id.as_bytes(), &pos.lsn.to_be_bytes(), &[pos.phase], &pos.index.to_be_bytes()];
    capture::message_id(&identity, pos.index, unix_ms)
}
