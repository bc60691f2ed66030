//! The edge holds a compression context only while it sends: a bulk-level
//! frame ends as soon as the stream of wanted bodies drained, any frame
//! after a quiet spell; either end frees the context at the edge and the window at the
//! client proxy, and the next message that needs one opens a new frame.

use std::time::Duration;

use causeway_mailserver::ServerConfig;
use causeway_net::Env;
use causeway_proto::session::{ClientToEdge, Op, Reply, WantedAt};
use causeway_tests::edge_world::*;

/// These tests are about the streaming frame: the edge sends even its
/// first units into it (in production they are whole frames of their own,
/// `ChannelConfig::first_whole`).
fn streaming_from_the_start() -> World {
    world_with(ServerConfig::default(), |c| c.channel.first_whole = 0)
}

#[test]
fn contexts_are_held_only_while_data_flows() {
    let mut w = streaming_from_the_start();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        // A line not measured yet is taken to be slow: a wanted body goes
        // at the bulk level, and that frame ends once the stream drained.
        // `u` is the listing in order: u[0] is at place 0.
        let bodies = vec![WantedAt { at: 0, from: 0 }];
        c.send(&ClientToEdge::Want {
            server: "HOST1".into(),
            bodies,
        })
        .await;
        let (d, _) = c.retr("HOST1", &u[0]).await;
        c.delivered(d).await;
        c.ping(1).await;
        assert!(
            !c.edge_compressing(),
            "the bulk frame ended with the stream"
        );
        // A head opens a frame at the fast level, kept while answers come.
        let top = Op::Top {
            msg: c.msg("HOST1", &u[1]),
            lines: 0,
        };
        let (_, head) = c.request("HOST1", top).await;
        assert!(
            matches!(head, Ok(Reply::Body(ref h)) if h.len() > 96),
            "{head:?}"
        );
        assert!(c.edge_compressing(), "the head opened a frame");
        c.ping(2).await;
        assert!(c.edge_compressing(), "nothing was quiet yet");
        // Quiet for 3 s: the frame ends before the Pong.
        c.env.sleep(Duration::from_secs(3)).await;
        c.ping(3).await;
        assert!(!c.edge_compressing(), "3 s quiet: the frame ended");
        // The next body opens a new frame, and decodes.
        let (d, body) = c.retr("HOST1", &u[1]).await;
        assert!(!body.is_empty());
        c.delivered(d).await;
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn bodies_sent_only_as_answers_keep_their_frame() {
    let mut w = streaming_from_the_start();
    let (k, ek) = (w.keys.client.clone(), w.keys.edge.clone());
    w.sim.client("client", async move {
        let mut c = Client::connect(&k, &ek).await?;
        let u = uidls(&c.welcome(vec![alice_direct()]).await[0]);
        // No `Want` (prefetch off): each body is an answer, and a frame per
        // body would lose the history between them.
        for uidl in &u[..2] {
            let (d, _) = c.retr("HOST1", uidl).await;
            c.delivered(d).await;
            c.ping(1).await;
            assert!(c.edge_compressing(), "the frame outlived {uidl}'s answer");
        }
        assert!(c.quit().await.iter().all(|o| o.result.is_ok()));
        Ok(())
    });
    w.sim.run().unwrap();
}
