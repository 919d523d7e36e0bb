//! Opening a capture: checks, publication, what the log already holds, and the plan (snapshot
//! first, or stream on from the slot).

use super::*;

impl PgCapture {
    /// Connects with default [`PgOptions`]; see [`PgCapture::open_with`].
    pub async fn open(url: &str, pipeline: Pipeline) -> Result<Self> {
        Self::open_with(url, PgOptions::default(), pipeline).await
    }

    /// Connects to the database at `url`, applies the migrations, checks REPLICA IDENTITY FULL,
    /// creates the publication if missing, learns from the log what was already captured and
    /// decides whether a snapshot is due. The slot itself is created by [`PgCapture::run`]
    /// (with the snapshot it exports).
    pub async fn open_with(url: &str, options: PgOptions, pipeline: Pipeline) -> Result<Self> {
        let log: Arc<dyn EventLog> = pipeline.log().clone();
        setup::check_name("slot", &options.slot)?;
        setup::check_name("publication", &options.publication)?;
        let info = ConnInfo::parse(url)?;
        let sql = info.connect().await?;
        setup::check_tables(&sql, &info, &TABLES).await?;
        setup::ensure_state_table(&sql).await?;
        setup::check_replica_identity(&sql, &TABLES).await?;
        setup::ensure_publication(&sql, &options.publication, &TABLES).await?;

        let slot = options.slot.as_str();
        let state = setup::read_state(&sql, slot).await?;
        let source_id = state.as_ref().map(|s| s.source_id.clone()).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let mut partitions = HashMap::new();
        let mut relayed = HashMap::new();
        let mut streamed_since: Option<Position> = None;
        for table in TABLES {
            let topic = table.topic();
            let d = log.describe_topic(topic).await?;
            partitions.insert(topic, d.spec.partitions);
            for p in 0..d.spec.partitions {
                let pos = last_position(&*log, topic, p, &source_id).await?;
                if pos.phase == 1 {
                    streamed_since = streamed_since.max(Some(pos));
                }
                relayed.insert((topic, p), pos);
            }
        }

        let slot_row = setup::read_slot(&sql, slot).await?;
        let mut state =
            state.unwrap_or(SlotState { source_id: source_id.clone(), snapshot_lsn: None, snapshot_done: false });
        let plan = if options.resnapshot {
            if slot_row.is_some() {
                tracing::warn!(slot, "dropping the replication slot for a new snapshot (--resnapshot)");
                setup::drop_slot(&sql, slot, Duration::from_secs(30)).await?;
            }
            state.snapshot_lsn = None;
            state.snapshot_done = false;
            Plan::Snapshot
        } else {
            match &slot_row {
                Some(row) if row.wal_status.as_deref() == Some("lost") => {
                    return Err(CdcError::SlotLost {
                        slot: slot.to_owned(),
                        reason:
                            "its wal_status is `lost`: PostgreSQL removed WAL it still needed (max_slot_wal_keep_size)"
                                .into(),
                        confirmed: row.confirmed_flush_lsn.map(|l| l.to_string()).unwrap_or_default(),
                    });
                }
                Some(row)
                    if row.plugin.as_deref() != Some("pgoutput") || row.database.as_deref() != Some(&info.dbname) =>
                {
                    return Err(CdcError::Config(format!(
                        "replication slot `{slot}` exists but is not a pgoutput slot of database {} (plugin {:?}, database {:?}); choose another --slot",
                        info.dbname, row.plugin, row.database
                    )));
                }
                Some(_) if state.snapshot_done => Plan::Stream,
                Some(_) if streamed_since.is_some_and(|p| Some(Lsn(p.lsn)) >= state.snapshot_lsn) => {
                    // Streamed records prove the snapshot completed before a crash hid it.
                    state.snapshot_done = true;
                    Plan::Stream
                }
                Some(_) => {
                    tracing::warn!(slot, "the initial snapshot was interrupted; dropping the slot to take a new one");
                    setup::drop_slot(&sql, slot, Duration::from_secs(30)).await?;
                    state.snapshot_lsn = None;
                    Plan::Snapshot
                }
                None if state.snapshot_done => {
                    return Err(CdcError::SlotLost {
                        slot: slot.to_owned(),
                        reason: "it no longer exists although its snapshot completed (dropped by someone, or the server was rebuilt)".into(),
                        confirmed: state.snapshot_lsn.map(|l| l.to_string()).unwrap_or_default(),
                    });
                }
                None => Plan::Snapshot,
            }
        };
        setup::write_state(&sql, slot, &options.publication, &state).await?;
        let builder = Builder { pipeline: pipeline.clone(), source_id, partitions, relayed };
        Ok(Self {
            info,
            options,
            sql,
            pipeline,
            builder,
            plan,
            stats: Arc::default(),
            durable: Arc::new(watch::channel(0).0),
        })
    }
}

/// The last position from `source_id` in the tail of one partition (zero if none).
pub(super) async fn last_position(
    log: &dyn EventLog,
    topic: &str,
    partition: u32,
    source_id: &str,
) -> Result<Position> {
    let found = capture::last_in_partition(log, topic, partition, source_id, |r| {
        let lsn = header_text(r, LSN_HEADER)?.parse::<Lsn>().ok()?;
        let index = header_text(r, INDEX_HEADER)?.parse::<u64>().ok()?;
        let phase = if r.header(SNAPSHOT_HEADER).is_some() { 0 } else { 1 };
        Some(Position { lsn: lsn.0, phase, index })
    })
    .await?;
    Ok(found.unwrap_or_default())
}
