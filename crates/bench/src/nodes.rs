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
use std::time::Duration;

use causeway::chain::{self, Hops, InProcess, MailServer, NodeTask, Spawn};
use causeway::config::Role;
use causeway_client::{ClientState, Timeouts};
use causeway_edge::EdgeState;
use causeway_mailserver::{MailStore, ServerConfig, serve, serve_imap};
use causeway_net::{Env, Listener, TokioEnv};
use causeway_pop3::client::{Pop3Client, Timeouts as PopTimeouts};
use causeway_proto::user::{Protocol, TlsMode};
use causeway_relay::RelayState;
use causeway_tests::{Forwarder, Pace};
use causeway_wire::ChannelConfig;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sys;

/// The mailbox user on the model server (the Causeway session's mailbox).
pub const USER: &str = "alice";
/// A second user with the same mail, for the direct session.
pub const DIRECT_USER: &str = "bob";
pub const PASSWORD: &str = "server-secret";
/// What the mail client presents to the client proxy.
pub const LOCAL_USER: &str = "me";
pub const LOCAL_PASSWORD: &str = "local-secret";
const SERVER_NAME: &str = "HOST1";

/// A current-thread runtime on its own OS thread.
pub struct Node {
    pub handle: Handle,
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
    /// Both lines (the client's, and the direct path's) emulate a slow
    /// line: each direction a serialising queue at this rate, with this
    /// one-way delay.
    pub pace: Option<Pace>,
    /// The client proxy does not stream bodies ahead: each RETR waits for
    /// the edge to fetch its body from the server.
    pub no_prefetch: bool,
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
    /// The direct path to the server's IMAP.
    pub imap_forward: Forwarder,
    /// Where the mail client connects to use Causeway.
    pub proxy: String,
    /// Where an IMAP mail client connects to use Causeway.
    pub imap_proxy: String,
    pub server_node: Node,
    pub edge_node: Node,
    pub relay_node: Node,
    pub line_node: Node,
    pub proxy_node: Node,
    pub forward_node: Node,
    /// The client proxy's counts (its waits on the line).
    pub client: ClientState,
    nodes: InProcess<TokioEnv, TokioEnv, Places>,
    _chain: chain::Chain,
}

async fn bind(env: &TokioEnv) -> (<TokioEnv as Env>::Listener, String) {
    let l = env.bind("127.0.0.1:0").await.expect("bind a loopback port");
    let a = l.local_addr().unwrap().to_string();
    (l, a)
}

/// The model server as the chain's user information names it.
pub fn mail_server(addr: &str, via_relay: bool) -> MailServer {
    MailServer {
        name: SERVER_NAME.into(),
        address: addr.into(),
        user: USER.into(),
        password: PASSWORD.into(),
        protocol: Protocol::Pop3,
        tls: TlsMode::None,
        via_relay,
        folder: causeway_proto::user::INBOX.into(),
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
    /// The same store over IMAP (figure 7's direct path).
    pub imap_addr: String,
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
        let (addr, imap_addr) = node
            .run(async move {
                let (l, addr) = bind(&e).await;
                let (il, imap_addr) = bind(&e).await;
                let (ie, is) = (e.clone(), s.clone());
                tokio::spawn(async move {
                    let _ = serve(e, l, s, ServerConfig::default()).await;
                });
                tokio::spawn(async move {
                    let _ = serve_imap(ie, il, is, ServerConfig::default()).await;
                });
                (addr, imap_addr)
            })
            .await;
        Server {
            env,
            store,
            addr,
            imap_addr,
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
            imap_addr,
            node: server_node,
        } = server;

        let forward_node = Node::start("plain forward");
        let target = server_addr.clone();
        let forward = forward_node
            .run(Forwarder::start_paced(target, spec.pace))
            .await;
        let imap_forward = forward_node
            .run(Forwarder::start_paced(imap_addr, spec.pace))
            .await;
        let imap_proxy = causeway_tests::unused_address();

        let relay_node = Node::start("relay");
        let edge_node = Node::start("edge");
        let proxy_node = Node::start("client proxy");
        let line_node = Node::start("line");
        let chain_spec = chain::ChainSpec {
            servers: vec![mail_server(&server_addr, spec.via_relay)],
            local_user: LOCAL_USER.into(),
            local_password: LOCAL_PASSWORD.into(),
            channel: spec.channel.clone(),
            client_imap_listen: Some(imap_proxy.clone()),
            client_timeouts: client_timeouts(),
            journal: false,
            prefetch: !spec.no_prefetch,
            ..chain::ChainSpec::default()
        };
        let places = Places {
            relay: relay_node.handle.clone(),
            edge: edge_node.handle.clone(),
            client: proxy_node.handle.clone(),
        };
        let mut nodes = InProcess::with(env.clone(), env.clone(), places);
        let mut hops = LineOn {
            node: &line_node,
            line: None,
            pace: spec.pace,
        };
        let built = chain_spec
            .start(env.rng(), &mut nodes, &mut hops)
            .await
            .expect("the benchmark chain starts");
        let line = hops.line.expect("the client's line");
        let (edge, relay, client) = (
            nodes.edge.clone(),
            nodes.relay.clone(),
            nodes.client.clone(),
        );
        let proxy = built.proxy.clone();

        Chain {
            env,
            store,
            server_addr,
            edge,
            relay,
            line,
            forward,
            imap_forward,
            proxy,
            imap_proxy,
            server_node,
            edge_node,
            relay_node,
            line_node,
            proxy_node,
            forward_node,
            client,
            nodes,
            _chain: built,
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
        self.nodes.shutdown();
    }
}

/// Each node's task on its own thread's runtime.
struct Places {
    relay: Handle,
    edge: Handle,
    client: Handle,
}

impl Spawn for Places {
    fn spawn(&self, role: Role, task: NodeTask) -> JoinHandle<()> {
        match role {
            Role::Relay => self.relay.spawn(task),
            Role::Edge => self.edge.spawn(task),
            Role::Client => self.client.spawn(task),
        }
    }
}

/// The client's line: a counting forwarder on its own node.
struct LineOn<'a> {
    node: &'a Node,
    line: Option<Forwarder>,
    pace: Option<Pace>,
}

impl Hops for LineOn<'_> {
    async fn line(&mut self, edge: String) -> String {
        let f = self.node.run(Forwarder::start_paced(edge, self.pace)).await;
        let addr = f.addr();
        self.line = Some(f);
        addr
    }
}

/// The POP3 client's timeouts in benchmarks: generous.
pub fn pop_timeouts() -> PopTimeouts {
    PopTimeouts {
        greeting: Duration::from_secs(600),
        command: Duration::from_secs(600),
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
