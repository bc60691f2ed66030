//! The client proxy with a delete journal, against a scripted edge: DELE
//! answered once the journal holds it, deletes sent in batches ahead of the
//! next request or Quit, erased only when the edge says `Held` (or the
//! server committed, or the user's RSET was done), carried by the next
//! session after a cut, and by the proxy itself when no mail client comes.

mod support;

use causeway_store::{JournalConfig, JournalKey, SimDisk};
use support::*;

async fn journaled(disk: &SimDisk) -> Rig {
    let off = Prefetch {
        enabled: false,
        ..Prefetch::default()
    };
    let journal = JournalConfig::new(disk.clone(), JournalKey::from_bytes([3; 32]));
    rig_journaled(Timeouts::default(), off, Some(journal)).await
}

fn ok(n: &str) -> ServerOutcome {
    ServerOutcome {
        name: n.into(),
        result: Ok(()),
    }
}

async fn bye(edge: &mut SecureChannel<Stream>) {
    let servers = vec![ok("HOST1"), ok("HOST2")];
    send(edge, EdgeToClient::Bye { servers }).await;
}

/// The `Deletes` batch the proxy sends next.
async fn deletes(edge: &mut SecureChannel<Stream>) -> Vec<DeleteOp> {
    match recv(edge).await {
        ClientToEdge::Deletes { ops } => ops
            .into_iter()
            .map(|op| DeleteOp {
                msg: at_place(&op.server, op.at),
                seq: op.seq,
                server: op.server,
                witness: None,
            })
            .collect(),
        other => panic!("expected Deletes, got {other:?}"),
    }
}

#[tokio::test]
async fn dele_costs_no_turn_and_the_batch_goes_before_quit() {
    let disk = SimDisk::new();
    let mut rig = journaled(&disk).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    // Answered by the proxy: the edge hears nothing yet.
    assert_eq!(pop.cmd("DELE 1").await, "+OK Marked to be deleted.");
    assert_eq!(pop.cmd("DELE 3").await, "+OK Marked to be deleted.");
    assert_eq!(pop.cmd("DELE 1").await, "-ERR Message is deleted.");
    assert_eq!(pop.cmd("STAT").await, "+OK 1 20");
    assert_eq!(disk.len(), 2, "durable before +OK");

    pop.s.write_all(b"QUIT\r\n").await.unwrap();
    let ops = deletes(&mut edge).await;
    let named: Vec<(&str, &str)> = ops
        .iter()
        .map(|o| (o.server.as_str(), o.msg.uidl.as_str()))
        .collect();
    assert_eq!(named, [("HOST1", "a"), ("HOST2", "c")]);
    assert_eq!(recv(&mut edge).await, ClientToEdge::Quit);
    // The edge holds the first; the second is erased by the Bye.
    send(
        &mut edge,
        EdgeToClient::Held {
            seqs: vec![ops[0].seq],
        },
    )
    .await;
    bye(&mut edge).await;
    assert_eq!(pop.line().await, "+OK Logging out, messages deleted.");
    pop.closed().await;
    assert_eq!(disk.len(), 0);
}

#[tokio::test]
async fn a_batch_a_cut_kept_from_the_edge_is_carried_by_the_next_session() {
    let disk = SimDisk::new();
    let mut rig = journaled(&disk).await;
    let (mut pop, edge) = rig.logged_in().await;
    assert_eq!(pop.cmd("DELE 2").await, "+OK Marked to be deleted.");
    // The line dies before the batch went.
    drop(edge);
    assert!(pop.cmd("NOOP").await.starts_with("-ERR"));
    pop.closed().await;
    assert_eq!(disk.len(), 1, "kept");

    let (mut pop, mut edge) = rig.logged_in().await;
    let carried: Vec<&str> = rig.carried.iter().map(|d| d.msg.uidl.as_str()).collect();
    assert_eq!(carried, ["b"]);
    let seq = rig.carried[0].seq;
    send(&mut edge, EdgeToClient::Held { seqs: vec![seq] }).await;
    assert_eq!(pop.cmd("NOOP").await, "+OK");
    // Held is taken in while the mail client is idle: the entry is gone.
    for _ in 0..50 {
        if disk.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(disk.len(), 0);
}

#[tokio::test]
async fn rset_goes_after_the_batch_and_erases_what_it_undid() {
    let disk = SimDisk::new();
    let mut rig = journaled(&disk).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    assert_eq!(pop.cmd("DELE 1").await, "+OK Marked to be deleted.");
    pop.s.write_all(b"RSET\r\n").await.unwrap();
    assert_eq!(deletes(&mut edge).await.len(), 1);
    let ClientToEdge::Request { id, server, op } = recv(&mut edge).await else {
        panic!("expected RSET")
    };
    assert_eq!((server.as_str(), op), ("HOST1", Op::Rset));
    let done = EdgeToClient::Response {
        id,
        result: Ok(Reply::Done),
    };
    send(&mut edge, done).await;
    assert_eq!(pop.line().await, "+OK");
    assert_eq!(disk.len(), 0, "undone, so not owed");
    assert_eq!(pop.cmd("STAT").await, "+OK 3 35");
}

#[tokio::test]
async fn the_proxy_carries_left_deletes_itself_when_no_mail_client_comes() {
    let disk = SimDisk::new();
    let mut rig = journaled(&disk).await;
    let (mut pop, mut edge) = rig.logged_in().await;
    assert_eq!(pop.cmd("DELE 3").await, "+OK Marked to be deleted.");
    // The mail client hangs up without QUIT: the session ends, the delete
    // still in the journal.
    drop(pop);
    assert!(matches!(
        edge.recv::<ClientToEdge>().await,
        Ok(Received::Closed { .. })
    ));
    // After CARRY_PAUSE the proxy opens a session of its own, for HOST2
    // only, carrying the delete, and quits at once.
    let mut ch = tokio::time::timeout(causeway_client::CARRY_PAUSE * 3, rig.handshake())
        .await
        .expect("the proxy to come back by itself");
    rig.hello(&mut ch).await;
    assert_eq!(rig.servers, ["HOST2"]);
    let carried: Vec<&str> = rig.carried.iter().map(|d| d.msg.uidl.as_str()).collect();
    assert_eq!(carried, ["c"]);
    welcome(&mut ch).await;
    assert_eq!(recv(&mut ch).await, ClientToEdge::Quit);
    send(
        &mut ch,
        EdgeToClient::Bye {
            servers: vec![ok("HOST2")],
        },
    )
    .await;
    for _ in 0..50 {
        if disk.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(disk.len(), 0, "committed by its server");
}
