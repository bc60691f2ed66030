//! The same handshake and exchange over real loopback sockets (`TokioEnv`)
//! and inside a turmoil simulation (`SimEnv`), for XK and KK; plus channel
//! round-trips of arbitrary payloads and the end-of-stream rules.

use std::time::Duration;

use causeway_net::{Env, EnvRng, Listener, SimEnv, Stream, TokioEnv};
use causeway_wire::{
    ChannelConfig, Compress, Keypair, Received, SecureChannel, WireError, accept_kk, accept_xk,
    connect_kk, connect_xk,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Msg {
    Login { user: String, password: String },
    Mail { id: u32, body: Vec<u8> },
    Ok,
}

fn big_mail() -> Msg {
    // Over 65,535 bytes even compressed: several records per frame.
    let rng = EnvRng::from_seed([5; 32]);
    let mut body = vec![0u8; 150_000];
    rng.fill_bytes(&mut body);
    Msg::Mail { id: 7, body }
}

#[derive(Clone, Copy, Debug)]
enum Pattern {
    Xk,
    Kk,
}

struct Keys {
    client: Keypair,
    server: Keypair,
}

fn keys() -> Keys {
    let rng = EnvRng::from_seed([1; 32]);
    Keys {
        client: Keypair::generate(&rng),
        server: Keypair::generate(&rng),
    }
}

async fn open_client<E: Env, S: Stream>(env: &E, s: S, k: &Keys, p: Pattern) -> SecureChannel<S> {
    let cfg = ChannelConfig::default();
    match p {
        Pattern::Xk => connect_xk(env, s, &k.client, &k.server.public, None, &cfg).await,
        Pattern::Kk => connect_kk(env, s, &k.client, &k.server.public, &cfg).await,
    }
    .unwrap()
}

async fn open_server<E: Env, S: Stream>(env: &E, s: S, k: &Keys, p: Pattern) -> SecureChannel<S> {
    let cfg = ChannelConfig::default();
    let client = k.client.public;
    match p {
        Pattern::Xk => accept_xk(env, s, &k.server, |key| *key == client, None, &cfg).await,
        Pattern::Kk => accept_kk(env, s, &k.server, &client, &cfg).await,
    }
    .unwrap()
}

/// Client: log in, send a big mail, wait for Ok, close.
async fn client_script<S: Stream>(mut ch: SecureChannel<S>, server: &Keypair) {
    assert_eq!(ch.peer(), &server.public);
    let login = Msg::Login {
        user: "alice".into(),
        password: "hunter2".into(),
    };
    ch.send(&login, Compress::Never).await.unwrap();
    ch.send(&big_mail(), Compress::Yes).await.unwrap();
    assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(Msg::Ok));
    ch.close("done").await.unwrap();
}

/// Server: the mirror image.
async fn server_script<S: Stream>(mut ch: SecureChannel<S>, client: &Keypair) {
    assert_eq!(ch.peer(), &client.public);
    let counters = ch.counters();
    assert!(matches!(
        ch.recv::<Msg>().await.unwrap(),
        Received::Msg(Msg::Login { .. })
    ));
    assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(big_mail()));
    ch.send(&Msg::Ok, Compress::Yes).await.unwrap();
    assert_eq!(
        ch.recv::<Msg>().await.unwrap(),
        Received::Closed {
            reason: "done".into()
        }
    );
    // Idempotent once closed.
    assert!(matches!(
        ch.recv::<Msg>().await.unwrap(),
        Received::Closed { .. }
    ));
    let got = counters.received();
    assert!(got.wire > got.compressed && got.plain > 150_000, "{got:?}");
}

async fn tokio_exchange(p: Pattern) {
    let env = TokioEnv::new();
    let mut l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let env = TokioEnv::new();
        let k = keys();
        let (s, _) = l.accept().await.unwrap();
        let ch = open_server(&env, s, &k, p).await;
        server_script(ch, &k.client).await;
    });
    let k = keys();
    let s = env.connect(&addr).await.unwrap();
    let ch = open_client(&env, s, &k, p).await;
    client_script(ch, &k.server).await;
    server.await.unwrap();
}

fn turmoil_exchange(p: Pattern) {
    let mut sim = turmoil::Builder::new().build();
    sim.host("server", move || async move {
        let env = SimEnv::new(1, "server", 0);
        let k = keys();
        let mut l = env.bind("0.0.0.0:7000").await?;
        let (s, _) = l.accept().await?;
        let ch = open_server(&env, s, &k, p).await;
        server_script(ch, &k.client).await;
        Ok(())
    });
    sim.client("client", async move {
        let env = SimEnv::new(1, "client", 0);
        let k = keys();
        let s = env.connect("server:7000").await?;
        let ch = open_client(&env, s, &k, p).await;
        client_script(ch, &k.server).await;
        Ok(())
    });
    sim.run().unwrap();
}

#[tokio::test]
async fn xk_over_tokio_loopback() {
    tokio_exchange(Pattern::Xk).await;
}

#[tokio::test]
async fn kk_over_tokio_loopback() {
    tokio_exchange(Pattern::Kk).await;
}

#[test]
fn xk_inside_turmoil() {
    turmoil_exchange(Pattern::Xk);
}

#[test]
fn kk_inside_turmoil() {
    turmoil_exchange(Pattern::Kk);
}

/// A connected pair over an in-memory pipe, for tests that are about the
/// channel rather than the network.
async fn duplex_pair(
    cfg: &ChannelConfig,
) -> (
    SecureChannel<tokio::io::DuplexStream>,
    SecureChannel<tokio::io::DuplexStream>,
) {
    let env = TokioEnv::new();
    let k = keys();
    let (a, b) = tokio::io::duplex(1 << 16);
    let client = connect_kk(&env, a, &k.client, &k.server.public, cfg);
    let server = accept_kk(&env, b, &k.server, &k.client.public, cfg);
    let (c, s) = tokio::join!(client, server);
    (c.unwrap(), s.unwrap())
}

#[tokio::test]
async fn eof_without_close_is_truncated_never_success() {
    let (mut c, mut s) = duplex_pair(&ChannelConfig::default()).await;
    c.send(&Msg::Ok, Compress::Yes).await.unwrap();
    drop(c);
    assert_eq!(s.recv::<Msg>().await.unwrap(), Received::Msg(Msg::Ok));
    let e = s.recv::<Msg>().await.unwrap_err();
    assert!(
        matches!(e, WireError::Truncated { frames_received: 1 }),
        "{e}"
    );
    assert!(matches!(s.recv::<Msg>().await, Err(WireError::Broken)));
}

#[tokio::test]
async fn a_stream_cut_mid_record_is_truncated() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let env = TokioEnv::new();
    let k = keys();
    let cfg = ChannelConfig::default();
    // client <-> relay <-> server, where the relay forwards the client's
    // 50-byte handshake message and 5 bytes of the next record, then hangs up.
    let (client_end, relay_c) = tokio::io::duplex(1 << 16);
    let (relay_s, server_end) = tokio::io::duplex(1 << 16);
    let (mut from_client, mut to_client) = tokio::io::split(relay_c);
    let (mut from_server, mut to_server) = tokio::io::split(relay_s);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut (&mut from_client).take(55), &mut to_server).await;
        let _ = to_server.shutdown().await;
    });
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    let client = connect_kk(&env, client_end, &k.client, &k.server.public, &cfg);
    let server = accept_kk(&env, server_end, &k.server, &k.client.public, &cfg);
    let (c, s) = tokio::join!(client, server);
    let (mut c, mut s) = (c.unwrap(), s.unwrap());
    c.send(&Msg::Ok, Compress::Never).await.unwrap();
    let e = s.recv::<Msg>().await.unwrap_err();
    assert!(
        matches!(e, WireError::Truncated { frames_received: 0 }),
        "{e}"
    );
    assert!(e.is_line_failure(), "a cut line, never blamed on keys: {e}");
}

#[tokio::test]
async fn recv_survives_a_timeout_around_it() {
    let env = TokioEnv::new();
    let (mut c, mut s) = duplex_pair(&ChannelConfig::default()).await;
    let idle = env
        .timeout(Duration::from_millis(20), "an idle peer", s.recv::<Msg>())
        .await;
    assert!(idle.is_err());
    // The record the timeout interrupted nothing of; a big message (several
    // records) now arrives whole.
    let mail = big_mail();
    let (sent, got) = tokio::join!(c.send(&mail, Compress::Never), s.recv::<Msg>());
    sent.unwrap();
    assert_eq!(got.unwrap(), Received::Msg(big_mail()));
}

#[tokio::test]
async fn an_oversize_send_is_refused_and_the_channel_goes_on() {
    let cfg = ChannelConfig {
        max_frame: 10_000,
        ..ChannelConfig::default()
    };
    let (mut c, mut s) = duplex_pair(&cfg).await;
    let e = c.send(&big_mail(), Compress::Yes).await.unwrap_err();
    assert!(
        matches!(e, WireError::FrameTooLarge { limit: 10_000, .. }),
        "{e}"
    );
    c.send(&Msg::Ok, Compress::Yes).await.unwrap();
    assert_eq!(s.recv::<Msg>().await.unwrap(), Received::Msg(Msg::Ok));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary payloads, either compression choice, some spanning several
    /// records, in both directions of one channel.
    #[test]
    fn channel_round_trips_arbitrary_payloads(
        payloads in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..2000), any::<bool>(), 1usize..80),
            1..4,
        )
    ) {
        runtime().block_on(async {
            let (mut c, mut s) = duplex_pair(&ChannelConfig::default()).await;
            for (seed, compress, repeat) in &payloads {
                let body = seed.repeat(*repeat);
                let msg = Msg::Mail { id: body.len() as u32, body };
                let how = if *compress { Compress::Yes } else { Compress::Never };
                let (sent, got) = tokio::join!(c.send(&msg, how), s.recv::<Msg>());
                sent.unwrap();
                assert_eq!(got.unwrap(), Received::Msg(msg.clone()));
                let (sent, got) = tokio::join!(s.send(&msg, how), c.recv::<Msg>());
                sent.unwrap();
                assert_eq!(got.unwrap(), Received::Msg(msg));
            }
        });
    }
}

/// Both ends of a channel see one binding; two handshakes never share one
/// (what a resume proof relies on: `causeway_wire::binding`).
#[tokio::test]
async fn both_ends_share_a_binding_that_no_other_handshake_has() {
    let env = TokioEnv::new();
    let mut l = env.bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let env = TokioEnv::new();
        let k = keys();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (s, _) = l.accept().await.unwrap();
            seen.push(*open_server(&env, s, &k, Pattern::Xk).await.binding());
        }
        seen
    });
    let k = keys();
    let mut mine = Vec::new();
    for _ in 0..2 {
        let s = env.connect(&addr).await.unwrap();
        mine.push(*open_client(&env, s, &k, Pattern::Xk).await.binding());
    }
    let theirs = server.await.unwrap();
    assert_eq!(mine, theirs);
    assert_ne!(mine[0], mine[1]);
    assert_ne!(mine[0], [0; 32]);
}
