//! The stream: pgoutput messages decoded into whole transactions, handed to the sink in order,
//! keepalives and heartbeats, the confirmed LSN raised as the sink makes transactions durable.

use super::*;

/// The open transaction being decoded.
pub(super) struct OpenTx {
    pub(super) lsn: u64,
    pub(super) commit_micros: i64,
    pub(super) index: u64,
    pub(super) batch: Batch,
    pub(super) positions: Vec<((&'static str, u32), Position)>,
}

impl PgCapture {
    /// Streams from the slot until `stop` turns true or the connection breaks.
    pub(super) async fn stream(&mut self, stop: &mut watch::Receiver<bool>) -> Result<()> {
        let slot = self.options.slot.clone();
        let cfg = self.info.replication(&slot, &self.options.publication, self.options.status_interval);
        let mut client = ReplicationClient::connect(cfg).await?;
        if let Err(e) = client.wait_started().await {
            return Err(classify_start_error(&slot, e));
        }
        tracing::info!(slot, "streaming changes");

        let (batch_tx, batch_rx) = mpsc::channel::<Batch>(1);
        let (confirmed_tx, mut confirmed_rx) = watch::channel(0u64);
        let sink = tokio::spawn(run_sink(
            self.pipeline.clone(),
            batch_rx,
            confirmed_tx,
            self.stats.clone(),
            self.durable.clone(),
        ));

        let mut decoder = Decoder::new();
        let mut open: Option<OpenTx> = None;
        let mut pending = Batch::default();
        let mut heartbeat = tokio::time::interval(self.options.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let max_batch = self.options.max_batch;

        let outcome: Result<()> = loop {
            let can_ship = !pending.is_empty();
            let full = pending.records >= max_batch;
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    if *stop.borrow() {
                        break Ok(());
                    }
                }
                Ok(()) = confirmed_rx.changed() => {
                    let lsn = *confirmed_rx.borrow_and_update();
                    client.update_applied_lsn(pgwire_replication::Lsn::from_u64(lsn));
                }
                permit = batch_tx.reserve(), if can_ship => {
                    match permit {
                        Ok(permit) => permit.send(std::mem::take(&mut pending)),
                        // The append task ended: its own error is reported below.
                        Err(_) => break Err(CdcError::Config("the append task ended early".into())),
                    }
                }
                event = client.recv(), if !full => {
                    let event = match event {
                        Ok(Some(ev)) => ev,
                        Ok(None) => break Err(CdcError::Replication(PgWireError::Io(Arc::new(
                            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "replication stream ended"),
                        )))),
                        Err(e) => break Err(classify_start_error(&slot, e)),
                    };
                    if let Err(e) = self.handle(event, &mut decoder, &mut open, &mut pending) {
                        break Err(e);
                    }
                }
                _ = heartbeat.tick() => {
                    if let Err(e) = self.heartbeat().await {
                        break Err(e);
                    }
                }
            }
        };

        // Whole transactions already received go to the log before this run ends, so that the
        // positions noted for them hold; the open transaction (if any) is resent by the server.
        let mut result = outcome;
        if !pending.is_empty() && batch_tx.send(std::mem::take(&mut pending)).await.is_err() && result.is_ok() {
            result = Err(CdcError::Config("the append task ended early".into()));
        }
        drop(batch_tx);
        match sink.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(e) => result = Err(CdcError::Config(format!("append task failed: {e}"))),
        }
        let durable = *confirmed_rx.borrow();
        if durable > 0 {
            client.update_applied_lsn(pgwire_replication::Lsn::from_u64(durable));
        }
        if result.is_ok() {
            // Give the worker a moment to send the final standby status, then end the session.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.stop();
        let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
        result
    }

    pub(super) fn handle(
        &mut self,
        event: ReplicationEvent,
        decoder: &mut Decoder,
        open: &mut Option<OpenTx>,
        pending: &mut Batch,
    ) -> Result<()> {
        match event {
            ReplicationEvent::Begin { final_lsn, commit_time_micros, .. } => {
                *open = Some(OpenTx {
                    lsn: final_lsn.as_u64(),
                    commit_micros: commit_time_micros + PG_EPOCH_MICROS,
                    index: 0,
                    batch: Batch::default(),
                    positions: Vec::new(),
                });
            }
            ReplicationEvent::XLogData { data, .. } => {
                let change = decoder.decode(&data)?;
                let (relation, kind, before, after) = match change {
                    Change::None => return Ok(()),
                    Change::Insert { relation, new } => (relation, ChangeKind::Insert, None, Some(new)),
                    Change::Update { relation, old, new } => (relation, ChangeKind::Update, old, Some(new)),
                    Change::Delete { relation, old } => (relation, ChangeKind::Delete, Some(old), None),
                    Change::Truncate { relations } => {
                        let names: Vec<String> =
                            relations.iter().filter_map(|r| decoder.relation(*r).map(|r| r.name.clone())).collect();
                        tracing::warn!(tables = ?names, "TRUNCATE is not captured (no event type for it)");
                        return Ok(());
                    }
                };
                let Some(table) =
                    decoder.relation(relation).and_then(|r| TABLES.into_iter().find(|t| t.sql_name() == r.name))
                else {
                    return Ok(()); // a table of the publication eventline does not capture
                };
                let tx = open
                    .as_mut()
                    .ok_or_else(|| CdcError::Config("pgoutput row change outside a transaction".into()))?;
                let pos = Position { lsn: tx.lsn, phase: 1, index: tx.index };
                tx.index += 1;
                let commit =
                    Timestamp::from_unix_millis(tx.commit_micros.div_euclid(1000)).unwrap_or_else(Timestamp::now);
                if let Some(p) = self.builder.build(&mut tx.batch, table, kind, before, after, &commit, pos)? {
                    tx.positions.push(p);
                }
            }
            ReplicationEvent::Commit { end_lsn, .. } => {
                if let Some(tx) = open.take() {
                    for (key, pos) in tx.positions {
                        let slot = self.builder.relayed.entry(key).or_default();
                        *slot = (*slot).max(pos);
                    }
                    pending.append(tx.batch);
                    let mut s = self.stats.lock().expect("stats lock");
                    s.undurable.push_back((end_lsn.as_u64(), tx.commit_micros));
                    s.server_lsn = s.server_lsn.max(end_lsn.as_u64());
                }
                pending.confirm = pending.confirm.max(Some(end_lsn.as_u64()));
            }
            ReplicationEvent::Message { transactional, lsn, .. } => {
                // A non-transactional message (our heartbeat) between transactions: everything
                // before it has been received; confirm it once what precedes is durable.
                if !transactional && open.is_none() {
                    pending.confirm = pending.confirm.max(Some(lsn.as_u64()));
                }
            }
            ReplicationEvent::KeepAlive { wal_end, .. } => {
                let mut s = self.stats.lock().expect("stats lock");
                s.server_lsn = s.server_lsn.max(wal_end.as_u64());
                if open.is_none() && wal_end.as_u64() > s.durable_lsn && wal_end.as_u64() > 0 {
                    pending.confirm = pending.confirm.max(Some(wal_end.as_u64()));
                }
            }
            ReplicationEvent::StoppedAt { .. } => {}
        }
        Ok(())
    }

    /// Writes a heartbeat message into the WAL and checks the slot's health.
    pub(super) async fn heartbeat(&mut self) -> Result<()> {
        self.sql.execute("SELECT pg_logical_emit_message(false, $1, now()::text)", &[&HEARTBEAT_PREFIX]).await?;
        let status = self.status().await?;
        if let Some(row) = &status.slot_row
            && row.wal_status.as_deref() == Some("lost")
        {
            return Err(CdcError::SlotLost {
                slot: self.options.slot.clone(),
                reason: "its wal_status turned `lost` while capturing".into(),
                confirmed: row.confirmed_flush_lsn.map(|l| l.to_string()).unwrap_or_default(),
            });
        }
        if let Some(w) = status.warning {
            tracing::warn!("{w}");
        }
        Ok(())
    }
}

/// Replication errors that mean the slot is gone or lost become [`CdcError::SlotLost`].
pub(super) fn classify_start_error(slot: &str, e: PgWireError) -> CdcError {
    let text = e.to_string();
    if text.contains("can no longer get changes from replication slot")
        || text.contains("This slot has been invalidated")
        || (text.contains("replication slot") && text.contains("does not exist"))
    {
        return CdcError::SlotLost { slot: slot.to_owned(), reason: text, confirmed: String::new() };
    }
    CdcError::Replication(e)
}
