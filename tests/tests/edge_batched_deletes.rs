//! The edge's side of deletes the client proxy acknowledged from its own
//! journal: a `Deletes` batch is owed like a `Dele` request and answered
//! `Held` for what the edge's journal recorded (nothing, without a
//! journal); deletes carried in `Hello` are owed from the start, left out
//! of the listing, and not undone by the new session's RSET.

use causeway_edge::SimDisk;
use causeway_mailserver::{MailStore, ServerConfig};
use causeway_net::Env;
use causeway_proto::session::{
    ClientToEdge, DeleteOp, EdgeToClient, ListEntry, ListingState, Op, Reply,
};
use causeway_proto::user::Route;
use causeway_tests::edge_world::*;
use causeway_wire::Keypair;

fn op(c: &Client, seq: u64, uidl: &str) -> DeleteOp {
    DeleteOp {
        seq,
        server: "HOST1".into(),
        msg: c.msg("HOST1", uidl),
        witness: None,
    }
}

/// A world whose edge keeps a journal on a simulated disk: the world,
/// the client's and the edge's keys, the mail store and the disk.
fn journaled() -> (World, Keypair, Keypair, MailStore, SimDisk) {
    let disk = SimDisk::new();
    let w = world_journaled(ServerConfig::default(), &disk, |_| {});
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    (w, k, ek, mail, disk)
}

/// The messages of alice's maildrop listed by `uidl`, not deleted.
fn live_copies(mail: &MailStore, uidl: &str) -> usize {
    mail.messages("alice")
        .into_iter()
        .filter(|m| m.uidl.as_str() == uidl && m.deleted_at_ms.is_none())
        .count()
}

/// A first session lists the maildrop and ends; `between` runs with the
/// server's UIDLs; a second session's `Hello` carries a delete of the
/// first message (seq 3). Returns that session, the UIDLs and its listing.
async fn carrying_the_first(
    k: &Keypair,
    ek: &Keypair,
    between: impl FnOnce(&[String]) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(Client, Vec<String>, Vec<ListEntry>), Box<dyn std::error::Error>> {
    let mut first = Client::connect(k, ek).await?;
    let u = uidls(&first.welcome(vec![alice_direct()]).await[0]);
    let carried = vec![op(&first, 3, &u[0])];
    first.quit().await;
    between(&u)?;
    let mut c = Client::connect(k, ek).await?;
    let Ok(EdgeToClient::Welcome { servers, .. }) =
        c.hello_carrying(vec![alice_direct()], carried).await
    else {
        panic!("expected Welcome")
    };
    let ListingState::Ready { messages } = &servers[0].state else {
        panic!("{servers:?}")
    };
    Ok((c, u, messages.clone()))
}

#[test]
fn a_batch_is_held_once_journaled_and_done_at_quit() {
    let (mut w, k, ek, mail, d) = journaled();
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let ops = vec![op(&c, 7, &u[0]), op(&c, 8, &u[1])];
        let ops = c.placed(ops);
        c.send(&ClientToEdge::Deletes { ops }).await;
        assert_eq!(c.recv().await?, EdgeToClient::Held { seqs: vec![7, 8] });
        assert_eq!(causeway_edge::journal::owed_entries(&d.durable()), 2);
        // The replica knows: a RETR of a deleted message is refused.
        let (_, r) = c
            .request(
                "HOST1",
                Op::Retr {
                    msg: c.msg("HOST1", &u[0]),
                },
            )
            .await;
        assert!(r.is_err(), "{r:?}");
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        assert!(!mail.is_present("alice", &u[0]) && !mail.is_present("alice", &u[1]));
        assert!(mail.is_present("alice", &u[2]));
        assert_eq!(causeway_edge::journal::owed_entries(&d.durable()), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn without_a_journal_nothing_is_held_and_the_deletes_are_still_done() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        let ops = vec![op(&c, 1, &u[0])];
        let ops = c.placed(ops);
        c.send(&ClientToEdge::Deletes { ops }).await;
        // The next thing the edge says is the Pong: no Held.
        c.ping(5).await;
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        assert!(!mail.is_present("alice", &u[0]));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn carried_deletes_are_owed_from_the_start_and_rset_leaves_them() {
    let disk = SimDisk::new();
    let mut w = world_journaled(ServerConfig::default(), &disk, |_| {});
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let (mut c, u, messages) = carrying_the_first(&k, &ek, |_| Ok(())).await?;
        assert!(
            messages.iter().all(|m| m.uidl != u[0]),
            "hidden from the listing"
        );
        assert_eq!(c.recv().await?, EdgeToClient::Held { seqs: vec![3] });
        c.dele("HOST1", &u[1]).await;
        let (_, r) = c.request("HOST1", Op::Rset).await;
        assert_eq!(r, Ok(Reply::Done));
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        assert!(!mail.is_present("alice", &u[0]), "carried: done");
        assert!(mail.is_present("alice", &u[1]), "undone by RSET");
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_hello_carrying_a_delete_for_a_server_it_does_not_name_is_refused() {
    let mut w = world(ServerConfig::default());
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let stray = DeleteOp {
            seq: 1,
            server: "ELSEWHERE".into(),
            msg: c.msg("ELSEWHERE", "x"),
            witness: None,
        };
        let answer = c.hello_carrying(vec![alice_direct()], vec![stray]).await;
        let Ok(EdgeToClient::Refused { error }) = answer else {
            panic!("{answer:?}")
        };
        assert!(error.text.contains("ELSEWHERE"), "{error}");
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A batch the edge held, whose `Held` a cut lost: the client proxy
/// carries it in the Hello that supersedes the lost session, and the edge
/// answers `Held` without taking it again. Taken twice, the delete would
/// hit the exact copy of the message a broken migration delivered
/// meanwhile (same UIDL, same size), once the lost session's QUIT removed
/// the original.
#[test]
fn a_carried_delete_the_superseded_session_held_is_not_taken_again() {
    let disk = SimDisk::new();
    let mut w = world_journaled(exclusive(), &disk, |_| {});
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut a = Client::connect(&k, &ek).await?;
        let Ok(EdgeToClient::Welcome { session, servers }) = a.hello(vec![alice_direct()]).await
        else {
            panic!("expected Welcome")
        };
        let u = uidls(&servers[0]);
        let deleted = op(&a, 7, &u[0]);
        let ops = a.placed(vec![deleted.clone()]);
        a.send(&ClientToEdge::Deletes { ops }).await;
        assert_eq!(a.recv().await?, EdgeToClient::Held { seqs: vec![7] });
        // The cut: the client proxy never heard that Held.
        turmoil::partition("client", "edge");
        a.env.sleep(std::time::Duration::from_secs(5)).await;
        turmoil::repair("client", "edge");
        let body = mail.body("alice", &u[0]).expect("delivered");
        mail.deliver_with_uidl("alice", &body, &u[0], None)?;

        let mut b = Client::connect(&k, &ek).await?;
        let answer = b
            .hello_after_cut(vec![alice_direct()], vec![session], vec![deleted])
            .await;
        assert!(
            matches!(answer, Ok(EdgeToClient::Welcome { .. })),
            "{answer:?}"
        );
        assert_eq!(b.recv().await?, EdgeToClient::Held { seqs: vec![7] });
        assert!(b.quit().await.iter().all(|o| o.result.is_ok()));
        let copies = mail
            .messages("alice")
            .into_iter()
            .filter(|m| m.uidl.as_str() == u[0] && m.deleted_at_ms.is_none())
            .count();
        assert_eq!(
            copies,
            1,
            "the original went, its copy stays: {}",
            mail.report()
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A carried delete is left out of the listing only when its UIDL is
/// listed once: the client proxy names a UIDL listed twice by UIDL and
/// size, so leaving out one of two would show the other by its bare UIDL,
/// a name a mail client could already keep for the message deleted.
#[test]
fn a_carried_delete_sharing_its_uidl_stays_listed_and_is_still_done() {
    let disk = SimDisk::new();
    let mut w = world_journaled(ServerConfig::default(), &disk, |_| {});
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    let other = b"Subject: not the same\r\n\r\nother\r\n";
    let copy = mail.clone();
    w.sim.client("client", async move {
        let (mut c, u, messages) = carrying_the_first(&k, &ek, |u| {
            copy.deliver_with_uidl("alice", other, &u[0], None)?;
            Ok(())
        })
        .await?;
        assert_eq!(
            messages.iter().filter(|m| m.uidl == u[0]).count(),
            2,
            "both listed, so each keeps its name: {messages:?}"
        );
        assert_eq!(c.recv().await?, EdgeToClient::Held { seqs: vec![3] });
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        let left: Vec<usize> = mail
            .messages("alice")
            .into_iter()
            .filter(|m| m.uidl.as_str() == u[0] && m.deleted_at_ms.is_none())
            .map(|m| m.size)
            .collect();
        assert_eq!(
            left,
            vec![other.len()],
            "the carried delete done, the other kept: {}",
            mail.report()
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A client proxy that restarted forgets which of its deletes were done
/// (a settled entry its disk would not erase) and carries one again, after
/// an exact copy of the message arrived (same UIDL, same size): the copy
/// is listed after the witness the proxy's journal kept, so it is not the
/// message deleted, and it stays.
#[test]
fn a_delete_carried_again_with_its_witness_leaves_a_later_copy_alone() {
    let disk = SimDisk::new();
    let mut w = world_journaled(ServerConfig::default(), &disk, |_| {});
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut first = Client::connect(&k, &ek).await?;
        let u = uidls(&first.welcome(vec![alice_direct()]).await[0]);
        let body = mail.body("alice", &u[0]).expect("delivered");
        let msg = first.msg("HOST1", &u[0]);
        let (_, r) = first.request("HOST1", Op::Dele { msg }).await;
        assert_eq!(r, Ok(Reply::Done));
        assert!(first.quit().await.iter().all(|o| o.result.is_ok()));
        mail.deliver_with_uidl("alice", &body, &u[0], None)?;
        let carried = DeleteOp {
            witness: Some(first.msg("HOST1", &u[1])),
            ..op(&first, 3, &u[0])
        };
        let mut c = Client::connect(&k, &ek).await?;
        let answer = c.hello_carrying(vec![alice_direct()], vec![carried]).await;
        assert!(
            matches!(answer, Ok(EdgeToClient::Welcome { .. })),
            "{answer:?}"
        );
        assert_eq!(c.recv().await?, EdgeToClient::Held { seqs: vec![3] });
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        assert_eq!(
            live_copies(&mail, &u[0]),
            1,
            "the copy stays: {}",
            mail.report()
        );
        Ok(())
    });
    w.sim.run().unwrap();
}

/// Seed 72540: the client proxy crashed after its batch and `Quit` went
/// out but before `Held` came back; the session committed the delete and
/// ended. A later copy of the message came (same UIDL and size), and the
/// restarted proxy carried the delete again, with no witness (the message
/// was listed last). The edge remembers the number it took: it answers
/// `Held` and leaves the copy alone.
#[test]
fn a_delete_carried_again_after_its_session_committed_it_is_held_not_done_twice() {
    let (mut w, k, ek, mail, d) = journaled();
    w.sim.client("client", async move {
        let mut first = Client::connect(&k, &ek).await?;
        let u = uidls(&first.welcome(vec![alice_direct()]).await[0]);
        let last = u.last().expect("listed").clone();
        let body = mail.body("alice", &last).expect("delivered");
        let batch = first.placed(vec![op(&first, 9, &last)]);
        first.send(&ClientToEdge::Deletes { ops: batch }).await;
        assert_eq!(first.recv().await?, EdgeToClient::Held { seqs: vec![9] });
        assert!(first.quit().await.iter().all(|o| o.result.is_ok()));
        assert!(!mail.is_present("alice", &last), "committed");
        mail.deliver_with_uidl("alice", &body, &last, None)?;
        let mut c = Client::connect(&k, &ek).await?;
        let carried = vec![op(&first, 9, &last)];
        let answer = c.hello_carrying(vec![alice_direct()], carried).await;
        let Ok(EdgeToClient::Welcome { servers, .. }) = answer else {
            panic!("{answer:?}")
        };
        let ListingState::Ready { messages } = &servers[0].state else {
            panic!("{servers:?}")
        };
        assert!(
            messages.iter().any(|m| m.uidl == last),
            "the copy is listed"
        );
        assert_eq!(c.recv().await?, EdgeToClient::Held { seqs: vec![9] });
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        assert_eq!(
            live_copies(&mail, &last),
            1,
            "the copy stays: {}",
            mail.report()
        );
        assert_eq!(causeway_edge::journal::owed_entries(&d.durable()), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}

/// A delete one session owes is left out of the listing of another
/// session of the same maildrop until it is committed (two mail clients,
/// or Thunderbird's two connections, on a server that does not lock):
/// else the second would be shown the message again, as if never deleted.
#[test]
fn a_delete_one_session_owes_is_left_out_of_another_sessions_listing() {
    let mut w = world(ServerConfig::default());
    let (k, ek, mail) = (w.keys.client.clone(), w.keys.edge.clone(), w.mail.clone());
    w.sim.client("client", async move {
        let mut first = Client::connect(&k, &ek).await?;
        let u = uidls(&first.welcome(vec![alice_imap(Route::Direct)]).await[0]);
        first.dele("HOST1", &u[0]).await;
        let mut second = Client::connect(&k, &ek).await?;
        let listed = uidls(&second.welcome(vec![alice_imap(Route::Direct)]).await[0]);
        assert_eq!(listed, u[1..], "owed by the first session: left out");
        assert!(mail.is_present("alice", &u[0]), "not committed yet");
        assert!(first.quit().await.iter().all(|o| o.result.is_ok()));
        assert!(!mail.is_present("alice", &u[0]));
        assert!(second.quit().await.iter().all(|o| o.result.is_ok()));
        // Committed and withdrawn: a third session lists what is there.
        let mut third = Client::connect(&k, &ek).await?;
        let listed = uidls(&third.welcome(vec![alice_imap(Route::Direct)]).await[0]);
        assert_eq!(listed, u[1..]);
        third.quit().await;
        Ok(())
    });
    w.sim.run().unwrap();
}
