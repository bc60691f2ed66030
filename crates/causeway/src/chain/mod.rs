//! One way to assemble a chain of Causeway nodes: relay, edge and client
//! proxy, with fresh keys, allow lists that name each other, and the routes
//! to the mail servers. The demo, the integration and interop tests, the
//! benchmarks and the simulation all start their chains here, so a change to
//! what a node needs is made once.
//!
//! Every node is configured the way an operator configures it: the builder
//! writes each node's TOML file ([`files`]) and the node is started from that
//! file, parsed by the binary's own parser ([`crate::config`]). A
//! [`Launcher`] decides where the node runs: as a task in this process
//! ([`InProcess`]), or as a `causeway` process (the tests' launcher). [`Hops`]
//! may put something between the nodes (a forwarder that cuts the line).
//!
//! The relay is started only when some server is routed through it.

pub mod files;
mod in_process;
mod temp;

use std::future::Future;
use std::io;
use std::path::Path;
use std::time::Duration;

use causeway_client::Timeouts as ClientTimeouts;
use causeway_edge::{EdgeTimeouts, ResumeConfig};
use causeway_net::EnvRng;
use causeway_proto::user::{Protocol, TlsMode};
use causeway_relay::RelayTimeouts;
use causeway_wire::{ChannelConfig, Keypair, PublicKey};

pub use files::Secrets;
pub use in_process::{InProcess, NodeTask, Spawn, TokioSpawn};
pub use temp::TempDir;

use crate::config::Role;

/// The name servers are routed through the relay by.
pub const RELAY_NAME: &str = "R1";

/// The three nodes' static keys.
#[derive(Clone)]
pub struct Keys {
    pub edge: Keypair,
    pub relay: Keypair,
    pub client: Keypair,
}

impl Keys {
    /// Fresh keys from `rng` (drawn in this order: edge, relay, client).
    pub fn generate(rng: &EnvRng) -> Keys {
        Keys {
            edge: Keypair::generate(rng),
            relay: Keypair::generate(rng),
            client: Keypair::generate(rng),
        }
    }
}

/// One mail server the client proxy's user information names.
#[derive(Clone, Debug)]
pub struct MailServer {
    /// The name requests are routed by (and the UIDL prefix).
    pub name: String,
    /// `host:port`.
    pub address: String,
    pub user: String,
    pub password: String,
    /// What the server speaks (the mail client speaks POP3 either way).
    pub protocol: Protocol,
    pub tls: TlsMode,
    /// Reached through the relay rather than directly from the edge.
    pub via_relay: bool,
    /// The IMAP folder read (`causeway_proto::user::INBOX` for POP3).
    pub folder: String,
}

/// What chain to build.
#[derive(Clone, Debug)]
pub struct ChainSpec {
    /// In the client proxy's order (the unified mailbox's numbering).
    pub servers: Vec<MailServer>,
    /// The mail client's login at the client proxy.
    pub local_user: String,
    pub local_password: String,
    /// Where the client proxy listens (`127.0.0.1:0`: any free port).
    pub client_listen: String,
    /// Where the client proxy serves IMAP, if it does (a fixed port: the
    /// proxy binds it itself).
    pub client_imap_listen: Option<String>,
    /// Where the edge and the relay listen.
    pub edge_listen: String,
    pub relay_listen: String,
    /// Both links' channel settings (a dictionary is written to a file).
    pub channel: ChannelConfig,
    pub edge_timeouts: EdgeTimeouts,
    pub relay_timeouts: RelayTimeouts,
    pub client_timeouts: ClientTimeouts,
    /// Client sessions the edge serves at once.
    pub edge_max_sessions: usize,
    /// How long and how many sessions the edge keeps for a resume.
    pub edge_resume: ResumeConfig,
    /// Messages the edge holds on their way up, all sessions together.
    pub edge_upload_total_bytes: usize,
    /// The edge keeps its crash journal in a file of the chain's directory;
    /// `false` runs it without one (`journal = "memory"`).
    pub journal: bool,
    /// The client proxy keeps its delete journal in a file of the chain's
    /// directory (DELE answered by the proxy); `false`: it asks the edge for
    /// every DELE.
    pub client_journal: bool,
    pub shutdown_deadline: Duration,
    /// The edge's and the relay's `metrics_listen` (their files say it; the
    /// binary serves it, an in-process chain has no endpoint).
    pub metrics_listen: Option<String>,
    /// Client proxies the edge allows beside the chain's own (`Keys::client`):
    /// the bench's load processes, each a proxy with a key of its own.
    pub more_clients: Vec<PublicKey>,
    /// The client proxy streams bodies ahead of demand (`[prefetch]
    /// enabled`); `false`: every body crosses the line when asked for.
    pub prefetch: bool,
}

impl Default for ChainSpec {
    fn default() -> Self {
        ChainSpec {
            servers: Vec::new(),
            local_user: "me".into(),
            local_password: "local-secret".into(),
            client_listen: "127.0.0.1:0".into(),
            client_imap_listen: None,
            edge_listen: "127.0.0.1:0".into(),
            relay_listen: "127.0.0.1:0".into(),
            channel: ChannelConfig::default(),
            edge_timeouts: EdgeTimeouts::default(),
            relay_timeouts: RelayTimeouts::default(),
            client_timeouts: ClientTimeouts::default(),
            edge_max_sessions: 1024,
            edge_resume: ResumeConfig::default(),
            edge_upload_total_bytes: causeway_edge::DEFAULT_UPLOAD_TOTAL_BYTES,
            journal: true,
            client_journal: true,
            shutdown_deadline: Duration::from_secs(20),
            metrics_listen: None,
            more_clients: Vec::new(),
            prefetch: true,
        }
    }
}

impl ChainSpec {
    /// True if some server is routed through the relay.
    pub fn needs_relay(&self) -> bool {
        self.servers.iter().any(|s| s.via_relay)
    }
}

/// Starts a node from its configuration file; answers where it listens.
pub trait Launcher {
    fn start(&mut self, role: Role, file: &Path) -> impl Future<Output = io::Result<String>>;
}

/// What sits between the nodes. The default passes addresses through.
pub trait Hops {
    /// The address the edge should dial to reach the relay at `relay`.
    fn relay_line(&mut self, relay: String) -> impl Future<Output = String> {
        std::future::ready(relay)
    }

    /// The address the client proxy should dial to reach the edge at `edge`.
    fn line(&mut self, edge: String) -> impl Future<Output = String> {
        std::future::ready(edge)
    }
}

/// Nothing between the nodes.
pub struct Direct;

impl Hops for Direct {}

/// A started chain: where each node listens, and what it was made from.
pub struct Chain {
    pub keys: Keys,
    /// Where the relay listens (no relay without a relayed server).
    pub relay: Option<String>,
    pub edge: String,
    /// Where the mail client connects (POP3, no TLS).
    pub proxy: String,
    /// The directory of the nodes' files (configurations, keys, journal);
    /// removed when the chain is dropped.
    pub dir: TempDir,
}

impl ChainSpec {
    /// Writes each node's file into a fresh directory and starts the nodes
    /// (relay, edge, client proxy) in turn, each once the address it needs
    /// is known.
    pub async fn start(
        &self,
        rng: &EnvRng,
        launcher: &mut impl Launcher,
        hops: &mut impl Hops,
    ) -> io::Result<Chain> {
        let keys = Keys::generate(rng);
        let dir = TempDir::new(rng, "chain")?;
        let relay = if self.needs_relay() {
            let file = dir.write(
                "relay.toml",
                &files::relay(self, &keys, Secrets::Files(&dir))?,
            )?;
            Some(launcher.start(Role::Relay, &file).await?)
        } else {
            None
        };
        let relay_dial = match &relay {
            Some(r) => Some(hops.relay_line(r.clone()).await),
            None => None,
        };
        let edge_text = files::edge(self, &keys, relay_dial.as_deref(), Secrets::Files(&dir))?;
        let edge = launcher
            .start(Role::Edge, &dir.write("edge.toml", &edge_text)?)
            .await?;
        let edge_dial = hops.line(edge.clone()).await;
        let client_text = files::client(self, &keys, &edge_dial, Secrets::Files(&dir))?;
        let proxy = launcher
            .start(Role::Client, &dir.write("client.toml", &client_text)?)
            .await?;
        Ok(Chain {
            keys,
            relay,
            edge,
            proxy,
            dir,
        })
    }
}
