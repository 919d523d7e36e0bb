//! The log through a running `eventline up`: while `up` holds the data directory's lock,
//! `topics`, `produce` and `consume` talk to its gateway over HTTP (the `/v1/topics` endpoints)
//! with the admin key from `<data-dir>/admin.key`, and print what they print on the log itself.
//!
//! `up` says where it serves in `<data-dir>/up.json` (`{"pid", "url"}`), written once the
//! listener is bound and removed on a clean shutdown; a file whose process is gone is ignored.
//!
//! [`Remote`] implements the [`EventLog`] port, so commands work on `Access::log` whichever way
//! they reach the log. What a client of `up` cannot do (consumer groups, deleting a topic) is
//! [`LogError::Unsupported`] with the way out in the message. Two things stay specific to `up`,
//! through `Access::up`: `produce` sends the raw lines, so `up`'s own pipeline validates and governs
//! them once (a client-side pipeline would hash configured fields twice), and `consume --follow`
//! takes the server's stream instead of polling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use eventline_log::{EventLog, LogError, PartitionInfo, Record, TopicDescription};
use eventline_model::topics::TopicSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use eventline_gateway::wire::RecordView;

use crate::Exit;
use crate::backend::open_log;
use crate::config::{Backend, Config};

/// The file `up` writes into the data directory.
pub const UP_FILE: &str = "up.json";

/// Where a running `up` serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpFile {
    pub pid: u32,
    pub url: String,
}

impl UpFile {
    /// Writes `<data_dir>/up.json` atomically (a temporary file renamed over it).
    pub fn write(&self, data_dir: &Path) -> std::io::Result<PathBuf> {
        let path = data_dir.join(UP_FILE);
        let tmp = data_dir.join(format!(".{UP_FILE}.{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec(self).expect("serialises"))?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Removes `<data_dir>/up.json` if it is this process's.
    pub fn remove(data_dir: &Path) {
        if Self::read(data_dir).is_some_and(|f| f.pid == std::process::id()) {
            let _ = std::fs::remove_file(data_dir.join(UP_FILE));
        }
    }

    /// The file, if there is one and its process is alive.
    pub fn read(data_dir: &Path) -> Option<UpFile> {
        let text = std::fs::read(data_dir.join(UP_FILE)).ok()?;
        let file: UpFile = serde_json::from_slice(&text).ok()?;
        // A stale file (the process died without cleaning up) names a pid that is gone.
        Path::new("/proc").join(file.pid.to_string()).exists().then_some(file)
    }
}

/// The log of this command: opened directly, or through the `up` that holds it.
pub struct Access {
    pub log: Arc<dyn EventLog>,
    /// The server, when the log is reached through a running `up`.
    pub up: Option<Arc<Remote>>,
}

/// Opens the configured log; when the embedded log's directory is locked by a running `up`
/// that wrote `up.json`, goes through that server instead.
pub async fn open(config: &Config) -> anyhow::Result<Access> {
    let err = match open_log(config).await {
        Ok(log) => return Ok(Access { log, up: None }),
        Err(e) => e,
    };
    let locked = err.chain().any(|c| matches!(c.downcast_ref::<LogError>(), Some(LogError::Locked { .. })));
    if config.backend != Backend::Embedded || !locked {
        return Err(err);
    }
    match UpFile::read(&config.data_dir) {
        Some(up) => {
            tracing::info!(url = %up.url, pid = up.pid, "the data directory is in use by `eventline up`; going through its gateway");
            let remote = Arc::new(Remote::new(config, up)?);
            Ok(Access { log: remote.clone(), up: Some(remote) })
        }
        None => Err(err),
    }
}

/// An HTTP client for the running `up`: it trusts `gateway.tls_cert` when `up` serves HTTPS with
/// a certificate of its own.
pub fn http_client(config: &Config, timeout: Option<std::time::Duration>) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder();
    if let Some(t) = timeout {
        b = b.timeout(t);
    }
    if let Some(cert) = &config.gateway.tls_cert {
        let pem = std::fs::read(cert).with_context(|| format!("cannot read gateway.tls_cert {}", cert.display()))?;
        for c in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("gateway.tls_cert {} is not a PEM certificate", cert.display()))?
        {
            b = b.add_root_certificate(c);
        }
    }
    b.build().context("cannot build the HTTP client")
}

/// The gateway and admin key to use: the given ones, else the `up` running on the data directory
/// (`up.json`) and its `admin.key`. The error says what to do.
pub fn locate(config: &Config, url: Option<&str>, key: Option<&str>) -> Result<(String, String), Exit> {
    let url = match url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => UpFile::read(&config.data_dir).map(|u| u.url).ok_or_else(|| {
            Exit::new(
                2,
                format!(
                    "no `eventline up` is running on {} (no live up.json): start it, or give --url",
                    config.data_dir.display()
                ),
            )
        })?,
    };
    let key = match key {
        Some(k) => k.to_owned(),
        None => {
            std::fs::read_to_string(config.data_dir.join("admin.key")).map(|k| k.trim().to_owned()).map_err(|_| {
                Exit::new(2, format!("no admin key in {}: give --key", config.data_dir.join("admin.key").display()))
            })?
        }
    };
    Ok((url, key))
}

/// A client of the gateway's `/v1/topics` endpoints.
#[derive(Debug)]
pub struct Remote {
    http: reqwest::Client,
    url: String,
    key: String,
}

#[derive(Deserialize)]
struct DescriptionView {
    spec: TopicSpec,
    partitions: Vec<PartitionView>,
}

#[derive(Deserialize)]
struct PartitionView {
    partition: u32,
    start_offset: u64,
    end_offset: u64,
    size_bytes: Option<u64>,
}

impl From<DescriptionView> for TopicDescription {
    fn from(d: DescriptionView) -> Self {
        TopicDescription {
            spec: d.spec,
            partitions: d
                .partitions
                .into_iter()
                .map(|p| PartitionInfo {
                    partition: p.partition,
                    start_offset: p.start_offset,
                    end_offset: p.end_offset,
                    size_bytes: p.size_bytes,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize)]
struct RecordsPage {
    records: Vec<RecordView>,
    next_offset: u64,
}

/// A position the server acknowledged.
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct Position {
    pub partition: u32,
    pub offset: Option<u64>,
}

/// What one produce request did: the positions of the records appended and, when a record was
/// refused, its line within the request and why.
pub struct ProduceReply {
    pub positions: Vec<Position>,
    pub refused: Option<(usize, String)>,
}

/// How a produce request makes its records (the `produce` flags).
#[derive(Default)]
pub struct ProduceParams {
    pub key: Option<String>,
    pub partition: Option<u32>,
    pub acks: Option<String>,
    pub stamp: bool,
    pub headers: Vec<String>,
}

impl Remote {
    fn new(config: &Config, up: UpFile) -> anyhow::Result<Remote> {
        let data_dir = &config.data_dir;
        let key_path = data_dir.join("admin.key");
        let key = std::fs::read_to_string(&key_path)
            .with_context(|| {
                format!(
                    "the data directory is in use by `eventline up` (pid {}, {}), but its admin key {} cannot be read",
                    up.pid,
                    up.url,
                    key_path.display()
                )
            })?
            .trim()
            .to_owned();
        let http = http_client(config, None)?;
        Ok(Remote { http, url: up.url.trim_end_matches('/').to_owned(), key })
    }

    /// The server's URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let (status, body) = self.exchange(req).await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(Exit::new(1, self.error_text(status, &body)).into())
    }

    /// Sends `req`; the status and the JSON body (null when there is none), whatever the status.
    async fn exchange(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let response = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    fn unreachable(&self, e: reqwest::Error) -> Exit {
        Exit::new(1, format!("cannot reach `eventline up` at {}: {}", self.url, e.without_url()))
    }

    fn error_text(&self, status: reqwest::StatusCode, body: &Value) -> String {
        match body["error"]["message"].as_str() {
            Some(m) => m.to_owned(),
            None => format!("`eventline up` at {} answered {status}", self.url),
        }
    }

    /// `GET path` (with its query) as JSON; an error answer is an error naming what the server said.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn list_topics(&self) -> anyhow::Result<Vec<TopicDescription>> {
        let body = self.send(self.request(reqwest::Method::GET, "/v1/topics")).await?;
        let topics: Vec<DescriptionView> =
            serde_json::from_value(body["topics"].clone()).context("unexpected answer to GET /v1/topics")?;
        Ok(topics.into_iter().map(Into::into).collect())
    }

    /// Up to `limit` (at most 1000) records of `topic`/`partition` from `offset`.
    pub async fn fetch(&self, topic: &str, partition: u32, offset: u64, limit: usize) -> anyhow::Result<Vec<Record>> {
        let q = [
            ("partition", partition.to_string()),
            ("offset", offset.to_string()),
            ("limit", limit.min(1000).to_string()),
        ];
        let page = self.page(topic, &q).await?;
        let name: Arc<str> = topic.into();
        Ok(page.records.into_iter().map(|r| r.into_record(&name)).collect())
    }

    /// The first offset of `partition` at or after `timestamp_ms`.
    pub async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> anyhow::Result<u64> {
        let since = chrono::DateTime::from_timestamp_millis(timestamp_ms)
            .context("--since is out of range")?
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let q = [("partition", partition.to_string()), ("since", since), ("limit", "0".to_owned())];
        Ok(self.page(topic, &q).await?.next_offset)
    }

    async fn page(&self, topic: &str, q: &[(&str, String)]) -> anyhow::Result<RecordsPage> {
        let body =
            self.send(self.request(reqwest::Method::GET, &format!("/v1/topics/{topic}/records")).query(q)).await?;
        serde_json::from_value(body).context("unexpected answer to GET /v1/topics/{topic}/records")
    }

    /// Appends `ndjson` (the lines as read, blank ones included so line numbers match).
    pub async fn produce(&self, topic: &str, params: &ProduceParams, ndjson: String) -> anyhow::Result<ProduceReply> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(k) = &params.key {
            q.push(("key", k.clone()));
        }
        if let Some(p) = params.partition {
            q.push(("partition", p.to_string()));
        }
        if let Some(a) = &params.acks {
            q.push(("acks", a.clone()));
        }
        if params.stamp {
            q.push(("stamp", "true".to_owned()));
        }
        for h in &params.headers {
            q.push(("header", h.clone()));
        }
        let req = self
            .request(reqwest::Method::POST, &format!("/v1/topics/{topic}/records"))
            .query(&q)
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(ndjson);
        let (status, body) = self.exchange(req).await?;
        let positions = |v: &Value| -> anyhow::Result<Vec<Position>> {
            serde_json::from_value(v.clone()).context("unexpected answer to POST /v1/topics/{topic}/records")
        };
        if status.is_success() {
            return Ok(ProduceReply { positions: positions(&body["records"])?, refused: None });
        }
        let details = &body["error"]["details"];
        match (body["error"]["code"].as_str(), details["line"].as_u64(), details["reason"].as_str()) {
            (Some("invalid_record"), Some(line), Some(reason)) => Ok(ProduceReply {
                positions: positions(&details["records"])?,
                refused: Some((line as usize, reason.to_owned())),
            }),
            _ => Err(Exit::new(1, self.error_text(status, &body)).into()),
        }
    }

    /// Follows `topic` from `offsets` (partition, next offset) as Server-Sent Events.
    pub async fn stream(&self, topic: &str, offsets: &[(u32, u64)]) -> anyhow::Result<RecordStream> {
        let mut q = vec![("offsets", offsets.iter().map(|(p, o)| format!("{p}:{o}")).collect::<Vec<_>>().join(","))];
        // Only the partitions asked for: one (`--partition`) or all.
        if let [(p, _)] = offsets {
            q.push(("partition", p.to_string()));
        }
        let response = self
            .request(reqwest::Method::GET, &format!("/v1/topics/{topic}/stream"))
            .query(&q)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return Err(Exit::new(1, self.error_text(status, &body)).into());
        }
        Ok(RecordStream { response, buffer: Vec::new(), topic: topic.into(), url: self.url.clone() })
    }
}

/// Records arriving on a `GET /v1/topics/{topic}/stream`.
pub struct RecordStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    topic: Arc<str>,
    url: String,
}

impl RecordStream {
    /// The next record; `None` when the server ended the stream (it is shutting down).
    pub async fn next(&mut self) -> anyhow::Result<Option<Record>> {
        loop {
            // One event is a block of lines ended by an empty line.
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let mut kind = "message";
                let mut data = String::new();
                for line in text.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                match kind {
                    "record" => {
                        let r: RecordView = serde_json::from_str(&data).context("unexpected record on the stream")?;
                        return Ok(Some(r.into_record(&self.topic)));
                    }
                    "error" => return Err(Exit::new(1, format!("`eventline up` at {}: {data}", self.url)).into()),
                    _ => continue, // keep-alive comments and unknown events
                }
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => {
                    return Err(Exit::new(
                        1,
                        format!("the stream from `eventline up` at {} broke: {}", self.url, e.without_url()),
                    )
                    .into());
                }
            }
        }
    }
}

/// What failed through `up`, as the log port says it.
fn port_error(e: anyhow::Error) -> LogError {
    let message = match e.downcast_ref::<Exit>() {
        Some(exit) => exit.message.clone(),
        None => format!("{e:#}"),
    };
    LogError::Backend { backend: "eventline up", message }
}

#[async_trait::async_trait]
impl EventLog for Remote {
    /// `up` only serves the embedded log this way (a Kafka-backed `up` leaves the brokers free).
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn create_topic(&self, spec: &TopicSpec) -> eventline_log::Result<()> {
        let (status, body) =
            self.exchange(self.request(reqwest::Method::POST, "/v1/topics").json(spec)).await.map_err(port_error)?;
        match (status.is_success(), body["error"]["code"].as_str()) {
            (true, _) => Ok(()),
            (false, Some("topic_exists")) => Err(LogError::TopicExists(spec.name.clone())),
            (false, _) => Err(LogError::Backend { backend: "eventline up", message: self.error_text(status, &body) }),
        }
    }

    async fn list_topics(&self) -> eventline_log::Result<Vec<TopicDescription>> {
        Remote::list_topics(self).await.map_err(port_error)
    }

    async fn describe_topic(&self, topic: &str) -> eventline_log::Result<TopicDescription> {
        let (status, body) = self
            .exchange(self.request(reqwest::Method::GET, &format!("/v1/topics/{topic}")))
            .await
            .map_err(port_error)?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(LogError::UnknownTopic(topic.to_owned()));
        }
        if !status.is_success() {
            return Err(LogError::Backend { backend: "eventline up", message: self.error_text(status, &body) });
        }
        let d: DescriptionView = serde_json::from_value(body)
            .map_err(|e| LogError::Backend { backend: "eventline up", message: format!("unexpected answer: {e}") })?;
        Ok(d.into())
    }

    async fn delete_topic(&self, _topic: &str) -> eventline_log::Result<()> {
        Err(LogError::Unsupported(format!(
            "`eventline topics delete` needs the log itself, which `eventline up` at {} holds; stop it first",
            self.url
        )))
    }

    /// Appends through `up`'s produce endpoint: its pipeline validates and governs the values (each
    /// must be a JSON event); runs of records with the same key, partition and headers go in one
    /// request.
    async fn produce(
        &self,
        topic: &str,
        records: Vec<eventline_log::ProduceRecord>,
        acks: eventline_model::topics::Acks,
    ) -> eventline_log::Result<Vec<eventline_log::RecordPosition>> {
        let mut out = Vec::with_capacity(records.len());
        let mut i = 0;
        while i < records.len() {
            let same = |r: &eventline_log::ProduceRecord| {
                r.key == records[i].key && r.partition == records[i].partition && r.headers == records[i].headers
            };
            let run = records[i..].iter().take_while(|r| same(r)).count();
            let first = &records[i];
            let params = ProduceParams {
                key: first.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()),
                partition: first.partition,
                acks: Some(acks.to_string()),
                stamp: false,
                headers: first
                    .headers
                    .iter()
                    .map(|h| format!("{}={}", h.key, String::from_utf8_lossy(h.value.as_deref().unwrap_or_default())))
                    .collect(),
            };
            let lines: Vec<String> = records[i..i + run]
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"null")).into_owned())
                .collect();
            let reply = Remote::produce(self, topic, &params, lines.join("\n")).await.map_err(port_error)?;
            out.extend(
                reply
                    .positions
                    .iter()
                    .map(|p| eventline_log::RecordPosition { partition: p.partition, offset: p.offset }),
            );
            if let Some((line, reason)) = reply.refused {
                return Err(LogError::Backend {
                    backend: "eventline up",
                    message: format!("record {} refused: {reason}", i + line - 1),
                });
            }
            i += run;
        }
        Ok(out)
    }

    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
    ) -> eventline_log::Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut next = offset;
        while out.len() < max_records {
            let got = Remote::fetch(self, topic, partition, next, max_records - out.len()).await.map_err(port_error)?;
            let Some(last) = got.last() else { break };
            next = last.offset + 1;
            out.extend(got);
        }
        Ok(out)
    }

    async fn offset_for_time(&self, topic: &str, partition: u32, timestamp_ms: i64) -> eventline_log::Result<u64> {
        Remote::offset_for_time(self, topic, partition, timestamp_ms).await.map_err(port_error)
    }

    async fn watermarks(&self, topic: &str, partition: u32) -> eventline_log::Result<(u64, u64)> {
        let d = EventLog::describe_topic(self, topic).await?;
        d.partitions
            .iter()
            .find(|i| i.partition == partition)
            .map(|i| (i.start_offset, i.end_offset))
            .ok_or(LogError::UnknownPartition { topic: topic.to_owned(), partition, partitions: d.spec.partitions })
    }

    async fn subscribe(
        &self,
        _group: &str,
        _topics: &[String],
        _reset: eventline_log::OffsetReset,
    ) -> eventline_log::Result<Box<dyn eventline_log::GroupConsumer>> {
        Err(self.no_groups())
    }

    async fn committed(&self, _group: &str, _topic: &str, _partition: u32) -> eventline_log::Result<Option<u64>> {
        Err(self.no_groups())
    }

    async fn group_lag(&self, _group: &str) -> eventline_log::Result<Vec<eventline_log::PartitionLag>> {
        Err(self.no_groups())
    }

    async fn list_groups(&self) -> eventline_log::Result<Vec<String>> {
        Err(self.no_groups())
    }
}

impl Remote {
    fn no_groups(&self) -> LogError {
        LogError::Unsupported(format!(
            "--group: consumer groups need the log itself, which `eventline up` at {} holds; \
             consume without --group (it goes through the server) or stop `eventline up` first",
            self.url
        ))
    }
}
