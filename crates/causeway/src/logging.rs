//! Log output: tracing-subscriber on stderr, human-readable by default or one
//! JSON object per line, with the level from `RUST_LOG` (default `info`).
//!
//! The node crates put the session id on every line about a session (as a
//! `session`/`link` field or a span); JSON output keeps span fields too.

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event (fields, span fields, target, level, time).
    Json,
}

/// Installs the global subscriber. `default` is the filter used when
/// `RUST_LOG` is unset or empty.
pub fn init(format: LogFormat, default: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(&v).unwrap_or_else(|e| {
            eprintln!("causeway: RUST_LOG={v:?} is not a valid filter ({e}); using {default:?}");
            EnvFilter::new(default)
        }),
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}
