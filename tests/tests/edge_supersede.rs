//! A client back after a cut names the session it lost, and the edge ends
//! it (committing what it owed, QUITting its servers) before opening the
//! servers again, so an exclusive maildrop lock does not turn the user away
//! for the edge's whole `client_idle`.

use std::time::Duration;

use causeway_edge::SessionEnd;
use causeway_net::Env;
use causeway_proto::ErrCode;
use causeway_proto::session::{ClientToEdge, EdgeToClient, ListingState, ServerListing};
use causeway_proto::user::ServerSpec;
use causeway_tests::edge_world::*;

/// A world whose edge keeps a session whose line died for ten minutes,
/// waiting for its client proxy to resume it.
fn resumable() -> World {
    world_with(exclusive(), |c| c.resume.window = Duration::from_secs(600))
}

async fn open(c: &mut Client, spec: ServerSpec, lost: Vec<String>) -> (String, ServerListing) {
    match c.hello_superseding(vec![spec], lost).await {
        Ok(EdgeToClient::Welcome {
            session,
            mut servers,
        }) => (session, servers.remove(0)),
        other => panic!("expected Welcome, got {other:?}"),
    }
}

/// Session A deletes one message and receives another (no `Delivered`);
/// then its line goes dead without the edge noticing. The client comes back
/// five seconds later. Returns the listing its second session got, with
/// the UIDLs of the deleted and the received message.
fn come_back_after_a_cut(
    spec: fn() -> ServerSpec,
    name_the_lost_session: bool,
    check: impl FnOnce(&World, ServerListing, [String; 2]) + 'static,
) {
    let mut w = world(exclusive());
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    let (mail, edge) = (w.mail.clone(), w.edge.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let (lost, listing) = open(&mut a, spec(), Vec::new()).await;
        let u = uidls(&listing);
        a.dele("HOST1", &u[1]).await;
        let _ = a.retr("HOST1", &u[0]).await;
        turmoil::partition("client", "edge");
        a.env.sleep(Duration::from_secs(5)).await;
        turmoil::repair("client", "edge");
        let cut_at = a.env.now();

        let mut b = Client::connect(&k, &ek).await?;
        let named = if name_the_lost_session {
            vec![lost]
        } else {
            Vec::new()
        };
        let (_, listing) = open(&mut b, spec(), named).await;
        let waited = b.env.now() - cut_at;
        assert!(waited < Duration::from_secs(30), "opened after {waited:?}");
        if matches!(listing.state, ListingState::Ready { .. }) {
            b.quit().await;
        }
        wait_until(&b.env, Duration::from_secs(300), "sessions to end", || {
            edge.live_sessions() == 0
        })
        .await;
        assert!(!mail.is_present("alice", &u[1]), "{}", mail.report());
        assert!(!mail.is_seen("alice", &u[0]), "{}", mail.report());
        tx.send((listing, [u[1].clone(), u[0].clone()])).unwrap();
        Ok(())
    });
    w.sim.run().unwrap();
    let (listing, uidls) = rx.recv().unwrap();
    check(&w, listing, uidls);
}

fn superseded(spec: fn() -> ServerSpec) {
    come_back_after_a_cut(spec, true, |w, listing, [deleted, received]| {
        let now = uidls(&listing);
        assert!(
            !now.contains(&deleted),
            "the lost session's delete came first"
        );
        assert!(now.contains(&received));
        assert_eq!(w.edge.superseded_sessions(), 1);
        let ends: Vec<_> = w.edge.sessions().into_iter().map(|r| r.end).collect();
        assert_eq!(ends, [Some(SessionEnd::Superseded), Some(SessionEnd::Quit)]);
        all_quit_no_locks(&w.mail, u64::MAX / 2);
    });
}

#[test]
fn a_session_named_lost_is_ended_and_the_mailbox_opens_at_once_direct() {
    superseded(alice_direct);
}

#[test]
fn a_session_named_lost_is_ended_and_the_mailbox_opens_at_once_via_relay() {
    superseded(alice_via_relay);
}

/// Without the name, the old session holds the lock until `client_idle`:
/// what the mechanism is for.
#[test]
fn without_naming_it_the_lost_session_keeps_the_mailbox_locked() {
    come_back_after_a_cut(alice_direct, false, |w, listing, _| {
        match listing.state {
            ListingState::Unavailable { error } => {
                assert_eq!(error.code, Some(ErrCode::InUse), "{error}")
            }
            s => panic!("{s:?}"),
        }
        assert_eq!(w.edge.superseded_sessions(), 0);
        let ends: Vec<_> = w.edge.sessions().into_iter().map(|r| r.end).collect();
        assert!(matches!(ends[0], Some(SessionEnd::LineCut(_))), "{ends:?}");
    });
}

/// A cut took the `Welcome` (seeds 23222, 24770 and 25563): the client
/// proxy never learnt the session's id, yet the edge opened it, and it
/// holds the maildrop until the edge gives up on its silent line. Named by
/// its `Hello`'s nonce, it is ended like any lost session, and the next
/// session opens at once; unnamed, the next one meets `[IN-USE]`.
fn a_welcome_lost_in_a_cut(name_it: bool) -> ListingState {
    let mut w = resumable();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    let (mail, edge) = (w.mail.clone(), w.edge.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let nonce = a.hello_unanswered(vec![alice_direct()]).await;
        let env = a.env.clone();
        wait_until(&env, Duration::from_secs(30), "the session opens", || {
            edge.live_sessions() == 1
        })
        .await;
        turmoil::partition("client", "edge");
        drop(a);
        env.sleep(Duration::from_secs(5)).await;
        turmoil::repair("client", "edge");

        let back_at = env.now();
        let mut b = Client::connect(&k, &ek).await?;
        let named = if name_it { vec![nonce] } else { Vec::new() };
        let (_, listing) = open(&mut b, alice_direct(), named).await;
        let waited = env.now() - back_at;
        assert!(waited < Duration::from_secs(30), "opened after {waited:?}");
        if matches!(listing.state, ListingState::Ready { .. }) {
            b.quit().await;
        }
        wait_until(&env, Duration::from_secs(900), "every session ends", || {
            edge.live_sessions() == 0
        })
        .await;
        all_quit_no_locks(&mail, env.unix_millis());
        assert_eq!(edge.superseded_sessions(), usize::from(name_it));
        tx.send(listing.state).unwrap();
        Ok(())
    });
    w.sim.run().unwrap();
    rx.recv().unwrap()
}

#[test]
fn a_session_whose_welcome_a_cut_took_is_named_by_its_hellos_nonce() {
    let state = a_welcome_lost_in_a_cut(true);
    assert!(matches!(state, ListingState::Ready { .. }), "{state:?}");
}

/// What naming it is for.
#[test]
fn unnamed_the_session_whose_welcome_a_cut_took_keeps_the_mailbox_locked() {
    match a_welcome_lost_in_a_cut(false) {
        ListingState::Unavailable { error } => {
            assert_eq!(error.code, Some(ErrCode::InUse), "{error}")
        }
        s => panic!("{s:?}"),
    }
}

/// With resume on, a session whose line died waits detached for its
/// client proxy, holding the maildrop; a client proxy that restarted
/// cannot resume it (it forgot the secret), so its first `Hello` says
/// `restarted`, and the edge ends every earlier session of that key at
/// once: the delete the old session acknowledged is committed, and the new
/// session opens without `[IN-USE]` and without the deleted message.
#[test]
fn a_restarted_client_proxy_ends_its_sessions_waiting_for_a_resume() {
    let mut w = resumable();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    let (mail, edge) = (w.mail.clone(), w.edge.clone());
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let (_, listing) = open(&mut a, alice_direct(), Vec::new()).await;
        let u = uidls(&listing);
        a.dele("HOST1", &u[1]).await;
        let env = a.env.clone();
        drop(a); // the proxy dies with its line
        env.sleep(Duration::from_secs(30)).await;
        assert_eq!(edge.live_sessions(), 1, "the session waits for a resume");
        assert!(
            mail.is_present("alice", &u[1]),
            "not committed while it waits"
        );

        let restarted_at = env.now();
        let mut b = Client::connect(&k, &ek).await?;
        let listing = match b.hello_restarted(vec![alice_direct()]).await {
            Ok(EdgeToClient::Welcome { mut servers, .. }) => servers.remove(0),
            other => panic!("expected Welcome, got {other:?}"),
        };
        let waited = env.now() - restarted_at;
        assert!(waited < Duration::from_secs(30), "opened after {waited:?}");
        assert!(!mail.is_present("alice", &u[1]), "the delete was committed");
        let shown = uidls(&listing);
        assert!(!shown.contains(&u[1]) && shown.contains(&u[0]), "{shown:?}");
        b.quit().await;
        wait_until(&env, Duration::from_secs(30), "every session ends", || {
            edge.live_sessions() == 0
        })
        .await;
        all_quit_no_locks(&mail, env.unix_millis());
        Ok(())
    });
    w.sim.run().unwrap();
}

/// `Resumed` lost in a second cut: the edge rotated the session's secret
/// when it sent it, but the client proxy only holds the one it proved. The
/// edge takes that one again until the proxy speaks on the channel
/// `Resumed` went out on (which shows it has the new secret); then only
/// the new one.
#[test]
fn a_resume_whose_answer_was_lost_is_taken_again_with_the_secret_it_proved() {
    let mut w = resumable();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let session = match a.hello(vec![alice_direct()]).await {
            Ok(EdgeToClient::Welcome { session, .. }) => session,
            other => panic!("expected Welcome, got {other:?}"),
        };
        a.ping(1).await; // heard after Welcome: resumable
        let first = a.secret.clone().expect("a Ticket");
        drop(a);

        // Resumed comes, and is "lost": this channel dies unused.
        let mut b = Client::connect(&k, &ek).await?;
        match b.resume(&session, &first).await {
            Ok(EdgeToClient::Resumed { .. }) => {}
            other => panic!("expected Resumed, got {other:?}"),
        }
        drop(b);

        let mut c = Client::connect(&k, &ek).await?;
        match c.resume(&session, &first).await {
            Ok(EdgeToClient::Resumed { .. }) => {}
            other => panic!("the secret the proxy holds was refused: {other:?}"),
        }
        c.ping(2).await; // the proxy has the new secret now
        let latest = c.secret.clone().expect("Resumed's secret");
        drop(c);

        let mut d = Client::connect(&k, &ek).await?;
        assert!(
            matches!(
                d.resume(&session, &first).await,
                Ok(EdgeToClient::Refused { .. })
            ),
            "an old secret after the proxy showed it had the new one"
        );
        let mut e = Client::connect(&k, &ek).await?;
        match e.resume(&session, &latest).await {
            Ok(EdgeToClient::Resumed { .. }) => {}
            other => panic!("expected Resumed, got {other:?}"),
        }
        e.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A session stuck writing to a client proxy that stopped reading it (the
/// proxy moved on to a new session and left the old connection open) ends
/// the moment the new session names it: it QUITs its servers at once, not
/// when its write's progress deadline runs out, so the new session does not
/// meet `[IN-USE]` (seed 197780385: a clean session refused for 30 s).
/// Here the old session's answers to `Ping`s fill the socket, as a body's
/// chunks did there.
#[test]
fn a_superseded_session_stuck_writing_lets_its_servers_go_at_once() {
    let mut w = resumable();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    let (mail, edge) = (w.mail.clone(), w.edge.clone());
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let (lost, _) = open(&mut a, alice_direct(), Vec::new()).await;
        // `a` asks, reads no answer, and stays open: the edge's `Pong`s
        // fill the socket and its next write waits.
        for nonce in 0..90 {
            a.send(&ClientToEdge::Ping { nonce }).await;
        }
        let env = a.env.clone();
        env.sleep(Duration::from_secs(5)).await;

        let asked_at = env.now();
        let mut b = Client::connect(&k, &ek).await?;
        let (_, listing) = open(&mut b, alice_direct(), vec![lost]).await;
        let waited = env.now() - asked_at;
        assert!(
            matches!(listing.state, ListingState::Ready { .. }),
            "{listing:?}"
        );
        assert!(waited < Duration::from_secs(5), "opened after {waited:?}");
        b.quit().await;
        wait_until(&env, Duration::from_secs(60), "sessions to end", || {
            edge.live_sessions() == 0
        })
        .await;
        all_quit_no_locks(&mail, env.unix_millis());
        drop(a);
        Ok(())
    });
    w.sim.run().unwrap();
    let ends: Vec<_> = w.edge.sessions().into_iter().map(|r| r.end).collect();
    assert_eq!(ends, [Some(SessionEnd::Superseded), Some(SessionEnd::Quit)]);
}

/// A message of about `n` octets, its lines filled with `fill`.
fn sized(n: usize, fill: char) -> Vec<u8> {
    let mut m = format!("Subject: {fill}\r\n\r\n").into_bytes();
    let line = format!("{}\r\n", fill.to_string().repeat(70));
    while m.len() < n {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

/// A body the edge sent whole just before a cut, of which the client proxy
/// holds only the start, goes first again on resume, from the byte held:
/// it came before everything still queued, and a mail client may be
/// reading it. Left to the prefetch it went behind the bodies still
/// queued (seed 273611434: behind megabytes, on a line cut every minute,
/// the mail client reading it heard nothing for 300 s).
#[test]
fn a_body_sent_whole_and_lost_in_a_cut_goes_first_again() {
    let mut w = resumable();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    let names: Vec<String> = ['a', 'b', 'c']
        .into_iter()
        .map(|f| {
            w.mail
                .deliver("alice", sized(40_000, f))
                .unwrap()
                .as_str()
                .to_owned()
        })
        .collect();
    w.sim.client("client", async move {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut c = Client::connect(&k, &ek).await?;
        let (session, _) = open(&mut c, alice_direct(), Vec::new()).await;
        c.ping(1).await; // heard after Welcome: resumable
        c.want("HOST1", &names).await;
        // One chunk of the first body read; then nothing is read or
        // acknowledged, and the edge sends what its first window allows
        // (64 KiB): the rest of the first body and part of the second.
        assert_eq!(c.next_chunk().await, (names[0].to_owned(), 0));
        c.env.sleep(Duration::from_secs(5)).await;
        let held = c.held("HOST1", names[0]);
        assert!(held > 0 && held < 40_000, "{held}");
        c.reconnect(&k, &ek).await?;
        match c.resume_holding(&session, "HOST1", &names).await {
            Ok(EdgeToClient::Resumed { .. }) => {}
            other => panic!("expected Resumed, got {other:?}"),
        }
        assert_eq!(
            c.next_chunk().await,
            (names[0].to_owned(), held),
            "the body the cut lost part of continues first"
        );
        Ok(())
    });
    w.sim.run().unwrap();
}
