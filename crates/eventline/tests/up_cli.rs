//! `topics`, `produce` and `consume` while `eventline up` runs on the same data directory: the
//! log is locked by `up`, so the commands go through its gateway (found in `<data-dir>/up.json`)
//! and print what they print on the log itself; once `up` stops they open the log again.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod up_harness;

use up_harness::{EXE, Up};
const TOPIC: &str = "external.market.data";

fn cmd(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(EXE);
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("EVENTLINE_CONFIG")
        .env_remove("EVENTLINE_BACKEND")
        .env_remove("EVENTLINE_LOG_LEVEL");
    c
}

fn run(data: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child =
        cmd(data, args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "exit {}: {}", o.status, String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn tick(symbol: &str, price: f64, note: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "symbol": symbol, "price": price, "currency": "USD", "timestamp": "2026-11-27T10:00:00Z",
        "_metadata": {"timestamp": "2026-11-27T10:00:00.001Z", "message_id": format!("m-{symbol}-{price}"), "producer": "test"}
    });
    if let Some(n) = note {
        v["note"] = n.into();
    }
    serde_json::to_string(&v).unwrap()
}

#[test]
fn the_cli_goes_through_a_running_up_and_opens_the_log_again_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let up = Up::start(data, &[]);
    let up_file: Value = serde_json::from_slice(&std::fs::read(data.join("up.json")).unwrap()).unwrap();
    assert_eq!(up_file["pid"], up.child.id());
    assert!(up_file["url"].as_str().unwrap().starts_with("http://127.0.0.1:"), "{up_file}");

    // topics list / describe through the server: the same shapes as on the log.
    let list = ok(&run(data, &["topics", "list", "--json"], ""));
    let names: Vec<String> =
        list.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&TOPIC.to_owned()) && names.contains(&"agent.executions".to_owned()), "{list}");
    let table = ok(&run(data, &["topics", "list"], ""));
    assert!(table.starts_with("TOPIC") && table.contains(TOPIC), "{table}");
    let desc: Value = serde_json::from_str(&ok(&run(data, &["topics", "describe", TOPIC, "--json"], ""))).unwrap();
    assert_eq!(desc["spec"]["name"], TOPIC);
    let missing = run(data, &["topics", "describe", "no.such.topic"], "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no.such.topic"));

    // A follower started before anything is produced.
    let mut follower =
        cmd(data, &["consume", TOPIC, "--follow"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let followed = up_harness::lines(follower.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(1500));

    // produce through the server: one position per line, in order (one symbol → one partition).
    let lines = [
        tick("ZZTEST", 10.0, None),
        tick("ZZTEST", 11.0, Some("call jane.doe@example.com about this")),
        tick("ZZTEST", 12.0, None),
    ];
    let out = ok(&run(data, &["produce", TOPIC], &(lines.join("\n") + "\n")));
    let positions: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(positions.len(), 3, "{out}");
    let p = positions[0]["partition"].as_u64().unwrap();
    let first = positions[0]["offset"].as_u64().unwrap();
    for (i, pos) in positions.iter().enumerate() {
        assert_eq!(pos["partition"].as_u64(), Some(p));
        assert_eq!(pos["offset"].as_u64(), Some(first + i as u64), "{out}");
    }

    // consume through the server: the events as produced, gated.
    let consumed = ok(&run(data, &["consume", TOPIC, "--from-beginning", "--max", "3"], ""));
    let got: Vec<&str> = consumed.lines().collect();
    assert_eq!(got.len(), 3, "{consumed}");
    assert_eq!(got[0], lines[0]);
    assert_eq!(got[2], lines[2]);
    assert!(!got[1].contains("jane.doe@example.com"), "PII reached the log: {}", got[1]);
    let since = ok(&run(data, &["consume", TOPIC, "--since", "10m", "--max", "3"], ""));
    assert_eq!(since, consumed, "--since through the server");
    let from =
        ok(&run(data, &["consume", TOPIC, "--partition", &p.to_string(), "--offset", &(first + 1).to_string()], ""));
    assert_eq!(from.lines().collect::<Vec<_>>(), got[1..], "--offset through the server");
    let second: Value = serde_json::from_str(got[1]).unwrap();
    assert_eq!(second["price"], 11.0);

    // The follower got them too, as they were produced.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(l) = followed.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    assert_eq!(seen, got, "the follower saw the produced records");

    // A bad line: exit 1, the line and field named; the good line before it is appended.
    let bad = run(
        data,
        &["produce", TOPIC],
        &format!("{}\n{}\n", tick("ZZTEST", 13.0, None), tick("ZZTEST", 14.0, None).replace("14.0", "\"high\"")),
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("line 2") && err.contains("/price"), "{err}");
    assert!(err.contains("1 record(s) before it were appended"), "{err}");
    assert_eq!(String::from_utf8_lossy(&bad.stdout).lines().count(), 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut fourth = None;
    while fourth.is_none() && Instant::now() < deadline {
        fourth = followed.recv_timeout(Duration::from_millis(200)).ok();
    }
    assert_eq!(
        fourth.as_deref(),
        Some(tick("ZZTEST", 13.0, None).as_str()),
        "the follower saw the record produced later"
    );
    let _ = follower.kill();
    let _ = follower.wait();

    // Consumer groups need the log itself.
    let grouped = run(data, &["consume", TOPIC, "--group", "g1"], "");
    assert_eq!(grouped.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&grouped.stderr).contains("--group"));

    // A topic created through the server.
    ok(&run(data, &["topics", "create", "scratch.remote", "--partitions", "2"], ""));
    let again = run(data, &["topics", "create", "scratch.remote"], "");
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // Deleting needs the log itself: a usage error that says what to do.
    let delete = run(data, &["topics", "delete", "scratch.remote"], "");
    assert_eq!(delete.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&delete.stderr).contains("stop it first"),
        "{}",
        String::from_utf8_lossy(&delete.stderr)
    );
    let desc: Value =
        serde_json::from_str(&ok(&run(data, &["topics", "describe", "scratch.remote", "--json"], ""))).unwrap();
    assert_eq!(desc["spec"]["partitions"], 2);

    let through_server = ok(&run(data, &["consume", TOPIC, "--from-beginning"], ""));
    up.terminate();
    assert!(!data.join("up.json").exists(), "up.json is removed on a clean shutdown");

    // Without up the same commands open the log directly and see the same records.
    let direct = ok(&run(data, &["consume", TOPIC, "--from-beginning"], ""));
    assert_eq!(direct, through_server);
    assert!(direct.lines().count() >= 4, "{direct}");
    let list = ok(&run(data, &["topics", "list", "--json"], ""));
    assert!(list.contains("scratch.remote"));
    let out = ok(&run(data, &["produce", TOPIC], &(tick("ZZTEST", 15.0, None) + "\n")));
    assert_eq!(out.lines().count(), 1);
}

#[test]
fn a_stale_up_file_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // No process has this pid (above the kernel's limit).
    std::fs::write(data.join("up.json"), r#"{"pid": 4294967, "url": "http://127.0.0.1:9"}"#).unwrap();
    let out = ok(&run(data, &["topics", "list", "--json"], ""));
    assert!(out.contains(TOPIC));
}

#[test]
fn the_data_directory_is_private_and_a_readable_admin_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let up = Up::start(&data, &[]);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("eventline.db")), 0o600, "the database");
    assert_eq!(mode(&data.join("admin.key")), 0o600);
    assert_eq!(mode(&data.join("log")), 0o700, "the log's directory");
    up.terminate();
    std::fs::set_permissions(data.join("admin.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(up_harness::EXE)
        .arg("--data-dir")
        .arg(&data)
        .arg("up")
        .env("EVENTLINE_GATEWAY__LISTEN", "127.0.0.1:0")
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("readable by other users") && err.contains("chmod 600"), "{err}");
}

#[test]
fn keys_are_created_listed_and_revoked_through_a_running_up() {
    let dir = tempfile::tempdir().unwrap();
    // Without a running up the command says what to do.
    let out = run(dir.path(), &["keys", "list"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("eventline up"), "{out:?}");
    let up = Up::start(dir.path(), &[]);
    let out = run(dir.path(), &["keys", "create", "--role", "user", "--user", "u-1001", "--expires-in", "1h"], "");
    let secret = ok(&out).trim().to_owned();
    assert!(secret.starts_with("elk_"), "{secret}");
    let told = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(told.contains("user u-1001") && told.contains("expires"), "{told}");
    let key_id = &secret[..12];
    // The key works for its own user only.
    let status = |path: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {secret}"))
            .arg(format!("{}{path}", up.url))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(status("/v1/users/u-1001"), "200");
    assert_eq!(status("/v1/users/u-1002"), "403");
    let listed = ok(&run(dir.path(), &["keys", "list"], ""));
    let line = listed.lines().find(|l| l.starts_with(key_id)).unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("user") && line.contains("u-1001"), "{line}");
    assert!(!listed.contains(&secret), "no secret in the list");
    let json = ok(&run(dir.path(), &["keys", "list", "--json"], ""));
    assert!(json.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    // A bad request is a usage error naming the field.
    let out = run(dir.path(), &["keys", "create", "--role", "user"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("user_id"), "{out:?}");
    ok(&run(dir.path(), &["keys", "revoke", key_id], ""));
    assert_eq!(status("/v1/users/u-1001"), "401");
    let out = run(dir.path(), &["keys", "revoke", key_id], "");
    assert_eq!(out.status.code(), Some(2), "an unknown key");
    up.terminate();
}

#[test]
fn the_gateway_serves_https_with_the_configured_certificate_and_the_cli_trusts_it() {
    let dir = tempfile::tempdir().unwrap();
    // A private CA and a server certificate it signs; tls_cert is the chain (server, then CA).
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let at = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let ext = at("ext.cnf");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            &at("ca.key"),
            "-out",
            &at("ca.pem"),
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            &at("server.csr"),
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &at("server.csr"),
            "-CA",
            &at("ca.pem"),
            "-CAkey",
            &at("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &at("server.pem"),
        ],
    ] {
        let made = Command::new("openssl").args(&args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
    }
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(at("server.pem")).unwrap(),
        std::fs::read_to_string(at("ca.pem")).unwrap()
    );
    std::fs::write(&cert, chain).unwrap();
    let config = dir.path().join("eventline.toml");
    std::fs::write(
        &config,
        format!("[gateway]\ntls_cert = {:?}\ntls_key = {:?}\n", cert.display().to_string(), key.display().to_string()),
    )
    .unwrap();
    let data = dir.path().join("data");
    let up = Up::start_with_env(&data, &[], &[("EVENTLINE_CONFIG", config.to_str().unwrap())]);
    assert!(up.url.starts_with("https://"), "{}", up.url);
    let curl = |args: &[&str]| {
        let out =
            Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    // Trusted with the certificate; refused by a client that does not know it; no plain HTTP.
    assert_eq!(curl(&["--cacert", &at("ca.pem"), &format!("{}/healthz", up.url)]), "200");
    assert_eq!(curl(&[&format!("{}/healthz", up.url)]), "000");
    assert_eq!(curl(&[&format!("{}/healthz", up.url.replace("https://", "http://"))]), "000");
    // The CLI reads the same configuration and trusts the certificate.
    let out = cmd(&data, &["keys", "list"]).env("EVENTLINE_CONFIG", &config).output().unwrap();
    let listed = ok(&out);
    assert!(listed.contains("admin"), "{listed}");
    up.terminate();
    // Half a TLS configuration is a clear error.
    std::fs::write(&config, format!("[gateway]\ntls_cert = {:?}\n", cert.display().to_string())).unwrap();
    let out = cmd(&data, &["up"]).env("EVENTLINE_CONFIG", &config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"), "{out:?}");
}
