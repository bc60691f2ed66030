//! The edge reaching TLS mail servers end to end, directly and through the
//! relay, over real loopback sockets (`TokioEnv`: TLS never runs in the
//! turmoil simulation, rustls draws OS randomness). The TLS fixtures (test
//! CA, POP3S terminator, STLS front) are shared with the relay's tests.

#[path = "../../crates/upstream/tests/tls_support/mod.rs"]
mod tls_support;

use std::sync::Arc;
use std::time::Duration;

use causeway_edge::{EdgeConfig, EdgeState, RelayRef, run_edge};
use causeway_net::{Env, EnvRng, Listener, TokioEnv, derive_seed};
use causeway_proto::session::{
    ClientToEdge, EdgeToClient, ListEntry, ListingState, MessageId, Op, Reply, ServerListing,
};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode, UserInfo};
use causeway_proto::{ErrCode, OpError, PROTOCOL_VERSION, Secret};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_upstream::ServerTls;
use causeway_wire::{ChannelConfig, Compress, Keypair, Received, SecureChannel, connect_xk};
use tls_support::*;
use tokio::sync::watch;

struct Keys {
    edge: Keypair,
    relay: Keypair,
    client: Keypair,
}

fn keys() -> Keys {
    let rng = EnvRng::from_seed(derive_seed(3, &[b"tls-keys"]));
    Keys {
        edge: Keypair::generate(&rng),
        relay: Keypair::generate(&rng),
        client: Keypair::generate(&rng),
    }
}

fn spec(name: &str, port: u16, tls: TlsMode, route: Route) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        protocol: Protocol::Pop3,
        host: "127.0.0.1".into(),
        port,
        tls,
        user: USER.into(),
        password: Secret::new(PASSWORD.as_bytes().to_vec()),
        route,
        folder: causeway_proto::user::INBOX.into(),
    }
}

/// Starts a relay (trusting `tls`) for `servers`; returns its address.
async fn relay(k: &Keys, servers: &[u16], tls: ServerTls) -> (String, watch::Sender<bool>) {
    let env = TokioEnv::new();
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let address = l.local_addr().unwrap().to_string();
    let mut c = RelayConfig::new(k.relay.clone());
    c.allowed_edges = vec![k.edge.public];
    c.allowed_servers = servers.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    c.timeouts.server.connect = Duration::from_secs(5);
    c.timeouts.server.command = Duration::from_secs(5);
    c.tls = tls;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(run_relay(env, l, Arc::new(c), RelayState::new(), rx));
    (address, tx)
}

/// Starts an edge (trusting `tls` for direct servers); returns its address.
async fn edge(
    k: &Keys,
    servers: &[u16],
    relay: Option<&str>,
    tls: ServerTls,
) -> (String, EdgeState, watch::Sender<bool>) {
    let env = TokioEnv::new();
    let l = env.bind("127.0.0.1:0").await.unwrap();
    let address = l.local_addr().unwrap().to_string();
    let mut c = EdgeConfig::new(k.edge.clone());
    c.allowed_clients = vec![k.client.public];
    c.allowed_servers = servers.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    if let Some(r) = relay {
        c.relays = vec![RelayRef {
            name: "R1".into(),
            address: r.into(),
            public_key: k.relay.public,
        }];
    }
    c.timeouts.server.connect = Duration::from_secs(5);
    c.timeouts.server.command = Duration::from_secs(5);
    c.timeouts.relay_reply = Duration::from_secs(10);
    c.timeouts.retry_min = Duration::from_millis(100);
    c.timeouts.retry_max = Duration::from_millis(500);
    c.timeouts.completion_deadline = Duration::from_secs(20);
    c.tls = tls;
    let state = EdgeState::new();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(run_edge(env, l, Arc::new(c), state.clone(), rx));
    (address, state, tx)
}

/// The test's stand-in for the client proxy.
struct Client {
    env: TokioEnv,
    ch: SecureChannel<<TokioEnv as Env>::Stream>,
    next_id: u64,
    /// The body being streamed, and the body bytes received.
    body: Vec<u8>,
    received: u64,
}

impl Client {
    async fn connect(k: &Keys, edge: &str) -> Client {
        let env = TokioEnv::new();
        let s = env.connect(edge).await.unwrap();
        let ch = connect_xk(
            &env,
            s,
            &k.client,
            &k.edge.public,
            None,
            &ChannelConfig::default(),
        )
        .await
        .unwrap();
        Client {
            env,
            ch,
            next_id: 1,
            body: Vec::new(),
            received: 0,
        }
    }

    async fn recv(&mut self) -> EdgeToClient {
        let r = self
            .env
            .timeout(Duration::from_secs(30), "the edge", self.ch.recv())
            .await
            .expect("the edge answers within 30 s")
            .unwrap();
        match r {
            // The resume secret; these tests do not resume.
            Received::Msg(EdgeToClient::Ticket { .. }) => Box::pin(self.recv()).await,
            Received::Msg(m) => m,
            Received::Closed { reason } => panic!("closed: {reason}"),
        }
    }

    async fn welcome(&mut self, servers: Vec<ServerSpec>) -> Vec<ServerListing> {
        let hello = ClientToEdge::Hello {
            version: PROTOCOL_VERSION,
            nonce: String::new(),
            user: UserInfo { servers },
            supersedes: Vec::new(),
            carried: Vec::new(),
            oldest: 0,
            restarted: false,
            resumes: false,
        };
        self.ch.send(&hello, Compress::Never).await.unwrap();
        match self.recv().await {
            EdgeToClient::Welcome { servers, .. } => servers,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    async fn request(&mut self, server: &str, op: Op) -> (u64, Result<Reply, OpError>) {
        let id = self.next_id;
        self.next_id += 1;
        let msg = ClientToEdge::Request {
            id,
            server: server.into(),
            op,
        };
        self.ch.send(&msg, Compress::Yes).await.unwrap();
        loop {
            match self.recv().await {
                EdgeToClient::Response { id: got, result } if got == id => return (id, result),
                EdgeToClient::Pong { .. } => {}
                EdgeToClient::Chunk {
                    offset, lf, data, ..
                } => {
                    let data = causeway_proto::line_ends::decode(lf, data);
                    if offset == 0 {
                        self.body.clear();
                    }
                    self.body.extend_from_slice(&data);
                    self.received += data.len() as u64;
                    let credit = ClientToEdge::Window {
                        received: self.received,
                    };
                    self.ch.send(&credit, Compress::Yes).await.unwrap();
                }
                other => panic!("expected Response {id}, got {other:?}"),
            }
        }
    }

    /// RETR (delivered), then DELE of another message; QUIT; each `+OK`.
    async fn read_one_delete_one(&mut self, server: &str, uidls: &[MessageId]) -> Vec<u8> {
        let (_, r) = self
            .request(
                server,
                Op::Retr {
                    msg: uidls[0].clone(),
                },
            )
            .await;
        let Ok(Reply::Streamed { total }) = r else {
            panic!("RETR on {server}: {r:?}")
        };
        let body = std::mem::take(&mut self.body);
        assert_eq!(body.len() as u64, total, "RETR on {server}: the whole body");
        let delivered = ClientToEdge::Delivered {
            server: server.into(),
            // `uidls` is the listing, in order: the first is at place 0.
            at: vec![0],
        };
        self.ch.send(&delivered, Compress::Yes).await.unwrap();
        let (_, r) = self
            .request(
                server,
                Op::Dele {
                    msg: uidls[1].clone(),
                },
            )
            .await;
        assert_eq!(r, Ok(Reply::Done), "DELE on {server}");
        body
    }

    async fn quit(&mut self) -> Vec<causeway_proto::session::ServerOutcome> {
        self.ch
            .send(&ClientToEdge::Quit, Compress::Yes)
            .await
            .unwrap();
        match self.recv().await {
            EdgeToClient::Bye { servers } => servers,
            other => panic!("expected Bye, got {other:?}"),
        }
    }
}

fn ready(l: &ServerListing) -> Vec<MessageId> {
    match &l.state {
        ListingState::Ready { messages } => messages.iter().map(ListEntry::id).collect(),
        ListingState::Unavailable { error } => panic!("{} unavailable: {error}", l.name),
    }
}

fn unavailable(l: &ServerListing) -> OpError {
    match &l.state {
        ListingState::Unavailable { error } => error.clone(),
        s => panic!("{} should be unavailable: {s:?}", l.name),
    }
}

/// The store's work was committed: the first message read, the second gone,
/// every session ended with QUIT.
fn committed(store: &causeway_mailserver::MailStore, uidls: &[MessageId]) {
    assert!(store.is_seen(USER, &uidls[0].uidl), "{}", store.report());
    assert!(
        !store.is_present(USER, &uidls[1].uidl),
        "{}",
        store.report()
    );
    for s in store.sessions() {
        assert_eq!(
            s.end_kind(),
            Some(causeway_mailserver::EndKind::Quit),
            "{}",
            store.report()
        );
    }
}

#[tokio::test]
async fn direct_implicit_and_starttls_end_to_end_and_a_bad_certificate_is_unavailable() {
    let k = keys();
    let pki = Pki::new("edge-direct");
    let stranger = Pki::new("edge-stranger");
    let (s1, s2, s3) = (store(), store(), store());
    let b1 = mail_server(s1.clone()).await;
    let b2 = mail_server(s2.clone()).await;
    let b3 = mail_server(s3.clone()).await;
    let pop3s = implicit_front(pki.server(&["127.0.0.1"]), b1).await;
    let stls = stls_front(pki.server(&["127.0.0.1"]), b2, Stls::Upgrade).await;
    let bad = implicit_front(stranger.server(&["127.0.0.1"]), b3).await;
    let (edge_addr, state, _stop) = edge(&k, &[pop3s, stls.port, bad], None, pki.client()).await;

    let mut c = Client::connect(&k, &edge_addr).await;
    let l = c
        .welcome(vec![
            spec("POP3S", pop3s, TlsMode::Implicit, Route::Direct),
            spec("STLS", stls.port, TlsMode::Starttls, Route::Direct),
            spec("BAD", bad, TlsMode::Implicit, Route::Direct),
        ])
        .await;
    let u1 = ready(&l[0]);
    let u2 = ready(&l[1]);
    let e = unavailable(&l[2]);
    assert_eq!(e.code, Some(ErrCode::SysPerm), "{e}");
    assert!(
        e.text.contains("certificate for 127.0.0.1 is not valid") && e.text.contains("set ca_file"),
        "{e}"
    );
    let body = c.read_one_delete_one("POP3S", &u1).await;
    assert_eq!(body, s1.body(USER, &u1[0].uidl).unwrap());
    let body = c.read_one_delete_one("STLS", &u2).await;
    assert_eq!(body, s2.body(USER, &u2[0].uidl).unwrap());
    // A certificate failure is permanent: the edge does not keep retrying
    // it, and QUIT comes back at once.
    let bye = c.quit().await;
    assert_eq!(bye[0].result, Ok(()), "{bye:?}");
    assert_eq!(bye[1].result, Ok(()), "{bye:?}");
    committed(&s1, &u1);
    committed(&s2, &u2);
    assert!(s3.sessions().is_empty(), "{}", s3.report());
    assert_eq!(stls.clear_text(), vec!["STLS".to_owned()]);
    let mut waited = 0;
    while state.live_sessions() != 0 {
        assert!(waited < 100, "the edge session did not end");
        c.env.sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
}

#[tokio::test]
async fn through_the_relay_with_the_relays_trust_store() {
    let k = keys();
    let pki = Pki::new("edge-relay");
    let (s1, s2, s3) = (store(), store(), store());
    let b1 = mail_server(s1.clone()).await;
    let b2 = mail_server(s2.clone()).await;
    let b3 = mail_server(s3.clone()).await;
    let pop3s = implicit_front(pki.server(&["127.0.0.1"]), b1).await;
    let stls = stls_front(pki.server(&["127.0.0.1"]), b2, Stls::Upgrade).await;
    let refusing = stls_front(pki.server(&["127.0.0.1"]), b3, Stls::Refuse).await;
    let servers = [pop3s, stls.port, refusing.port];
    // The relay trusts the test CA; the edge only the system store (which
    // it never even loads: the relay does the TLS).
    let (relay_addr, _stop_relay) = relay(&k, &servers, pki.client()).await;
    let (edge_addr, _state, _stop) =
        edge(&k, &servers, Some(&relay_addr), ServerTls::default()).await;

    let via = || Route::Relay("R1".into());
    let mut c = Client::connect(&k, &edge_addr).await;
    let l = c
        .welcome(vec![
            spec("POP3S", pop3s, TlsMode::Implicit, via()),
            spec("STLS", stls.port, TlsMode::Starttls, via()),
            spec("NOTLS", refusing.port, TlsMode::Starttls, via()),
        ])
        .await;
    let u1 = ready(&l[0]);
    let u2 = ready(&l[1]);
    let e = unavailable(&l[2]);
    assert_eq!(e.code, Some(ErrCode::SysPerm), "{e}");
    assert!(
        e.text.contains("refused STLS") && e.text.contains("never falls back"),
        "{e}"
    );
    let body = c.read_one_delete_one("POP3S", &u1).await;
    assert_eq!(body, s1.body(USER, &u1[0].uidl).unwrap());
    let body = c.read_one_delete_one("STLS", &u2).await;
    assert_eq!(body, s2.body(USER, &u2[0].uidl).unwrap());
    let bye = c.quit().await;
    assert_eq!(bye[0].result, Ok(()), "{bye:?}");
    assert_eq!(bye[1].result, Ok(()), "{bye:?}");
    committed(&s1, &u1);
    committed(&s2, &u2);
    assert_eq!(stls.clear_text(), vec!["STLS".to_owned()]);
    // The refusing server saw STLS only: never USER or PASS in the clear.
    assert_eq!(refusing.clear_text(), vec!["STLS".to_owned()]);
    assert!(s3.sessions().is_empty(), "{}", s3.report());
}
