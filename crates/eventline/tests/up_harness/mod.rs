//! A running `eventline up` for the tests that drive the real binary (`up.rs`, `up_cli.rs`).
// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const EXE: &str = env!("CARGO_BIN_EXE_eventline");

/// The lines `source` produces, read on a thread of their own.
pub fn lines(source: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// `eventline up` on a data directory, listening on a free port.
pub struct Up {
    pub child: Child,
    pub url: String,
    stderr: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Up {
    /// Starts `eventline up` on `data` with a free port; returns once it listens.
    pub fn start(data: &Path, extra: &[&str]) -> Up {
        Up::start_with_env(data, extra, &[])
    }

    /// Like [`Up::start`], with extra environment variables (e.g. `EVENTLINE_CONFIG`).
    pub fn start_with_env(data: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Up {
        let mut child = Command::new(EXE)
            .arg("--data-dir")
            .arg(data)
            .arg("up")
            .args(extra)
            .env("EVENTLINE_GATEWAY__LISTEN", "127.0.0.1:0")
            .env("EVENTLINE_LOG_LEVEL", "info")
            .env_remove("EVENTLINE_CONFIG")
            .env_remove("EVENTLINE_DATABASE_URL")
            .env_remove("EVENTLINE_BACKEND")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = lines(child.stderr.take().unwrap());
        let mut up = Up { child, url: String::new(), stderr, seen: Vec::new() };
        let line = up.wait_for_line("gateway listening on http");
        let at = line.find("http").unwrap();
        up.url = line[at..].split_whitespace().next().unwrap().to_owned();
        up
    }

    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.child.try_wait().unwrap() {
                        panic!("eventline up exited with {status} before `{needle}`:\n{}", self.seen.join("\n"));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no `{needle}` from eventline up:\n{}", self.seen.join("\n"));
    }

    /// SIGTERM, then waits for the exit; returns all of stderr.
    pub fn terminate(mut self) -> String {
        let kill = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "eventline up did not stop within 60 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        let text = self.seen.join("\n");
        assert!(status.success(), "exit {status}:\n{text}");
        assert!(text.contains("stopped cleanly"), "{text}");
        text
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `GET {url}/readyz` answers 200 (at most 30 s).
pub async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{url}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("up never became ready");
}
