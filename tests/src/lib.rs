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

/// A loopback address for a listener a node binds itself (the client
/// proxy's IMAP port): a random port below the kernel's ephemeral range
/// (32768 and up on Linux) that is free now. Ports the OS hands out for
/// port 0 and for outgoing connections come from that range, so only
/// another pick like this one could take it before the node binds.
pub fn unused_address() -> String {
    use causeway_net::Env;
    let env = causeway_net::TokioEnv::new();
    for _ in 0..100 {
        let port = env.rng().range(20_000, 32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return format!("127.0.0.1:{port}");
        }
    }
    panic!("no free loopback port in 20000..32000 after 100 tries");
}
