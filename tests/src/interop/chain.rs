//! Our three nodes between a real mail client and a real Dovecot:
//!
//! ```text
//! client ── proxy ══[line]══ edge ─────────────────────── Dovecot   (Route::Direct)
//!                              └══[relay_line]══ relay ── Dovecot   (Route::Relay)
//! ```
//!
//! `line` and `relay_line` are cuttable forwarders ([`crate::Forwarder`]).
//! The chain comes from `causeway::chain`, as everywhere; its nodes run as
//! real processes of the `causeway` binary ([`Nodes::Processes`], the
//! default) or as tasks in the test process ([`Nodes::InProcess`],
//! `CAUSEWAY_INTEROP_NODES=inprocess`), which needs no binary and gives the
//! edge's counters for settling.

use std::time::Duration;

use causeway::chain::{self, ChainSpec, Hops, InProcess, MailServer};
use causeway_net::{Env, TokioEnv};
use causeway_proto::user::{INBOX, Protocol, TlsMode};

use crate::forwarder::{Forwarder, Pace};
use crate::process::Processes;

/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "Local-Interop-Pw-4821";
/// The server's name in the client proxy's configuration (UIDL prefix).
pub const SERVER_NAME: &str = "DOVECOT";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The edge talks to Dovecot itself.
    Direct,
    /// The edge goes through a relay beside Dovecot.
    Relay,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nodes {
    /// `causeway client|edge|relay --config FILE` processes.
    Processes,
    /// `run_client`/`run_edge`/`run_relay` tasks in the test process.
    InProcess,
}

impl Nodes {
    /// `CAUSEWAY_INTEROP_NODES=inprocess|process` (default process).
    pub fn from_env() -> Nodes {
        match std::env::var("CAUSEWAY_INTEROP_NODES").as_deref() {
            Ok("inprocess") => Nodes::InProcess,
            Ok("process") | Err(_) => Nodes::Processes,
            Ok(other) => panic!("CAUSEWAY_INTEROP_NODES={other:?}: use process or inprocess"),
        }
    }
}

/// Cuttable forwarders on both lines; the client's line paced when
/// `pace` says so.
#[derive(Default)]
pub struct Lines {
    pub line: Option<Forwarder>,
    pub relay_line: Option<Forwarder>,
    pub pace: Option<Pace>,
}

impl Hops for Lines {
    async fn relay_line(&mut self, relay: String) -> String {
        let f = Forwarder::start(relay).await;
        let addr = f.addr();
        self.relay_line = Some(f);
        addr
    }

    async fn line(&mut self, edge: String) -> String {
        let f = Forwarder::start_paced(edge, self.pace).await;
        let addr = f.addr();
        self.line = Some(f);
        addr
    }
}

enum Launched {
    Procs(Processes),
    InProc(InProcess<TokioEnv>),
}

pub struct Chain {
    /// Where the mail client connects (no TLS), as LOCAL_USER/LOCAL_PASSWORD.
    pub proxy: String,
    /// Where an IMAP mail client connects, the same way.
    pub imap: String,
    /// The bad line: client proxy -> edge (`Dir::Up`) and back.
    pub line: Forwarder,
    /// Edge -> relay (`Dir::Up`) and back; only on `Route::Relay`.
    relay_line: Option<Forwarder>,
    pub nodes: Nodes,
    pub route: Route,
    launched: Launched,
    _chain: chain::Chain,
}

impl Chain {
    /// Starts the nodes for one Dovecot user at `pop3`.
    pub async fn start(
        nodes: Nodes,
        route: Route,
        pop3: &str,
        user: &str,
        password: &str,
    ) -> Chain {
        Self::start_paced(nodes, route, pop3, user, password, None).await
    }

    /// [`Chain::start`], with the client's line paced (rate and delay).
    pub async fn start_paced(
        nodes: Nodes,
        route: Route,
        pop3: &str,
        user: &str,
        password: &str,
        pace: Option<Pace>,
    ) -> Chain {
        let server = [(SERVER_NAME, Protocol::Pop3, pop3, INBOX)];
        Self::start_server(nodes, route, &server, (user, password), pace).await
    }

    /// [`Chain::start`] for Dovecot's IMAP server at `imap`: the mail
    /// client still speaks POP3 to the proxy; the edge (or the relay) reads
    /// `folder` over IMAP (`causeway_upstream::as_pop3`).
    pub async fn start_imap(
        nodes: Nodes,
        route: Route,
        (imap, folder): (&str, &str),
        user: &str,
        password: &str,
    ) -> Chain {
        let server = [(SERVER_NAME, Protocol::Imap, imap, folder)];
        Self::start_server(nodes, route, &server, (user, password), None).await
    }

    /// [`Chain::start_imap`] with an entry per (name, folder) of one
    /// account: the IMAP front shows INBOX and a folder per other entry.
    pub async fn start_imap_folders(
        nodes: Nodes,
        route: Route,
        imap: &str,
        entries: &[(&str, &str)],
        user: &str,
        password: &str,
    ) -> Chain {
        let servers: Vec<_> = entries
            .iter()
            .map(|&(name, folder)| (name, Protocol::Imap, imap, folder))
            .collect();
        Self::start_server(nodes, route, &servers, (user, password), None).await
    }

    async fn start_server(
        nodes: Nodes,
        route: Route,
        servers: &[(&str, Protocol, &str, &str)],
        (user, password): (&str, &str),
        pace: Option<Pace>,
    ) -> Chain {
        let env = TokioEnv::new();
        // The proxy binds its IMAP port itself.
        let imap = crate::unused_address();
        let mut spec = ChainSpec {
            client_imap_listen: Some(imap.clone()),
            servers: servers
                .iter()
                .map(|&(name, protocol, address, folder)| MailServer {
                    name: name.into(),
                    address: address.into(),
                    user: user.into(),
                    password: password.into(),
                    protocol,
                    tls: TlsMode::None,
                    via_relay: route == Route::Relay,
                    folder: folder.into(),
                })
                .collect(),
            local_user: LOCAL_USER.into(),
            local_password: LOCAL_PASSWORD.into(),
            shutdown_deadline: Duration::from_secs(10),
            ..ChainSpec::default()
        };
        // An IMAP client that stays a few seconds sees the folder listed
        // again when it asks (NOOP, IDLE, SELECT), so every client here
        // meets that path, not just the test written for it.
        spec.client_timeouts.imap_recheck = Duration::from_secs(2);
        // Short retry waits: after a cut the edge redoes owed work quickly.
        spec.edge_timeouts.retry_min = Duration::from_millis(100);
        spec.edge_timeouts.retry_max = Duration::from_secs(1);
        let mut lines = Lines {
            pace,
            ..Lines::default()
        };
        let (launched, built) = match nodes {
            Nodes::Processes => {
                let mut procs = Processes::new(&[("RUST_LOG", "info")]);
                let c = spec.start(env.rng(), &mut procs, &mut lines).await;
                (Launched::Procs(procs), c)
            }
            Nodes::InProcess => {
                let mut inproc = InProcess::new(env.clone());
                let c = spec.start(env.rng(), &mut inproc, &mut lines).await;
                (Launched::InProc(inproc), c)
            }
        };
        let built = built.expect("the chain starts");
        Chain {
            proxy: built.proxy.clone(),
            imap,
            line: lines.line.expect("the client's line"),
            relay_line: lines.relay_line,
            nodes,
            route,
            launched,
            _chain: built,
        }
    }

    /// The edge <-> relay line (only on `Route::Relay`).
    pub fn relay_line(&self) -> &Forwarder {
        self.relay_line
            .as_ref()
            .expect("the relay line exists on Route::Relay only")
    }

    /// Kills the edge process (`kill -9`): the edge is now out of reach.
    /// Real processes only.
    pub async fn kill_edge(&mut self) {
        match &mut self.launched {
            Launched::Procs(p) => {
                let edge = p.get(causeway::config::Role::Edge);
                edge.signal("KILL");
                edge.exit_code(&TokioEnv::new()).await;
            }
            Launched::InProc(_) => panic!("kill_edge needs Nodes::Processes"),
        }
    }

    /// False while the in-process edge or relay still has sessions or owed
    /// work; always true for processes (their state is judged on Dovecot).
    pub fn quiet(&self) -> bool {
        match &self.launched {
            Launched::Procs(_) => true,
            Launched::InProc(p) => {
                let (edge, relay) = (&p.edge, &p.relay);
                edge.live_sessions()
                    + edge.live_replicas()
                    + edge.pending_work()
                    + relay.live_links()
                    + relay.live_server_sessions()
                    == 0
            }
        }
    }

    /// Resumes the edge took, and bodies they continued part-way: from its
    /// counters in process, from its log lines for processes.
    pub fn resumes(&self) -> (usize, usize) {
        match &self.launched {
            Launched::Procs(p) => {
                let out = p.output();
                let lines: Vec<&str> = out
                    .lines()
                    .filter(|l| l.contains("the client proxy resumed the session"))
                    .collect();
                let partial = lines
                    .iter()
                    .filter_map(|l| l.split("partial_bodies=").nth(1))
                    .filter_map(|v| v.split_whitespace().next()?.parse::<usize>().ok())
                    .sum();
                (lines.len(), partial)
            }
            Launched::InProc(p) => (p.edge.resumes(), p.edge.resumed_partial_bodies()),
        }
    }

    /// What the nodes logged (processes), for failure reports.
    pub fn output(&self) -> String {
        match &self.launched {
            Launched::Procs(p) => p.output(),
            Launched::InProc(p) => format!(
                "in-process: edge sessions {} replicas {} pending {}; sessions {:?}",
                p.edge.live_sessions(),
                p.edge.live_replicas(),
                p.edge.pending_work(),
                p.edge.sessions()
            ),
        }
    }
}
