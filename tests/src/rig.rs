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

use std::sync::Arc;
use std::time::Duration;

use causeway_client::{ClientConfig, Timeouts, run_client};
use causeway_edge::{EdgeConfig, EdgeState, RelayRef, run_edge};
use causeway_mailserver::{EndKind, LockPolicy, MailStore, ServerConfig, generate, serve};
use causeway_net::{Env, EnvRng, Listener, TokioEnv};
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_wire::Keypair;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::forwarder::Forwarder;

/// The mailbox user on every model server, and its password.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "alice-server-secret";
/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "local-secret";
const RELAY_NAME: &str = "R1";

/// How long [`Rig::settle`] waits for the edge and servers to finish.
const SETTLE: Duration = Duration::from_secs(30);

/// One model mail server.
pub struct MailHost {
    /// The server's name in the user information (the UIDL prefix).
    pub name: String,
    pub store: MailStore,
    pub addr: String,
    pub via_relay: bool,
}

/// How to build a rig.
pub struct RigSpec {
    /// (name, through the relay?) per server, in configuration order.
    pub servers: Vec<(&'static str, bool)>,
    pub server_config: ServerConfig,
    pub client_timeouts: Timeouts,
}

impl Default for RigSpec {
    fn default() -> Self {
        RigSpec {
            servers: vec![("HOST1", false)],
            // One session per maildrop, and a stale lock that outlives the
            // test: a session left without QUIT would show as a held lock.
            server_config: ServerConfig {
                lock: LockPolicy::Exclusive {
                    stale_after_abrupt: Duration::from_secs(3600),
                },
                ..ServerConfig::default()
            },
            client_timeouts: Timeouts::default(),
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
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(env: &TokioEnv) -> (<TokioEnv as Env>::Listener, String) {
    let l = env.bind("127.0.0.1:0").await.expect("bind a loopback port");
    let a = l.local_addr().unwrap().to_string();
    (l, a)
}

impl Rig {
    pub async fn start(spec: RigSpec) -> Rig {
        let env = TokioEnv::new();
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let mut hosts = Vec::new();
        for (name, via_relay) in &spec.servers {
            let store = MailStore::with_rng(env.rng());
            store.add_user(USER, PASSWORD);
            let (l, addr) = bind(&env).await;
            let (e, c, s) = (env.clone(), spec.server_config.clone(), store.clone());
            tasks.push(tokio::spawn(async move {
                let _ = serve(e, l, s, c).await;
            }));
            hosts.push(MailHost {
                name: name.to_string(),
                store,
                addr,
                via_relay: *via_relay,
            });
        }

        let edge_keys = Keypair::generate(env.rng());
        let relay_keys = Keypair::generate(env.rng());
        let client_keys = Keypair::generate(env.rng());

        let relay = RelayState::new();
        let (relay_l, relay_addr) = bind(&env).await;
        let mut rc = RelayConfig::new(relay_keys.clone());
        rc.allowed_edges = vec![edge_keys.public];
        rc.allowed_servers = hosts
            .iter()
            .filter(|h| h.via_relay)
            .map(|h| h.addr.clone())
            .collect();
        let (e, st, rx) = (env.clone(), relay.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = run_relay(e, relay_l, Arc::new(rc), st, rx).await;
        }));

        let edge = EdgeState::new();
        let (edge_l, edge_addr) = bind(&env).await;
        let mut ec = EdgeConfig::new(edge_keys.clone());
        ec.allowed_clients = vec![client_keys.public];
        ec.allowed_servers = hosts
            .iter()
            .filter(|h| !h.via_relay)
            .map(|h| h.addr.clone())
            .collect();
        ec.relays = vec![RelayRef {
            name: RELAY_NAME.into(),
            address: relay_addr,
            public_key: relay_keys.public,
        }];
        let (e, st, rx) = (env.clone(), edge.clone(), stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            let _ = run_edge(e, edge_l, Arc::new(ec), st, rx).await;
        }));

        let line = Forwarder::start(edge_addr).await;

        let (proxy_l, proxy) = bind(&env).await;
        let config = ClientConfig {
            listen: proxy.clone(),
            user: LOCAL_USER.into(),
            password: Secret::new(LOCAL_PASSWORD.as_bytes().to_vec()),
            edge: line.addr(),
            edge_key: edge_keys.public,
            keypair: client_keys,
            psk: None,
            servers: hosts.iter().map(server_spec).collect(),
            channel: Default::default(),
            timeouts: spec.client_timeouts,
        };
        let (e, rx) = (env.clone(), stop_rx);
        tasks.push(tokio::spawn(async move {
            run_client(e, proxy_l, Arc::new(config), rx)
                .await
                .expect("the client proxy runs");
        }));

        Rig {
            env,
            hosts,
            edge,
            relay,
            line,
            proxy,
            stop,
            tasks,
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
            if edge_busy + relay_busy + servers_busy == 0 {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "not settled after {SETTLE:?}: edge sessions {} replicas {} pending {}; relay links {} \
                     server sessions {}; stores:\n{}",
                    self.edge.live_sessions(),
                    self.edge.live_replicas(),
                    self.edge.pending_work(),
                    self.relay.live_links(),
                    self.relay.live_server_sessions(),
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
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn server_spec(h: &MailHost) -> ServerSpec {
    let (host, port) = h.addr.rsplit_once(':').unwrap();
    ServerSpec {
        name: h.name.clone(),
        protocol: Protocol::Pop3,
        host: host.into(),
        port: port.parse().unwrap(),
        tls: TlsMode::None,
        user: USER.into(),
        password: Secret::new(PASSWORD.as_bytes().to_vec()),
        route: if h.via_relay {
            Route::Relay(RELAY_NAME.into())
        } else {
            Route::Direct
        },
    }
}

impl MailHost {
    /// Delivers `n` made-up messages of about `size` octets; their UIDLs.
    pub fn deliver(&self, rng: &EnvRng, n: usize, size: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let body = generate::message(rng, i as u64, size);
                self.store.deliver(USER, body).expect("deliver").to_string()
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
        self.store.deliver(USER, body).expect("deliver").to_string()
    }

    /// The sha256 and length of a stored message, as the python prelude's
    /// `digest` prints them.
    pub fn digest(&self, uidl: &str) -> String {
        let m = self.store.message(USER, uidl).expect("a delivered message");
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
