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
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
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
        let executor = AgentExecutor::new(db.clone(), log.clone(), Arc::new(gate), "enterprise-agent-platform");
        let readiness = Arc::new(Readiness::default());
        readiness.set_cdc_running(true); // no capture in this harness; the binary's tests run it
        let options = GatewayOptions { max_body_bytes: MAX_BODY, request_timeout: Duration::from_secs(20) };
        let state = AppState::new(executor, store, readiness.clone(), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Server {
            url,
            admin,
            log,
            db,
            readiness,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
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
    let (status, e) = error_of(s.req(reqwest::Method::GET, "/v1/topics", Some(&s.admin)).send().await.unwrap()).await;
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
