//! The one Causeway binary, as a library so its tests can reach the pieces:
//! assembling a chain of nodes ([`chain`]),
//! configuration files ([`config`]), `check-config` ([`check`]), mail
//! samples for dictionaries and benchmarks ([`corpus`]), keys
//! ([`keys`]), logging ([`logging`]), running a node as a service with
//! graceful shutdown ([`run`]) and the embedded demo ([`demo`]).
//!
//! Owns: how an operator (or a test) describes and starts a node. It is the
//! top of the dependency graph: it depends on the three node crates and on
//! the model mail server (for the demo); nothing but tests, the simulation
//! and the benchmarks depends on it.

pub mod chain;
pub mod check;
pub mod config;
pub mod corpus;
pub mod demo;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod owed;
pub mod run;
