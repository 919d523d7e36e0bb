//! The lake on disk: `<lake>/<topic>/date=YYYY-MM-DD/part-<partition>-<first>-<last>.parquet`
//! (partition 5 digits, offsets 20, so names sort by offset), zstd-compressed, with the topic,
//! partition and offset range also in the footer's key-value metadata.
//!
//! A file is written as `.part-….parquet.tmp`, fsynced, renamed, and its directory fsynced: a
//! file with a final name is complete. Records of one partition are cut into files at every
//! change of date, in offset order, and files are renamed in offset order, so the complete files
//! of a partition always cover a prefix of what was written: the highest last offset is where
//! the lake resumes. Compaction writes the merged file first and removes the small ones after;
//! a file whose range lies inside another file's of the same partition and date is a leftover
//! of an interrupted compaction and is removed when found.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::layout::{self, Row};

/// A complete lake file, from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeFile {
    pub path: PathBuf,
    pub topic: String,
    pub date: String,
    pub partition: u32,
    pub first: u64,
    pub last: u64,
}

/// The `date=` directory of an event time (UTC).
pub fn date_of(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().format("%Y-%m-%d").to_string()
}

pub fn file_name(partition: u32, first: u64, last: u64) -> String {
    format!("part-{partition:05}-{first:020}-{last:020}.parquet")
}

fn parse_name(name: &str) -> Option<(u32, u64, u64)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut it = rest.split('-');
    let p = it.next()?.parse().ok()?;
    let a = it.next()?.parse().ok()?;
    let b = it.next()?.parse().ok()?;
    (it.next().is_none() && a <= b).then_some((p, a, b))
}

/// The complete files of `topic` under `root`, removing compaction leftovers and temporaries
/// (all of them: the caller owns the topic's partitions, e.g. the lake consumer at assignment).
pub fn scan(root: &Path, topic: &str) -> std::io::Result<Vec<LakeFile>> {
    scan_keeping_recent_temporaries(root, topic, std::time::Duration::ZERO)
}

/// Like [`scan`], removing only temporaries older than `age`: another process (a running lake
/// consumer) may be writing the younger ones.
pub fn scan_keeping_recent_temporaries(
    root: &Path,
    topic: &str,
    age: std::time::Duration,
) -> std::io::Result<Vec<LakeFile>> {
    let dir = root.join(topic);
    let mut out = Vec::new();
    let Ok(dates) = std::fs::read_dir(&dir) else { return Ok(out) };
    for d in dates {
        let d = d?;
        let Some(date) = d.file_name().to_str().and_then(|n| n.strip_prefix("date=")).map(str::to_owned) else {
            continue;
        };
        let mut here = Vec::new();
        for f in std::fs::read_dir(d.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if name.starts_with(".part-") && name.ends_with(".tmp") {
                let old = f.metadata()?.modified().ok().and_then(|m| m.elapsed().ok()).is_none_or(|e| e >= age);
                if old {
                    std::fs::remove_file(f.path())?;
                }
                continue;
            }
            if let Some((partition, first, last)) = parse_name(&name) {
                here.push(LakeFile {
                    path: f.path(),
                    topic: topic.to_owned(),
                    date: date.clone(),
                    partition,
                    first,
                    last,
                });
            }
        }
        // Leftovers of an interrupted compaction: inside another file's range.
        let mut keep = Vec::new();
        for f in &here {
            let inside = here.iter().any(|o| {
                o.path != f.path
                    && o.partition == f.partition
                    && o.first <= f.first
                    && f.last <= o.last
                    && (o.first, o.last) != (f.first, f.last)
            });
            if inside {
                std::fs::remove_file(&f.path)?;
            } else {
                keep.push(f.clone());
            }
        }
        out.extend(keep);
    }
    out.sort_by_key(|f| (f.partition, f.first));
    Ok(out)
}

/// Per partition, the offset after the highest complete file.
pub fn resume_points(files: &[LakeFile]) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for f in files {
        let next = out.entry(f.partition).or_insert(0);
        *next = (*next).max(f.last + 1);
    }
    out
}

fn properties(topic: &str, partition: u32, first: u64, last: u64, records: usize) -> WriterProperties {
    let kv = |k: &str, v: String| KeyValue::new(k.to_owned(), v);
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).expect("level 1 is valid")))
        .set_key_value_metadata(Some(vec![
            kv("eventline.topic", topic.to_owned()),
            kv("eventline.partition", partition.to_string()),
            kv("eventline.first_offset", first.to_string()),
            kv("eventline.last_offset", last.to_string()),
            kv("eventline.records", records.to_string()),
        ]))
        .build()
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `rows` (one partition, one date, offsets ascending) as one complete file.
pub fn write(root: &Path, topic: &str, date: &str, rows: &[&Row]) -> Result<LakeFile, String> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Err("no rows".into()) };
    let (partition, a, b) = (first.partition, first.offset, last.offset);
    let dir = root.join(topic).join(format!("date={date}"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = file_name(partition, a, b);
    let tmp = dir.join(format!(".{name}.tmp"));
    let batch = layout::batch(topic, rows).map_err(|e| e.to_string())?;
    let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut w = ArrowWriter::try_new(file, batch.schema(), Some(properties(topic, partition, a, b, rows.len())))
        .map_err(|e| e.to_string())?;
    w.write(&batch).map_err(|e| e.to_string())?;
    let file = w.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    let path = dir.join(&name);
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    fsync_dir(&dir).map_err(|e| e.to_string())?;
    Ok(LakeFile { path, topic: topic.to_owned(), date: date.to_owned(), partition, first: a, last: b })
}

/// Records in a file (from its footer).
pub fn rows_in(path: &Path) -> Result<usize, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string())?;
    Ok(b.metadata().file_metadata().num_rows() as usize)
}

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    pub merged_files: usize,
    pub into_files: usize,
    pub records: usize,
}

/// Merges the files of each partition and date of `topic` (only `date` when given) into one.
pub fn compact(root: &Path, topic: &str, date: Option<&str>) -> Result<Compacted, String> {
    // A running lake consumer may be writing: its temporaries are left alone.
    let files = scan_keeping_recent_temporaries(root, topic, std::time::Duration::from_secs(3600))
        .map_err(|e| e.to_string())?;
    let mut groups: BTreeMap<(String, u32), Vec<LakeFile>> = BTreeMap::new();
    for f in files.into_iter().filter(|f| date.is_none_or(|d| d == f.date)) {
        groups.entry((f.date.clone(), f.partition)).or_default().push(f);
    }
    let mut out = Compacted::default();
    for ((date, partition), group) in groups {
        if group.len() < 2 {
            continue;
        }
        let (first, last) =
            (group.iter().map(|f| f.first).min().unwrap_or(0), group.iter().map(|f| f.last).max().unwrap_or(0));
        let dir = root.join(topic).join(format!("date={date}"));
        let name = file_name(partition, first, last);
        let tmp = dir.join(format!(".{name}.tmp"));
        let records = group.iter().map(|f| rows_in(&f.path)).sum::<Result<usize, String>>()?;
        let file = File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        let props = properties(topic, partition, first, last, records);
        let mut w = ArrowWriter::try_new(file, layout::schema(topic), Some(props)).map_err(|e| e.to_string())?;
        for f in &group {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f.path).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?
                .build()
                .map_err(|e| e.to_string())?;
            for batch in reader {
                w.write(&batch.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
        }
        let file = w.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        let merged = dir.join(&name);
        std::fs::rename(&tmp, &merged).map_err(|e| e.to_string())?;
        fsync_dir(&dir).map_err(|e| e.to_string())?;
        for f in &group {
            if f.path != merged {
                std::fs::remove_file(&f.path).map_err(|e| e.to_string())?;
            }
        }
        fsync_dir(&dir).map_err(|e| e.to_string())?;
        out.merged_files += group.len();
        out.into_files += 1;
        out.records += records;
    }
    Ok(out)
}
