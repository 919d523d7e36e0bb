//! The dashboard at `/`: its login over a real socket (the session cookie's flags, GET-only use,
//! refusals, logout, a revoked key ending its sessions), its live stream, and the page itself in a
//! real browser — Debian's Chromium driven headless by playwright-core (scripts/browser/
//! dashboard.mjs, installed by scripts/services/browser.sh): the login works, the charts show the
//! traffic `eventline demo` sent, no console errors, a screenshot under the target directory.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod up_harness;

use up_harness::{EXE, Up};

const COOKIE: &str = "eventline_session";

async fn new_key(http: &reqwest::Client, url: &str, admin: &str, role: &str) -> (String, String) {
    let r = http.post(format!("{url}/v1/keys")).bearer_auth(admin).json(&json!({"role": role})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (v["key"].as_str().unwrap().to_owned(), v["key_id"].as_str().unwrap().to_owned())
}

async fn login(http: &reqwest::Client, url: &str, key: &str) -> reqwest::Response {
    http.post(format!("{url}/v1/session")).json(&json!({"key": key})).send().await.unwrap()
}

fn session_cookie(r: &reqwest::Response) -> (String, String) {
    let set = r.headers().get("set-cookie").expect("a Set-Cookie header").to_str().unwrap().to_owned();
    let value = set.split(';').next().unwrap().strip_prefix(&format!("{COOKIE}=")).unwrap().to_owned();
    (format!("{COOKIE}={value}"), set)
}

/// The first `snapshot` event of the dashboard stream, read with the cookie.
async fn first_snapshot(http: &reqwest::Client, url: &str, cookie: &str) -> Value {
    let mut r = http.get(format!("{url}/v1/dashboard/stream")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        if let Some(start) = text.find("event: snapshot\ndata: ") {
            let rest = &text[start + "event: snapshot\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                return serde_json::from_str(&rest[..end]).unwrap();
            }
        }
    }
    panic!("no snapshot event: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_logs_in_with_a_read_key_streams_the_platform_and_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("eventline.toml");
    std::fs::write(
        &config,
        "[[notifications.channels]]\nname = \"log\"\ntype = \"log\"\n\
         [[notifications.routes]]\nalert_types = [\"*\"]\nchannels = [\"log\"]\n",
    )
    .unwrap();
    let mut up = Up::start_with_env(&data, &[], &[("EVENTLINE_CONFIG", config.to_str().unwrap())]);
    let url = up.url.clone();
    let line = up.wait_for_line("dashboard on");
    assert!(line.contains(&format!("dashboard on {url}/")), "up prints the dashboard URL: {line}");
    let http = reqwest::Client::new();
    let admin = std::fs::read_to_string(data.join("admin.key")).unwrap().trim().to_owned();

    // The page and its assets need no key; they carry a strict content security policy.
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().await.unwrap().contains("/assets/app.js"));
    for asset in ["app.js", "app.css"] {
        assert_eq!(http.get(format!("{url}/assets/{asset}")).send().await.unwrap().status(), 200);
    }
    assert_eq!(http.get(format!("{url}/assets/secret.txt")).send().await.unwrap().status(), 404);

    // Login: a wrong key 401, a key that cannot read 403, both without a cookie.
    let r = login(&http, &url, "elk_not_a_key").await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let (agent, _) = new_key(&http, &url, &admin, "agent").await;
    let r = login(&http, &url, &agent).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("read"), "{v}");
    let r = http.post(format!("{url}/v1/session")).json(&json!({"token": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 422, "an unknown field is named");

    // A read key: the cookie is HttpOnly, SameSite=Strict, short-lived, and never shows the key.
    let (read, read_id) = new_key(&http, &url, &admin, "read").await;
    let r = login(&http, &url, &read).await;
    assert_eq!(r.status(), 200);
    let (cookie, set) = session_cookie(&r);
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=3600"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains(&read));
    let who: Value = r.json().await.unwrap();
    assert_eq!((who["key_id"].as_str(), who["role"].as_str()), (Some(read_id.as_str()), Some("read")));
    let who: Value =
        http.get(format!("{url}/v1/session")).header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(who["key_id"], json!(read_id));
    assert!(who["expires_at"].is_string());
    // The cookie reads (GET) but never writes: a POST with it alone is 401.
    let r = http.get(format!("{url}/v1/topics")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{url}/v1/topics/external.crm.events/records"))
        .header("cookie", &cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // And not what the read role may not do either.
    let r = http.get(format!("{url}/v1/users/u-1001")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // Traffic, then the stream shows it.
    let demo = Command::new(EXE)
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--rate", "30", "--duration", "4s", "--seed", "7"])
        .env_remove("EVENTLINE_CONFIG")
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let snap = first_snapshot(&http, &url, &cookie).await;
    let topics = snap["topics"].as_array().unwrap();
    let executions = topics.iter().find(|t| t["topic"] == "agent.executions").unwrap();
    assert!(executions["end_offset"].as_u64().unwrap() > 0, "{snap}");
    let agents: Vec<&str> =
        snap["agents"].as_array().unwrap().iter().map(|a| a["agent_id"].as_str().unwrap()).collect();
    assert!(!agents.is_empty(), "{snap}");
    assert!(snap["groups"].as_array().unwrap().iter().any(|g| g["group"] == "eventline-audit"), "{snap}");
    assert!(["intact", "unknown"].contains(&snap["audit"]["state"].as_str().unwrap()), "{snap}");
    assert_eq!(snap["cdc"][0]["source"], "sqlite");
    assert_eq!(snap["interval_ms"], 2000);

    // The page in Chromium.
    let browser = std::env::var("EVENTLINE_TEST_BROWSER").unwrap_or_else(|_| {
        panic!("EVENTLINE_TEST_BROWSER is not set: run scripts/services/browser.sh start (scripts/test.sh does)")
    });
    // More traffic while the page watches, so its charts move.
    let data_dir = data.clone();
    let traffic = std::thread::spawn(move || {
        Command::new(EXE)
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["demo", "--rate", "10", "--duration", "40s", "--seed", "8"])
            .env_remove("EVENTLINE_CONFIG")
            .output()
            .unwrap()
    });
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("node")
        .arg(std::path::Path::new(&browser).join("dashboard.mjs"))
        .arg(&url)
        .arg(&read)
        .arg(&shot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "the browser run failed: {stdout}{stderr}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["ok"], true, "{summary}");
    assert_eq!(summary["console_errors"], json!([]), "{summary}");
    assert!(!summary["topics_with_rate"].as_array().unwrap().is_empty(), "{summary}");
    assert!(summary["alerts"].as_u64().unwrap() >= 1, "{summary}");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot at {}", shot.display());
    let _ = traffic.join();

    // Logout ends the session; revoking a key ends its sessions.
    let r = http.delete(format!("{url}/v1/session")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(http.get(format!("{url}/v1/session")).header("cookie", &cookie).send().await.unwrap().status(), 401);
    let (cookie2, _) = session_cookie(&login(&http, &url, &read).await);
    assert_eq!(http.get(format!("{url}/v1/topics")).header("cookie", &cookie2).send().await.unwrap().status(), 200);
    let r = http.delete(format!("{url}/v1/keys/{read_id}")).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(http.get(format!("{url}/v1/topics")).header("cookie", &cookie2).send().await.unwrap().status(), 401);
    up.terminate();
}
