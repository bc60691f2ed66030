//! A small world in turmoil: model mail servers `mail` and `mail2`, a relay,
//! the edge, and a test client that speaks `causeway_proto::session` over the
//! wire channel directly (standing in for the client proxy).
//!
//! The edge runs over [`TapEnv`], which copies every byte of its connections
//! to the relay into a [`TapLog`], so tests can check what crossed that link.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_edge::{
    EdgeConfig, EdgeState, JournalConfig, JournalKey, RelayRef, SimDisk, run_edge,
};
use causeway_mailserver::{MailStore, ServerConfig, serve, serve_imap};
use causeway_net::tap::{TapLog, Tapped};
use causeway_net::{Env, EnvRng, Instant, Listener, SimEnv, derive_seed};
use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, ListingState, MessageId, Op, PlacedDelete, Places, Reply,
    ServerListing, ServerOutcome, ServerWants, WantedAt,
};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode, UserInfo};
use causeway_proto::{OpError, PROTOCOL_VERSION, Secret};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_wire::{
    ChannelConfig, Compress, Keypair, Received, SecureChannel, WireError, connect_xk,
};
use tokio::sync::watch;

pub const SEED: u64 = 7;
pub const ALICE_PW: &str = "alice-secret-pw-7731";
pub const BOB_PW: &str = "bob-secret-pw-4409";

/// An `Env` whose streams to `relay:*` are tapped.
#[derive(Clone)]
pub struct TapEnv {
    inner: SimEnv,
    relay_log: TapLog,
}

pub struct TapListener(<SimEnv as Env>::Listener);

type SimStream = <SimEnv as Env>::Stream;

impl Listener for TapListener {
    type Stream = Tapped<SimStream>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.0.accept().await?;
        Ok((Tapped::new(s, TapLog::new()), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Env for TapEnv {
    type Stream = Tapped<SimStream>;
    type Listener = TapListener;

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let s = self.inner.connect(addr).await?;
        let log = if addr.starts_with("relay:") {
            self.relay_log.clone()
        } else {
            TapLog::new()
        };
        Ok(Tapped::new(s, log))
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(TapListener(self.inner.bind(addr).await?))
    }

    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn unix_millis(&self) -> u64 {
        self.inner.unix_millis()
    }

    fn rng(&self) -> &EnvRng {
        self.inner.rng()
    }
}

pub struct Keys {
    pub edge: Keypair,
    pub relay: Keypair,
    pub client: Keypair,
}

pub fn keys() -> Keys {
    let rng = EnvRng::from_seed(derive_seed(SEED, &[b"keys"]));
    Keys {
        edge: Keypair::generate(&rng),
        relay: Keypair::generate(&rng),
        client: Keypair::generate(&rng),
    }
}

/// alice/ALICE_PW and bob/BOB_PW, with `n` messages each.
pub fn store(label: &str, n: usize) -> MailStore {
    let rng = EnvRng::from_seed(derive_seed(SEED, &[label.as_bytes()]));
    let s = MailStore::with_rng(&rng);
    s.add_user("alice", ALICE_PW);
    s.add_user("bob", BOB_PW);
    for user in ["alice", "bob"] {
        for i in 0..n {
            s.deliver(
                user,
                causeway_mailserver::generate::message(&rng, i as u64, 2000),
            )
            .unwrap();
        }
    }
    s
}

pub fn edge_config(k: &Keys) -> EdgeConfig {
    let mut c = EdgeConfig::new(k.edge.clone());
    c.allowed_clients = vec![k.client.public];
    c.allowed_servers = vec![
        "mail:110".into(),
        "mail2:110".into(),
        "mail:143".into(),
        "mail2:143".into(),
    ];
    c.relays = vec![RelayRef {
        name: "R1".into(),
        address: "relay:4000".into(),
        public_key: k.relay.public,
    }];
    c.replica_cache_bytes = 1 << 20;
    // These test clients never resume: a cut ends the session at once, as
    // it did before resume (the simulation and the interop tests resume;
    // `edge_supersede` turns it on).
    c.resume.window = Duration::ZERO;
    c.timeouts.client_idle = Duration::from_secs(20);
    c.timeouts.noop_interval = Duration::from_secs(10);
    c.timeouts.server.command = Duration::from_secs(5);
    c.timeouts.server.connect = Duration::from_secs(5);
    c.timeouts.relay_reply = Duration::from_secs(15);
    c.timeouts.completion_deadline = Duration::from_secs(300);
    c
}

pub fn relay_config(k: &Keys) -> RelayConfig {
    let mut c = RelayConfig::new(k.relay.clone());
    // The edge's key second: the relay must try every allowed key.
    let other = Keypair::generate(&EnvRng::from_seed([9; 32]));
    c.allowed_edges = vec![other.public, k.edge.public];
    c.allowed_servers = vec![
        "mail:110".into(),
        "mail2:110".into(),
        "mail:143".into(),
        "mail2:143".into(),
    ];
    c.timeouts.link_idle = Duration::from_secs(30);
    c.timeouts.server.command = Duration::from_secs(5);
    c
}

pub struct World {
    pub sim: turmoil::Sim<'static>,
    pub keys: Keys,
    pub mail: MailStore,
    pub mail2: MailStore,
    /// The first incarnation's state.
    pub edge: EdgeState,
    /// Every incarnation's state (a crashed edge restarts with a new one).
    pub edges: Edges,
    pub relay: RelayState,
    pub relay_tap: TapLog,
    pub shutdown_edge: Arc<watch::Sender<bool>>,
    /// The configuration the edge's next incarnation starts with.
    pub edge_config: Arc<Mutex<Arc<EdgeConfig>>>,
}

impl World {
    /// What a test's client host takes into its task: the client proxy's
    /// and the edge's keys, the first mail server's store, the edge's state.
    pub fn handles(&self) -> (Keypair, Keypair, MailStore, EdgeState) {
        (
            self.keys.client.clone(),
            self.keys.edge.clone(),
            self.mail.clone(),
            self.edge.clone(),
        )
    }
}

/// One session per maildrop, as most POP3 servers do; a session that ends
/// without QUIT keeps its lock for 10 minutes, so a leaked one shows.
pub fn exclusive() -> ServerConfig {
    ServerConfig {
        lock: causeway_mailserver::LockPolicy::Exclusive {
            stale_after_abrupt: Duration::from_secs(600),
        },
        ..ServerConfig::default()
    }
}

pub fn world(mail_config: ServerConfig) -> World {
    world_with(mail_config, |_| {})
}

/// The states of the edge's incarnations, oldest first.
#[derive(Clone, Default)]
pub struct Edges(Arc<Mutex<Vec<EdgeState>>>);

impl Edges {
    /// The running (or last) incarnation's state.
    pub fn latest(&self) -> EdgeState {
        self.0.lock().unwrap().last().cloned().unwrap()
    }

    /// How many times the edge has started.
    pub fn started(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

pub const JOURNAL_KEY: [u8; 32] = [5; 32];

/// A world whose edge keeps its journal on `disk` (which outlives crashes).
pub fn world_journaled(
    mail_config: ServerConfig,
    disk: &SimDisk,
    tweak: impl FnOnce(&mut EdgeConfig),
) -> World {
    let disk = disk.clone();
    world_with(mail_config, move |c| {
        c.journal = Some(JournalConfig::new(
            disk,
            JournalKey::from_bytes(JOURNAL_KEY),
        ));
        tweak(c);
    })
}

pub fn world_with(mail_config: ServerConfig, tweak: impl FnOnce(&mut EdgeConfig)) -> World {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(3600))
        .tick_duration(Duration::from_millis(10))
        .rng_seed(SEED)
        .build();
    let keys = keys();
    let mail = store("mail", 3);
    let mail2 = store("mail2", 2);
    for (host, store) in [("mail", mail.clone()), ("mail2", mail2.clone())] {
        let config = mail_config.clone();
        sim.host(host, move || {
            let store = store.clone();
            let config = config.clone();
            async move {
                let env = SimEnv::new(SEED, host, 0);
                // The same store over IMAP, for servers with protocol Imap.
                let imap = env.bind("0.0.0.0:143").await?;
                tokio::spawn(serve_imap(env.clone(), imap, store.clone(), config.clone()));
                let l = env.bind("0.0.0.0:110").await?;
                serve(env, l, store, config).await?;
                Ok(())
            }
        });
    }
    let relay = RelayState::new();
    let rc = Arc::new(relay_config(&keys));
    let rs = relay.clone();
    sim.host("relay", move || {
        let (rc, rs) = (rc.clone(), rs.clone());
        async move {
            let env = SimEnv::new(SEED, "relay", 0);
            let l = env.bind("0.0.0.0:4000").await?;
            let (_keep, rx) = watch::channel(false);
            run_relay(env, l, rc, rs, rx).await?;
            Ok(())
        }
    });
    let edge = EdgeState::new();
    let mut ec = edge_config(&keys);
    tweak(&mut ec);
    let ec = Arc::new(Mutex::new(Arc::new(ec)));
    let edge_config = ec.clone();
    let relay_tap = TapLog::new();
    let (shutdown_edge, shutdown_rx) = watch::channel(false);
    let edges = Edges::default();
    let (es, tap) = (edges.clone(), relay_tap.clone());
    let incarnation = Arc::new(AtomicU32::new(0));
    let first = edge.clone();
    sim.host("edge", move || {
        let n = incarnation.fetch_add(1, Ordering::SeqCst);
        let state = if n == 0 {
            first.clone()
        } else {
            EdgeState::new()
        };
        es.0.lock().unwrap().push(state.clone());
        let ec = ec.lock().unwrap().clone();
        let (es, tap, rx) = (state, tap.clone(), shutdown_rx.clone());
        async move {
            let env = TapEnv {
                inner: SimEnv::new(SEED, "edge", n),
                relay_log: tap,
            };
            let l = env.bind("0.0.0.0:5000").await?;
            run_edge(env, l, ec, es, rx).await?;
            Ok(())
        }
    });
    World {
        sim,
        keys,
        mail,
        mail2,
        edge,
        edges,
        relay,
        relay_tap,
        shutdown_edge: Arc::new(shutdown_edge),
        edge_config,
    }
}

pub fn spec(name: &str, host: &str, user: &str, pw: &str, route: Route) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        protocol: Protocol::Pop3,
        host: host.into(),
        port: 110,
        tls: TlsMode::None,
        user: user.into(),
        password: Secret::new(pw.as_bytes().to_vec()),
        route,
        folder: causeway_proto::user::INBOX.into(),
    }
}

/// Alice's INBOX over IMAP (the model server's IMAP side, port 143),
/// served by the edge as a POP3 maildrop.
pub fn alice_imap(route: Route) -> ServerSpec {
    ServerSpec {
        protocol: Protocol::Imap,
        port: 143,
        ..spec("HOST1", "mail", "alice", ALICE_PW, route)
    }
}

pub fn alice_direct() -> ServerSpec {
    spec("HOST1", "mail", "alice", ALICE_PW, Route::Direct)
}

pub fn alice_via_relay() -> ServerSpec {
    spec(
        "HOST1",
        "mail",
        "alice",
        ALICE_PW,
        Route::Relay("R1".into()),
    )
}

/// The test's stand-in for the client proxy.
pub struct Client {
    pub env: SimEnv,
    ch: SecureChannel<SimStream>,
    next_id: u64,
    /// The sizes the last Welcome listed: (server, UIDL) -> octets.
    sizes: BTreeMap<(String, String), u64>,
    /// The places of the last Welcome's listings.
    places: Places,
    /// Bodies streamed so far, by (server, UIDL), and their byte count.
    bodies: BTreeMap<(String, String), Vec<u8>>,
    /// How many times each body's stream started (a chunk at offset 0).
    starts: BTreeMap<(String, String), u32>,
    received: u64,
    /// The latest resume secret (`Ticket` or `Resumed`).
    pub secret: Option<Vec<u8>>,
    /// The longest silence of the edge between `Hello` and `Welcome`
    /// (it says `Opening` while it logs in to the servers), and how often
    /// it said so.
    pub opening: (Duration, u32),
}

/// A body the test client received, to report as delivered.
pub type Delivery = (String, MessageId);

impl Client {
    pub async fn connect(key: &Keypair, edge: &Keypair) -> Result<Client, WireError> {
        let env = SimEnv::new(SEED, "client", 0);
        let s = env.connect("edge:5000").await?;
        let ch = connect_xk(&env, s, key, &edge.public, None, &ChannelConfig::default()).await?;
        Ok(Client {
            env,
            ch,
            next_id: 1,
            sizes: BTreeMap::new(),
            places: Places::default(),
            bodies: BTreeMap::new(),
            starts: BTreeMap::new(),
            received: 0,
            secret: None,
            opening: (Duration::ZERO, 0),
        })
    }

    /// The next message that is not a body chunk; chunks are gathered
    /// (and acknowledged with `Window`) on the way.
    pub async fn recv(&mut self) -> Result<EdgeToClient, String> {
        loop {
            match self.recv_any().await? {
                EdgeToClient::Chunk {
                    server,
                    at,
                    offset,
                    lf,
                    data,
                    ..
                } => {
                    self.take_chunk(server, at, offset, lf, data).await;
                }
                // Kept for the tests that resume ([`Client::resume`]).
                EdgeToClient::Ticket { secret } => self.secret = Some(secret),
                // The edge is still logging in to the servers.
                EdgeToClient::Opening => {}
                other => return Ok(other),
            }
        }
    }

    /// Keeps a body chunk (chunks of a body must come in order) and
    /// acknowledges it with `Window`; returns its body's UIDL.
    async fn take_chunk(
        &mut self,
        server: String,
        at: causeway_proto::session::Place,
        offset: u64,
        lf: bool,
        data: Vec<u8>,
    ) -> String {
        let data = causeway_proto::line_ends::decode(lf, data);
        let msg = self.places.id(&server, at).expect("a listed place");
        let key = (server, msg.uidl.clone());
        if offset == 0 {
            *self.starts.entry(key.clone()).or_default() += 1;
        }
        let body = self.bodies.entry(key.clone()).or_default();
        if offset == 0 {
            body.clear();
        }
        assert_eq!(body.len() as u64, offset, "chunks arrive in order");
        body.extend_from_slice(&data);
        self.received += data.len() as u64;
        let received = self.received;
        self.send(&ClientToEdge::Window { received }).await;
        key.1
    }

    /// The next body chunk, kept and acknowledged: its body's UIDL and
    /// offset. Anything else but a `Pong` or `Ticket` is a failure.
    pub async fn next_chunk(&mut self) -> (String, u64) {
        loop {
            match self.recv_any().await {
                Ok(EdgeToClient::Chunk {
                    server,
                    at,
                    offset,
                    lf,
                    data,
                    ..
                }) => return (self.take_chunk(server, at, offset, lf, data).await, offset),
                Ok(EdgeToClient::Ticket { secret }) => self.secret = Some(secret),
                Ok(EdgeToClient::Pong { .. }) => {}
                other => panic!("expected a body chunk, got {other:?}"),
            }
        }
    }

    /// The bytes of `server`'s `uidl` received so far.
    pub fn held(&self, server: &str, uidl: &str) -> u64 {
        let key = (server.to_owned(), uidl.to_owned());
        self.bodies.get(&key).map_or(0, |b| b.len() as u64)
    }

    /// Asks for `uidls` of `server` ahead of demand, each from the byte
    /// this client holds (`Want`).
    pub async fn want(&mut self, server: &str, uidls: &[&str]) {
        let bodies = self.wanted_at(server, uidls);
        self.send(&ClientToEdge::Want {
            server: server.into(),
            bodies,
        })
        .await;
    }

    fn wanted_at(&self, server: &str, uidls: &[&str]) -> Vec<WantedAt> {
        uidls
            .iter()
            .map(|u| WantedAt {
                at: self
                    .places
                    .place(server, &self.msg(server, u))
                    .expect("a listed message"),
                from: self.held(server, u),
            })
            .collect()
    }

    /// A new channel in place of this one (the old is dropped: a cut),
    /// keeping what this client received.
    pub async fn reconnect(&mut self, key: &Keypair, edge: &Keypair) -> Result<(), WireError> {
        let s = self.env.connect("edge:5000").await?;
        self.ch = connect_xk(
            &self.env,
            s,
            key,
            &edge.public,
            None,
            &ChannelConfig::default(),
        )
        .await?;
        Ok(())
    }

    /// [`Client::resume`] holding what this client received: its body
    /// byte count, and `uidls` of `server` each from the bytes held.
    pub async fn resume_holding(
        &mut self,
        session: &str,
        server: &str,
        uidls: &[&str],
    ) -> Result<EdgeToClient, String> {
        let secret = self.secret.clone().ok_or("a secret")?;
        let wants = vec![ServerWants {
            server: server.into(),
            bodies: self.wanted_at(server, uidls),
        }];
        self.resume_with(session, &secret, self.received, wants)
            .await
    }

    async fn recv_any(&mut self) -> Result<EdgeToClient, String> {
        match self
            .env
            .timeout(Duration::from_secs(120), "the edge", self.ch.recv())
            .await
        {
            Err(e) => Err(e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(Received::Closed { reason })) => Err(format!("closed: {reason}")),
            Ok(Ok(Received::Msg(m))) => Ok(m),
        }
    }

    pub async fn send(&mut self, msg: &ClientToEdge) {
        let c = if matches!(
            msg,
            ClientToEdge::Hello { .. } | ClientToEdge::Resume { .. }
        ) {
            Compress::Never
        } else {
            Compress::Yes
        };
        self.ch.send(msg, c).await.unwrap();
    }

    /// Re-attaches this (new) channel to `session` with a proof of
    /// `secret` over it, holding nothing; the edge's answer (`Resumed`,
    /// whose secret is kept, or `Refused`).
    pub async fn resume(&mut self, session: &str, secret: &[u8]) -> Result<EdgeToClient, String> {
        self.resume_with(session, secret, 0, Vec::new()).await
    }

    async fn resume_with(
        &mut self,
        session: &str,
        secret: &[u8],
        received: u64,
        wants: Vec<ServerWants>,
    ) -> Result<EdgeToClient, String> {
        let secret: [u8; 32] = secret.try_into().map_err(|_| "a 32-byte secret")?;
        let proof = causeway_wire::binding::proof(&secret, self.ch.binding()).to_vec();
        self.send(&ClientToEdge::Resume {
            version: PROTOCOL_VERSION,
            session: session.to_owned(),
            proof,
            received,
            wants,
            history: None,
        })
        .await;
        let answer = self.recv().await;
        if let Ok(EdgeToClient::Resumed { secret, .. }) = &answer {
            self.secret = Some(secret.clone());
        }
        answer
    }

    pub async fn hello(&mut self, servers: Vec<ServerSpec>) -> Result<EdgeToClient, String> {
        self.hello_superseding(servers, Vec::new()).await
    }

    /// Hello naming earlier sessions this client lost.
    pub async fn hello_superseding(
        &mut self,
        servers: Vec<ServerSpec>,
        supersedes: Vec<String>,
    ) -> Result<EdgeToClient, String> {
        self.hello_with(servers, supersedes, Vec::new(), false)
            .await
    }

    /// The first Hello of a client proxy that restarted.
    pub async fn hello_restarted(
        &mut self,
        servers: Vec<ServerSpec>,
    ) -> Result<EdgeToClient, String> {
        self.hello_with(servers, Vec::new(), Vec::new(), true).await
    }

    /// Hello carrying deletes acknowledged in an earlier session.
    pub async fn hello_carrying(
        &mut self,
        servers: Vec<ServerSpec>,
        carried: Vec<DeleteOp>,
    ) -> Result<EdgeToClient, String> {
        self.hello_with(servers, Vec::new(), carried, false).await
    }

    /// Hello after a cut: naming the lost sessions, carrying the deletes
    /// whose `Held` the cut lost.
    pub async fn hello_after_cut(
        &mut self,
        servers: Vec<ServerSpec>,
        supersedes: Vec<String>,
        carried: Vec<DeleteOp>,
    ) -> Result<EdgeToClient, String> {
        self.hello_with(servers, supersedes, carried, false).await
    }

    /// Sends a Hello and reads nothing: as a client proxy whose line a cut
    /// took right after. Returns the Hello's nonce, the only name that
    /// client proxy has for the session the edge may have opened.
    pub async fn hello_unanswered(&mut self, servers: Vec<ServerSpec>) -> String {
        self.send_hello(servers, Vec::new(), Vec::new(), false)
            .await
    }

    async fn send_hello(
        &mut self,
        servers: Vec<ServerSpec>,
        supersedes: Vec<String>,
        carried: Vec<DeleteOp>,
        restarted: bool,
    ) -> String {
        let nonce = format!("{:032x}", self.env.rng().next_u64());
        self.send(&ClientToEdge::Hello {
            version: PROTOCOL_VERSION,
            nonce: nonce.clone(),
            user: UserInfo { servers },
            supersedes,
            carried,
            oldest: 0,
            restarted,
            // The edge's resume window decides (zero in most of these worlds).
            resumes: true,
        })
        .await;
        nonce
    }

    async fn hello_with(
        &mut self,
        servers: Vec<ServerSpec>,
        supersedes: Vec<String>,
        carried: Vec<DeleteOp>,
        restarted: bool,
    ) -> Result<EdgeToClient, String> {
        self.send_hello(servers, supersedes, carried, restarted)
            .await;
        let mut last = self.env.now();
        self.opening = (Duration::ZERO, 0);
        let answer = loop {
            let got = self.recv_any().await;
            let now = self.env.now();
            self.opening.0 = self.opening.0.max(now.duration_since(last));
            last = now;
            match got {
                Ok(EdgeToClient::Opening) => self.opening.1 += 1,
                Ok(EdgeToClient::Ticket { secret }) => self.secret = Some(secret),
                other => break other,
            }
        };
        if let Ok(EdgeToClient::Welcome { servers, .. }) = &answer {
            self.places = Places::new(servers);
            for l in servers {
                if let ListingState::Ready { messages } = &l.state {
                    for m in messages {
                        self.sizes.insert((l.name.clone(), m.uidl.clone()), m.size);
                    }
                }
            }
        }
        answer
    }

    /// A message as the last Welcome listed it (size 0 if it did not).
    pub fn msg(&self, server: &str, uidl: &str) -> MessageId {
        MessageId {
            uidl: uidl.into(),
            size: self
                .sizes
                .get(&(server.to_owned(), uidl.to_owned()))
                .copied()
                .unwrap_or(0),
        }
    }

    /// Deletes as `Deletes` names them: by their place in the listing.
    pub fn placed(&self, ops: Vec<DeleteOp>) -> Vec<PlacedDelete> {
        ops.into_iter()
            .map(|op| PlacedDelete {
                at: self
                    .places
                    .place(&op.server, &op.msg)
                    .expect("a listed message"),
                seq: op.seq,
                server: op.server,
            })
            .collect()
    }

    /// Hello, expecting Welcome; returns the listings.
    pub async fn welcome(&mut self, servers: Vec<ServerSpec>) -> Vec<ServerListing> {
        match self.hello(servers).await {
            Ok(EdgeToClient::Welcome { servers, .. }) => servers,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Sends a request; returns its id and the edge's answer.
    pub async fn request(&mut self, server: &str, op: Op) -> (u64, Result<Reply, OpError>) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ClientToEdge::Request {
            id,
            server: server.into(),
            op,
        })
        .await;
        loop {
            match self.recv().await {
                Ok(EdgeToClient::Response { id: got, result }) if got == id => return (id, result),
                Ok(EdgeToClient::Pong { .. }) => {}
                other => panic!("expected Response {id}, got {other:?}"),
            }
        }
    }

    /// Sends a request; the edge's answer, or how the channel failed (the
    /// edge crashed before answering).
    pub async fn try_request(
        &mut self,
        server: &str,
        op: Op,
    ) -> Result<Result<Reply, OpError>, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&ClientToEdge::Request {
            id,
            server: server.into(),
            op,
        })
        .await;
        loop {
            match self.recv().await? {
                EdgeToClient::Response { id: got, result } if got == id => return Ok(result),
                EdgeToClient::Pong { .. } => {}
                other => return Err(format!("expected Response {id}, got {other:?}")),
            }
        }
    }

    /// How many times the edge started streaming `uidl`'s body.
    /// True while the edge's compression frame is open (this end holds its
    /// window).
    pub fn edge_compressing(&self) -> bool {
        self.ch.decompressing()
    }

    pub fn streams_of(&self, server: &str, uidl: &str) -> u32 {
        let key = (server.to_owned(), uidl.to_owned());
        self.starts.get(&key).copied().unwrap_or(0)
    }

    pub async fn retr(&mut self, server: &str, uidl: &str) -> (Delivery, Vec<u8>) {
        let msg = self.msg(server, uidl);
        match self.request(server, Op::Retr { msg: msg.clone() }).await {
            (_, Ok(Reply::Streamed { total })) => {
                let body = self.bodies[&(server.to_owned(), uidl.to_owned())].clone();
                assert_eq!(body.len() as u64, total, "RETR {uidl}: the whole body came");
                ((server.to_owned(), msg), body)
            }
            other => panic!("RETR {uidl}: {other:?}"),
        }
    }

    pub async fn dele(&mut self, server: &str, uidl: &str) {
        let msg = self.msg(server, uidl);
        let r = self.request(server, Op::Dele { msg }).await;
        assert_eq!(r.1, Ok(Reply::Done), "DELE {uidl}");
    }

    pub async fn ping(&mut self, nonce: u64) {
        self.send(&ClientToEdge::Ping { nonce }).await;
        match self.recv().await {
            Ok(EdgeToClient::Pong { nonce: got }) if got == nonce => {}
            other => panic!("expected Pong {nonce}, got {other:?}"),
        }
    }

    pub async fn delivered(&mut self, (server, msg): Delivery) {
        let at = vec![self.places.place(&server, &msg).expect("a listed message")];
        self.send(&ClientToEdge::Delivered { server, at }).await;
    }

    pub async fn quit(&mut self) -> Vec<ServerOutcome> {
        self.send(&ClientToEdge::Quit).await;
        loop {
            match self.recv().await {
                Ok(EdgeToClient::Finishing) => continue,
                Ok(EdgeToClient::Bye { servers }) => return servers,
                other => panic!("expected Bye, got {other:?}"),
            }
        }
    }
}

pub fn uidls(listing: &ServerListing) -> Vec<String> {
    match &listing.state {
        ListingState::Ready { messages } => messages.iter().map(|m| m.uidl.clone()).collect(),
        ListingState::Unavailable { error } => panic!("{} unavailable: {error}", listing.name),
    }
}

/// Waits (in simulated time) until `cond` holds, at most `max`.
pub async fn wait_until(env: &SimEnv, max: Duration, what: &str, cond: impl Fn() -> bool) {
    let start = env.now();
    while !cond() {
        assert!(env.now() - start < max, "waited {max:?} for {what}");
        env.sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (10 s at most) until no server session in `store` is live, then
/// [`all_quit_no_locks`].
pub async fn sessions_end_with_quit(env: &SimEnv, store: &MailStore) {
    wait_until(env, Duration::from_secs(10), "sessions end", || {
        store.sessions().iter().all(|s| !s.is_live())
    })
    .await;
    all_quit_no_locks(store, env.unix_millis());
}

/// Every server session in `store` ended with QUIT, and no lock is held.
pub fn all_quit_no_locks(store: &MailStore, now_ms: u64) {
    for s in store.sessions() {
        assert_eq!(
            s.end_kind(),
            Some(causeway_mailserver::EndKind::Quit),
            "session {} did not end with QUIT\n{}",
            s.id,
            store.report()
        );
    }
    assert!(store.locks_held(now_ms).is_empty(), "{}", store.report());
}

/// Runs the simulation until `trigger` holds (checked between steps), then
/// crashes the edge host, loses its disk's unsynced writes, keeps it down for
/// `down` (simulated), restarts it (a new incarnation, same disk) and runs
/// the simulation to its end. Returns the simulated time of the crash.
pub fn run_with_crash(
    w: &mut World,
    disk: &SimDisk,
    trigger: impl Fn() -> bool,
    down: Duration,
) -> Duration {
    run_with_crash_then(w, disk, trigger, down, || {})
}

/// [`run_with_crash`], calling `while_down` before the restart.
pub fn run_with_crash_then(
    w: &mut World,
    disk: &SimDisk,
    trigger: impl Fn() -> bool,
    down: Duration,
    while_down: impl FnOnce(),
) -> Duration {
    loop {
        if trigger() {
            break;
        }
        let done = w.sim.step().unwrap();
        assert!(
            !done,
            "the simulation ended before the crash point was reached"
        );
    }
    let at = w.sim.elapsed();
    // The disk first: the host's tasks, dropped next, would otherwise see
    // their commits through (a commit nobody waits for still completes).
    let lost = disk.crash();
    w.sim.crash("edge");
    println!("edge crashed at {at:?}; {lost} unsynced commit(s) lost");
    while w.sim.elapsed() < at + down {
        assert!(
            !w.sim.step().unwrap(),
            "the clients finished while the edge was down"
        );
    }
    while_down();
    w.sim.bounce("edge");
    while !w.sim.step().unwrap() {}
    at
}

/// Every server session in `store` that logged in ended, with QUIT except
/// at most the `abrupt_allowed` cut by the edge's crash; and no lock is held
/// now. (Logins refused with `[IN-USE]` while a cut session's lock was stale
/// are closed without QUIT: they hold nothing.)
pub fn quit_or_crash_cut_no_locks(store: &MailStore, abrupt_allowed: usize, now_ms: u64) {
    let mut abrupt = 0;
    for s in store.sessions() {
        if s.user.is_none() {
            assert!(s.end.is_some(), "{}", store.report());
            continue;
        }
        match s.end_kind() {
            Some(causeway_mailserver::EndKind::Quit) => {}
            // Cut by the crash: the FIN arrived (abrupt), or was lost in a
            // partition and the server timed the silent session out.
            Some(
                causeway_mailserver::EndKind::Abrupt | causeway_mailserver::EndKind::IdleTimeout,
            ) => abrupt += 1,
            other => panic!(
                "session {} ended {other:?}, not QUIT nor cut by the crash\n{}",
                s.id,
                store.report()
            ),
        }
    }
    assert!(
        abrupt <= abrupt_allowed,
        "{abrupt} abrupt sessions (at most {abrupt_allowed} cut by the crash)\n{}",
        store.report()
    );
    assert!(store.locks_held(now_ms).is_empty(), "{}", store.report());
}

/// A DELE is acknowledged, then the client's line dies at once: the edge
/// still commits that delete on alice's server (reached along `spec`), and
/// nothing else, and every server session ends with QUIT.
pub fn delete_survives_the_client_vanishing(spec: fn() -> ServerSpec) {
    let mut w = world(exclusive());
    let (k, ek, mail, edge) = w.handles();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![spec()]).await[0]);
        c.dele("HOST1", &u[1]).await;
        let env = c.env.clone();
        drop(c); // the line dies the instant the ack arrived
        wait_until(
            &env,
            Duration::from_secs(60),
            "the delete to commit",
            || !mail.is_present("alice", &u[1]) && edge.live_sessions() == 0,
        )
        .await;
        assert!(mail.is_present("alice", &u[0]) && mail.is_present("alice", &u[2]));
        assert_eq!(edge.live_replicas(), 0);
        assert_eq!(edge.pending_work(), 0);
        all_quit_no_locks(&mail, env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}
