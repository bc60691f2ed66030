//! The scripted edge the client proxy's tests run against: a rig with the
//! proxy under test on loopback, the edge's side of its channels, and a
//! minimal POP3 mail client.

#![allow(dead_code, unused_imports)]

pub use std::sync::Arc;
pub use std::time::Duration;

pub use causeway_client::{ClientConfig, Prefetch, Timeouts, run_client};
pub use causeway_net::{Env, Listener, TokioEnv};
pub use causeway_proto::Secret;
pub use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, ListEntry, ListingState, MessageId, Op, Reply,
    ServerListing, ServerOutcome, WantedAt,
};
pub use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
pub use causeway_wire::{ChannelConfig, Compress, Keypair, Received, SecureChannel, accept_xk};
pub use tokio::io::{AsyncReadExt, AsyncWriteExt};
pub use tokio::sync::watch;

pub type Stream = <TokioEnv as Env>::Stream;
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Rig {
    pub env: TokioEnv,
    pub proxy: String,
    pub edge: <TokioEnv as Env>::Listener,
    pub edge_keys: Keypair,
    pub client_key: causeway_wire::PublicKey,
    /// What the latest `Hello` named as lost sessions, and its nonce.
    pub supersedes: Vec<String>,
    pub nonce: String,
    /// What the latest `Hello` carried, and the servers it named.
    pub carried: Vec<DeleteOp>,
    pub servers: Vec<String>,
    /// The channel the proxy opened before greeting the latest mail client.
    pub pending: Option<SecureChannel<Stream>>,
    pub _stop: watch::Sender<bool>,
}

pub fn spec(name: &str) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        protocol: Protocol::Pop3,
        host: "127.0.0.1".into(),
        port: 110,
        tls: TlsMode::None,
        user: "alice".into(),
        password: Secret::new(b"server pw".to_vec()),
        route: Route::Direct,
        folder: causeway_proto::user::INBOX.into(),
    }
}

/// A proxy without prefetch: every body is asked for.
pub async fn rig(timeouts: Timeouts) -> Rig {
    let off = Prefetch {
        enabled: false,
        ..Prefetch::default()
    };
    rig_with(timeouts, off).await
}

pub async fn rig_with(timeouts: Timeouts, prefetch: Prefetch) -> Rig {
    rig_journaled(timeouts, prefetch, None).await
}

/// A proxy with `journal` as its delete journal.
pub async fn rig_journaled(
    timeouts: Timeouts,
    prefetch: Prefetch,
    journal: Option<causeway_store::JournalConfig>,
) -> Rig {
    let env = TokioEnv::new();
    let edge = env.bind("127.0.0.1:0").await.unwrap();
    let proxy = env.bind("127.0.0.1:0").await.unwrap();
    let edge_keys = Keypair::generate(env.rng());
    let keypair = Keypair::generate(env.rng());
    let client_key = keypair.public;
    let config = ClientConfig {
        listen: proxy.local_addr().unwrap().to_string(),
        imap_listen: None,
        user: "me".into(),
        password: Secret::new(b"local pw".to_vec()),
        edge: edge.local_addr().unwrap().to_string(),
        edge_key: edge_keys.public,
        keypair,
        psk: None,
        servers: vec![spec("HOST1"), spec("HOST2")],
        channel: ChannelConfig::default(),
        timeouts,
        prefetch,
        journal,
        #[cfg(feature = "broken-variants")]
        broken: None,
    };
    let (stop, rx) = watch::channel(false);
    let addr = proxy.local_addr().unwrap().to_string();
    tokio::spawn(run_client(env.clone(), proxy, Arc::new(config), rx));
    Rig {
        env,
        proxy: addr,
        edge,
        edge_keys,
        client_key,
        supersedes: Vec::new(),
        nonce: String::new(),
        carried: Vec::new(),
        servers: Vec::new(),
        pending: None,
        _stop: stop,
    }
}

pub fn msg(uidl: &str, size: u64) -> MessageId {
    MessageId {
        uidl: uidl.into(),
        size,
    }
}

impl Rig {
    /// The handshake of the proxy's next channel.
    pub async fn handshake(&mut self) -> SecureChannel<Stream> {
        let (stream, _) = self
            .env
            .timeout(WAIT, "the proxy to connect", self.edge.accept())
            .await
            .unwrap()
            .unwrap();
        let key = self.client_key;
        accept_xk(
            &self.env,
            stream,
            &self.edge_keys,
            |k| *k == key,
            None,
            &ChannelConfig::default(),
        )
        .await
        .unwrap()
    }

    /// The Hello on the channel reached before the greeting.
    pub async fn accept(&mut self) -> SecureChannel<Stream> {
        let mut ch = self
            .pending
            .take()
            .expect("a channel reached before the greeting");
        self.hello(&mut ch).await;
        assert_eq!(
            self.servers,
            ["HOST1", "HOST2"],
            "a mail client's session opens every server"
        );
        ch
    }

    /// Reads the `Hello`, recording what it names.
    pub async fn hello(&mut self, ch: &mut SecureChannel<Stream>) {
        match recv(ch).await {
            ClientToEdge::Hello {
                version,
                nonce,
                user,
                supersedes,
                carried,
                ..
            } => {
                assert_eq!(version, causeway_proto::PROTOCOL_VERSION);
                self.supersedes = supersedes;
                self.nonce = nonce;
                self.carried = carried;
                self.servers = user.servers.iter().map(|s| s.name.clone()).collect();
            }
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// A mail client logged in, and the edge side of its session (Welcome
    /// sent).
    pub async fn logged_in(&mut self) -> (Pop, SecureChannel<Stream>) {
        let mut pop = self.mail_client().await;
        pop.login().await;
        let mut edge = self.accept().await;
        welcome(&mut edge).await;
        assert_eq!(pop.line().await, "+OK Logged in.");
        (pop, edge)
    }

    /// A mail client; the proxy reaches the edge before it greets it.
    pub async fn mail_client(&mut self) -> Pop {
        let (env, proxy) = (self.env.clone(), self.proxy.clone());
        let connect = async move {
            let s = env.connect(&proxy).await.unwrap();
            Pop { s, buf: Vec::new() }
        };
        let (mut p, ch) = tokio::join!(connect, self.handshake());
        assert_eq!(p.line().await, "+OK Causeway ready.");
        self.pending = Some(ch);
        p
    }
}

pub async fn recv(ch: &mut SecureChannel<Stream>) -> ClientToEdge {
    match tokio::time::timeout(WAIT, ch.recv())
        .await
        .expect("the proxy to say something")
        .unwrap()
    {
        Received::Msg(m) => m,
        Received::Closed { reason } => panic!("closed: {reason}"),
    }
}

pub async fn send(ch: &mut SecureChannel<Stream>, m: EdgeToClient) {
    ch.send(&m, Compress::Yes).await.unwrap();
}

/// Where the message is in [`welcome_as`]'s listing of its server.
pub fn place(id: &MessageId) -> u32 {
    match id.uidl.as_str() {
        "a" | "c" => 0,
        "b" => 1,
        other => panic!("{other} is not in the scripted listing"),
    }
}

/// The message at `at` in [`welcome_as`]'s listing of `server`.
pub fn at_place(server: &str, at: u32) -> MessageId {
    match (server, at) {
        ("HOST1", 0) => msg("a", 10),
        ("HOST1", 1) => msg("b", 20),
        ("HOST2", 0) => msg("c", 5),
        other => panic!("{other:?} is not in the scripted listing"),
    }
}

/// Streams `body` of `uidl` in chunks of `piece` bytes.
pub async fn stream(
    ch: &mut SecureChannel<Stream>,
    server: &str,
    id: MessageId,
    body: &[u8],
    piece: usize,
) {
    let mut offset = 0;
    for part in body.chunks(piece) {
        // As the edge sends it: in the LF form where that is reversible.
        let (lf, data) = causeway_proto::line_ends::encode(part);
        let chunk = EdgeToClient::Chunk {
            server: server.into(),
            at: place(&id),
            offset: offset as u64,
            total: body.len() as u64,
            lf,
            data,
        };
        send(ch, chunk).await;
        offset += part.len();
    }
}

pub async fn welcome(ch: &mut SecureChannel<Stream>) {
    welcome_as(ch, "s1").await
}

pub async fn welcome_as(ch: &mut SecureChannel<Stream>, session: &str) {
    let ready = |name: &str, msgs: &[(&str, u64)]| ServerListing {
        name: name.into(),
        state: ListingState::Ready {
            messages: msgs
                .iter()
                .map(|(u, s)| ListEntry {
                    uidl: (*u).into(),
                    size: *s,
                    flags: None,
                })
                .collect(),
        },
    };
    let servers = vec![
        ready("HOST1", &[("a", 10), ("b", 20)]),
        ready("HOST2", &[("c", 5)]),
    ];
    send(
        ch,
        EdgeToClient::Welcome {
            session: session.into(),
            servers,
        },
    )
    .await;
}

/// A minimal POP3 client reading raw lines.
pub struct Pop {
    pub s: Stream,
    pub buf: Vec<u8>,
}

impl Pop {
    pub async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
                return String::from_utf8(line).unwrap();
            }
            let mut b = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.s.read(&mut b))
                .await
                .expect("a reply")
                .unwrap();
            assert!(
                n > 0,
                "connection closed; had {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    pub async fn cmd(&mut self, c: &str) -> String {
        self.s
            .write_all(format!("{c}\r\n").as_bytes())
            .await
            .unwrap();
        self.line().await
    }

    /// Lines up to the terminating ".", joined with CRLF.
    pub async fn body(&mut self) -> String {
        let mut out = String::new();
        loop {
            let l = self.line().await;
            if l == "." {
                return out;
            }
            out.push_str(&l);
            out.push_str("\r\n");
        }
    }

    pub async fn login(&mut self) {
        assert_eq!(self.cmd("USER me").await, "+OK");
        self.s.write_all(b"PASS local pw\r\n").await.unwrap();
    }

    pub async fn closed(&mut self) {
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(WAIT, self.s.read(&mut b))
            .await
            .expect("the proxy to close")
            .unwrap_or(0);
        assert_eq!(
            n,
            0,
            "expected EOF, got {:?}",
            String::from_utf8_lossy(&b[..n])
        );
    }
}
