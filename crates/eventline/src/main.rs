//! `eventline`: parses the command line, loads the configuration and hands over to the command.
//! All behaviour lives in the libraries; this binary only wires them together.

/// `println!` that returns an error instead of panicking when stdout is gone (e.g. `| head`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod backend;
mod cli;
mod commands;
mod config;
mod gate;
mod remote;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::config::{Config, FlagOverrides};

/// mimalloc instead of glibc's malloc: JSON building in capture, the gate and the gateway
/// allocates per field from several threads at once, where glibc's arena locks showed up as
/// 6 – 7 % of capture's time (perf, `bench cdc`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error the user can act on, with the exit code to leave with.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn init_tracing(
    verbose: u8,
    quiet: bool,
    otlp: Option<&eventline_telemetry::OtlpConfig>,
) -> eventline_telemetry::Guard {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVENTLINE_LOG_LEVEL")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    match eventline_telemetry::init(filter, std::io::stderr().is_terminal(), otlp) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("eventline: {e}");
            eventline_telemetry::Guard::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let flags = FlagOverrides {
        data_dir: cli.global.data_dir.clone(),
        backend: cli.global.backend,
        kafka_brokers: cli.global.kafka_brokers.clone(),
        database_url: None,
    };
    let config = match Config::load(cli.global.config.as_deref(), std::env::vars(), &flags) {
        Ok(c) => c,
        Err(e) => {
            let _guard = init_tracing(cli.global.verbose, cli.global.quiet, None);
            eprintln!("eventline: {e}");
            return ExitCode::from(2);
        }
    };
    // Spans are exported by `up` (and `bench`, to measure what exporting costs); a one-shot
    // command only logs.
    let otlp = if matches!(cli.command, cli::Command::Up(_) | cli::Command::Bench(_)) {
        config.telemetry.otlp()
    } else {
        None
    };
    let _telemetry = init_tracing(cli.global.verbose, cli.global.quiet, otlp.as_ref());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the tokio runtime");
    match runtime.block_on(commands::run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`eventline consume … | head`): not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let unsupported = e.chain().find_map(|c| match c.downcast_ref::<eventline_log::LogError>() {
                Some(eventline_log::LogError::Unsupported(m)) => Some(m.clone()),
                _ => None,
            });
            let (code, message) = match (e.downcast_ref::<Exit>(), unsupported) {
                (Some(exit), _) => (exit.code, exit.message.clone()),
                // What this way of reaching the log cannot do is a usage error.
                (None, Some(m)) => (2, m),
                (None, None) => (1, format!("{e:#}")),
            };
            if !message.is_empty() {
                eprintln!("eventline: {message}");
            }
            ExitCode::from(code)
        }
    }
}
