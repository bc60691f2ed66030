//! Shared harness of the end-to-end tests: the whole system on loopback
//! sockets ([`rig`]), a line that can be cut at an exact byte
//! ([`forwarder`]), and python's `poplib` as the unchanged mail client
//! ([`python`]).
//!
//! Everything here uses real tokio sockets and processes, so this crate is
//! exempt from the seam lint: it never runs under turmoil.

pub mod forwarder;
pub mod interop;
pub mod python;
pub mod rig;

pub use forwarder::{Dir, Forwarder};
pub use python::{Py, PyOut};
pub use rig::{LOCAL_PASSWORD, LOCAL_USER, MailHost, Rig, RigSpec};
