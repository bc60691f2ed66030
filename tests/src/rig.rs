//! The whole system on loopback, in-process: model mail servers, a relay,
//! an edge, a cuttable line and the client proxy, each a task on the test's
//! runtime, with fresh keys per rig.
//!
//! ```text
//! poplib ── proxy ── [Forwarder] ── edge ──────────── mail server (Direct)
//!                                     └── relay ───── mail server (Relay)
//! ```
//!
//! After a test's conversation, [`Rig::settle`] waits for the edge to finish
//! its own work (it completes acknowledged deletes after the client is gone),
//! and [`Rig::assert_no_leaks`] checks what must hold however the
//! conversation went: every server session ended with QUIT, no maildrop lock
//! is held, no replica, session or pending work is left on the edge.

use std::time::Duration;

use causeway::chain::{self, ChainSpec, Hops, InProcess, MailServer};
use causeway_client::Timeouts;
use causeway_edge::EdgeState;
use causeway_mailserver::{
    EndKind, LockPolicy, MailStore, ServerConfig, generate, serve, serve_imap,
};
use causeway_net::{Env, EnvRng, Listener, TokioEnv};
use causeway_proto::user::{Protocol, TlsMode};
use causeway_relay::RelayState;
use tokio::task::JoinHandle;

use crate::forwarder::{Forwarder, Pace};

/// The mailbox user on every model server, and its password.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "alice-server-secret";
/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "local-secret";

/// How long [`Rig::settle`] waits for the edge and servers to finish.
const SETTLE: Duration = Duration::from_secs(30);

/// One model mail server.
pub struct MailHost {
    /// The server's name in the user information (the UIDL prefix).
    pub name: String,
    pub store: MailStore,
    /// The maildrop the entry reads: [`USER`]'s INBOX, or one of its IMAP
    /// folders ([`RigSpec::folders`]).
    pub maildrop: String,
    pub addr: String,
    pub via_relay: bool,
}

/// How to build a rig.
pub struct RigSpec {
    /// (name, through the relay?) per server, in configuration order.
    pub servers: Vec<(&'static str, bool)>,
    /// (name, folder) per model IMAP server whose entry reads a folder
    /// other than INBOX, reached directly, after `servers`.
    pub folders: Vec<(&'static str, &'static str)>,
    pub server_config: ServerConfig,
    pub client_timeouts: Timeouts,
    pub edge_timeouts: causeway_edge::EdgeTimeouts,
    pub edge_resume: causeway_edge::ResumeConfig,
    /// A slow client line (rate and delay) instead of a fast one.
    pub line_pace: Option<Pace>,
    /// The edge's `upload_total_bytes`.
    pub edge_upload_total_bytes: usize,
}

impl Default for RigSpec {
    fn default() -> Self {
        RigSpec {
            servers: vec![("HOST1", false)],
            folders: Vec::new(),
            // One session per maildrop, and a stale lock that outlives the
            // test: a session left without QUIT would show as a held lock.
            server_config: ServerConfig {
                lock: LockPolicy::Exclusive {
                    stale_after_abrupt: Duration::from_secs(3600),
                },
                ..ServerConfig::default()
            },
            client_timeouts: Timeouts::default(),
            edge_timeouts: causeway_edge::EdgeTimeouts::default(),
            edge_resume: causeway_edge::ResumeConfig::default(),
            line_pace: None,
            edge_upload_total_bytes: causeway_edge::DEFAULT_UPLOAD_TOTAL_BYTES,
        }
    }
}

pub struct Rig {
    pub env: TokioEnv,
    pub hosts: Vec<MailHost>,
    pub edge: EdgeState,
    pub relay: RelayState,
    /// The line between client proxy and edge.
    pub line: Forwarder,
    /// Where the mail client connects.
    pub proxy: String,
    /// Where an IMAP mail client connects.
    pub imap: String,
    nodes: InProcess<TokioEnv>,
    servers: Vec<JoinHandle<()>>,
    _chain: chain::Chain,
}

/// A cuttable forwarder on the client's line, slow when paced.
struct CuttableLine(Option<Forwarder>, Option<Pace>);

impl Hops for CuttableLine {
    async fn line(&mut self, edge: String) -> String {
        let f = Forwarder::start_paced(edge, self.1).await;
        let addr = f.addr();
        self.0 = Some(f);
        addr
    }
}

impl RigSpec {
    /// Two servers, both reached directly: one unified mailbox.
    pub fn two_servers() -> RigSpec {
        RigSpec {
            servers: vec![("HOST1", false), ("HOST2", false)],
            ..RigSpec::default()
        }
    }

    /// Session resume off at both ends: a cut reaches the mail client, and
    /// the edge ends the session at once.
    pub fn no_resume() -> RigSpec {
        RigSpec {
            client_timeouts: Timeouts {
                resume: Duration::ZERO,
                ..Timeouts::default()
            },
            edge_resume: causeway_edge::ResumeConfig {
                window: Duration::ZERO,
                ..causeway_edge::ResumeConfig::default()
            },
            ..RigSpec::default()
        }
    }
}

impl Rig {
    pub async fn start(spec: RigSpec) -> Rig {
        let env = TokioEnv::new();
        let mut servers = Vec::new();
        let mut hosts = Vec::new();
        let pop3 = spec.servers.iter().map(|&(n, relay)| (n, relay, None));
        let imap = spec.folders.iter().map(|&(n, f)| (n, false, Some(f)));
        for (name, via_relay, folder) in pop3.chain(imap) {
            let store = MailStore::with_rng(env.rng());
            store.add_user(USER, PASSWORD);
            let maildrop = match folder {
                Some(f) => store.add_folder(USER, f),
                None => USER.to_owned(),
            };
            let l = env.bind("127.0.0.1:0").await.expect("bind a loopback port");
            let addr = l.local_addr().unwrap().to_string();
            let (e, c, s) = (env.clone(), spec.server_config.clone(), store.clone());
            servers.push(tokio::spawn(async move {
                let _ = match folder {
                    Some(_) => serve_imap(e, l, s, c).await,
                    None => serve(e, l, s, c).await,
                };
            }));
            hosts.push(MailHost {
                name: name.to_string(),
                store,
                maildrop,
                addr,
                via_relay,
            });
        }
        // The proxy binds its IMAP port itself.
        let imap = crate::unused_address();
        let chain_spec = ChainSpec {
            client_imap_listen: Some(imap.clone()),
            servers: hosts
                .iter()
                .map(|h| {
                    let folder = h.maildrop.strip_prefix(&format!("{USER}/"));
                    MailServer {
                        name: h.name.clone(),
                        address: h.addr.clone(),
                        user: USER.into(),
                        password: PASSWORD.into(),
                        protocol: folder.map_or(Protocol::Pop3, |_| Protocol::Imap),
                        tls: TlsMode::None,
                        via_relay: h.via_relay,
                        folder: folder.unwrap_or(causeway_proto::user::INBOX).into(),
                    }
                })
                .collect(),
            local_user: LOCAL_USER.into(),
            local_password: LOCAL_PASSWORD.into(),
            client_timeouts: spec.client_timeouts,
            edge_timeouts: spec.edge_timeouts,
            edge_resume: spec.edge_resume,
            edge_upload_total_bytes: spec.edge_upload_total_bytes,
            journal: false,
            ..ChainSpec::default()
        };
        let mut nodes = InProcess::new(env.clone());
        let mut line = CuttableLine(None, spec.line_pace);
        let built = chain_spec
            .start(env.rng(), &mut nodes, &mut line)
            .await
            .expect("the chain starts");
        Rig {
            env,
            hosts,
            edge: nodes.edge.clone(),
            relay: nodes.relay.clone(),
            line: line.0.expect("the client's line"),
            proxy: built.proxy.clone(),
            imap,
            nodes,
            servers,
            _chain: built,
        }
    }

    pub fn host(&self, name: &str) -> &MailHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("a configured server")
    }

    /// Waits until the edge has ended every session and committed (or given
    /// up) all acknowledged work, and no server session is live.
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let edge_busy =
                self.edge.live_sessions() + self.edge.live_replicas() + self.edge.pending_work();
            let relay_busy = self.relay.live_links() + self.relay.live_server_sessions();
            let servers_busy: usize = self
                .hosts
                .iter()
                .map(|h| h.store.live_sessions().len())
                .sum();
            // Deletes the client proxy acknowledged and the edge has not
            // confirmed are work still to do (a cut's are carried later).
            let proxy_busy = self.nodes.client.deletes_pending() as usize;
            if edge_busy + relay_busy + servers_busy + proxy_busy == 0 {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "not settled after {SETTLE:?}: edge sessions {} replicas {} pending {}; relay links {} \
                     server sessions {}; client proxy deletes pending {}; stores:\n{}",
                    self.edge.live_sessions(),
                    self.edge.live_replicas(),
                    self.edge.pending_work(),
                    self.relay.live_links(),
                    self.relay.live_server_sessions(),
                    self.nodes.client.deletes_pending(),
                    self.report()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What must hold after any conversation, cut or not (call after
    /// [`Rig::settle`]): every server session that logged in ended with
    /// QUIT, no lock is held, the edge gave up on nothing.
    pub fn assert_no_leaks(&self) {
        let now = self.env.unix_millis();
        for h in &self.hosts {
            for s in h.store.sessions() {
                if s.user.is_some() {
                    assert_eq!(
                        s.end_kind(),
                        Some(EndKind::Quit),
                        "{}: session {} did not QUIT:\n{}",
                        h.name,
                        s.id,
                        self.report()
                    );
                }
            }
            assert!(
                h.store.locks_held(now).is_empty(),
                "{}: locks held: {:?}",
                h.name,
                h.store.locks_held(now)
            );
        }
        assert_eq!(
            self.edge.live_replicas(),
            0,
            "replicas outlived their sessions"
        );
        for s in self.edge.sessions() {
            assert!(
                s.abandoned.is_empty(),
                "edge session {} gave up on {:?}",
                s.id,
                s.abandoned
            );
        }
    }

    /// Every store's state, for assertion messages.
    /// Round trips on the line the client proxy waited for
    /// (`ClientState::line_waits`).
    pub fn line_waits(&self) -> u64 {
        self.nodes.client.line_waits()
    }

    pub fn report(&self) -> String {
        self.hosts
            .iter()
            .map(|h| format!("== {} ==\n{}", h.name, h.store.report()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.nodes.shutdown();
        for t in &self.servers {
            t.abort();
        }
    }
}

impl MailHost {
    /// Delivers `n` made-up messages of about `size` octets; their UIDLs.
    pub fn deliver(&self, rng: &EnvRng, n: usize, size: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let body = generate::message(rng, i as u64, size);
                self.store
                    .deliver(&self.maildrop, body)
                    .expect("deliver")
                    .to_string()
            })
            .collect()
    }

    /// Delivers one message of `size` octets that zstd cannot shrink much
    /// (base64 of random bytes), so its bytes on the line are predictable.
    pub fn deliver_incompressible(&self, rng: &EnvRng, size: usize) -> String {
        let mut raw = vec![0u8; size * 3 / 4];
        rng.fill_bytes(&mut raw);
        let mut body = b"From: big@causeway.test\r\nSubject: large attachment\r\n\r\n".to_vec();
        for chunk in raw.chunks(57) {
            body.extend_from_slice(base64(chunk).as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        self.store
            .deliver(&self.maildrop, body)
            .expect("deliver")
            .to_string()
    }

    /// The sha256 and length of a stored message, as the python prelude's
    /// `digest` prints them.
    pub fn digest(&self, uidl: &str) -> String {
        let m = self
            .store
            .message(&self.maildrop, uidl)
            .expect("a delivered message");
        format!("{} {}", m.sha256, m.size)
    }
}

fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
