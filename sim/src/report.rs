//! What a run reports: how much tracing it asked for, its outcome, the
//! failure report a person reads, and the one-line command that replays it.

use std::collections::BTreeSet;

use crate::coverage::Cov;
use crate::oracle::Violation;
use crate::swarm::{Focus, Params};
use crate::world::Variant;

/// How much the harness says while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// Nothing but the outcome.
    #[default]
    Off,
    /// Every tracing event to stderr, with simulated timestamps.
    Stderr,
    /// Every tracing event into [`Outcome::trace`].
    Capture,
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub trace: TraceMode,
    pub variant: Variant,
    /// Turn the seed's swarm towards one fault class.
    pub focus: Option<Focus>,
}

/// What one seed did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub params: Params,
    pub violations: Vec<Violation>,
    /// Exemptions applied and other remarks, for the person reading a failure.
    pub notes: Vec<String>,
    pub coverage: BTreeSet<Cov>,
    /// The harness's own event log.
    pub log: Vec<String>,
    /// The tracing output, with [`TraceMode::Capture`].
    pub trace: Option<Vec<u8>>,
    pub sim_ms: u64,
    pub variant: Variant,
    pub focus: Option<Focus>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    /// Everything the determinism check compares.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut out = self.trace.clone().unwrap_or_default();
        for l in &self.log {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        for v in &self.violations {
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The one-line command that replays this run with full tracing.
    pub fn replay(&self) -> String {
        let focus = self
            .focus
            .map_or(String::new(), |f| format!(" --focus {}", f.name()));
        let variant: String = self
            .variant
            .args()
            .iter()
            .map(|a| format!(" {a}"))
            .collect();
        format!(
            "cargo run --release -p causeway-sim{} -- --seed {}{focus}{variant} --trace",
            self.variant.features(),
            self.seed
        )
    }

    /// The failure report: seed, parameters, violations, replay command.
    pub fn report(&self) -> String {
        let mut s = format!("FAIL seed {}\n{}\n", self.seed, self.params);
        for v in &self.violations {
            s.push_str(&format!("  VIOLATED {v}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        let tail = self.log.len().saturating_sub(60);
        s.push_str("  harness log (last 60 events):\n");
        for l in &self.log[tail..] {
            s.push_str(&format!("    {l}\n"));
        }
        s.push_str(&format!("  replay: {}\n", self.replay()));
        s
    }
}
