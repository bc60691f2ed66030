//! The relay alone, driven by a fake edge speaking `causeway_proto::relay`:
//! it opens only allowed servers, passes only transaction commands, accepts
//! any allowed edge key and no other, and QUITs its server session however
//! the link ends.

use std::sync::Arc;
use std::time::Duration;

use causeway_mailserver::{EndKind, MailStore, ServerConfig, serve};
use causeway_net::{Env, EnvRng, SimEnv, derive_seed};
use causeway_proto::relay::{EdgeToRelay, RelayToEdge};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_proto::{ErrCode, PROTOCOL_VERSION, Secret};
use causeway_relay::{RelayConfig, RelayState, run_relay};
use causeway_wire::{ChannelConfig, Compress, Keypair, Received, SecureChannel, connect_kk};
use tokio::sync::watch;

const SEED: u64 = 11;

struct World {
    sim: turmoil::Sim<'static>,
    store: MailStore,
    state: RelayState,
    edges: [Keypair; 2],
    relay: Keypair,
}

fn world() -> World {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(600))
        .rng_seed(SEED)
        .build();
    let rng = EnvRng::from_seed(derive_seed(SEED, &[b"keys"]));
    let edges = [Keypair::generate(&rng), Keypair::generate(&rng)];
    let relay = Keypair::generate(&rng);
    let store = MailStore::new();
    store.add_user("alice", "pw");
    store
        .deliver("alice", "Subject: a\r\n\r\nhello\r\n")
        .unwrap();
    let s = store.clone();
    sim.host("mail", move || {
        let s = s.clone();
        async move {
            let env = SimEnv::new(SEED, "mail", 0);
            let l = env.bind("0.0.0.0:110").await?;
            serve(env, l, s, ServerConfig::default()).await?;
            Ok(())
        }
    });
    let mut cfg = RelayConfig::new(relay.clone());
    cfg.allowed_edges = vec![edges[0].public, edges[1].public];
    cfg.allowed_servers = vec!["mail:110".into()];
    cfg.timeouts.link_idle = Duration::from_secs(20);
    let cfg = Arc::new(cfg);
    let state = RelayState::new();
    let st = state.clone();
    sim.host("relay", move || {
        let (cfg, st) = (cfg.clone(), st.clone());
        async move {
            let env = SimEnv::new(SEED, "relay", 0);
            let l = env.bind("0.0.0.0:4000").await?;
            let (_keep, rx) = watch::channel(false);
            run_relay(env, l, cfg, st, rx).await?;
            Ok(())
        }
    });
    World {
        sim,
        store,
        state,
        edges,
        relay,
    }
}

fn spec(host: &str) -> ServerSpec {
    ServerSpec {
        name: "H".into(),
        protocol: Protocol::Pop3,
        host: host.into(),
        port: 110,
        tls: TlsMode::None,
        user: "alice".into(),
        password: Secret::new(b"pw".to_vec()),
        route: Route::Relay("R".into()),
        folder: causeway_proto::user::INBOX.into(),
    }
}

type Link = SecureChannel<<SimEnv as Env>::Stream>;

async fn link(
    env: &SimEnv,
    me: &Keypair,
    relay: &Keypair,
) -> Result<Link, causeway_wire::WireError> {
    let s = env.connect("relay:4000").await?;
    connect_kk(env, s, me, &relay.public, &ChannelConfig::default()).await
}

async fn ask(l: &mut Link, msg: EdgeToRelay) -> RelayToEdge {
    let c = if matches!(msg, EdgeToRelay::Open { .. }) {
        Compress::Never
    } else {
        Compress::Yes
    };
    l.send(&msg, c).await.unwrap();
    match l.recv().await.unwrap() {
        Received::Msg(m) => m,
        Received::Closed { reason } => panic!("closed: {reason}"),
    }
}

fn open(host: &str) -> EdgeToRelay {
    EdgeToRelay::Open {
        version: PROTOCOL_VERSION,
        server: spec(host),
    }
}

#[test]
fn serves_any_allowed_edge_and_only_transaction_commands() {
    let mut w = world();
    let (edges, relay, store, state) = (
        w.edges.clone(),
        w.relay.clone(),
        w.store.clone(),
        w.state.clone(),
    );
    w.sim.client("edge", async move {
        let env = SimEnv::new(SEED, "edge", 0);
        // The second allowed key works as well as the first.
        let mut l = link(&env, &edges[1], &relay).await?;
        assert!(matches!(
            ask(&mut l, open("mail")).await,
            RelayToEdge::Opened { .. }
        ));
        assert_eq!((state.live_links(), state.live_server_sessions()), (1, 1));
        let r = ask(
            &mut l,
            EdgeToRelay::Command {
                id: 1,
                line: b"USER mallory".to_vec(),
            },
        )
        .await;
        assert!(
            matches!(&r, RelayToEdge::Reply { id: 1, status, .. } if status.starts_with(b"-ERR")),
            "{r:?}"
        );
        let r = ask(
            &mut l,
            EdgeToRelay::Command {
                id: 2,
                line: b"TOP 1 100000000".to_vec(),
            },
        )
        .await;
        let RelayToEdge::Reply {
            id: 2,
            status,
            body: Some(body),
        } = r
        else {
            panic!("{r:?}")
        };
        assert!(status.starts_with(b"+OK"));
        assert_eq!(body, b"Subject: a\r\n\r\nhello\r\n");
        assert!(matches!(
            ask(&mut l, EdgeToRelay::Ping { nonce: 5 }).await,
            RelayToEdge::Pong { nonce: 5 }
        ));
        let r = ask(&mut l, EdgeToRelay::Quit).await;
        assert!(
            matches!(&r, RelayToEdge::QuitDone { result: Ok(s) } if s.starts_with(b"+OK")),
            "{r:?}"
        );
        let cmds = &store.sessions()[0].commands;
        assert!(!cmds.iter().any(|c| c.contains("mallory")), "{cmds:?}");
        assert_eq!(store.sessions()[0].end_kind(), Some(EndKind::Quit));
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn refuses_servers_off_its_allow_list_and_unknown_edges() {
    let mut w = world();
    let (edges, relay, store) = (w.edges.clone(), w.relay.clone(), w.store.clone());
    w.sim.client("edge", async move {
        let env = SimEnv::new(SEED, "edge", 0);
        let mut l = link(&env, &edges[0], &relay).await?;
        match ask(&mut l, open("elsewhere")).await {
            RelayToEdge::Refused { error } => {
                assert_eq!(error.code, Some(ErrCode::SysPerm));
                assert!(
                    error.text.contains("elsewhere:110") && error.text.contains("allow list"),
                    "{error}"
                );
            }
            other => panic!("{other:?}"),
        }
        let stranger = Keypair::generate(&EnvRng::from_seed([3; 32]));
        let refused = match link(&env, &stranger, &relay).await {
            Err(_) => true,
            Ok(mut l) => {
                l.send(&open("mail"), Compress::Never).await.is_err()
                    || !matches!(l.recv::<RelayToEdge>().await, Ok(Received::Msg(_)))
            }
        };
        assert!(refused, "an unknown edge key got a link");
        assert!(store.sessions().is_empty(), "{}", store.report());
        Ok(())
    });
    w.sim.run().unwrap();
}

#[test]
fn a_dead_link_ends_the_server_session_with_quit() {
    let mut w = world();
    let (edges, relay, store, state) = (
        w.edges.clone(),
        w.relay.clone(),
        w.store.clone(),
        w.state.clone(),
    );
    w.sim.client("edge", async move {
        let env = SimEnv::new(SEED, "edge", 0);
        // Dropped outright.
        let mut l = link(&env, &edges[0], &relay).await?;
        assert!(matches!(
            ask(&mut l, open("mail")).await,
            RelayToEdge::Opened { .. }
        ));
        drop(l);
        // Silent (partitioned) until the relay's idle timeout.
        let mut l = link(&env, &edges[0], &relay).await?;
        assert!(matches!(
            ask(&mut l, open("mail")).await,
            RelayToEdge::Opened { .. }
        ));
        turmoil::partition("edge", "relay");
        let start = env.now();
        while state.live_server_sessions() > 0 {
            assert!(
                env.now() - start < Duration::from_secs(60),
                "{}",
                store.report()
            );
            env.sleep(Duration::from_millis(500)).await;
        }
        assert!(env.now() - start >= Duration::from_secs(19));
        let ends: Vec<_> = store.sessions().iter().map(|s| s.end_kind()).collect();
        assert_eq!(ends, vec![Some(EndKind::Quit); 2], "{}", store.report());
        assert_eq!(state.live_links(), 0);
        Ok(())
    });
    w.sim.run().unwrap();
}
