//! The initial snapshot: a slot with an exported snapshot, both tables read in it, every row
//! appended as SNAPSHOT before the stream takes over without a gap.

use super::*;

impl PgCapture {
    /// Creates the slot with an exported snapshot, reads both tables in that snapshot and
    /// appends every row as SNAPSHOT.
    pub(super) async fn snapshot(&mut self) -> Result<()> {
        let slot = self.options.slot.clone();
        // A slot left by an interrupted attempt has no usable snapshot any more: start over.
        if setup::read_slot(&self.sql, &slot).await?.is_some() {
            setup::drop_slot(&self.sql, &slot, Duration::from_secs(30)).await?;
        }
        let cfg = self.info.replication(&slot, &self.options.publication, self.options.status_interval);
        let mut repl = ReplicationClient::connect_gated(cfg).await?;
        let rows =
            repl.simple_query(&format!("CREATE_REPLICATION_SLOT {slot} LOGICAL pgoutput EXPORT_SNAPSHOT")).await?;
        let row = rows.first().ok_or_else(|| CdcError::Config("CREATE_REPLICATION_SLOT returned no row".into()))?;
        let text = |i: usize| row.get(i).and_then(|c| c.as_ref()).map(|b| String::from_utf8_lossy(b).into_owned());
        let consistent: Lsn = text(1)
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| CdcError::Config("CREATE_REPLICATION_SLOT returned no consistent point".into()))?;
        let snapshot_name =
            text(2).ok_or_else(|| CdcError::Config("CREATE_REPLICATION_SLOT exported no snapshot".into()))?;
        let state = SlotState {
            source_id: self.builder.source_id.clone(),
            snapshot_lsn: Some(consistent),
            snapshot_done: false,
        };
        setup::write_state(&self.sql, &slot, &self.options.publication, &state).await?;
        let snapshot_time = Timestamp::now();
        tracing::info!(slot, %consistent, "replication slot created; reading the initial snapshot");

        self.sql
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
                snapshot_name.replace('\'', "''")
            ))
            .await?;
        // Imported: the snapshot now lives in this transaction; the exporting session may go.
        repl.abort();
        drop(repl);

        let mut index = 0u64;
        for table in TABLES {
            let columns: Vec<(String, u32)> = self
                .sql
                .query(
                    "SELECT attname::text, atttypid FROM pg_attribute
                      WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    &[&setup::quote_ident(table.sql_name())],
                )
                .await?
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, u32>(1)))
                .collect();
            let select: Vec<String> = columns.iter().map(|(c, _)| format!("{}::text", setup::quote_ident(c))).collect();
            self.sql
                .batch_execute(&format!(
                    "DECLARE eventline_snapshot NO SCROLL CURSOR FOR SELECT {} FROM {} ORDER BY {}",
                    select.join(", "),
                    setup::quote_ident(table.sql_name()),
                    setup::quote_ident(table.key_column())
                ))
                .await?;
            loop {
                let messages =
                    self.sql.simple_query(&format!("FETCH {SNAPSHOT_CHUNK} FROM eventline_snapshot")).await?;
                let mut batch = Batch::default();
                let mut positions = Vec::new();
                for m in messages {
                    let tokio_postgres::SimpleQueryMessage::Row(r) = m else { continue };
                    let mut row = Row::new();
                    for (i, (name, oid)) in columns.iter().enumerate() {
                        let v = r.get(i).map(|t| text_to_json(*oid, t)).unwrap_or(serde_json::Value::Null);
                        row.insert(name.clone(), v);
                    }
                    let pos = Position { lsn: consistent.0, phase: 0, index };
                    index += 1;
                    if let Some(slot_pos) = self.builder.build(
                        &mut batch,
                        table,
                        ChangeKind::Snapshot,
                        None,
                        Some(row),
                        &snapshot_time,
                        pos,
                    )? {
                        positions.push(slot_pos);
                    }
                    batch.snapshot_rows += 1;
                }
                if batch.snapshot_rows == 0 {
                    break;
                }
                append(&self.pipeline, std::mem::take(&mut batch.by_topic), std::mem::take(&mut batch.alerts)).await?;
                self.builder.relayed.extend(positions);
                let mut s = self.stats.lock().expect("stats lock");
                s.changes += batch.records as u64;
                s.snapshot_rows += batch.snapshot_rows;
                self.durable.send_modify(|c| *c += batch.records as u64);
            }
            self.sql.batch_execute("CLOSE eventline_snapshot").await?;
        }
        self.sql.batch_execute("COMMIT").await?;
        let state = SlotState { snapshot_done: true, ..state };
        setup::write_state(&self.sql, &slot, &self.options.publication, &state).await?;
        tracing::info!(slot, rows = index, "initial snapshot complete; streaming");
        Ok(())
    }
}
