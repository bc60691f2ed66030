//! causeway-sim: a deterministic, seeded fault simulation of Causeway.
//!
//! The real client proxy, edge, relay and model mail servers run as turmoil
//! hosts, under a fault schedule drawn from the seed (swarm testing: each seed
//! draws its own fault mix). A fetchmail-like mail client drives them, a
//! deliverer drops new mail into the stores, and invariants are checked as the
//! run goes and after a quiet phase. Every failure prints a one-line replay.
//! See `docs/simulation.md`.
//!
//! Layers, each depending only on those above it:
//!
//! - [`swarm`]: the parameters one seed draws (servers, fault rates, the mail
//!   user's habits, sizes, latencies).
//! - [`workload`]: the mail user, and its own record of what it saw.
//! - [`world`]: building the world: hosts, nodes, servers, keys, the line.
//! - [`faults`]: the fault schedule as the run goes, and what it cut.
//! - [`oracle`]: the invariants, judged from the servers' and the user's
//!   records; [`journal_watch`]: the edge journal's disk after each commit.
//! - [`report`]: a run's outcome, its failure report and replay command.
//! - [`run`]: the run loop (fault phase, quiet phase, verdict).
//! - [`sweep`]: many seeds over worker processes.
//! - [`coverage`], [`trace`], [`tap_env`], [`line`]: situations reached,
//!   simulated timestamps in traces, tapped links, a line's bit rate.

pub mod coverage;
pub mod faults;
pub mod journal_watch;
pub mod line;
pub mod oracle;
pub mod report;
pub mod run;
pub mod swarm;
pub mod sweep;
pub mod tap_env;
pub mod trace;
pub mod workload;
pub mod world;

pub use coverage::{Cov, CoverageCounts};
pub use oracle::Violation;
pub use report::{Outcome, RunOptions, TraceMode};
pub use run::run_seed;
pub use swarm::{Focus, Params};
pub use world::Variant;
