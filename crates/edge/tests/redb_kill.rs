//! The production journal (redb on a real file) over real sockets: an edge
//! acknowledges a delete and is killed outright (its runtime dropped: no
//! task runs again, its sockets close as the kernel would close them after
//! `kill -9`); a new edge started on the same file finishes the delete.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use causeway_edge::journal::owed_entries;
use causeway_edge::{
    EdgeConfig, EdgeState, JournalConfig, JournalKey, JournalStore, RedbStore, run_edge,
};
use causeway_mailserver::{LockPolicy, MailStore, ServerConfig, serve};
use causeway_net::{Env, EnvRng, Listener, TokioEnv, derive_seed};
use causeway_proto::session::{ClientToEdge, EdgeToClient, ListingState, MessageId, Op, Reply};
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode, UserInfo};
use causeway_proto::{PROTOCOL_VERSION, Secret};
use causeway_wire::{ChannelConfig, Compress, Keypair, Received, connect_xk};
use tokio::runtime::Runtime;
use tokio::sync::watch;

const PW: &str = "kill-nine-secret-pw-5521";

fn temp_dir(label: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "causeway-edge-{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Starts an edge on its own runtime; returns its address and state.
fn start_edge(rt: &Runtime, config: EdgeConfig) -> (String, EdgeState, watch::Sender<bool>) {
    let state = EdgeState::new();
    let (tx, rx) = watch::channel(false);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let st = state.clone();
    rt.spawn(async move {
        let env = TokioEnv::new();
        let l = env.bind("127.0.0.1:0").await.unwrap();
        addr_tx.send(l.local_addr().unwrap().to_string()).unwrap();
        run_edge(env, l, Arc::new(config), st, rx).await.unwrap();
    });
    (addr_rx.recv().unwrap(), state, tx)
}

async fn wait_for(env: &TokioEnv, what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        env.sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 10 s for {what}");
}

#[test]
fn an_acknowledged_delete_survives_kill_and_restart_on_the_same_redb_file() {
    let dir = temp_dir("kill");
    let path = dir.join("journal.redb");
    let key = JournalKey::from_bytes([7; 32]);
    let rng = EnvRng::from_seed(derive_seed(11, &[b"redb-kill"]));
    let client_key = Keypair::generate(&rng);
    let edge_key = Keypair::generate(&rng);

    // The mail server and the test's client run here; each edge on its own.
    let main = runtime();
    let store = MailStore::with_rng(&rng);
    store.add_user("alice", PW);
    for i in 0..3 {
        store
            .deliver(
                "alice",
                causeway_mailserver::generate::message(&rng, i, 1500),
            )
            .unwrap();
    }
    let mail_cfg = ServerConfig {
        lock: LockPolicy::Exclusive {
            stale_after_abrupt: Duration::ZERO,
        },
        ..ServerConfig::default()
    };
    let mail_addr = {
        let (store, cfg) = (store.clone(), mail_cfg.clone());
        main.block_on(async move {
            let env = TokioEnv::new();
            let l = env.bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            tokio::spawn(serve(env, l, store, cfg));
            addr
        })
    };
    let config = |k: &JournalKey| {
        let mut c = EdgeConfig::new(edge_key.clone());
        c.allowed_clients = vec![client_key.public];
        c.allowed_servers = vec![mail_addr.to_string()];
        c.journal = Some(JournalConfig::redb(&path, k.clone()).unwrap());
        c
    };
    let spec = ServerSpec {
        name: "HOST1".into(),
        protocol: Protocol::Pop3,
        host: "127.0.0.1".into(),
        port: mail_addr.port(),
        tls: TlsMode::None,
        user: "alice".into(),
        password: Secret::new(PW.as_bytes().to_vec()),
        route: Route::Direct,
        folder: causeway_proto::user::INBOX.into(),
    };
    let victim = store.present_uidls("alice")[1].as_str().to_owned();

    // Life 1: acknowledge the delete, then die.
    let edge_rt = runtime();
    let (edge_addr, _, _keep) = start_edge(&edge_rt, config(&key));
    let (ck, epk, v) = (client_key.clone(), edge_key.public, victim.clone());
    let channel = main.block_on(async move {
        let env = TokioEnv::new();
        let s = env.connect(&edge_addr).await.unwrap();
        let mut ch = connect_xk(&env, s, &ck, &epk, None, &ChannelConfig::default())
            .await
            .unwrap();
        let hello = ClientToEdge::Hello {
            version: PROTOCOL_VERSION,
            nonce: "n".into(),
            user: UserInfo {
                servers: vec![spec],
            },
            supersedes: Vec::new(),
            carried: Vec::new(),
            oldest: 0,
            restarted: false,
            resumes: true,
        };
        ch.send(&hello, Compress::Never).await.unwrap();
        let mut first = ch.recv().await.unwrap();
        if let Received::Msg(EdgeToClient::Ticket { .. }) = first {
            first = ch.recv().await.unwrap();
        }
        let size = match first {
            Received::Msg(EdgeToClient::Welcome { servers, .. }) => match &servers[0].state {
                ListingState::Ready { messages } => {
                    messages.iter().find(|m| m.uidl == v).unwrap().size
                }
                s => panic!("{s:?}"),
            },
            other => panic!("{other:?}"),
        };
        let dele = ClientToEdge::Request {
            id: 1,
            server: "HOST1".into(),
            op: Op::Dele {
                msg: MessageId { uidl: v, size },
            },
        };
        ch.send(&dele, Compress::Yes).await.unwrap();
        match ch.recv().await.unwrap() {
            Received::Msg(EdgeToClient::Response { id: 1, result }) => {
                assert_eq!(result, Ok(Reply::Done))
            }
            other => panic!("{other:?}"),
        }
        ch // kept open: the session is alive when the edge dies
    });
    // Let the worker send its DELE (not committed without QUIT).
    main.block_on(async {
        let env = TokioEnv::new();
        let s = store.clone();
        wait_for(&env, "DELE at the server", || {
            s.sessions()
                .iter()
                .any(|r| r.commands.iter().any(|c| c.starts_with("DELE")))
        })
        .await;
    });
    // A copy of the file as it is at this instant: what a crash leaves.
    let snapshot = dir.join("snapshot.redb");
    std::fs::copy(&path, &snapshot).unwrap();
    edge_rt.shutdown_background(); // kill -9: no task runs again
    drop(channel);
    let bytes = std::fs::read(&path).unwrap();
    assert!(!contains(&bytes, PW.as_bytes()), "password in the clear");
    assert!(!contains(&bytes, victim.as_bytes()), "UIDL in the clear");
    main.block_on(async {
        let env = TokioEnv::new();
        let s = store.clone();
        wait_for(&env, "the server to see the edge gone", || {
            s.sessions().iter().all(|r| r.end.is_some())
        })
        .await;
    });
    assert!(store.is_present("alice", &victim), "not committed yet");

    // The snapshot (never closed cleanly) opens and holds the delete.
    let snap = RedbStore::open(&snapshot).unwrap();
    let entries = main.block_on(snap.scan()).unwrap();
    assert_eq!((entries.len(), owed_entries(&entries)), (2, 1));
    drop(snap);

    // Life 2: same file; the replay commits the delete and erases the entry.
    let edge_rt = runtime();
    let (_, state, stop) = start_edge(&edge_rt, config(&key));
    main.block_on(async {
        let env = TokioEnv::new();
        wait_for(&env, "the replay", || {
            state.replay_finished() && !store.is_present("alice", &victim)
        })
        .await;
    });
    assert_eq!(state.journal_entries(), 0);
    assert_eq!(store.present_uidls("alice").len(), 2);
    stop.send_replace(true);
    edge_rt.shutdown_timeout(Duration::from_secs(5));
    let after = main
        .block_on(RedbStore::open(&path).unwrap().scan())
        .unwrap();
    assert!(after.is_empty(), "journal empty, credentials erased");
    assert!(!contains(&std::fs::read(&path).unwrap(), PW.as_bytes()));
    for s in store.sessions() {
        if s.user.is_some() {
            assert!(s.end.is_some(), "{}", store.report());
        }
    }
    assert!(store.locks_held(u64::MAX).is_empty(), "{}", store.report());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Journal commit latency with redb on this machine's disk (a measurement,
/// not a check): `cargo test -p causeway-edge --test redb_kill -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn journal_commit_latency() {
    let dir = temp_dir("latency");
    let store = RedbStore::open(dir.join("journal.redb")).unwrap();
    let rt = runtime();
    let env = TokioEnv::new();
    let mut puts = Vec::new();
    let mut dels = Vec::new();
    rt.block_on(async {
        for i in 0..1000u32 {
            let key = format!("o/{:016x}/{:016x}", 1, i).into_bytes();
            let value = vec![0xa5u8; 120];
            let t = env.now();
            store
                .commit(vec![causeway_edge::journal::Write::Put {
                    key: key.clone(),
                    value,
                }])
                .await
                .unwrap();
            puts.push(env.now() - t);
            let t = env.now();
            store
                .commit(vec![causeway_edge::journal::Write::Delete { key }])
                .await
                .unwrap();
            dels.push(env.now() - t);
        }
    });
    for (what, mut v) in [("put (record)", puts), ("delete (erase)", dels)] {
        v.sort();
        let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
        println!(
            "redb commit {what}: n={} p50={:?} p90={:?} p99={:?} max={:?}",
            v.len(),
            p(0.50),
            p(0.90),
            p(0.99),
            v[v.len() - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
