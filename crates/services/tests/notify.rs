//! Notifications against real receivers on loopback: an HTTP receiver in this test that checks
//! each signature, rsyslog (the SIEM) and an SMTP server (aiosmtpd), both started by
//! scripts/services/receivers.sh, which exports where they listen.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog, ProduceRecord};
use eventline_model::events::Severity;
use eventline_model::topics::{Acks, COMPLIANCE_ALERTS, TopicSpec, builtin_specs, dead_letter_topic};
use eventline_platform::db::Database;
use eventline_services::notify::channel::signature;
use eventline_services::notify::config::{ChannelConfig, ChannelType, RouteConfig, Secret};
use eventline_services::notify::store;
use eventline_services::notify::{NotificationsConfig, NotifyService};
use serde_json::{Value, json};
use tokio::sync::watch;

const SECRET: &str = "webhook-test-secret";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run `scripts/services/receivers.sh start`, then \
             `set -a; . scripts/services/.env; set +a` (scripts/test.sh does both)"
        )
    })
}

/// What the HTTP receiver got: per alert id, the bodies (a retry after a crash may repeat one).
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let status = StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap();
    let sig = headers.get("x-eventline-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert_eq!(sig, signature(SECRET.as_bytes(), &body), "the signature is HMAC-SHA256 of the body");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    let key = headers.get("idempotency-key").unwrap().to_str().unwrap().to_owned();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["alert_id"], key.as_str(), "Idempotency-Key is the alert id");
    if status.is_success() {
        r.got.lock().unwrap().entry(key).or_default().push(v);
    }
    status
}

impl Receiver {
    /// Serves on `addr` (port 0: any) until the returned handle is aborted.
    async fn serve(&self, addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        if self.status.load(Ordering::SeqCst) == 0 {
            self.status.store(200, Ordering::SeqCst);
        }
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(self.clone());
        (addr, tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }))
    }

    fn ids(&self) -> BTreeMap<String, usize> {
        self.got.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.len())).collect()
    }
}

fn alert(i: usize, field: &str, severity: &str, at: &str) -> Value {
    json!({
        "alert_id": format!("alert-{i:05}"), "alert_type": "PII_EXPOSURE", "severity": severity,
        "details": {"component": "card_agent", "field": field, "action": "REDACTED", "pii_type": "SSN"},
        "timestamp": at,
        "_metadata": {"timestamp": at, "message_id": format!("m{i}"), "producer": "eventline"}
    })
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<EmbeddedLog>,
    db: Database,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
    for spec in builtin_specs(&TopicSpec::new("defaults")) {
        log.ensure_topic(&spec).await.unwrap();
        log.ensure_topic(&spec.dead_letter()).await.unwrap();
    }
    let db = Database::open(&dir.path().join("eventline.db")).unwrap();
    Fixture { _dir: dir, log, db }
}

impl Fixture {
    async fn produce(&self, alerts: &[Value]) {
        let records = alerts
            .iter()
            .map(|a| ProduceRecord::new(Some(a["alert_id"].as_str().unwrap().to_owned()), a.to_string()))
            .collect();
        self.log.produce(COMPLIANCE_ALERTS, records, Acks::All).await.unwrap();
    }

    fn start(&self, config: &NotificationsConfig) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let routing = config.resolve(|_| None).unwrap();
        let service = NotifyService::new(self.log.clone(), self.db.clone(), routing).unwrap();
        let (stop, stopped) = watch::channel(false);
        (stop, tokio::spawn(async move { service.run(stopped).await.unwrap() }))
    }

    async fn states(&self) -> BTreeMap<String, usize> {
        self.db
            .read(|c| store::counts(c).unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|(ch, st, n)| (format!("{ch}:{st}"), n as usize))
            .collect()
    }
}

fn webhook(name: &str, url: String) -> ChannelConfig {
    ChannelConfig {
        name: name.into(),
        kind: ChannelType::Webhook,
        url: Some(url),
        secret: Some(Secret(SECRET.into())),
        secret_env: None,
        from: None,
        to: Vec::new(),
    }
}

fn config(channels: Vec<ChannelConfig>, coalesce: Option<&str>) -> NotificationsConfig {
    let names = channels.iter().map(|c| c.name.clone()).collect();
    NotificationsConfig {
        channels,
        routes: vec![RouteConfig {
            alert_types: vec!["*".into()],
            min_severity: Severity::Low,
            channels: names,
            coalesce: coalesce.map(str::to_owned),
        }],
        max_attempts: 100,
        backoff_min: "50ms".into(),
        backoff_max: "300ms".into(),
        timeout: "2s".into(),
        concurrency: 16,
    }
}

async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_text(offset_ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(offset_ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_gets_every_alert_once_it_is_back_and_nothing_is_resent_after_a_restart() {
    let f = fixture().await;
    let receiver = Receiver::default();
    // Take a port, then close it: the receiver is down.
    let (addr, server) = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    server.abort();
    let _ = server.await;
    let cfg = config(vec![webhook("hook", format!("http://{addr}/hook"))], None);
    let (stop, task) = f.start(&cfg);
    let alerts: Vec<Value> = (0..200).map(|i| alert(i, &format!("/f{i}"), "HIGH", &now_text(0))).collect();
    f.produce(&alerts).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.ids().is_empty());
    let states = f.states().await;
    assert_eq!(states.get("hook:pending"), Some(&200), "{states:?}");
    // Back up on the same port.
    let (_, server) = receiver.serve(addr).await;
    wait_for("all 200 alerts", 30, || receiver.ids().len() == 200).await;
    assert!(receiver.ids().values().all(|n| *n == 1), "each once");
    wait_for("the delivered state", 10, || true).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(f.states().await.get("hook:delivered"), Some(&200));
    let listed = f.db.read(|c| store::recent(c, 5, None).unwrap()).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed[0].deliveries[0].attempts >= 2, "it was retried: {:?}", listed[0].deliveries);
    assert_eq!(listed[0].deliveries[0].state, "delivered");

    // A restart resends nothing that was delivered, and delivers what is new.
    let (stop, task) = f.start(&cfg);
    f.produce(&[alert(500, "/new", "HIGH", &now_text(0))]).await;
    wait_for("the new alert", 20, || receiver.ids().len() == 201).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(receiver.ids().values().all(|n| *n == 1), "nothing resent");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_channel_down_does_not_hold_back_another_and_gives_up_into_the_dead_letter_topic() {
    let f = fixture().await;
    let up = Receiver::default();
    let (up_addr, _up_server) = up.serve("127.0.0.1:0".parse().unwrap()).await;
    let failing = Receiver::default();
    failing.status.store(503, Ordering::SeqCst);
    let (down_addr, _down_server) = failing.serve("127.0.0.1:0".parse().unwrap()).await;
    let mut cfg = config(
        vec![webhook("up", format!("http://{up_addr}/hook")), webhook("down", format!("http://{down_addr}/hook"))],
        None,
    );
    cfg.max_attempts = 3;
    let (stop, task) = f.start(&cfg);
    let alerts: Vec<Value> = (0..50).map(|i| alert(i, &format!("/f{i}"), "CRITICAL", &now_text(0))).collect();
    f.produce(&alerts).await;
    wait_for("the healthy channel", 10, || up.ids().len() == 50).await;
    // The failing channel gives up after 3 attempts: each alert to compliance.alerts.dlq.
    let dlq = dead_letter_topic(COMPLIANCE_ALERTS);
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead.len() < 50 {
        assert!(tokio::time::Instant::now() < deadline, "dead letters: {}", dead.len());
        dead.clear();
        for p in 0..3 {
            dead.extend(f.log.fetch(&dlq, p, 0, 1000).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(dead.len(), 50, "once each");
    let header = |r: &eventline_log::Record, name: &str| {
        r.headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value.clone())
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
    };
    assert_eq!(header(&dead[0], "eventline.dlq.channel").as_deref(), Some("down"));
    assert_eq!(header(&dead[0], "eventline.dlq.error").as_deref(), Some("HTTP 503 Service Unavailable"));
    assert_eq!(header(&dead[0], "eventline.dlq.attempts").as_deref(), Some("3"));
    let v: Value = serde_json::from_slice(dead[0].value.as_deref().unwrap()).unwrap();
    assert!(v["alert_id"].as_str().unwrap().starts_with("alert-"), "the alert as it was");
    let states = f.states().await;
    assert_eq!((states.get("up:delivered"), states.get("down:dead")), (Some(&50), Some(&50)), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_alerts_within_the_window_are_coalesced() {
    let f = fixture().await;
    let receiver = Receiver::default();
    let (addr, _server) = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    let (stop, task) = f.start(&config(vec![webhook("hook", format!("http://{addr}/hook"))], Some("5m")));
    // Ten of the same (type, component, field) within a minute, one of another field, and one of
    // the same kind ten minutes later.
    let mut alerts: Vec<Value> =
        (0..10).map(|i| alert(i, "/output/message", "HIGH", &now_text(i as i64 * 1000))).collect();
    alerts.push(alert(10, "/output/other", "HIGH", &now_text(0)));
    alerts.push(alert(11, "/output/message", "HIGH", &now_text(600_000)));
    f.produce(&alerts).await;
    wait_for("three deliveries", 10, || receiver.ids().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(receiver.ids().len(), 3, "{:?}", receiver.ids());
    let states = f.states().await;
    assert_eq!(states.get("hook:coalesced"), Some(&9), "{states:?}");
    let listed = f.db.read(|c| store::recent(c, 20, None).unwrap()).await.unwrap();
    let leaders: std::collections::BTreeSet<_> = listed
        .iter()
        .filter(|a| a.deliveries[0].state == "coalesced")
        .map(|a| a.deliveries[0].coalesced_into.clone().unwrap())
        .collect();
    assert_eq!(leaders.len(), 1, "all into the one that went out: {leaders:?}");
    assert!(receiver.ids().contains_key(leaders.iter().next().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_siem_gets_rfc_5424_syslog_with_cef_over_udp_and_tcp() {
    let file = env("EVENTLINE_TEST_SYSLOG_FILE");
    let f = fixture().await;
    let syslog = |name: &str, url: String| ChannelConfig {
        name: name.into(),
        kind: ChannelType::Syslog,
        url: Some(url),
        secret: None,
        secret_env: None,
        from: None,
        to: Vec::new(),
    };
    let cfg = config(
        vec![
            syslog("siem-udp", format!("udp://{}", env("EVENTLINE_TEST_SYSLOG_UDP"))),
            syslog("siem-tcp", format!("tcp://{}", env("EVENTLINE_TEST_SYSLOG_TCP"))),
        ],
        None,
    );
    let run = uuid::Uuid::now_v7().simple().to_string();
    let alerts: Vec<Value> = (0..20)
        .map(|i| {
            let mut a = alert(i, "/output/message", "CRITICAL", &now_text(0));
            a["alert_id"] = json!(format!("{run}-{i}"));
            a
        })
        .collect();
    let (stop, task) = f.start(&cfg);
    f.produce(&alerts).await;
    let lines = || -> Vec<String> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&run))
            .map(str::to_owned)
            .collect()
    };
    wait_for("40 syslog messages", 20, || lines().len() >= 40).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let lines = lines();
    assert_eq!(lines.len(), 40, "20 alerts on each of two channels");
    for l in &lines {
        // <PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] CEF:0|vendor|product|version|class|name|severity|ext
        assert!(l.starts_with("<106>1 "), "facility 13, severity crit: {l}");
        assert!(l.contains(" eventline ") && l.contains(" PII_EXPOSURE [eventline@32473 alertId=\""), "{l}");
        let cef = &l[l.find("CEF:0|eventline|eventline|").expect("CEF")..];
        let fields: Vec<&str> = cef.splitn(8, '|').collect();
        assert_eq!(fields[4], "PII_EXPOSURE");
        assert_eq!(fields[6], "10", "CRITICAL is CEF severity 10");
        assert!(fields[7].contains(&format!("externalId={run}-")) && fields[7].contains("act=REDACTED"), "{l}");
        assert!(fields[7].contains("cs1Label=component cs1=card_agent"), "{l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_through_a_real_smtp_server_with_type_and_severity_in_the_subject() {
    let maildir = env("EVENTLINE_TEST_MAILDIR");
    let f = fixture().await;
    let to = format!("secops-{}@bank.example", uuid::Uuid::now_v7().simple());
    let cfg = config(
        vec![ChannelConfig {
            name: "mail".into(),
            kind: ChannelType::Email,
            url: Some(format!("smtp://{}", env("EVENTLINE_TEST_SMTP"))),
            secret: None,
            secret_env: None,
            from: Some("eventline@bank.example".into()),
            to: vec![to.clone()],
        }],
        None,
    );
    let (stop, task) = f.start(&cfg);
    f.produce(&[alert(7, "/output/message", "HIGH", &now_text(0))]).await;
    let find = || -> Option<String> {
        std::fs::read_dir(Path::new(&maildir).join("new"))
            .ok()?
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .find(|m| m.contains(&to))
    };
    let mut mail = None;
    wait_for("the e-mail", 20, || {
        mail = find();
        mail.is_some()
    })
    .await;
    stop.send(true).unwrap();
    task.await.unwrap();
    let mail = mail.unwrap();
    assert!(mail.contains("Subject: [eventline] PII_EXPOSURE HIGH"), "{mail}");
    assert!(mail.contains("Message-ID: <alert-00007@eventline>"), "{mail}");
    assert!(
        mail.contains("Severity:  HIGH") && mail.contains("\"alert_id\": \"alert-00007\""),
        "text and JSON: {mail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_default_retries_a_receiver_down_for_a_minute_gets_every_alert() {
    let f = fixture().await;
    let receiver = Receiver::default();
    let (addr, server) = receiver.serve("127.0.0.1:0".parse().unwrap()).await;
    server.abort();
    let _ = server.await;
    // The defaults: 8 attempts, 2 s doubling to 5 min, with jitter.
    let cfg = NotificationsConfig {
        max_attempts: NotificationsConfig::default().max_attempts,
        backoff_min: NotificationsConfig::default().backoff_min,
        backoff_max: NotificationsConfig::default().backoff_max,
        ..config(vec![webhook("hook", format!("http://{addr}/hook"))], None)
    };
    let (stop, task) = f.start(&cfg);
    let alerts: Vec<Value> = (0..50).map(|i| alert(i, &format!("/f{i}"), "HIGH", &now_text(0))).collect();
    f.produce(&alerts).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(receiver.ids().is_empty(), "down for a minute");
    let (_, server) = receiver.serve(addr).await;
    wait_for("every alert after the outage", 150, || receiver.ids().len() == 50).await;
    stop.send(true).unwrap();
    task.await.unwrap();
    assert!(receiver.ids().values().all(|n| *n == 1));
    assert_eq!(f.states().await.get("hook:delivered"), Some(&50), "none went to the dead-letter topic");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_coalesced_into_one_that_went_dead_are_not_lost() {
    let f = fixture().await;
    let failing = Receiver::default();
    failing.status.store(503, Ordering::SeqCst);
    let (addr, _server) = failing.serve("127.0.0.1:0".parse().unwrap()).await;
    let mut cfg = config(vec![webhook("hook", format!("http://{addr}/hook"))], Some("5m"));
    cfg.max_attempts = 2;
    let (stop, task) = f.start(&cfg);
    let alerts: Vec<Value> = (0..5).map(|i| alert(i, "/output/message", "HIGH", &now_text(i as i64 * 1000))).collect();
    f.produce(&alerts).await;
    // The leader goes dead; the ones coalesced into it are delivered (here: dead-lettered) on their own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while f.states().await.get("hook:dead") != Some(&5) {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", f.states().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap();
    let mut dead = 0;
    for p in 0..3 {
        dead += f.log.watermarks(&dead_letter_topic(COMPLIANCE_ALERTS), p).await.unwrap().1;
    }
    assert_eq!(dead, 5, "each alert reaches the dead-letter topic");
}
