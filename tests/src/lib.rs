//! Shared harness of the end-to-end tests: the whole system on loopback
//! sockets ([`rig`]), a line that can be cut at an exact byte
//! ([`forwarder`]), python's `poplib` as the unchanged mail client
//! ([`python`]), and a small turmoil world of edge, relay and model servers
//! driven by a scripted client ([`edge_world`]).
//!
//! This crate is exempt from the seam lint: its own code never runs inside
//! the nodes (the turmoil world builds its hosts from the nodes' public API).

pub mod edge_world;
pub mod forwarder;
pub mod interop;
pub mod process;
pub mod python;
pub mod rig;

pub use forwarder::{Dir, Forwarder, Pace};
pub use python::{Py, PyOut};
pub use rig::{LOCAL_PASSWORD, LOCAL_USER, MailHost, Rig, RigSpec};
