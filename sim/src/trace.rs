//! Tracing for simulated runs: timestamps from simulated time, output to
//! stderr (`--trace`) or into memory (the determinism check compares two runs'
//! traces byte for byte).
//!
//! The subscriber is installed per run with `tracing::subscriber::with_default`
//! (thread-local), so seeds run on several threads do not mix their traces.

use std::cell::Cell;
use std::io;
use std::sync::{Arc, Mutex};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

thread_local! {
    /// Simulated milliseconds since the start of the current run on this
    /// thread; the harness sets it every step.
    static SIM_NOW_MS: Cell<u64> = const { Cell::new(0) };
}

pub fn set_now_ms(ms: u64) {
    SIM_NOW_MS.with(|c| c.set(ms));
}

pub fn now_ms() -> u64 {
    SIM_NOW_MS.with(|c| c.get())
}

/// `1234.567s`: simulated time, never the wall clock.
pub struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let ms = turmoil::sim_elapsed()
            .map(|d| d.as_millis() as u64)
            .unwrap_or_else(now_ms);
        write!(w, "{:>5}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Collects a run's trace in memory.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.clone())
    }
}

/// The default filter: everything our crates and the harness say, turmoil's
/// own chatter (one event per step) left out.
pub const DEFAULT_FILTER: &str = "trace,turmoil=info";

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("CAUSEWAY_SIM_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
}

/// A subscriber writing to stderr with simulated timestamps.
pub fn stderr_subscriber() -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_timer(SimTime)
        .with_ansi(false)
        .with_writer(io::stderr)
        .finish()
}

/// A subscriber writing into `capture` (for the determinism check).
pub fn capture_subscriber(capture: &Capture) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(DEFAULT_FILTER))
        .with_timer(SimTime)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish()
}
