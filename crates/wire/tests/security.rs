//! Refusals at the handshake, what an eavesdropper sees, and replayability,
//! over the simulated network (turmoil), where time and randomness follow
//! the seed.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use causeway_net::tap::{TapLog, Tapped};
use causeway_net::{Env, EnvRng, Listener, SimEnv};
use causeway_wire::{
    ChannelConfig, Compress, Keypair, Psk, PublicKey, Received, SecureChannel, WireError,
    accept_kk, accept_kk_any, accept_xk, connect_kk, connect_xk,
};
use serde::{Deserialize, Serialize};

const PASSWORD: &str = "correct-horse-battery-staple";
const BODY_LINE: &str = "The merger closes on Friday; tell nobody before the announcement.";

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Msg {
    Login { user: String, password: String },
    Mail { body: String },
}

fn mail() -> Msg {
    Msg::Mail {
        body: format!("Subject: confidential\r\n\r\n{}\r\n", BODY_LINE.repeat(20)),
    }
}

fn login() -> Msg {
    Msg::Login {
        user: "alice".into(),
        password: PASSWORD.into(),
    }
}

fn keypair(label: u8) -> Keypair {
    Keypair::generate(&EnvRng::from_seed([label; 32]))
}

/// What each side of a simulated connection ended with.
type Outcome = Rc<RefCell<Vec<String>>>;

/// Runs `server` on host "server" and `client` on "client" over one TCP
/// connection; each returns a line for the outcome log.
fn sim<SF, CF>(seed: u64, server: SF, client: CF)
where
    SF: Fn(
            SimEnv,
            turmoil::net::TcpStream,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        + 'static,
    CF: FnOnce(
            SimEnv,
            turmoil::net::TcpStream,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>
        + 'static,
{
    let mut sim = turmoil::Builder::new().rng_seed(seed).build();
    let server = Rc::new(server);
    sim.host("server", move || {
        let server = server.clone();
        async move {
            let env = SimEnv::new(seed, "server", 0);
            let mut l = env.bind("0.0.0.0:7000").await?;
            let (s, _) = l.accept().await?;
            server(env, s).await;
            Ok(())
        }
    });
    sim.client("client", async move {
        let env = SimEnv::new(seed, "client", 0);
        let s = env.connect("server:7000").await?;
        client(env, s).await;
        Ok(())
    });
    sim.run().unwrap();
}

fn cfg() -> ChannelConfig {
    ChannelConfig {
        handshake_timeout: Duration::from_secs(5),
        ..ChannelConfig::default()
    }
}

#[test]
fn an_unlisted_client_key_is_refused_by_name_and_told_why() {
    let client = keypair(1);
    let out: Outcome = Rc::default();
    let (o1, o2) = (out.clone(), out.clone());
    sim(
        1,
        move |env, s| {
            let o = o1.clone();
            let (edge, other) = (keypair(2), keypair(3));
            let allowed: BTreeSet<PublicKey> = [other.public].into();
            Box::pin(async move {
                let e = accept_xk(&env, s, &edge, |k| allowed.contains(k), None, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(matches!(e, WireError::PeerNotAllowed { key } if key == client.public));
                o.borrow_mut().push(e.to_string());
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (client, edge) = (keypair(1), keypair(2));
                let mut ch = connect_xk(&env, s, &client, &edge.public, None, &cfg())
                    .await
                    .unwrap();
                let got = ch.recv::<Msg>().await.unwrap();
                let Received::Closed { reason } = got else {
                    panic!("expected a refusal, got {got:?}");
                };
                o2.borrow_mut().push(reason);
            })
        },
    );
    let expected = format!(
        "client key {} is not on this edge's allow list",
        client.public
    );
    assert_eq!(*out.borrow(), vec![expected.clone(), expected]);
}

#[test]
fn a_client_pinning_the_wrong_edge_key_fails_naming_both_keys() {
    let (edge, real_edge) = (keypair(2), keypair(4));
    let out: Outcome = Rc::default();
    let (o1, o2) = (out.clone(), out.clone());
    sim(
        2,
        move |env, s| {
            let (o, real_edge) = (o1.clone(), keypair(4));
            Box::pin(async move {
                let e = accept_xk(&env, s, &real_edge, |_| true, None, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(matches!(e, WireError::NotForUs { ours } if ours == real_edge.public));
                o.borrow_mut().push(e.to_string());
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (client, edge) = (keypair(1), keypair(2));
                let e = connect_xk(&env, s, &client, &edge.public, None, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(e, WireError::HandshakeCut { pinned, .. } if pinned == Some(edge.public))
                );
                o2.borrow_mut().push(e.to_string());
            })
        },
    );
    let out = out.borrow();
    assert!(out[0].contains(&real_edge.public.to_string()), "{}", out[0]);
    assert!(
        out[1].contains(&format!("the key pinned for it, {}", edge.public)),
        "{}",
        out[1]
    );
}

#[test]
fn kk_with_an_unexpected_edge_fails_on_both_sides() {
    let out: Outcome = Rc::default();
    let (o1, o2) = (out.clone(), out.clone());
    sim(
        3,
        move |env, s| {
            let (o, edge, relay) = (o1.clone(), keypair(5), keypair(6));
            Box::pin(async move {
                let e = accept_kk(&env, s, &relay, &edge.public, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(e, WireError::KkMismatch { expected, .. } if expected == edge.public)
                );
                o.borrow_mut().push(e.to_string());
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (stranger, relay) = (keypair(7), keypair(6));
                let e = connect_kk(&env, s, &stranger, &relay.public, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(e, WireError::HandshakeCut { pinned, .. } if pinned == Some(relay.public))
                );
                o2.borrow_mut().push(e.to_string());
            })
        },
    );
    assert_eq!(out.borrow().len(), 2);
}

/// A relay serving several edges: the one that connects is found among the
/// pinned keys; a stranger matches none.
fn kk_any(connecting: u8) -> Vec<String> {
    let out: Outcome = Rc::default();
    let (o1, o2) = (out.clone(), out.clone());
    sim(
        7,
        move |env, s| {
            let o = o1.clone();
            Box::pin(async move {
                let edges: Vec<PublicKey> = [10, 11, 12].map(|n| keypair(n).public).into();
                let line = match accept_kk_any(&env, s, &keypair(6), &edges, &cfg()).await {
                    Ok(mut ch) => {
                        let peer = ch.peer().to_string();
                        assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(mail()));
                        ch.close("bye").await.unwrap();
                        format!("accepted {peer}")
                    }
                    Err(e) => e.to_string(),
                };
                o.borrow_mut().push(line);
            })
        },
        move |env, s| {
            Box::pin(async move {
                let line =
                    match connect_kk(&env, s, &keypair(connecting), &keypair(6).public, &cfg())
                        .await
                    {
                        Ok(mut ch) => {
                            ch.send(&mail(), Compress::Yes).await.unwrap();
                            // Wait for the relay's close: it has recorded its side by then.
                            let end = ch.recv::<Msg>().await.unwrap();
                            assert!(matches!(end, Received::Closed { .. }));
                            "connected".to_string()
                        }
                        Err(e) => e.to_string(),
                    };
                o2.borrow_mut().push(line);
            })
        },
    );
    out.take()
}

#[test]
fn a_relay_with_several_pinned_edges_finds_the_right_one() {
    let out = kk_any(11);
    assert!(
        out.contains(&format!("accepted {}", keypair(11).public)),
        "{out:?}"
    );
    assert!(out.contains(&"connected".to_string()), "{out:?}");
    let out = kk_any(13);
    assert!(
        out.iter()
            .any(|l| l.contains("matched none of the 3 pinned peer keys")),
        "{out:?}"
    );
}

#[test]
fn a_wrong_psk_fails_the_handshake() {
    let out: Outcome = Rc::default();
    let (o1, o2) = (out.clone(), out.clone());
    sim(
        4,
        move |env, s| {
            let (o, edge) = (o1.clone(), keypair(2));
            Box::pin(async move {
                let psk = Psk::from_bytes([1; 32]);
                let e = accept_xk(&env, s, &edge, |_| true, Some(&psk), &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(matches!(e, WireError::PskMismatch), "{e}");
                o.borrow_mut().push(e.to_string());
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (client, edge) = (keypair(1), keypair(2));
                let psk = Psk::from_bytes([2; 32]);
                let mut ch = connect_xk(&env, s, &client, &edge.public, Some(&psk), &cfg())
                    .await
                    .unwrap();
                let e = ch.recv::<Msg>().await.unwrap_err();
                assert!(
                    matches!(e, WireError::Truncated { frames_received: 0 }),
                    "{e}"
                );
                o2.borrow_mut().push(e.to_string());
            })
        },
    );
    assert!(out.borrow()[0].contains("pre-shared key differs"));
}

#[test]
fn a_silent_peer_times_the_handshake_out() {
    let out: Outcome = Rc::default();
    let o = out.clone();
    sim(
        5,
        move |env, s| {
            Box::pin(async move {
                // Accept the TCP connection, then say nothing for a minute.
                env.sleep(Duration::from_secs(60)).await;
                drop(s);
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (client, edge) = (keypair(1), keypair(2));
                let e = connect_xk(&env, s, &client, &edge.public, None, &cfg())
                    .await
                    .err()
                    .unwrap();
                assert!(
                    matches!(e, WireError::HandshakeTimeout { after_ms: 5000 }),
                    "{e}"
                );
                o.borrow_mut().push(e.to_string());
            })
        },
    );
    assert_eq!(out.borrow().len(), 1);
}

/// An edge <-> relay (KK) exchange whose relay-side stream is tapped:
/// returns everything the tap saw, both directions.
fn tapped_kk_run(seed: u64) -> (Vec<u8>, Vec<u8>) {
    let log = TapLog::new();
    let server_log = log.clone();
    sim(
        seed,
        move |env, s| {
            let (relay, edge_pub, log) = (keypair(9), keypair(8).public, server_log.clone());
            Box::pin(async move {
                let s = Tapped::new(s, log);
                let mut ch: SecureChannel<_> =
                    accept_kk(&env, s, &relay, &edge_pub, &cfg()).await.unwrap();
                assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(login()));
                assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(mail()));
                ch.send(&mail(), Compress::Yes).await.unwrap();
                assert!(matches!(
                    ch.recv::<Msg>().await.unwrap(),
                    Received::Closed { .. }
                ));
            })
        },
        move |env, s| {
            Box::pin(async move {
                let (edge, relay) = (keypair(8), keypair(9));
                let mut ch = connect_kk(&env, s, &edge, &relay.public, &cfg())
                    .await
                    .unwrap();
                ch.send(&login(), Compress::Never).await.unwrap();
                ch.send(&mail(), Compress::Yes).await.unwrap();
                assert_eq!(ch.recv::<Msg>().await.unwrap(), Received::Msg(mail()));
                ch.close("done").await.unwrap();
            })
        },
    );
    (log.read_bytes(), log.written_bytes())
}

#[test]
fn neither_password_nor_mail_body_crosses_the_line_in_the_clear() {
    let (read, written) = tapped_kk_run(6);
    assert!(!read.is_empty() && !written.is_empty());
    let seen = |needle: &[u8]| {
        [&read, &written]
            .iter()
            .any(|hay| hay.windows(needle.len()).any(|w| w == needle))
    };
    for needle in [
        PASSWORD.as_bytes(),
        BODY_LINE.as_bytes(),
        b"alice",
        b"merger",
    ] {
        assert!(
            !seen(needle),
            "{:?} crossed in the clear",
            String::from_utf8_lossy(needle)
        );
    }
    // Control: the tap does see them when the same messages go as plaintext.
    let plain_log = TapLog::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use tokio::io::AsyncWriteExt;
        let (a, _b) = tokio::io::duplex(1 << 16);
        let mut t = Tapped::new(a, plain_log.clone());
        for m in [login(), mail()] {
            let bytes = bincode::serde::encode_to_vec(&m, bincode::config::standard()).unwrap();
            t.write_all(&bytes).await.unwrap();
        }
    });
    assert!(plain_log.contains(PASSWORD.as_bytes()));
    assert!(plain_log.contains(BODY_LINE.as_bytes()));
}

#[test]
fn the_same_seed_replays_the_same_bytes() {
    let a = tapped_kk_run(77);
    let b = tapped_kk_run(77);
    assert_eq!(a, b);
    // And the seed matters: ephemeral keys come from it.
    let c = tapped_kk_run(78);
    assert_ne!(a.0, c.0);
}
