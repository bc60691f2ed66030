//! The system on loopback, one OS thread per component, so each component's
//! CPU time can be read on its own.
//!
//! ```text
//! Pop3Client ── proxy ── [line: Forwarder] ── edge ───────────── mail server
//!   (caller)                                    └── relay ──────┘
//! Pop3Client ── [forward: Forwarder] ─────────────────────────── mail server
//! ```
//!
//! Each [`Node`] is a current-thread tokio runtime on its own thread: the
//! tasks a component spawns stay on it, and `getrusage(RUSAGE_THREAD)` run
//! there is that component's CPU time. The same [`Forwarder`] the end-to-end
//! tests cut lines with counts the bytes and turns on both lines; on the
//! direct path it is also the "plain TCP forward" baseline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use causeway_client::{ClientConfig, Timeouts, run_client};
use causeway_edge::{EdgeConfig, EdgeState, RelayRef, run_edge};
use causeway_mailserver::{MailStore, ServerConfig, serve};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_pop3::client::{Pop3Client, Timeouts as PopTimeouts};
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_tests::Forwarder;
use causeway_wire::{ChannelConfig, Keypair};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::sys;

/// The mailbox user on the model server (the Causeway session's mailbox).
pub const USER: &str = "alice";
/// A second user with the same mail, for the direct session.
pub const DIRECT_USER: &str = "bob";
pub const PASSWORD: &str = "server-secret";
/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "local-secret";
const RELAY_NAME: &str = "R1";
const SERVER_NAME: &str = "HOST1";

/// A current-thread runtime on its own OS thread.
pub struct Node {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
}

impl Node {
    pub fn start(name: &str) -> Node {
        let (htx, hrx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime");
                htx.send(rt.handle().clone()).unwrap();
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
            })
            .expect("start a node thread");
        Node {
            handle: hrx.recv().expect("the node's runtime"),
            stop: Some(stop),
        }
    }

    /// Runs `f` on this node and waits for its result.
    pub async fn run<F>(&self, f: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f).await.expect("a node task")
    }

    /// Starts `f` on this node in the background.
    pub fn spawn<F>(&self, f: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(f);
    }

    /// CPU time this node's thread has used so far.
    pub async fn cpu(&self) -> Duration {
        self.run(async { sys::thread_cpu() }).await
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// How to build a [`Chain`].
#[derive(Clone, Default)]
pub struct ChainSpec {
    /// Edge -> relay -> server instead of edge -> server.
    pub via_relay: bool,
    /// Both ends' channel settings (dictionary, level).
    pub channel: ChannelConfig,
}

pub struct Chain {
    pub env: TokioEnv,
    pub store: MailStore,
    pub server_addr: String,
    pub edge: EdgeState,
    pub relay: RelayState,
    /// The client's line: proxy <-> edge.
    pub line: Forwarder,
    /// The direct path, and the plain TCP forward baseline: client <-> server.
    pub forward: Forwarder,
    /// Where the mail client connects to use Causeway.
    pub proxy: String,
    pub server_node: Node,
    pub edge_node: Node,
    pub relay_node: Node,
    pub line_node: Node,
    pub proxy_node: Node,
    pub forward_node: Node,
    stop: watch::Sender<bool>,
}

async fn bind(env: &TokioEnv) -> (<TokioEnv as Env>::Listener, String) {
    let l = env.bind("127.0.0.1:0").await.expect("bind a loopback port");
    let a = l.local_addr().unwrap().to_string();
    (l, a)
}

/// The server spec the proxy hands the edge.
pub fn server_spec(addr: &str, via_relay: bool) -> ServerSpec {
    let (host, port) = addr.rsplit_once(':').unwrap();
    ServerSpec {
        name: SERVER_NAME.into(),
        protocol: Protocol::Pop3,
        host: host.into(),
        port: port.parse().unwrap(),
        tls: TlsMode::None,
        user: USER.into(),
        password: Secret::new(PASSWORD.as_bytes().to_vec()),
        route: if via_relay {
            Route::Relay(RELAY_NAME.into())
        } else {
            Route::Direct
        },
    }
}

/// Generous client timeouts: a benchmark on a loaded machine must not fail
/// on a wait.
pub fn client_timeouts() -> Timeouts {
    Timeouts {
        welcome: Duration::from_secs(600),
        request: Duration::from_secs(600),
        quit: Duration::from_secs(600),
        ..Timeouts::default()
    }
}

/// The model mail server on its own node, with the two users.
pub struct Server {
    pub env: TokioEnv,
    pub store: MailStore,
    pub addr: String,
    pub node: Node,
}

impl Server {
    pub async fn start() -> Server {
        let env = TokioEnv::new();
        let store = MailStore::with_rng(env.rng());
        store.add_user(USER, PASSWORD);
        store.add_user(DIRECT_USER, PASSWORD);
        let node = Node::start("mail server");
        let (e, s) = (env.clone(), store.clone());
        let addr = node
            .run(async move {
                let (l, addr) = bind(&e).await;
                tokio::spawn(async move {
                    let _ = serve(e, l, s, ServerConfig::default()).await;
                });
                addr
            })
            .await;
        Server {
            env,
            store,
            addr,
            node,
        }
    }
}

impl Chain {
    pub async fn start(spec: ChainSpec) -> Chain {
        Chain::start_on(Server::start().await, spec).await
    }

    /// The rest of the chain, in front of a running server.
    pub async fn start_on(server: Server, spec: ChainSpec) -> Chain {
        let Server {
            env,
            store,
            addr: server_addr,
            node: server_node,
        } = server;
        let (stop, stop_rx) = watch::channel(false);

        let forward_node = Node::start("plain forward");
        let target = server_addr.clone();
        let forward = forward_node.run(Forwarder::start(target)).await;

        let edge_keys = Keypair::generate(env.rng());
        let client_keys = Keypair::generate(env.rng());
        let relay_keys = Keypair::generate(env.rng());

        let relay = RelayState::new();
        let relay_node = Node::start("relay");
        let mut rc = RelayConfig::new(relay_keys.clone());
        rc.allowed_edges = vec![edge_keys.public];
        rc.allowed_servers = vec![server_addr.clone()];
        rc.channel = spec.channel.clone();
        let (e, st, rx) = (env.clone(), relay.clone(), stop_rx.clone());
        let relay_addr = relay_node
            .run(async move {
                let (l, addr) = bind(&e).await;
                tokio::spawn(async move {
                    let _ = run_relay(e, l, Arc::new(rc), st, rx).await;
                });
                addr
            })
            .await;

        let edge = EdgeState::new();
        let edge_node = Node::start("edge");
        let mut ec = EdgeConfig::new(edge_keys.clone());
        ec.allowed_clients = vec![client_keys.public];
        ec.allowed_servers = vec![server_addr.clone()];
        ec.relays = vec![RelayRef {
            name: RELAY_NAME.into(),
            address: relay_addr,
            public_key: relay_keys.public,
        }];
        ec.channel = spec.channel.clone();
        let (e, st, rx) = (env.clone(), edge.clone(), stop_rx.clone());
        let edge_addr = edge_node
            .run(async move {
                let (l, addr) = bind(&e).await;
                tokio::spawn(async move {
                    let _ = run_edge(e, l, Arc::new(ec), st, rx).await;
                });
                addr
            })
            .await;

        let line_node = Node::start("line");
        let line = line_node.run(Forwarder::start(edge_addr)).await;

        let proxy_node = Node::start("client proxy");
        let config = ClientConfig {
            listen: "127.0.0.1:0".into(),
            user: LOCAL_USER.into(),
            password: Secret::new(LOCAL_PASSWORD.as_bytes().to_vec()),
            edge: line.addr(),
            edge_key: edge_keys.public,
            keypair: client_keys,
            psk: None,
            servers: vec![server_spec(&server_addr, spec.via_relay)],
            channel: spec.channel.clone(),
            timeouts: client_timeouts(),
        };
        let e = env.clone();
        let proxy = proxy_node
            .run(async move {
                let (l, addr) = bind(&e).await;
                let mut config = config;
                config.listen = addr.clone();
                tokio::spawn(async move {
                    run_client(e, l, Arc::new(config), stop_rx)
                        .await
                        .expect("the client proxy runs");
                });
                addr
            })
            .await;

        Chain {
            env,
            store,
            server_addr,
            edge,
            relay,
            line,
            forward,
            proxy,
            server_node,
            edge_node,
            relay_node,
            line_node,
            proxy_node,
            forward_node,
            stop,
        }
    }

    /// Waits until the edge and relay have finished all work and no server
    /// session is live (the edge commits deletes after the client is gone).
    pub async fn settle(&self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let busy = self.edge.live_sessions()
                + self.edge.live_replicas()
                + self.edge.pending_work()
                + self.relay.live_links()
                + self.relay.live_server_sessions()
                + self.store.live_sessions().len();
            if busy == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("not settled after 60 s: {busy} things still live"));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The POP3 client's timeouts in benchmarks: generous.
pub fn pop_timeouts() -> PopTimeouts {
    PopTimeouts {
        greeting: Duration::from_secs(600),
        command: Duration::from_secs(600),
        per_mib: Duration::from_secs(60),
    }
}

/// A logged-in mail client: through the proxy (`via_causeway`) or straight
/// to `addr` as [`DIRECT_USER`].
pub async fn mail_client(
    env: &TokioEnv,
    addr: &str,
    via_causeway: bool,
) -> Result<Pop3Client<TokioEnv, TcpStream>, String> {
    let stream = env.connect(addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    mail_client_on(env, stream, via_causeway).await
}

/// [`mail_client`] over a stream the caller opened (and may be watching).
pub async fn mail_client_on<S: causeway_net::Stream>(
    env: &TokioEnv,
    stream: S,
    via_causeway: bool,
) -> Result<Pop3Client<TokioEnv, S>, String> {
    let (mut c, _) = Pop3Client::start(env.clone(), stream, pop_timeouts(), 256 << 20)
        .await
        .map_err(|e| e.to_string())?;
    let (u, p) = if via_causeway {
        (LOCAL_USER, LOCAL_PASSWORD)
    } else {
        (DIRECT_USER, PASSWORD)
    };
    c.login(u.as_bytes(), p.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    Ok(c)
}
