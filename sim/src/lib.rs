//! causeway-sim: a deterministic, seeded fault simulation of Causeway.
//!
//! The real client proxy, edge, relay and model mail servers run as turmoil
//! hosts, under a fault schedule drawn from the seed (swarm testing: each seed
//! draws its own fault mix). A fetchmail-like mail client drives them, a
//! deliverer drops new mail into the stores, and invariants are checked as the
//! run goes and after a quiet phase. Every failure prints a one-line replay.
//! See `docs/simulation.md`.

pub mod coverage;
pub mod mua;
pub mod nodes;
pub mod params;
pub mod run;
pub mod sweep;
pub mod tap_env;
pub mod trace;

pub use coverage::{Cov, CoverageCounts};
pub use params::Params;
pub use run::{Outcome, RunOptions, TraceMode, Violation, run_seed};
