//! The command line as a user drives it: real processes, a real data directory.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_eventline");
const SEED_AGENT: &str = r#"{"execution_id":"exec-456","agent_id":"card_agent","status":"completed","duration_ms":250,"input":{"query":"check my card balance"},"output":{"balance":5432.10},"timestamp":"2024-11-27T00:00:00Z","_metadata":{"timestamp":"2024-11-27T00:00:00.123Z","message_id":"msg-uuid-456","producer":"enterprise-agent-platform"}}"#;

fn run(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(EXE)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("EVENTLINE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn the_printed_schema_rejects_a_string_duration_and_accepts_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["schema", "agent.executions"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    let seed: serde_json::Value = serde_json::from_str(SEED_AGENT).unwrap();
    assert!(validator.is_valid(&seed), "the seed example is accepted unchanged");
    let mut bad = seed.clone();
    bad["duration_ms"] = "250".into();
    let errors: Vec<String> = validator.iter_errors(&bad).map(|e| e.instance_path().to_string()).collect();
    assert_eq!(errors, ["/duration_ms"]);

    // The same through `produce`: the error names the line, the pointer and the reason.
    let line = serde_json::to_string(&bad).unwrap();
    let out = run(dir.path(), &["produce", "agent.executions"], &format!("{line}\n"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("line 1") && err.contains("/duration_ms") && err.contains("integer"), "{err}");
    assert!(!err.contains("\"250\""), "the error does not echo the offending value: {err}");
    let out = run(dir.path(), &["produce", "agent.executions"], &format!("{SEED_AGENT}\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let unknown = run(dir.path(), &["schema", "no.such.topic"], "");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("agent.executions"), "lists the topics that have schemas");
}

#[test]
fn produce_then_consume_round_trips_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["topics", "create", "orders", "--partitions", "2", "--key-field", "/id"], "").status.success());
    let lines: Vec<String> = (0..50).map(|i| format!("{{\"id\":\"o{}\",\"n\":{i}}}", i % 7)).collect();
    let out = run(d, &["produce", "orders"], &(lines.join("\n") + "\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let acks: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(acks.len(), 50, "one acknowledgement per record");
    // Same key, same partition, increasing offsets in input order.
    let mut last = std::collections::HashMap::new();
    for (i, a) in acks.iter().enumerate() {
        let key = i % 7;
        let p = a["partition"].as_u64().unwrap();
        let o = a["offset"].as_u64().unwrap();
        if let Some((lp, lo)) = last.insert(key, (p, o)) {
            assert_eq!(lp, p);
            assert!(o > lo);
        }
    }
    let out = run(d, &["consume", "orders"], "");
    assert!(out.status.success());
    let mut got: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(got.len(), 50);
    got.sort();
    let mut want = lines.clone();
    want.sort();
    assert_eq!(got, want, "each event's own JSON, byte for byte");
    let out = run(d, &["consume", "orders", "--partition", "0", "--offset", "2", "--max", "3"], "");
    assert_eq!(stdout(&out).lines().count(), 3);
}

#[test]
fn a_bad_line_stops_produce_after_acknowledging_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topics", "create", "t", "--partitions", "1"], "");
    let out = run(d, &["produce", "t"], "{\"a\":1}\n{\"a\":2}\nnot json\n{\"a\":4}\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out).lines().count(), 2);
    let err = stderr(&out);
    assert!(err.contains("line 3") && err.contains("not JSON") && err.contains("2 record(s)"), "{err}");
    let consumed = stdout(&run(d, &["consume", "t"], ""));
    assert_eq!(consumed, "{\"a\":1}\n{\"a\":2}\n", "nothing from the bad line on was appended");
}

#[test]
fn a_group_resumes_where_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topics", "create", "t", "--partitions", "3"], "");
    let input: String = (0..30).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    run(d, &["produce", "t"], &input);
    let first = stdout(&run(d, &["consume", "t", "--group", "g", "--max", "10"], ""));
    let rest = stdout(&run(d, &["consume", "t", "--group", "g"], ""));
    let again = stdout(&run(d, &["consume", "t", "--group", "g"], ""));
    assert_eq!(first.lines().count(), 10);
    assert_eq!(rest.lines().count(), 20, "no record twice, none skipped");
    assert_eq!(again, "", "everything was committed");
    let mut all: Vec<&str> = first.lines().chain(rest.lines()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30);
    let replay = stdout(&run(d, &["consume", "t", "--group", "g", "--from-beginning"], ""));
    assert_eq!(replay.lines().count(), 30, "--from-beginning replays a group");
}

#[test]
fn topics_admin_and_builtin_protection() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let list = stdout(&run(d, &["topics", "list", "--json"], ""));
    let names: Vec<String> = list
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "db.changes.users",
        "db.changes.conversations",
        "agent.executions",
        "compliance.alerts",
        "external.crm.events",
        "external.market.data",
        "compliance.alerts.dlq",
    ] {
        assert!(names.contains(&t.to_string()), "{t} exists");
    }
    let out =
        run(d, &["topics", "create", "x", "--partitions", "4", "--retention", "36h", "--compression", "zstd"], "");
    assert!(out.status.success(), "{}", stderr(&out));
    let desc: serde_json::Value =
        serde_json::from_str(&stdout(&run(d, &["topics", "describe", "x", "--json"], ""))).unwrap();
    assert_eq!(desc["spec"]["partitions"], 4);
    assert_eq!(desc["spec"]["compression"], "zstd");
    assert_eq!(desc["spec"]["retention"], "1day 12h");
    let bad = run(d, &["topics", "create", "y", "--compression", "brotli"], "");
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("brotli"));
    let out = run(d, &["topics", "delete", "agent.executions"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--force"));
    assert!(run(d, &["topics", "delete", "x"], "").status.success());
    assert_eq!(run(d, &["topics", "describe", "x"], "").status.code(), Some(1));
}

#[test]
fn configuration_errors_name_key_value_and_choices() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[topics]\ncompression = \"brotli\"\n").unwrap();
    let out = run(dir.path(), &["--config", cfg.to_str().unwrap(), "topics", "list"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("topics.compression") && err.contains("brotli") && err.contains("zstd"), "{err}");
}

#[test]
fn a_bad_notification_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[[notifications.channels]]\nname = \"siem\"\ntype = \"syslog\"\nurl = \"udp://siem.bank.example\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["--config", cfg.to_str().unwrap(), "topics", "list"], "");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("notifications.channels[0].url") && err.contains("udp://host:port"), "{err}");
    std::fs::write(
        &cfg,
        "[[notifications.channels]]\nname = \"a\"\ntype = \"log\"\n[[notifications.routes]]\nalert_types = [\"*\"]\nchannels = [\"b\"]\nmin_severity = \"SEVERE\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["--config", cfg.to_str().unwrap(), "topics", "list"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SEVERE"), "{}", stderr(&out));
}

#[test]
fn audit_and_alerts_without_a_database_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["audit", "verify"][..], &["audit", "query"], &["alerts"]] {
        let out = run(dir.path(), args, "");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("eventline up"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn commands_not_in_this_build_say_so_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["bench", "pipeline"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not available in this build"), "{}", stderr(&out));
}

#[test]
fn pii_scan_reports_character_offsets_and_redacts() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["pii", "scan", "--redact"],
        "{\"text\":\"é SSN 123-45-6789\"}\n{\"text\":\"nothing here\"}\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["entities"][0]["type"], "SSN");
    assert_eq!(lines[0]["entities"][0]["start"], 6, "Unicode characters, not bytes");
    assert_eq!(lines[0]["entities"][0]["end"], 17);
    assert_eq!(lines[0]["redacted"], "é SSN [SSN]");
    assert_eq!(lines[1]["entities"].as_array().unwrap().len(), 0);
    let bad = run(dir.path(), &["pii", "scan"], "{\"txt\":1}\n");
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("line 1") && stderr(&bad).contains("text"), "{}", stderr(&bad));
}

#[test]
fn a_second_process_is_told_who_holds_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &["topics", "create", "t"], "");
    let mut holder = Command::new(EXE)
        .arg("--data-dir")
        .arg(d)
        .args(["consume", "t", "--follow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the holder owns the directory (its pid is in LOCK), then try a second process.
    let lock = d.join("log").join("LOCK");
    let pid = holder.id().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != pid {
        assert!(std::time::Instant::now() < deadline, "the holder never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = run(d, &["topics", "list"], "");
    holder.kill().unwrap();
    holder.wait().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains(&pid) && err.contains("in use"), "{err}");
}

#[test]
fn produce_applies_the_governance_policy_and_raises_alerts_without_raw_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let change = |id: &str| {
        format!(
            r#"{{"event_type":"UPDATE","table":"Users","data":{{"UserId":"{id}","Email":"ann.lee@example.com","Notes":"SSN 123-45-6789 on file"}},"before":{{"Email":"old@example.com"}},"timestamp":"2024-11-27T00:00:00Z","_metadata":{{"timestamp":"2024-11-27T00:00:00.123Z","message_id":"m-{id}","producer":"p"}}}}"#
        )
    };
    let out = run(d, &["produce", "db.changes.users"], &format!("{}\n", change("u1")));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(d, &["produce", "db.changes.users"], &format!("{}\n", change("u2")));
    assert!(out.status.success(), "{}", stderr(&out));
    let stored: Vec<serde_json::Value> = stdout(&run(d, &["consume", "db.changes.users"], ""))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stored.len(), 2);
    let text = serde_json::to_string(&stored).unwrap();
    assert!(!text.contains("ann.lee@example.com") && !text.contains("123-45-6789"), "raw PII reached the log: {text}");
    let email = stored[0]["data"]["Email"].as_str().unwrap();
    assert!(email.starts_with("hmac-sha256:"), "{email}");
    assert_eq!(
        stored[1]["data"]["Email"], stored[0]["data"]["Email"],
        "the data dir's key makes hashes join across runs"
    );
    assert_eq!(stored[0]["data"]["Notes"], "SSN [SSN] on file");
    let alerts: Vec<serde_json::Value> = stdout(&run(d, &["consume", "compliance.alerts"], ""))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!alerts.is_empty(), "findings are reported");
    let alert_text = serde_json::to_string(&alerts).unwrap();
    assert!(!alert_text.contains("ann.lee") && !alert_text.contains("6789"), "{alert_text}");
    assert!(alerts.iter().all(|a| a["alert_type"] == "PII_EXPOSURE"));
    let key = std::fs::metadata(d.join("pii-hash.key")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}
