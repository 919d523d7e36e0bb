//! `eventline demo` against a running `up`: it finds the server and the admin key in the data
//! directory, sends every kind of request at the asked rate, and its summary counts what the log
//! then holds.

use std::process::Command;

mod up_harness;

use up_harness::{EXE, Up};

#[test]
fn demo_sends_mixed_traffic_through_the_api_and_summarises_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path(), &[]);
    let out = Command::new(EXE)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo", "--rate", "40", "--duration", "3s", "--seed", "42"])
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("120 requests"), "{text}");
    for kind in ["agent query", "profile create", "profile update", "CRM event", "market tick"] {
        assert!(text.contains(kind), "{kind} missing: {text}");
    }
    let all = text.lines().find(|l| l.starts_with("all ")).unwrap();
    let cols: Vec<&str> = all.split_whitespace().collect();
    assert_eq!((cols[1], cols[2], cols[5]), ("120", "120", "0"), "every request answered 2xx: {text}");
    for topic in
        ["agent.executions", "compliance.alerts", "db.changes.users", "external.crm.events", "external.market.data"]
    {
        assert!(text.lines().any(|l| l.starts_with(topic)), "{topic} in the summary: {text}");
    }
    up.terminate();
    // Without a running up it says what to do.
    let out = Command::new(EXE)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["demo"])
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url"));
}
