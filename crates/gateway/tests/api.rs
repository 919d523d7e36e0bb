//! The gateway as a client sees it: a real server on 127.0.0.1:0, a real HTTP client, the real
//! embedded log, SQLite database, governance gate and agents.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use eventline_gateway::auth::Role;
use eventline_gateway::{AppState, GatewayOptions, Readiness, keys, serve};
use eventline_governance::{Gate, Policy};
use eventline_log::{EmbeddedLog, EmbeddedOptions, EventLog};
use eventline_model::topics::{AGENT_EXECUTIONS, COMPLIANCE_ALERTS, TopicSpec, builtin_specs};
use eventline_platform::db::Database;
use eventline_platform::executor::AgentExecutor;
use eventline_services::prices::{FeedStats, PRICE_FEED_GROUP, PriceFeed};
use reqwest::StatusCode;
use serde_json::{Value, json};

const MAX_BODY: usize = 4096;

struct Server {
    url: String,
    admin: String,
    log: Arc<EmbeddedLog>,
    db: Database,
    readiness: Arc<Readiness>,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(GatewayOptions {
            max_body_bytes: MAX_BODY,
            request_timeout: Duration::from_secs(20),
            ..GatewayOptions::default()
        })
        .await
    }

    async fn start_with(options: GatewayOptions) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EmbeddedLog::open(dir.path().join("log"), EmbeddedOptions::default()).unwrap());
        for spec in builtin_specs(&TopicSpec::new("defaults")) {
            log.ensure_topic(&spec).await.unwrap();
        }
        let db = Database::open(&dir.path().join("eventline.db")).unwrap();
        db.call_blocking(|c| eventline_platform::seed::seed_demo_bank(c, chrono::Utc::now())).unwrap();
        let admin_key = db.call_blocking(|c| keys::bootstrap_admin(c, dir.path())).unwrap();
        let admin = std::fs::read_to_string(&admin_key.path).unwrap().trim().to_owned();
        let store = db.call_blocking(|c| keys::load(c)).unwrap();
        let gate = Gate::new(Policy::default_with_key(b"test-hash-key-0123456789abcdef".to_vec()), "test");
        let pipeline =
            eventline_pipeline::Pipeline::new(log.clone(), Some(Arc::new(gate)), "enterprise-agent-platform");
        let outbox = eventline_platform::outbox::Outbox::open(
            db.clone(),
            log.clone(),
            &[eventline_model::topics::AGENT_EXECUTIONS, eventline_model::topics::COMPLIANCE_ALERTS],
        )
        .await
        .unwrap();
        // The relay runs for the life of the test's runtime.
        let (_keep, relay_stop) = tokio::sync::watch::channel(false);
        let relay = outbox.clone();
        tokio::spawn(async move {
            let _keep = _keep;
            relay.run(relay_stop).await.unwrap();
        });
        let executor = AgentExecutor::new(db.clone(), pipeline, outbox);
        let readiness = Arc::new(Readiness::default());
        readiness.set_cdc_running(true); // no capture in this harness; the binary's tests run it
        let state = AppState::new(executor, store, readiness.clone(), options).with_data_dir(dir.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Server { url, admin, log, db, readiness, http: reqwest::Client::new(), stop: Some(stop), task: Some(task), dir }
    }

    fn req(&self, method: reqwest::Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.url));
        match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn query(&self, key: &str, body: Value) -> (StatusCode, Value) {
        let r = self.req(reqwest::Method::POST, "/v1/query", Some(key)).json(&body).send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    async fn new_key(&self, role: &str) -> String {
        let r = self
            .req(reqwest::Method::POST, "/v1/keys", Some(&self.admin))
            .json(&json!({"role": role}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        v["key"].as_str().unwrap().to_owned()
    }

    /// Every event of `topic`, parsed.
    async fn events(&self, topic: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let parts = self.log.describe_topic(topic).await.unwrap().spec.partitions;
        for p in 0..parts {
            for r in self.log.fetch(topic, p, 0, 100_000).await.unwrap() {
                out.push(serde_json::from_slice(r.value.as_ref().unwrap()).unwrap());
            }
        }
        out
    }

    fn sql_i64(&self, sql: &'static str) -> i64 {
        self.db.call_blocking(|c| c.query_row(sql, [], |r| r.get(0)).unwrap())
    }

    fn sql_text(&self, sql: &'static str) -> String {
        self.db.call_blocking(|c| c.query_row(sql, [], |r| r.get(0)).unwrap())
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) * 100.0).round() as i64
}

async fn error_of(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string(), "{body}");
    (status, body["error"].clone())
}

#[tokio::test]
async fn keys_and_roles_401_and_403() {
    let s = Server::start().await;
    let health = s.req(reqwest::Method::GET, "/healthz", None).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK, "no key needed");
    let ready: Value = s.req(reqwest::Method::GET, "/readyz", None).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    s.readiness.set_cdc_running(false);
    let r = s.req(reqwest::Method::GET, "/readyz", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let not_ready: Value = r.json().await.unwrap();
    assert!(not_ready["checks"]["cdc"].as_str().unwrap().starts_with("down"), "{not_ready}");
    assert_eq!(not_ready["checks"]["log"], "ok");
    s.readiness.set_cdc_running(true);

    let body = json!({"user_id": "u-1001", "query": "card balance"});
    let r = s.req(reqwest::Method::POST, "/v1/query", None).json(&body).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    assert!(e["message"].as_str().unwrap().contains("Authorization"), "{e}");

    let r = s.req(reqwest::Method::POST, "/v1/query", Some("elk_0000000000000000")).json(&body).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .post(format!("{}/v1/query", s.url))
        .header("authorization", format!("Basic {}", s.admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["message"].as_str().unwrap().contains("Bearer"), "{e}");
    assert!(!e.to_string().contains(&s.admin[4..]), "the secret is never echoed");

    let read = s.new_key("read").await;
    let (status, e) =
        error_of(s.req(reqwest::Method::POST, "/v1/query", Some(&read)).json(&body).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("`read`") && msg.contains("agent"), "names the role and who may: {msg}");
    let agent = s.new_key("agent").await;
    let r =
        s.req(reqwest::Method::POST, "/v1/keys", Some(&agent)).json(&json!({"role": "admin"})).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN, "agents cannot mint keys");
    let r = s.req(reqwest::Method::GET, "/v1/users/u-1001", Some(&read)).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN);
    let (status, _) = s.query(&agent, body).await;
    assert_eq!(status, StatusCode::OK, "the agent role may query");
    assert_eq!(s.sql_i64("SELECT count(*) FROM api_keys"), 3, "admin, read, agent");
    let stored = s.sql_text("SELECT group_concat(key_id || ' ' || sha256, ' ') FROM api_keys");
    for secret in [&s.admin, &read, &agent] {
        assert!(!stored.contains(secret.as_str()), "only digests are stored");
    }
    assert_eq!(Role::parse("agent"), Some(Role::Agent));
    s.shutdown().await;
}

#[tokio::test]
async fn bad_bodies_get_400_413_415_422_naming_the_field() {
    let s = Server::start().await;
    let post = |body: String, ct: &'static str| {
        s.req(reqwest::Method::POST, "/v1/query", Some(&s.admin)).header("content-type", ct).body(body).send()
    };
    let (status, e) = error_of(post(r#"{"user_id": "u-1001"}"#.into(), "application/json").await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("query")));
    assert!(e["message"].as_str().unwrap().contains("missing field"), "{e}");
    let (status, e) = error_of(post(r#"{"user_id": 7, "query": "x"}"#.into(), "application/json").await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("user_id")));
    let (status, e) =
        error_of(post(r#"{"user_id": "u-1001", "query": "  "}"#.into(), "application/json").await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("query")));
    assert!(e["message"].as_str().unwrap().contains("empty"));
    let (status, e) =
        error_of(post(r#"{"user_id": "u 1", "query": "card"}"#.into(), "application/json").await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("user_id")));
    let (status, e) = error_of(
        post(r#"{"user_id": "u-1001", "query": "card", "admin": true}"#.into(), "application/json").await.unwrap(),
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("admin")));
    let (status, e) = error_of(post(r#"{"user_id": "u-1001", "#.into(), "application/json").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
    let (status, _) = error_of(post("user_id=u-1001".into(), "application/x-www-form-urlencoded").await.unwrap()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = json!({"user_id": "u-1001", "query": "x".repeat(MAX_BODY)}).to_string();
    let (status, e) = error_of(post(big, "application/json").await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, e) =
        error_of(post(r#"{"user_id": "u-1001", "query": "hello there"}"#.into(), "application/json").await.unwrap())
            .await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("query")), "{e}");
    let (status, e) =
        error_of(post(r#"{"user_id": "u-404", "query": "card balance"}"#.into(), "application/json").await.unwrap())
            .await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("user_not_found")));
    let (status, e) =
        error_of(s.req(reqwest::Method::GET, "/v1/reports/daily", Some(&s.admin)).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_route")));
    assert!(e["message"].as_str().unwrap().contains("POST /v1/query"), "lists what exists: {e}");
    assert!(s.events(AGENT_EXECUTIONS).await.is_empty(), "no rejected request ran an agent");
    s.shutdown().await;
}

#[tokio::test]
async fn each_agent_answers_from_the_seeded_data() {
    let s = Server::start().await;
    let (status, card) =
        s.query(&s.admin, json!({"user_id": "u-1003", "query": "what's my credit card balance?"})).await;
    assert_eq!(status, StatusCode::OK, "{card}");
    assert_eq!((card["agent_id"].as_str(), card["status"].as_str()), (Some("card_agent"), Some("completed")));
    let credit = card["output"]["cards"].as_array().unwrap().iter().find(|c| c["type"] == "credit").unwrap().clone();
    let spent = s.sql_i64("SELECT sum(amount_cents) FROM card_transactions WHERE card_id = 'crd_1003_credit'");
    let limit = s.sql_i64("SELECT credit_limit_cents FROM cards WHERE card_id = 'crd_1003_credit'");
    assert_eq!(cents(&credit["balance"]), spent);
    assert_eq!(cents(&credit["available_credit"]), limit - spent);

    let (status, loan) =
        s.query(&s.admin, json!({"user_id": "u-1002", "query": "Show the amortization schedule of my car loan"})).await;
    assert_eq!(status, StatusCode::OK, "{loan}");
    assert_eq!(loan["agent_id"], "loan_agent");
    // 28,500.00 at 6.99 % over 60 months: M = P·r / (1 − (1 + r)^−60)
    let r: f64 = 0.0699 / 12.0;
    let m = 28_500.0 * r / (1.0 - (1.0 + r).powi(-60));
    assert_eq!(cents(&loan["output"]["loan"]["monthly_payment"]), (m * 100.0).round() as i64);
    let outstanding = s.sql_i64("SELECT outstanding_cents FROM loans WHERE loan_id = 'ln_1002_1'");
    assert_eq!(cents(&loan["output"]["loan"]["outstanding_balance"]), outstanding);
    let first = &loan["output"]["schedule"][0];
    let interest = (outstanding as f64 * r).round() as i64;
    assert_eq!(cents(&first["interest"]), interest);
    assert_eq!(cents(&first["principal"]), (m * 100.0).round() as i64 - interest);

    let (status, wealth) = s.query(&s.admin, json!({"user_id": "u-1004", "query": "How is my portfolio doing?"})).await;
    assert_eq!(status, StatusCode::OK, "{wealth}");
    assert_eq!(wealth["agent_id"], "wealth_agent");
    let invested: f64 = s.db.call_blocking(|c| {
        c.query_row(
            "SELECT sum(h.quantity * p.price) FROM holdings h JOIN prices p USING (symbol) WHERE h.account_id = 'acc_1004_brk'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    });
    assert_eq!(cents(&wealth["output"]["invested_value"]), (invested * 100.0).round() as i64);
    let cash = s.sql_i64("SELECT balance_cents FROM accounts WHERE account_id = 'acc_1004_brk'");
    assert_eq!(cents(&wealth["output"]["total_value"]), (invested * 100.0).round() as i64 + cash);
    assert!(wealth["redactions"].as_array().unwrap().is_empty(), "a portfolio answer holds no PII");
    let execs = s.events(AGENT_EXECUTIONS).await;
    assert_eq!(execs.len(), 3);
    for e in &execs {
        eventline_model::schema::validate(AGENT_EXECUTIONS, e).unwrap();
    }
    s.shutdown().await;
}

#[tokio::test]
async fn pii_in_answers_and_queries_is_masked_and_alerted_once_per_type_and_field() {
    let s = Server::start().await;
    let pan = s.sql_text("SELECT pan FROM cards WHERE card_id = 'crd_1001_credit'");
    let debit_pan = s.sql_text("SELECT pan FROM cards WHERE card_id = 'crd_1001_debit'");
    let raw = [
        pan.clone(),
        debit_pan.clone(),
        format!("{} {} {} {}", &pan[..4], &pan[4..8], &pan[8..12], &pan[12..]),
        "jane.doe@example.com".to_owned(),
        "+1 212 555 0147".to_owned(),
        "212 555 0147".to_owned(),
    ];
    let leaks = |text: &str| raw.iter().find(|r| text.contains(r.as_str())).cloned();

    let (status, blocked) = s
        .query(
            &s.admin,
            json!({"user_id": "u-1001", "conversation_id": "c-jane",
                   "query": "I lost my credit card, please block it. Reach me at jane.doe@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{blocked}");
    assert_eq!(blocked["output"]["card"]["status"], "blocked");
    assert_eq!(s.sql_text("SELECT status FROM cards WHERE card_id = 'crd_1001_credit'"), "blocked", "a real UPDATE");
    assert_eq!(leaks(&blocked.to_string()), None, "the response carries no raw PII: {blocked}");
    let masked = format!("{}******{}", &pan[..6], &pan[12..]);
    assert_eq!(blocked["output"]["card"]["card_number"], masked.as_str());
    assert!(blocked["output"]["message"].as_str().unwrap().contains("[EMAIL]"));
    let exec_id = blocked["execution_id"].as_str().unwrap().to_owned();

    let (_, balance) = s
        .query(&s.admin, json!({"user_id": "u-1001", "conversation_id": "c-jane", "query": "card balance please"}))
        .await;
    assert_eq!(leaks(&balance.to_string()), None, "{balance}");
    let balance_id = balance["execution_id"].as_str().unwrap().to_owned();

    // agent.executions: redacted like the response, no raw PII anywhere in the event.
    let execs = s.events(AGENT_EXECUTIONS).await;
    assert_eq!(execs.len(), 2);
    for e in &execs {
        assert_eq!(leaks(&e.to_string()), None, "agent.executions leaks: {e}");
    }
    let event = execs.iter().find(|e| e["execution_id"] == exec_id.as_str()).unwrap();
    assert_eq!(event["output"], blocked["output"]);
    assert_eq!(event["input"]["query"], "I lost my credit card, please block it. Reach me at [EMAIL]");
    assert_eq!(event["input"]["conversation_id"], "c-jane");

    // compliance.alerts: exactly one per PII type and field of each execution, no raw values.
    let alerts = s.events(COMPLIANCE_ALERTS).await;
    for a in &alerts {
        assert_eq!(leaks(&a.to_string()), None, "alert leaks: {a}");
        eventline_model::schema::validate(COMPLIANCE_ALERTS, a).unwrap();
        assert_eq!(a["alert_type"], "PII_EXPOSURE");
    }
    let of = |id: &str| -> BTreeSet<(String, String, String, String, String)> {
        alerts
            .iter()
            .filter(|a| a["details"]["execution_id"] == id)
            .map(|a| {
                let d = &a["details"];
                let s = |v: &Value| v.as_str().unwrap().to_owned();
                (s(&d["pii_type"]), s(&d["field"]), s(&d["component"]), s(&d["location"]), s(&a["severity"]))
            })
            .collect()
    };
    let t = |k: &str, f: &str, c: &str, l: &str, sev: &str| (k.into(), f.into(), c.into(), l.into(), sev.into());
    let expected: BTreeSet<_> = [
        t("EMAIL", "/input/query", "gateway", "agent_input", "LOW"),
        t("CREDIT_CARD", "/output/card/card_number", "card_agent", "agent_output", "CRITICAL"),
        t("CREDIT_CARD", "/output/message", "card_agent", "agent_output", "CRITICAL"),
        t("EMAIL", "/output/message", "card_agent", "agent_output", "MEDIUM"),
        t("EMAIL", "/output/notification/email", "card_agent", "agent_output", "MEDIUM"),
        t("PHONE", "/output/notification/sms", "card_agent", "agent_output", "MEDIUM"),
    ]
    .into_iter()
    .collect();
    assert_eq!(of(&exec_id), expected);
    assert_eq!(alerts.iter().filter(|a| a["details"]["execution_id"] == exec_id.as_str()).count(), expected.len());
    // Two card numbers in one message: one alert with count 2, not two alerts.
    let balance_alerts: Vec<&Value> =
        alerts.iter().filter(|a| a["details"]["execution_id"] == balance_id.as_str()).collect();
    assert_eq!(balance_alerts.len(), 3, "{balance_alerts:?}");
    let message_alert = balance_alerts.iter().find(|a| a["details"]["field"] == "/output/message").unwrap();
    assert_eq!(message_alert["details"]["count"], 2);
    assert!(alerts.iter().all(|a| a["details"]["action"] == "REDACTED"));
    let redactions = blocked["redactions"].as_array().unwrap();
    assert_eq!(redactions.len(), expected.len(), "the response lists what was redacted: {redactions:?}");

    // The conversation holds both turns, redacted.
    let r = s.req(reqwest::Method::GET, "/v1/conversations/c-jane", Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let conv: Value = r.json().await.unwrap();
    assert_eq!(conv["user_id"], "u-1001");
    assert_eq!(conv["turns"].as_array().unwrap().len(), 2);
    assert_eq!(leaks(&conv.to_string()), None, "{conv}");
    let stored = s.sql_text("SELECT doc FROM conversations WHERE conversation_id = 'c-jane'");
    assert_eq!(leaks(&stored), None, "the database row is redacted too");
    let (status, e) =
        s.query(&s.admin, json!({"user_id": "u-1002", "conversation_id": "c-jane", "query": "card balance"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn user_profiles_put_get_delete() {
    let s = Server::start().await;
    let url = "/v1/users/u-2001";
    let put = |body: Value| s.req(reqwest::Method::PUT, url, Some(&s.admin)).json(&body).send();
    let r = put(json!({"Email": "new.customer@example.com", "Name": "New Customer"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["UserId"], "u-2001");
    let r = put(json!({"Email": "renamed@example.com", "Name": "Renamed", "Phone": "+1 646 555 0100"})).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = s.req(reqwest::Method::GET, url, Some(&s.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!((got["Email"].as_str(), got["Phone"].as_str()), (Some("renamed@example.com"), Some("+1 646 555 0100")));
    assert_eq!(got["CreatedAt"], created["CreatedAt"]);
    let (status, e) = error_of(put(json!({"Email": "not-an-address"})).await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("Email")));
    let (status, e) = error_of(put(json!({"Email": "a@example.com", "UserId": "u-other"})).await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("UserId")));
    let (status, e) = error_of(put(json!({"Email": "a@example.com", "Phone": "call me"})).await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("Phone")));
    let r = s.req(reqwest::Method::DELETE, url, Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (status, _) = error_of(s.req(reqwest::Method::GET, url, Some(&s.admin)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, e) =
        error_of(s.req(reqwest::Method::DELETE, "/v1/users/u-1001", Some(&s.admin)).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::CONFLICT, Some("user_holds_products")));
    let r = s.req(reqwest::Method::PATCH, url, Some(&s.admin)).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::METHOD_NOT_ALLOWED);
    s.shutdown().await;
}

// ---- integrations: POST /v1/integrations/crm/events, POST /v1/integrations/market-data ----

const CRM: &str = "/v1/integrations/crm/events";
const MARKET: &str = "/v1/integrations/market-data";

impl Server {
    async fn post_json(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let r = self.req(reqwest::Method::POST, path, Some(key)).json(body).send().await.unwrap();
        (r.status(), r.json().await.unwrap())
    }

    /// End offsets of every partition of `topic`.
    async fn ends(&self, topic: &str) -> Vec<u64> {
        let mut out = Vec::new();
        for p in 0..3 {
            out.push(self.log.watermarks(topic, p).await.unwrap().1);
        }
        out
    }

    /// The event at a position the API reported.
    async fn event_at(&self, record: &Value) -> Value {
        let topic = record["topic"].as_str().unwrap();
        let (p, o) = (record["partition"].as_u64().unwrap() as u32, record["offset"].as_u64().unwrap());
        let r = self.log.fetch(topic, p, o, 1).await.unwrap();
        assert_eq!(r[0].offset, o);
        serde_json::from_slice(r[0].value.as_ref().unwrap()).unwrap()
    }

    fn price(&self, symbol: &'static str) -> f64 {
        self.db.call_blocking(|c| {
            c.query_row("SELECT price FROM prices WHERE symbol = ?1", [symbol], |r| r.get(0)).unwrap()
        })
    }

    /// Waits until `symbol` is priced at `want` (the price feed is asynchronous).
    async fn wait_for_price(&self, symbol: &'static str, want: f64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while (self.price(symbol) - want).abs() > 1e-9 {
            assert!(tokio::time::Instant::now() < deadline, "{symbol} never reached {want}: {}", self.price(symbol));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn start_price_feed(&self) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<FeedStats>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let feed = PriceFeed::new(self.log.clone(), self.db.clone());
        (stop, tokio::spawn(async move { feed.run(stopped).await.unwrap() }))
    }
}

fn crm(entity_id: &str, note: &str) -> Value {
    json!({"event_id": format!("evt-{entity_id}"), "source": "salesforce", "entity_type": "contact",
           "entity_id": entity_id, "action": "updated", "attributes": {"note": note, "tier": "gold"}})
}

#[tokio::test]
async fn integrations_need_the_ingest_or_admin_role() {
    let s = Server::start().await;
    let tick = json!({"symbol": "AAPL", "price": 230.0, "currency": "USD"});
    let (read, agent, ingest) = (s.new_key("read").await, s.new_key("agent").await, s.new_key("ingest").await);
    for (path, body) in [(CRM, crm("c-1", "plain note")), (MARKET, tick.clone())] {
        let r = s.req(reqwest::Method::POST, path, None).json(&body).send().await.unwrap();
        assert_eq!(error_of(r).await.0, StatusCode::UNAUTHORIZED, "{path}");
        let r = s.req(reqwest::Method::POST, path, Some("elk_nope")).json(&body).send().await.unwrap();
        assert_eq!(error_of(r).await.0, StatusCode::UNAUTHORIZED, "{path}");
        for key in [&read, &agent] {
            let (status, e) =
                error_of(s.req(reqwest::Method::POST, path, Some(key)).json(&body).send().await.unwrap()).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert!(e["message"].as_str().unwrap().contains("ingest"), "names the role needed: {e}");
        }
        for key in [&ingest, &s.admin] {
            let (status, v) = s.post_json(path, key, &body).await;
            assert_eq!((status, v["accepted"].as_u64()), (StatusCode::OK, Some(1)), "{path}: {v}");
        }
    }
    assert_eq!(s.events("external.crm.events").await.len(), 2, "only the two allowed requests appended");
    assert_eq!(s.events("external.market.data").await.len(), 2);
    let r = s
        .req(reqwest::Method::POST, "/v1/query", Some(&ingest))
        .json(&json!({"user_id": "u-1001", "query": "card balance"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN, "ingest keys cannot query agents");
    s.shutdown().await;
}

#[tokio::test]
async fn crm_events_single_and_batch_are_appended_masked_and_alerted() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;

    // One event, no _metadata: stamped, masked, alerted.
    let raw_email = "jane.roe@example.com";
    let raw_phone = "+1 212 555 0147";
    let (status, v) =
        s.post_json(CRM, &ingest, &crm("c-100", &format!("Call back on {raw_phone} or mail {raw_email}"))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 1);
    let rec = &v["records"][0];
    assert_eq!((rec["index"].as_u64(), rec["topic"].as_str()), (Some(0), Some("external.crm.events")));
    let id = rec["message_id"].as_str().unwrap();
    assert_eq!(uuid_version(id), 7, "stamped with a UUID v7: {id}");
    let ev = s.event_at(rec).await;
    assert_eq!(ev["_metadata"]["message_id"], id);
    assert_eq!(ev["_metadata"]["producer"], "enterprise-agent-platform");
    assert!(ev["timestamp"].is_string());
    assert_eq!(ev["attributes"]["note"], "Call back on [PHONE] or mail [EMAIL]", "{ev}");
    assert_eq!(ev["attributes"]["tier"], "gold");
    let text = ev.to_string();
    assert!(!text.contains(raw_email) && !text.contains("555 0147"), "no raw PII in the log: {text}");
    let kinds: BTreeSet<&str> =
        v["redactions"].as_array().unwrap().iter().map(|r| r["pii_type"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["EMAIL", "PHONE"]), "{v}");
    assert!(v["redactions"].as_array().unwrap().iter().all(|r| r["field"] == "/attributes/note" && r["index"] == 0));
    let alerts = s.events(COMPLIANCE_ALERTS).await;
    assert_eq!(alerts.len(), 2, "one alert per PII type and field: {alerts:?}");
    assert_eq!(v["alerts"], 2);
    for a in &alerts {
        assert_eq!(a["alert_type"], "PII_EXPOSURE");
        assert_eq!(a["details"]["component"], "crm_integration");
        assert_eq!(a["details"]["field"], "/attributes/note");
        let t = a.to_string();
        assert!(!t.contains(raw_email) && !t.contains("555 0147"), "an alert never carries the raw value: {t}");
    }

    // A batch: the caller's own message id and times are kept (the producer is eventline's to
    // name on a built-in topic); each event lands keyed by entity_id.
    let mut own = crm("c-200", "no personal data here");
    own["_metadata"] = json!({"message_id": "crm-msg-200", "timestamp": "2026-01-05T09:00:00+01:00"});
    own["timestamp"] = json!("2026-01-05T09:00:00+01:00");
    let batch = json!([own, crm("c-201", "SSN 123-45-6789 on file"), crm("c-200", "second change")]);
    let (status, v) = s.post_json(CRM, &ingest, &batch).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 3);
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.iter().map(|r| r["index"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(recs[0]["message_id"], "crm-msg-200");
    assert_eq!(recs[0]["partition"], recs[2]["partition"], "same entity_id, same partition");
    assert!(recs[2]["offset"].as_u64() > recs[0]["offset"].as_u64(), "in order");
    let first = s.event_at(&recs[0]).await;
    assert_eq!(first["_metadata"]["producer"], "enterprise-agent-platform");
    assert_eq!(first["timestamp"], "2026-01-05T09:00:00+01:00");
    let second = s.event_at(&recs[1]).await;
    assert_eq!(second["attributes"]["note"], "SSN [SSN] on file");
    assert_eq!(
        v["redactions"],
        json!([{"index": 1, "field": "/attributes/note", "pii_type": "SSN", "action": "REDACTED", "count": 1}])
    );
    let alerts = s.events(COMPLIANCE_ALERTS).await;
    assert_eq!(alerts.len(), 3);
    assert!(alerts.iter().any(|a| a["details"]["pii_type"] == "SSN" && !a.to_string().contains("6789")));
    assert_eq!(s.events("external.crm.events").await.len(), 4);
    s.shutdown().await;
}

fn uuid_version(id: &str) -> u32 {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    assert_eq!(hex.len(), 32, "{id}");
    hex[12..13].parse::<u32>().unwrap_or(0)
}

#[tokio::test]
async fn a_batch_with_one_bad_event_is_refused_whole() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;
    let (crm_before, alerts_before) = (s.ends("external.crm.events").await, s.ends(COMPLIANCE_ALERTS).await);

    // Event 0 carries PII (it would raise alerts), event 2 lacks entity_id.
    let mut bad = crm("c-3", "fine");
    bad.as_object_mut().unwrap().remove("entity_id");
    let batch = json!([crm("c-1", "mail jane.roe@example.com"), crm("c-2", "fine"), bad]);
    let (status, e) =
        error_of(s.req(reqwest::Method::POST, CRM, Some(&ingest)).json(&batch).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_event")), "{e}");
    assert_eq!(e["field"], "/2/entity_id");
    assert_eq!(e["details"]["index"], 2);
    assert_eq!(e["details"]["violations"][0]["pointer"], "/entity_id");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("event 2") && msg.contains("entity_id") && msg.contains("required"), "{msg}");
    assert!(msg.contains("nothing was appended"), "{msg}");
    assert_eq!(s.ends("external.crm.events").await, crm_before, "nothing appended");
    assert_eq!(s.ends(COMPLIANCE_ALERTS).await, alerts_before, "no alerts for a refused batch");

    // A tick with a wrong type and a bad currency: the pointer and the reason, never the value.
    let ticks = json!([{"symbol": "AAPL", "price": 1.0, "currency": "USD"},
                       {"symbol": "AAPL", "price": "cheap", "currency": "jane.roe@example.com"}]);
    let (status, e) =
        error_of(s.req(reqwest::Method::POST, MARKET, Some(&ingest)).json(&ticks).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["details"]["index"], 1);
    let pointers: BTreeSet<&str> =
        e["details"]["violations"].as_array().unwrap().iter().map(|v| v["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, BTreeSet::from(["/currency", "/price"]), "{e}");
    assert!(!e.to_string().contains("jane.roe"), "no raw PII in errors: {e}");
    assert_eq!(s.ends("external.market.data").await, vec![0, 0, 0]);

    // A single bad event: the pointer is into the event itself.
    let (status, e) = error_of(
        s.req(reqwest::Method::POST, MARKET, Some(&ingest))
            .json(&json!({"symbol": "AAPL", "price": -1, "currency": "USD"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("/price")), "{e}");
    for body in [json!([]), json!("tick"), json!(42)] {
        let (status, e) =
            error_of(s.req(reqwest::Method::POST, MARKET, Some(&ingest)).json(&body).send().await.unwrap()).await;
        assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("(body)")), "{body}: {e}");
    }

    // The corrected batch is taken, and its PII is still reported (the refusal used nothing up).
    let batch = json!([crm("c-1", "mail jane.roe@example.com"), crm("c-2", "fine"), crm("c-3", "fine")]);
    let (status, v) = s.post_json(CRM, &ingest, &batch).await;
    assert_eq!((status, v["accepted"].as_u64()), (StatusCode::OK, Some(3)), "{v}");
    assert_eq!(s.events(COMPLIANCE_ALERTS).await.len(), 1);
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_batches_are_refused_naming_the_limit() {
    let s = Server::start_with(GatewayOptions { max_body_bytes: 4 << 20, ..GatewayOptions::default() }).await;
    let ingest = s.new_key("ingest").await;
    let ticks: Vec<Value> =
        (0..1001).map(|i| json!({"symbol": "AAPL", "price": 200.0 + i as f64, "currency": "USD"})).collect();
    let (status, e) =
        error_of(s.req(reqwest::Method::POST, MARKET, Some(&ingest)).json(&ticks).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("too_many_events")), "{e}");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("1001") && msg.contains("1000"), "{msg}");
    assert_eq!(s.ends("external.market.data").await, vec![0, 0, 0]);
    let (status, v) = s.post_json(MARKET, &ingest, &json!(ticks[..1000])).await;
    assert_eq!((status, v["accepted"].as_u64()), (StatusCode::OK, Some(1000)), "the limit itself is fine");
    assert_eq!(s.ends("external.market.data").await.iter().sum::<u64>(), 1000);
    s.shutdown().await;

    // Over the body limit: 413 before anything is parsed.
    let s = Server::start().await;
    let big: Vec<Value> = (0..100).map(|_| crm("c-1", "x")).collect();
    let r = s.req(reqwest::Method::POST, CRM, Some(&s.admin)).json(&big).send().await.unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    s.shutdown().await;
}

/// u-1001 holds 40 AAPL, 120 VTI, 150 BND, 10 GLD (seed.rs).
fn u1001_invested(aapl: f64, vti: f64) -> f64 {
    40.0 * aapl + 120.0 * vti + 150.0 * 72.40 + 10.0 * 243.60
}

#[tokio::test]
async fn a_market_tick_moves_the_wealth_agents_valuation() {
    let s = Server::start().await;
    let (stop, feed) = s.start_price_feed();
    let (ingest, agent) = (s.new_key("ingest").await, s.new_key("agent").await);
    let portfolio = json!({"user_id": "u-1001", "query": "How is my portfolio doing?"});
    let (_, before) = s.query(&agent, portfolio.clone()).await;
    assert_eq!(cents(&before["output"]["invested_value"]), (u1001_invested(227.50, 285.10) * 100.0).round() as i64);

    let (status, v) = s
        .post_json(MARKET, &ingest, &json!({"symbol": "AAPL", "price": 250.0, "currency": "USD", "exchange": "XNAS"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    s.wait_for_price("AAPL", 250.0).await;
    let (_, after) = s.query(&agent, portfolio.clone()).await;
    let out = &after["output"];
    assert_eq!(cents(&out["invested_value"]), (u1001_invested(250.0, 285.10) * 100.0).round() as i64, "{out}");
    let aapl = out["holdings"].as_array().unwrap().iter().find(|h| h["symbol"] == "AAPL").unwrap();
    assert_eq!(cents(&aapl["market_value"]), 40 * 25_000);
    // the tick's own time is the price's as_of
    let ts = s.events("external.market.data").await[0]["timestamp"].as_str().unwrap().to_owned();
    assert_eq!(aapl["price_as_of"].as_str().unwrap()[..19], ts[..19]);

    let _ = stop.send(true);
    let stats = feed.await.unwrap();
    assert_eq!(stats.applied, 1);
    assert_eq!(
        s.log
            .committed(PRICE_FEED_GROUP, "external.market.data", v["records"][0]["partition"].as_u64().unwrap() as u32)
            .await
            .unwrap(),
        Some(v["records"][0]["offset"].as_u64().unwrap() + 1),
        "committed after applying"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn the_price_feed_restarts_without_reapplying_or_skipping() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;
    let (stop, feed) = s.start_price_feed();
    let (status, v) = s.post_json(MARKET, &ingest, &json!({"symbol": "AAPL", "price": 250.0, "currency": "USD"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    s.wait_for_price("AAPL", 250.0).await;
    let _ = stop.send(true);
    assert_eq!(feed.await.unwrap().applied, 1);

    // While the feed is down: someone corrects AAPL by hand (with an older as_of than the tick
    // above, so re-applying that tick would overwrite it); an old tick and a new one arrive.
    s.db.call_blocking(|c| {
        c.execute("UPDATE prices SET price = 1.0, as_of = '2001-01-01T00:00:00.000Z' WHERE symbol = 'AAPL'", [])
            .unwrap()
    });
    let late = json!([
        {"symbol": "AAPL", "price": 100.0, "currency": "USD", "timestamp": "2000-06-01T12:00:00Z"},
        {"symbol": "VTI", "price": 300.0, "currency": "USD"},
        {"symbol": "VTI", "price": 299.0, "currency": "USD", "timestamp": "2000-06-01T12:00:00Z"},
    ]);
    let (status, v) = s.post_json(MARKET, &ingest, &late).await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let (stop, feed) = s.start_price_feed();
    s.wait_for_price("VTI", 300.0).await;
    let _ = stop.send(true);
    let stats = feed.await.unwrap();
    assert_eq!((stats.applied, stats.stale), (1, 2), "the new VTI tick only: {stats:?}");
    assert_eq!(s.price("AAPL"), 1.0, "the committed AAPL tick was not re-applied, the old one not at all");
    assert_eq!(s.price("VTI"), 300.0, "an older tick behind a newer one does not win");
    for p in 0..3 {
        let (_, end) = s.log.watermarks("external.market.data", p).await.unwrap();
        let committed = s.log.committed(PRICE_FEED_GROUP, "external.market.data", p).await.unwrap().unwrap_or(0);
        assert_eq!(committed, end, "partition {p}: everything read was committed");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn records_that_are_not_ticks_go_to_the_dead_letter_topic_and_the_feed_goes_on() {
    let s = Server::start().await;
    // Written around the gateway (another producer on the same log): no price, and not JSON.
    let junk = vec![
        eventline_log::ProduceRecord::new(Some("AAPL"), r#"{"symbol": "AAPL", "currency": "USD"}"#),
        eventline_log::ProduceRecord::new(Some("AAPL"), "not json"),
    ];
    s.log.produce("external.market.data", junk, eventline_model::topics::Acks::All).await.unwrap();
    let ingest = s.new_key("ingest").await;
    let (status, _) = s.post_json(MARKET, &ingest, &json!({"symbol": "AAPL", "price": 260.0, "currency": "USD"})).await;
    assert_eq!(status, StatusCode::OK);
    let (stop, feed) = s.start_price_feed();
    s.wait_for_price("AAPL", 260.0).await;
    let _ = stop.send(true);
    let stats = feed.await.unwrap();
    assert_eq!((stats.applied, stats.dead_lettered), (1, 2), "{stats:?}");
    let mut dead = Vec::new();
    for p in 0..3 {
        dead.extend(s.log.fetch("external.market.data.dlq", p, 0, 10).await.unwrap());
    }
    assert_eq!(dead.len(), 2);
    let header = |r: &eventline_log::Record, name: &str| {
        String::from_utf8(r.header(name).unwrap_or_else(|| panic!("a {name} header")).to_vec()).unwrap()
    };
    let mut offsets = Vec::new();
    for r in &dead {
        assert!(!header(r, "eventline.dlq.error").is_empty(), "the reason is in the header");
        assert_eq!(header(r, "eventline.dlq.topic"), "external.market.data");
        assert_eq!(header(r, "eventline.dlq.group"), PRICE_FEED_GROUP);
        let partition: u32 = header(r, "eventline.dlq.partition").parse().unwrap();
        let offset: u64 = header(r, "eventline.dlq.offset").parse().unwrap();
        let original = s.log.fetch("external.market.data", partition, offset, 1).await.unwrap();
        assert_eq!(original[0].value, r.value, "the headers point at the original record");
        offsets.push(offset);
        assert_eq!(r.key.as_deref(), Some(&b"AAPL"[..]), "the key is kept");
    }
    offsets.sort();
    assert_eq!(offsets, [0, 1], "both bad records, each once");
    s.shutdown().await;
}

fn tick(price: f64, note: Option<&str>) -> String {
    let mut v = json!({
        "symbol": "ZZAPI", "price": price, "currency": "USD", "timestamp": "2026-11-27T10:00:00Z",
        "_metadata": {"timestamp": "2026-11-27T10:00:00.001Z", "message_id": format!("m-{price}"), "producer": "enterprise-agent-platform"}
    });
    if let Some(n) = note {
        v["note"] = n.into();
    }
    v.to_string()
}

#[tokio::test]
async fn topics_endpoints_by_role_and_404_for_unknown_topics() {
    let s = Server::start().await;
    let (read, ingest, agent) = (s.new_key("read").await, s.new_key("ingest").await, s.new_key("agent").await);
    let get = |path: &str, key: Option<&str>| s.req(reqwest::Method::GET, path, key).send();
    let topic = "external.market.data";

    // Reads: read and admin; not agent or ingest; 401 without a key.
    for key in [&read, &s.admin] {
        let list: Value = get("/v1/topics", Some(key)).await.unwrap().json().await.unwrap();
        let names: Vec<&str> =
            list["topics"].as_array().unwrap().iter().map(|t| t["spec"]["name"].as_str().unwrap()).collect();
        assert!(names.contains(&topic), "{list}");
    }
    for key in [&agent, &ingest] {
        assert_eq!(error_of(get("/v1/topics", Some(key)).await.unwrap()).await.0, StatusCode::FORBIDDEN);
        let path = format!("/v1/topics/{topic}/records");
        assert_eq!(error_of(get(&path, Some(key)).await.unwrap()).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(error_of(get("/v1/topics", None).await.unwrap()).await.0, StatusCode::UNAUTHORIZED);
    for path in ["/v1/topics/no.such", "/v1/topics/no.such/records", "/v1/topics/no.such/stream"] {
        let (status, e) = error_of(get(path, Some(&read)).await.unwrap()).await;
        assert_eq!((status, e["code"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_topic")), "{path}: {e}");
    }

    // Produce: ingest and admin; read cannot. NDJSON in, positions out, gated.
    let body = format!("{}\n{}\n", tick(1.0, None), tick(2.0, Some("mail jane.doe@example.com")));
    let post = |key: &str, body: String| {
        s.req(reqwest::Method::POST, &format!("/v1/topics/{topic}/records"), Some(key))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    assert_eq!(error_of(post(&read, body.clone()).await.unwrap()).await.0, StatusCode::FORBIDDEN);
    let r = post(&ingest, body).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{v}");
    let p = records[0]["partition"].as_u64().unwrap();
    assert_eq!(records[1]["offset"].as_u64(), Some(records[0]["offset"].as_u64().unwrap() + 1));
    let r = post(&ingest, format!("[{}]", tick(3.0, None))).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a JSON array works too");

    // The first bad line stops the request: the good ones before it are appended.
    let bad = format!("{}\n\n{}\n{}\n", tick(4.0, None), tick(5.0, None).replace("5.0", "\"x\""), tick(6.0, None));
    let (status, e) = error_of(post(&s.admin, bad).await.unwrap()).await;
    assert_eq!(
        (status, e["code"].as_str(), e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_record"), Some("/price")),
        "{e}"
    );
    assert_eq!(e["details"]["line"], 3, "blank lines count: {e}");
    assert_eq!(e["details"]["records"].as_array().unwrap().len(), 1, "{e}");
    assert!(e["message"].as_str().unwrap().starts_with("line 3: "), "{e}");

    // Records read back: the events as stored, PII gated.
    let page: Value = get(&format!("/v1/topics/{topic}/records?partition={p}&offset=0&limit=10"), Some(&read))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let got = page["records"].as_array().unwrap();
    assert_eq!(got.len(), 4, "{page}");
    assert_eq!(got[0]["value"]["price"], 1.0);
    assert_eq!(got[1]["value"]["price"], 2.0);
    assert!(!page.to_string().contains("jane.doe@example.com"), "{page}");
    assert_eq!(page["next_offset"], 4);
    let (status, e) =
        error_of(get(&format!("/v1/topics/{topic}/records?limit=5000"), Some(&read)).await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")));
    let (status, e) =
        error_of(get(&format!("/v1/topics/{topic}/records?partition=99"), Some(&read)).await.unwrap()).await;
    assert_eq!((status, e["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("partition")));
    let since: Value =
        get(&format!("/v1/topics/{topic}/records?partition={p}&since=2999-01-01T00:00:00Z"), Some(&read))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(since["records"].as_array().unwrap().len(), 0, "{since}");

    // The stream: from the beginning, one `record` event per record.
    let mut stream =
        get(&format!("/v1/topics/{topic}/stream?partition={p}&from=beginning"), Some(&read)).await.unwrap();
    let r = &mut stream;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    while text.matches("event: record").count() < 4 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains(&format!("id: {p}:0")), "{text}");

    // Create: admin only.
    let spec = json!({"name": "scratch", "partitions": 2, "replication_factor": 1, "retention": "1day",
        "retention_bytes": null, "compression": "none", "acks": "all", "key_pointer": null});
    let create = |key: &str| s.req(reqwest::Method::POST, "/v1/topics", Some(key)).json(&spec).send();
    assert_eq!(error_of(create(&read).await.unwrap()).await.0, StatusCode::FORBIDDEN);
    assert_eq!(error_of(create(&ingest).await.unwrap()).await.0, StatusCode::FORBIDDEN);
    let r = create(&s.admin).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["partitions"].as_array().unwrap().len(), 2);
    assert_eq!(error_of(create(&s.admin).await.unwrap()).await.0, StatusCode::CONFLICT);
    // An open stream does not hold up shutdown: it ends, and the client sees the end.
    tokio::time::timeout(Duration::from_secs(10), s.shutdown()).await.expect("shutdown waited for an open stream");
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(c) = stream.chunk().await.unwrap() {
            let _ = c;
        }
    });
    rest.await.expect("the stream ended");
}

#[tokio::test]
async fn a_retried_batch_with_the_same_idempotency_key_appends_once() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;
    let batch = json!([crm("c-idem-1", "call +1 212 555 0147"), crm("c-idem-2", "plain note")]);
    let send = |key: &'static str, body: Value| {
        s.req(reqwest::Method::POST, CRM, Some(&ingest)).header("Idempotency-Key", key).json(&body).send()
    };
    let first = send("batch-7", batch.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let alerts_after_first = s.ends("compliance.alerts").await;
    let again = send("batch-7", batch.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["records"], first["records"], "the first answer again");
    assert_eq!(again["replayed"], true);
    assert_eq!(s.ends(EXTERNAL_CRM_TOPIC).await.iter().sum::<u64>(), 2, "appended once");
    assert_eq!(s.ends("compliance.alerts").await, alerts_after_first, "no second alert");
    let (status, e) = error_of(send("batch-7", json!([crm("c-idem-3", "other")])).await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["code"], "idempotency_key_reused");
    let (status, e) = error_of(send("bad key", batch).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["field"], "Idempotency-Key");
    s.shutdown().await;
}

const EXTERNAL_CRM_TOPIC: &str = "external.crm.events";

/// An ingest key appends to the integration topics and to topics users created, never to the
/// built-in topics eventline itself writes (captured changes, executions, alerts, their DLQs).
#[tokio::test]
async fn ingest_keys_cannot_forge_changes_executions_or_alerts() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;
    s.log.create_topic(&TopicSpec::new("partner.feed")).await.unwrap();
    let post = |key: &str, topic: &str, body: &str| {
        s.req(reqwest::Method::POST, &format!("/v1/topics/{topic}/records"), Some(key))
            .query(&[("stamp", "true")])
            .body(body.to_owned())
            .send()
    };
    let forged = r#"{"alert_id":"a1","alert_type":"PII_EXPOSURE","severity":"LOW","details":{"component":"x","field":"/f","action":"REDACTED"}}"#;
    for topic in ["compliance.alerts", "agent.executions", "db.changes.users", "compliance.alerts.dlq"] {
        let (status, e) = error_of(post(&ingest, topic, forged).await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{topic}: {e}");
        assert!(e["message"].as_str().unwrap().contains("eventline's own producers"), "{e}");
    }
    assert_eq!(s.ends("compliance.alerts").await.iter().sum::<u64>(), 0, "nothing was appended");
    let tick = r#"{"symbol":"AAPL","price":1.0,"currency":"USD"}"#;
    assert_eq!(post(&ingest, "external.market.data", tick).await.unwrap().status(), StatusCode::OK);
    assert_eq!(post(&ingest, "partner.feed", r#"{"n":1}"#).await.unwrap().status(), StatusCode::OK);
    // A caller cannot name the producer of a built-in topic's event (a user topic's is theirs).
    let posing = r#"{"symbol":"AAPL","price":1.0,"currency":"USD","_metadata":{"producer":"core-banking"}}"#;
    let (status, e) = error_of(post(&ingest, "external.market.data", posing).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e.to_string().contains("/_metadata/producer"), "{e}");
    let r = s
        .req(reqwest::Method::POST, "/v1/integrations/market-data", Some(&ingest))
        .json(&json!({"symbol": "AAPL", "price": 1.0, "currency": "USD", "_metadata": {"producer": "core-banking"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let own = r#"{"n":1,"_metadata":{"producer":"partner-x"}}"#;
    assert_eq!(post(&ingest, "partner.feed", own).await.unwrap().status(), StatusCode::OK);
    // The admin key (the CLI's, through a running up) may write anywhere.
    let admin = post(&s.admin, "compliance.alerts", forged).await.unwrap();
    assert_eq!(admin.status(), StatusCode::OK, "{}", admin.text().await.unwrap());
    s.shutdown().await;
}

#[tokio::test]
async fn errors_name_the_field_but_never_repeat_the_value() {
    let s = Server::start().await;
    // A wrong type, a value in an unknown key, an unknown topic option: the answer names where,
    // not what.
    for body in [
        json!({"user_id": "u-1001", "query": "card balance", "conversation_id": 4111111111111111u64}),
        json!({"user_id": "u-1001", "query": "card balance", "219-09-9999": true}),
        json!({"user_id": ["jane.doe@example.com"], "query": "card balance"}),
    ] {
        let r = s.req(reqwest::Method::POST, "/v1/query", Some(&s.admin)).json(&body).send().await.unwrap();
        let (status, e) = error_of(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let text = e.to_string();
        for secret in ["4111111111111111", "219-09-9999", "jane.doe"] {
            assert!(!text.contains(secret), "{secret} echoed: {text}");
        }
    }
    let r = s
        .req(reqwest::Method::GET, "/v1/topics/agent.executions/records", Some(&s.admin))
        .query(&[("offset", "219-09-9999")])
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!e.to_string().contains("219-09-9999") && e.to_string().contains("offset"), "{e}");
    s.shutdown().await;
}

/// Runs the audit trail and notifications (no channels) on the server's log until the returned
/// sender is dropped or set.
fn run_consumers(s: &Server) -> tokio::sync::watch::Sender<bool> {
    use eventline_services::audit::store::CheckpointPolicy;
    use eventline_services::audit::{AuditOptions, AuditService, AuditSigner};
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signer = AuditSigner::load_or_create(s.dir.path()).unwrap();
    let audit = AuditService::new(
        s.log.clone(),
        s.db.clone(),
        signer,
        AuditOptions {
            checkpoint: CheckpointPolicy { every_records: 10, every: Duration::from_millis(200) },
            retention: None,
            data_dir: s.dir.path().to_owned(),
        },
    );
    let routing = eventline_services::notify::NotificationsConfig::default().resolve(|_| None).unwrap();
    let notify = eventline_services::notify::NotifyService::new(s.log.clone(), s.db.clone(), routing).unwrap();
    let (a, n) = (stopped.clone(), stopped);
    tokio::spawn(async move { audit.run(a).await.unwrap() });
    tokio::spawn(async move { notify.run(n).await.unwrap() });
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_and_alerts_over_http_with_the_gateways_security_events() {
    let s = Server::start().await;
    let _consumers = run_consumers(&s);
    // What the trail must hold: a failed authentication, a refused authorisation, a key created
    // and revoked, a profile write, an execution and its alerts.
    let r =
        s.req(reqwest::Method::GET, "/v1/audit", Some("elk_not_a_key_at_all_0000000000000000")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let read = s.new_key("read").await;
    let agent = s.new_key("agent").await;
    let r = s.req(reqwest::Method::GET, "/v1/audit", Some(&agent)).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN, "the audit trail is for role read");
    let r = s
        .req(reqwest::Method::PUT, "/v1/users/u-1002", Some(&agent))
        .json(&json!({"Email": "new.address@example.com", "Name": "Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (status, _) =
        s.query(&agent, json!({"user_id": "u-1001", "query": "card balance; my SSN is 219-09-9999"})).await;
    assert_eq!(status, StatusCode::OK);
    let doomed = s.new_key("ingest").await;
    let doomed_id = &doomed[..12];
    let r = s.req(reqwest::Method::DELETE, &format!("/v1/keys/{doomed_id}"), Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .req(reqwest::Method::POST, "/v1/integrations/crm/events", Some(&doomed))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a revoked key is refused at once");
    let r = s.req(reqwest::Method::DELETE, "/v1/keys/elk_00000000", Some(&s.admin)).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::NOT_FOUND);
    // The bootstrap admin key rotates through admin.key, not through the API.
    let other_admin = s.new_key("admin").await;
    let r = s
        .req(reqwest::Method::DELETE, &format!("/v1/keys/{}", &s.admin[..12]), Some(&other_admin))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::CONFLICT, Some("bootstrap_key")));

    // Wait for the trail to hold the security events.
    let get = |path: String| {
        let req = s.req(reqwest::Method::GET, &path, Some(&read));
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let wanted = ["auth.failed", "authz.denied", "key.created", "key.revoked", "profile.updated"];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let security = loop {
        let (status, page) = get("/v1/audit?topic=security.events&limit=100".into()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let records = page["records"].as_array().unwrap().clone();
        let types: BTreeSet<String> =
            records.iter().map(|r| r["record"]["what"]["event_type"].as_str().unwrap().to_owned()).collect();
        if wanted.iter().all(|w| types.contains(*w)) && types.contains("auth.failed") && records.len() >= 8 {
            break records;
        }
        assert!(tokio::time::Instant::now() < deadline, "security events in the trail: {types:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let of = |t: &str| security.iter().find(|r| r["record"]["what"]["event_type"] == t).unwrap()["record"].clone();
    let failed = security
        .iter()
        .map(|r| r["record"].clone())
        .find(|r| r["what"]["event_type"] == "auth.failed" && r["event"]["route"] == "/v1/audit")
        .unwrap();
    assert_eq!(failed["outcome"], "failure");
    assert_eq!(failed["origin"]["address"], "127.0.0.1", "where the request came from");
    assert_eq!(failed["event"]["status"], 401);
    assert_eq!(failed["event"]["route"], "/v1/audit", "the route template");
    let denied = of("authz.denied");
    assert_eq!(denied["who"]["key_id"], &agent[..12]);
    let written = of("profile.updated");
    assert_eq!((written["who"]["key_id"].as_str(), written["subject"].as_str()), (Some(&agent[..12]), Some("u-1002")));
    assert_eq!(written["outcome"], "success");
    assert_eq!(of("key.revoked")["resource"]["id"], format!("keys/{doomed_id}"));
    let text = serde_json::to_string(&security).unwrap();
    for secret in [&s.admin, &read, &agent, &doomed] {
        assert!(!text.contains(&secret[12..]), "no secret in the trail");
    }

    // The execution names the key that asked.
    let (_, page) = get("/v1/audit?topic=agent.executions&entity=u-1001".into()).await;
    let exec = &page["records"][0]["record"];
    assert_eq!(exec["who"]["key_id"], &agent[..12], "{exec}");

    // Pages: newest first, a cursor continues.
    let (_, first) = get("/v1/audit?limit=2".into()).await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = get(format!("/v1/audit?limit=2&cursor={cursor}")).await;
    let seqs: Vec<u64> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["records"].as_array().unwrap())
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    for (query, field) in [("limit=0", "limit"), ("since=yesterday", "since"), ("order=up", "order"), ("x=1", "x")] {
        let r = s.req(reqwest::Method::GET, &format!("/v1/audit?{query}"), Some(&read)).send().await.unwrap();
        let (status, e) = error_of(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(e["message"].as_str().unwrap().contains(field), "{query}: {e}");
    }

    // Alerts with their (here: no) deliveries; never the raw value.
    let (status, alerts) = get("/v1/alerts?limit=10".into()).await;
    assert_eq!(status, StatusCode::OK);
    let list = alerts["alerts"].as_array().unwrap();
    assert!(!list.is_empty(), "{alerts}");
    assert!(!alerts.to_string().contains("219-09-9999"));
    assert_eq!(list[0]["deliveries"], json!([]));

    // Integrity over HTTP: intact, then one record altered.
    let (status, report) = get("/v1/audit/verify".into()).await;
    assert_eq!((status, &report["ok"]), (StatusCode::OK, &json!(true)), "{report}");
    assert_eq!(report["public_key"].as_str().unwrap().len(), 64);
    s.db.call_blocking(|c| c.execute("UPDATE audit_trail SET action = 'nothing' WHERE seq = 3", [])).unwrap();
    let (_, report) = get("/v1/audit/verify".into()).await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_bad"]["seq"], 3, "{report}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_of_the_agents_over_http_by_role_and_window() {
    let s = Server::start().await;
    let agent = s.new_key("agent").await;
    let read = s.new_key("read").await;
    for q in ["card balance", "how much do I owe", "how is my portfolio doing", "card balance"] {
        let (status, _) = s.query(&agent, json!({"user_id": "u-1001", "query": q})).await;
        assert_eq!(status, StatusCode::OK);
    }
    let r = s.req(reqwest::Method::GET, "/v1/analytics/agents", Some(&agent)).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::FORBIDDEN, "analytics are for role read");
    let r = s.req(reqwest::Method::GET, "/v1/analytics/agents?window=2m", Some(&read)).send().await.unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["message"].as_str().unwrap().contains("window"), "{e}");
    // Without a running analytics service the gateway computes them from the log.
    let body: Value =
        s.req(reqwest::Method::GET, "/v1/analytics/agents", Some(&read)).send().await.unwrap().json().await.unwrap();
    let windows: Vec<&str> =
        body["windows"].as_array().unwrap().iter().map(|w| w["window"].as_str().unwrap()).collect();
    assert_eq!(windows, ["1m", "5m", "1h", "all"]);
    let m1 = &body["windows"][0];
    let card = m1["agents"].as_array().unwrap().iter().find(|a| a["agent_id"] == "card_agent").unwrap();
    assert_eq!(card["executions"], 2, "{m1}");
    assert_eq!(card["success_rate"], 1.0);
    assert!(card["latency_ms"]["p99"].is_u64());
    let rate = m1["topics"].as_array().unwrap().iter().find(|t| t["topic"] == "agent.executions").unwrap();
    assert_eq!(rate["events"], 4);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_has_every_route_of_the_router_with_its_roles_and_errors() {
    let s = Server::start().await;
    let r = s.req(reqwest::Method::GET, "/openapi.json", None).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "no key needed");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
            let responses = op["responses"].as_object().unwrap();
            if op.get("security").is_some() {
                assert!(op["description"].as_str().unwrap().starts_with("Roles: "), "{method} {path}: names its roles");
                for status in ["401", "403"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody"
                    );
                }
            }
        }
    }
    // Every path the router's source registers is documented, with each of its methods.
    let source =
        std::fs::read_to_string(format!("{}/src/server.rs", std::env::var("CARGO_MANIFEST_DIR").unwrap())).unwrap();
    let mut routed = BTreeSet::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find(".route(") {
        let tail = rest[at + 7..].trim_start();
        let Some(tail) = tail.strip_prefix('"') else {
            rest = &rest[at + 7..];
            continue;
        };
        let path = &tail[..tail.find('"').unwrap()];
        // The route's own arguments, up to its closing parenthesis, name the methods.
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in tail.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let args = &tail[..end];
        for (call, method) in [("get(", "GET"), ("post(", "POST"), ("put(", "PUT"), ("delete(", "DELETE")] {
            if args.contains(call) {
                routed.insert(format!("{method} {path}"));
            }
        }
        rest = &tail[path.len()..];
    }
    assert!(routed.len() >= 20, "{routed:?}");
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(missing.is_empty(), "routes of the router missing from /openapi.json: {missing:?}");
    // And everything documented is served (no `no_route` 404).
    for route in &documented {
        let (method, path) = route.split_once(' ').unwrap();
        let concrete = path
            .replace("{user_id}", "u-1001")
            .replace("{conversation_id}", "c-1")
            .replace("{key_id}", "elk_00000000")
            .replace("{topic}", "agent.executions");
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = s
            .req(m, &concrete, Some(&s.admin))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::NOT_FOUND {
            let body: Value = r.json().await.unwrap_or_default();
            assert_ne!(body["error"]["code"], "no_route", "{route} is documented but not served");
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("QueryBody") && schemas.contains_key("ErrorBody"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_and_terms_too_large_to_compute_with_are_refused_not_wrapped() {
    let s = Server::start().await;
    for q in [
        "can I borrow 99999999999999999999",
        "can I borrow $25,000 over 999999999999999999 years",
        "can I borrow $20,000,000,000 over 5 years",
    ] {
        let (status, body) = s.query(&s.admin, json!({"user_id": "u-1001", "query": q})).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(
            (body["agent_id"].as_str(), body["status"].as_str()),
            (Some("loan_agent"), Some("rejected")),
            "{q}: {body}"
        );
        let message = body["output"]["message"].as_str().unwrap();
        assert!(message.contains("too large") && !message.to_lowercase().contains("qualify"), "{q}: {message}");
    }
    let (_, ok) = s.query(&s.admin, json!({"user_id": "u-1001", "query": "can I borrow $25,000 over 5 years"})).await;
    assert_ne!(ok["output"]["message"].as_str().unwrap_or_default(), "", "{ok}");
    assert!(!ok["output"]["message"].as_str().unwrap().contains("too large"), "{ok}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negations_and_questions_about_an_action_do_not_perform_it() {
    let s = Server::start().await;
    let status_of = |card: &'static str| {
        s.sql_text(match card {
            "debit" => "SELECT status FROM cards WHERE card_id = 'crd_1001_debit'",
            _ => "SELECT status FROM cards WHERE card_id = 'crd_1001_credit'",
        })
    };
    let before = (status_of("debit"), status_of("credit"));
    for q in [
        "don't cancel my card",
        "do not block my debit card",
        "how do I block my card?",
        "what happens if I freeze my credit card",
        "should I cancel my card?",
    ] {
        let (status, body) = s.query(&s.admin, json!({"user_id": "u-1001", "query": q})).await;
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        assert_eq!(body["output"]["action_taken"], false, "{q}: {body}");
        assert!(
            body["output"]["message"].as_str().unwrap().contains("Nothing was changed")
                || body["output"]["message"].as_str().unwrap().contains("nothing was changed"),
            "{q}: {body}"
        );
        assert_eq!((status_of("debit"), status_of("credit")), before, "{q} changed a card");
    }
    // An unambiguous request still acts, and says what it did.
    let (_, body) = s.query(&s.admin, json!({"user_id": "u-1001", "query": "please freeze my debit card"})).await;
    assert_eq!(status_of("debit"), "frozen", "{body}");
    assert!(body["output"]["message"].as_str().unwrap().contains("frozen"), "{body}");
    s.shutdown().await;
}

/// A key bound to one user, and a signed user token: each acts on that user's resources only.
async fn user_key(s: &Server, user_id: &str, extra: Value) -> (StatusCode, Value) {
    let mut body = json!({"role": "user", "user_id": user_id});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let r = s.req(reqwest::Method::POST, "/v1/keys", Some(&s.admin)).json(&body).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn user_bound_keys_and_tokens_act_only_on_their_own_user() {
    let s = Server::start().await;
    let (status, k) = user_key(&s, "u-1001", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{k}");
    let mine = k["key"].as_str().unwrap().to_owned();
    assert_eq!(k["user_id"], "u-1001");
    // A user key needs a user that exists; other roles take none.
    assert_eq!(user_key(&s, "u-nobody", json!({})).await.0, StatusCode::NOT_FOUND);
    let r =
        s.req(reqwest::Method::POST, "/v1/keys", Some(&s.admin)).json(&json!({"role": "user"})).send().await.unwrap();
    assert_eq!(error_of(r).await.1["field"], "user_id");
    let r = s
        .req(reqwest::Method::POST, "/v1/keys", Some(&s.admin))
        .json(&json!({"role": "agent", "user_id": "u-1001"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Its own: queries, profile, conversations.
    let (status, own) = s.query(&mine, json!({"user_id": "u-1001", "query": "what is my card balance"})).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let conversation = own["conversation_id"].as_str().unwrap().to_owned();
    let get = |key: &str, path: &str| s.req(reqwest::Method::GET, path, Some(key)).send();
    assert_eq!(get(&mine, "/v1/users/u-1001").await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(&mine, &format!("/v1/conversations/{conversation}")).await.unwrap().status(), StatusCode::OK);
    let r = s
        .req(reqwest::Method::PUT, "/v1/users/u-1001", Some(&mine))
        .json(&json!({"Email": "alice.new@example.com", "Name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Someone else's: 403, a card action on another customer's card changes nothing.
    let before = s.sql_text("SELECT group_concat(status) FROM cards WHERE user_id = 'u-1002'");
    let (status, e) = s.query(&mine, json!({"user_id": "u-1002", "query": "block my credit card"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(s.sql_text("SELECT group_concat(status) FROM cards WHERE user_id = 'u-1002'"), before);
    assert_eq!(get(&mine, "/v1/users/u-1002").await.unwrap().status(), StatusCode::FORBIDDEN);
    let r = s
        .req(reqwest::Method::PUT, "/v1/users/u-1002", Some(&mine))
        .json(&json!({"Email": "mallory@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another user's conversation is 404, like one that does not exist.
    let agent = s.new_key("agent").await;
    let (_, theirs) = s.query(&agent, json!({"user_id": "u-1002", "query": "how is my portfolio doing"})).await;
    let r = get(&mine, &format!("/v1/conversations/{}", theirs["conversation_id"].as_str().unwrap())).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Continuing another user's conversation under its own user id is refused too.
    let (status, _) = s
        .query(
            &mine,
            json!({"user_id": "u-1001", "conversation_id": theirs["conversation_id"], "query": "card balance"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "as if it did not exist");
    // Deleting a customer is admin only: neither the user nor the agent may.
    assert_eq!(s.req(reqwest::Method::DELETE, "/v1/users/u-1001", Some(&mine)).send().await.unwrap().status(), 403);
    assert_eq!(s.req(reqwest::Method::DELETE, "/v1/users/u-1001", Some(&agent)).send().await.unwrap().status(), 403);
    // Nor anything outside its role.
    assert_eq!(get(&mine, "/v1/audit").await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.req(reqwest::Method::POST, "/v1/users/u-1001/tokens", Some(&mine)).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );

    // A user token from the front end (an agent key): the same, for the user it names.
    let r = s
        .req(reqwest::Method::POST, "/v1/users/u-1003/tokens", Some(&agent))
        .json(&json!({"ttl": "10m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    assert_eq!((t["token_type"].as_str(), t["user_id"].as_str()), (Some("Bearer"), Some("u-1003")));
    let (status, own) = s.query(&token, json!({"user_id": "u-1003", "query": "what is my loan balance"})).await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let (status, _) = s.query(&token, json!({"user_id": "u-1001", "query": "what is my loan balance"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The execution names who acted: the token's id, never the token.
    let executions = s.events("agent.executions").await;
    let last = executions.iter().find(|e| e["execution_id"] == own["execution_id"]).unwrap();
    let acted = last["input"]["key_id"].as_str().unwrap();
    assert!(acted.starts_with("utk_") && !token.contains(acted) || acted.len() == 12, "{acted}");
    for (ttl, field) in [(json!("0s"), "ttl"), (json!("3d"), "ttl")] {
        let r = s
            .req(reqwest::Method::POST, "/v1/users/u-1003/tokens", Some(&agent))
            .json(&json!({ "ttl": ttl }))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(r).await.1["field"], field);
    }
    assert_eq!(
        s.req(reqwest::Method::POST, "/v1/users/u-nobody/tokens", Some(&agent)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    // A forged token (signed with another key) and a tampered one are 401.
    let mut forged: Vec<&str> = token.split('.').collect();
    let other_payload = forged[1].replace('A', "B");
    forged[1] = &other_payload;
    assert_eq!(s.query(&forged.join("."), json!({"user_id": "u-1003", "query": "loan"})).await.0, 401);
    // Revoking the key that issued it ends the token.
    let keys: Value = get(&s.admin, "/v1/keys").await.unwrap().json().await.unwrap();
    let agent_id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| agent.starts_with(k["key_id"].as_str().unwrap()))
        .unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.req(reqwest::Method::DELETE, &format!("/v1/keys/{agent_id}"), Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.query(&token, json!({"user_id": "u-1003", "query": "loan balance"})).await.0, 401);
    s.shutdown().await;
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_expire() {
    let s = Server::start().await;
    let (status, k) = user_key(&s, "u-1002", json!({"expires_in": "2s"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let short = k["key"].as_str().unwrap().to_owned();
    assert!(k["expires_at"].is_string());
    let r = s.req(reqwest::Method::GET, "/v1/keys", Some(&s.admin)).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(&short) && !text.contains("sha256"), "no secrets or digests: {text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    let keys = listed["keys"].as_array().unwrap();
    assert!(keys.iter().any(|k| k["role"] == "admin" && k["bootstrap"] == true));
    let mine = keys.iter().find(|k| k["user_id"] == "u-1002").unwrap();
    assert_eq!((mine["role"].as_str(), mine["expired"].as_bool()), (Some("user"), Some(false)));
    assert_eq!(s.req(reqwest::Method::GET, "/v1/users/u-1002", Some(&short)).send().await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, e) =
        error_of(s.req(reqwest::Method::GET, "/v1/users/u-1002", Some(&short)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
    let listed: Value =
        s.req(reqwest::Method::GET, "/v1/keys", Some(&s.admin)).send().await.unwrap().json().await.unwrap();
    assert!(listed["keys"].as_array().unwrap().iter().any(|k| k["user_id"] == "u-1002" && k["expired"] == true));
    let r = s
        .req(reqwest::Method::POST, "/v1/keys", Some(&s.admin))
        .json(&json!({"role": "read", "expires_in": "soon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(r).await.1["field"], "expires_in");
    // Listing keys is admin only.
    let read = s.new_key("read").await;
    assert_eq!(s.req(reqwest::Method::GET, "/v1/keys", Some(&read)).send().await.unwrap().status(), 403);
    s.shutdown().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_and_streams_are_capped_and_end_on_revocation() {
    use eventline_gateway::limits::LimitOptions;
    let s = Server::start_with(GatewayOptions {
        max_body_bytes: MAX_BODY,
        request_timeout: Duration::from_secs(20),
        limits: LimitOptions {
            per_key_per_s: 5,
            per_user_per_s: 1,
            max_streams_per_key: 2,
            max_streams: 3,
            ..LimitOptions::default()
        },
        ..GatewayOptions::default()
    })
    .await;
    // A burst of twice the rate passes, then 429 with Retry-After; another key is not affected.
    let read = s.new_key("read").await;
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(s.req(reqwest::Method::GET, "/v1/topics", Some(&read)).send().await.unwrap());
    }
    let limited: Vec<_> = statuses.iter().filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!limited.is_empty() && limited.len() <= 4, "{}", limited.len());
    let retry: u64 = limited[0].headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry));
    let other = s.new_key("read").await;
    assert_eq!(s.req(reqwest::Method::GET, "/v1/topics", Some(&other)).send().await.unwrap().status(), 200);

    // Streams: at most 2 per key, 3 in all; revoking a key ends its open streams.
    let streamer = s.new_key("read").await;
    let open = |key: String| {
        let r = s.req(reqwest::Method::GET, "/v1/topics/agent.executions/stream", Some(&key));
        async move { r.send().await.unwrap() }
    };
    let first = open(streamer.clone()).await;
    assert_eq!(first.status(), 200);
    let _second = open(streamer.clone()).await;
    let third = open(streamer.clone()).await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(third.headers().contains_key("retry-after"));
    let reader = s.new_key("read").await;
    let _fourth = open(reader.clone()).await;
    assert_eq!(open(reader).await.status(), StatusCode::TOO_MANY_REQUESTS, "3 in all");
    let keys: Value =
        s.req(reqwest::Method::GET, "/v1/keys", Some(&s.admin)).send().await.unwrap().json().await.unwrap();
    let id = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap().to_owned())
        .find(|id| streamer.starts_with(id.as_str()))
        .unwrap();
    let r = s.req(reqwest::Method::DELETE, &format!("/v1/keys/{id}"), Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The revoked key's stream ends (the body completes) within a few polls.
    let body = tokio::time::timeout(Duration::from_secs(5), first.text()).await.expect("the stream ended").unwrap();
    assert!(body.contains("event: end"), "{body}");
    s.shutdown().await;
}

#[tokio::test]
async fn pii_in_numbers_object_keys_record_keys_and_headers_is_masked_too() {
    let s = Server::start().await;
    let ingest = s.new_key("ingest").await;
    s.log.create_topic(&TopicSpec::new("partner.feed")).await.unwrap();
    let event = r#"{"card": 4111111111111111, "ids": {"219-09-9999": "on file"}, "amount": 125, "n": 1}"#;
    let r = s
        .req(reqwest::Method::POST, "/v1/topics/partner.feed/records", Some(&ingest))
        .query(&[
            ("stamp", "true"),
            ("key", "078-05-1120"),
            ("header", "x-note=write to jane.doe@example.com"),
            ("header", "123-45-6789=on file"),
        ])
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let mut stored = s.log.fetch("partner.feed", 0, 0, 10).await.unwrap();
    for p in 1..s.log.describe_topic("partner.feed").await.unwrap().spec.partitions {
        stored.extend(s.log.fetch("partner.feed", p, 0, 10).await.unwrap());
    }
    assert_eq!(stored.len(), 1);
    let rec = &stored[0];
    let value = String::from_utf8(rec.value.as_ref().unwrap().to_vec()).unwrap();
    let key = String::from_utf8(rec.key.as_ref().unwrap().to_vec()).unwrap();
    let note = String::from_utf8(rec.header("x-note").unwrap().to_vec()).unwrap();
    assert!(rec.headers.iter().all(|h| !h.key.contains("123-45-6789")), "a header name is scanned too");
    assert_eq!(rec.headers.len(), 2);
    for raw in ["4111111111111111", "219-09-9999", "078-05-1120", "jane.doe@example.com"] {
        assert!(
            !value.contains(raw) && !key.contains(raw) && !note.contains(raw),
            "{raw} stored raw: {value} {key} {note}"
        );
    }
    let v: Value = serde_json::from_str(&value).unwrap();
    assert!(v["card"].as_str().unwrap().ends_with("1111"), "a card number as a number is masked: {v}");
    assert_eq!(v["amount"], 125, "an ordinary number is left alone");
    assert!(v["ids"].as_object().unwrap().values().all(|x| x == "on file"), "{v}");
    assert!(key.starts_with("[SSN:"), "a record key is hashed (same key, same partition): {key}");
    // The same key again lands in the same partition.
    let r = s
        .req(reqwest::Method::POST, "/v1/topics/partner.feed/records", Some(&ingest))
        .query(&[("stamp", "true"), ("key", "078-05-1120")])
        .body(r#"{"n": 2}"#)
        .send()
        .await
        .unwrap();
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["records"][0]["partition"].as_u64().unwrap(), rec.partition as u64);
    // Each finding raised an alert naming where it was, never the value.
    let alerts = s.events("compliance.alerts").await;
    let fields: Vec<&str> = alerts.iter().map(|a| a["details"]["field"].as_str().unwrap()).collect();
    for f in ["/card", "(record key)", "(header value)"] {
        assert!(fields.contains(&f), "{f} in {fields:?}");
    }
    assert!(fields.iter().any(|f| f.starts_with("/ids/")), "{fields:?}");
    let text = serde_json::to_string(&alerts).unwrap();
    assert!(!text.contains("219-09-9999") && !text.contains("078-05-1120"), "{text}");
    s.shutdown().await;
}

#[tokio::test]
async fn card_numbers_are_encrypted_at_rest_and_the_card_agent_works_on_bin_and_last_four() {
    let s = Server::start().await;
    let pans: Vec<(String, String)> = s.db.call_blocking(|c| {
        c.prepare("SELECT card_id, pan FROM cards WHERE user_id = 'u-1001' ORDER BY card_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    });
    let vault = eventline_platform::cardvault::CardVault::load_or_create(s.dir.path(), None).unwrap();
    let check = vault.clone();
    assert!(s.db.call_blocking(move |c| vault.protect(c)).unwrap() > 0);
    // Nothing in the table is the number any more; the sealed copy opens to it.
    let stored: Vec<(String, Vec<u8>)> = s.db.call_blocking(|c| {
        c.prepare("SELECT pan, pan_enc FROM cards WHERE user_id = 'u-1001' ORDER BY card_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    });
    for ((card_id, pan), (token, blob)) in pans.iter().zip(&stored) {
        assert!(token.starts_with("ctok_") && !token.contains(pan.as_str()));
        assert_eq!(&check.open(card_id, blob).unwrap(), pan);
    }
    let agent = s.new_key("agent").await;
    let (status, v) = s.query(&agent, json!({"user_id": "u-1001", "query": "what is my card balance"})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let text = v.to_string();
    for (_, pan) in &pans {
        assert!(!text.contains(pan.as_str()), "{text}");
        let shown = format!("{} {}•• •••• {}", &pan[..4], &pan[4..6], &pan[pan.len() - 4..]);
        assert!(text.contains(&shown), "{shown} in {text}");
    }
    // A customer naming the card by its full number still reaches it.
    let credit = s.sql_text("SELECT card_id FROM cards WHERE user_id = 'u-1001' AND kind = 'credit'");
    let full = &pans.iter().find(|(id, _)| *id == credit).unwrap().1;
    let (status, v) =
        s.query(&agent, json!({"user_id": "u-1001", "query": format!("block card {full}, it was stolen")})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(s.sql_text("SELECT status FROM cards WHERE user_id = 'u-1001' AND kind = 'credit'"), "blocked");
    s.shutdown().await;
}

#[tokio::test]
async fn deleting_a_customer_ends_their_keys_and_tokens_and_logout_ends_the_dashboard_stream() {
    let s = Server::start().await;
    // A customer without products can be deleted; their key and token stop with them.
    let r = s
        .req(reqwest::Method::PUT, "/v1/users/u-9001", Some(&s.admin))
        .json(&json!({"Email": "temp@example.com", "Name": "Temp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, k) = user_key(&s, "u-9001", json!({})).await;
    let key = k["key"].as_str().unwrap().to_owned();
    let agent = s.new_key("agent").await;
    let t: Value = s
        .req(reqwest::Method::POST, "/v1/users/u-9001/tokens", Some(&agent))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["token"].as_str().unwrap().to_owned();
    for credential in [&key, &token] {
        let r = s.req(reqwest::Method::GET, "/v1/users/u-9001", Some(credential)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = s.req(reqwest::Method::DELETE, "/v1/users/u-9001", Some(&s.admin)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The same id made again is another customer: the old credentials do not reach it.
    let r = s
        .req(reqwest::Method::PUT, "/v1/users/u-9001", Some(&s.admin))
        .json(&json!({"Email": "someone.else@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    for credential in [&key, &token] {
        let r = s.req(reqwest::Method::GET, "/v1/users/u-9001", Some(credential)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    // The dashboard's stream opened with a session cookie ends at logout.
    let read = s.new_key("read").await;
    let r = s.http.post(format!("{}/v1/session", s.url)).json(&json!({"key": read})).send().await.unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let mut stream =
        s.http.get(format!("{}/v1/dashboard/stream", s.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // Live: the first snapshot arrives.
    let mut seen = String::new();
    while !seen.contains("event: snapshot") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let r = s.http.delete(format!("{}/v1/session", s.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    tokio::time::timeout(Duration::from_secs(10), stream.text()).await.expect("the stream ended at logout").unwrap();
    s.shutdown().await;
}
