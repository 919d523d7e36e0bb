//! `eventline pii scan`: `{"text": ...}` lines in, one `{"entities": [...], "redacted": ...}` line
//! out per input line. A bad line gets an error line on stderr naming the line, the field and the
//! reason; the other lines are still scanned, and the exit code is 1 if any line was bad.

use std::io::{BufRead, Write};

use eventline_governance::{Detector, scan_line};

use crate::Exit;
use crate::cli::PiiCommand;

pub fn run(cmd: PiiCommand) -> anyhow::Result<()> {
    let PiiCommand::Scan { redact } = cmd;
    let detector = Detector::new();
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad = 0usize;
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match scan_line(&detector, &line, redact) {
            Ok(v) => {
                serde_json::to_writer(&mut out, &v)?;
                out.write_all(b"\n")?;
            }
            Err(e) => {
                out.flush()?;
                eprintln!("eventline: line {}: {e}", i + 1);
                bad += 1;
            }
        }
    }
    out.flush()?;
    if bad > 0 {
        return Err(Exit::new(1, format!("{bad} line(s) could not be scanned")).into());
    }
    Ok(())
}
