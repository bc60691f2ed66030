//! The real nodes, as turmoil hosts: the relay, the edge and the client
//! proxy, each restarted with a fresh incarnation (a new `SimEnv` random
//! stream, new state counters) after a crash, with configuration and keys
//! that survive like files on disk.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::io;
use std::path::Path;

use causeway::chain::{ChainSpec, Keys, MailServer, Secrets, files};
use causeway::config::{self, Settings};
use causeway_client::{ClientState, Timeouts as ClientTimeouts, run_client_counted};
use causeway_edge::{EdgeState, EdgeTimeouts, JournalConfig, ResumeConfig, SimDisk, run_edge};
use causeway_net::{Env, SimEnv};
use causeway_proto::user::{INBOX, Protocol, TlsMode};
use causeway_relay::{RelayState, RelayTimeouts, run_relay};
use causeway_upstream::ServerTimeouts;
use causeway_wire::ChannelConfig;
use tokio::sync::watch;

use crate::swarm::Params;
use crate::tap_env::{TappedEnv, Taps};
use crate::workload::imap::PROXY_IMAP_PORT;

/// `SimEnv::unix_millis` at simulated time zero (2026-01-01T00:00:00Z).
pub const SIM_EPOCH_UNIX_MILLIS: u64 = 1_767_225_600_000;

/// The model servers hang up on a client silent this long.
/// Kept above the relay's link idle time (45 s), which is above the edge's
/// NOOP interval (15 s): a dead link is noticed, and QUIT sent, before the
/// server gives up on the session.
pub const SERVER_IDLE: Duration = Duration::from_secs(120);

pub const EDGE_ADDR: &str = "edge:7000";
pub const RELAY_ADDR: &str = "relay:7001";

/// The state handles of every incarnation of the edge and the relay.
#[derive(Clone, Default)]
pub struct NodeStates {
    edges: Arc<Mutex<Vec<EdgeState>>>,
    relays: Arc<Mutex<Vec<RelayState>>>,
}

impl NodeStates {
    pub fn edges(&self) -> Vec<EdgeState> {
        self.edges.lock().unwrap().clone()
    }

    pub fn relays(&self) -> Vec<RelayState> {
        self.relays.lock().unwrap().clone()
    }

    /// Pending work of the edge incarnation running now.
    pub fn edge_pending_work(&self) -> usize {
        self.edges
            .lock()
            .unwrap()
            .last()
            .map_or(0, |e| e.pending_work())
    }
}

/// Where a mail host serves IMAP (when its server speaks it).
pub const IMAP_PORT: u16 = 143;

/// The chain of this world, as `causeway::chain` writes its files: the
/// same configuration path as production, with the simulation's timeouts
/// (nested so that a dead peer is noticed before the next layer gives up:
/// edge NOOP every 15 s < relay link idle 45 s < server idle 120 s).
pub fn chain_spec(params: &Params, local_user: &str, local_password: &str) -> ChainSpec {
    let server = ServerTimeouts {
        connect: Duration::from_secs(10),
        command: Duration::from_secs(30),
    };
    ChainSpec {
        servers: params
            .servers
            .iter()
            .map(|s| MailServer {
                name: s.host.clone(),
                address: match s.imap {
                    true => format!("{}:{IMAP_PORT}", s.host),
                    false => format!("{}:110", s.host),
                },
                user: s.user.clone(),
                password: s.password.clone(),
                protocol: match s.imap {
                    true => Protocol::Imap,
                    false => Protocol::Pop3,
                },
                tls: TlsMode::None,
                via_relay: s.via_relay,
                folder: s.folder.clone().unwrap_or_else(|| INBOX.to_owned()),
            })
            .collect(),
        local_user: local_user.to_owned(),
        local_password: local_password.to_owned(),
        // What the configuration says (validated as loopback); the
        // simulation binds the listener on all addresses so the `mua` host
        // can reach it.
        client_listen: "127.0.0.1:1110".into(),
        edge_listen: "0.0.0.0:7000".into(),
        relay_listen: "0.0.0.0:7001".into(),
        relay_timeouts: RelayTimeouts {
            open: Duration::from_secs(30),
            link_idle: Duration::from_secs(45),
            server,
        },
        edge_timeouts: EdgeTimeouts {
            hello: Duration::from_secs(30),
            client_idle: Duration::from_secs(90),
            server,
            relay_reply: Duration::from_secs(90),
            completion_deadline: params.completion_deadline,
            noop_interval: Duration::from_secs(15),
            retry_min: Duration::from_millis(500),
            retry_max: Duration::from_secs(10),
        },
        channel: ChannelConfig {
            zstd_level: params.zstd_level,
            bulk_level: params.bulk_level.unwrap_or(params.zstd_level),
            ..ChannelConfig::default()
        },
        edge_resume: ResumeConfig {
            window: params.resume_window,
            ..ResumeConfig::default()
        },
        client_timeouts: ClientTimeouts {
            resume: params.client_resume,
            // The IMAP mail user's pauses (1 to 30 s) mostly outlast it, so
            // its NOOP and SELECT after one list the folder again.
            imap_recheck: Duration::from_secs(3),
            ..ClientTimeouts::default()
        },
        // The journal is the simulated disk, set after parsing.
        journal: false,
        ..ChainSpec::default()
    }
}

/// Parses a file the chain wrote, as the binary would.
fn parse(text: io::Result<String>) -> Settings {
    let text = text.expect("the chain's files render without a disk");
    config::parse(&text, Path::new(".")).expect("the chain's files parse")
}

pub fn add_relay(
    sim: &mut turmoil::Sim<'static>,
    seed: u64,
    spec: &ChainSpec,
    keys: &Keys,
    states: &NodeStates,
    taps: &Taps,
    variant: crate::world::Variant,
) {
    let Settings::Relay(settings) = parse(files::relay(spec, keys, Secrets::Inline)) else {
        unreachable!("a relay file configures a relay")
    };
    #[allow(unused_mut)]
    let mut config = settings.config;
    #[cfg(feature = "broken-variants")]
    {
        config.broken = variant.broken_relay();
    }
    #[cfg(not(feature = "broken-variants"))]
    let _ = variant;
    let config = Arc::new(config);
    let states = states.relays.clone();
    let taps = taps.clone();
    let inc = Arc::new(AtomicU32::new(0));
    sim.host("relay", move || {
        let config = config.clone();
        let state = RelayState::new();
        states.lock().unwrap().push(state.clone());
        let n = inc.fetch_add(1, Ordering::SeqCst);
        let taps = taps.clone();
        async move {
            let env = TappedEnv::new(SimEnv::new(seed, "relay", n), taps, None);
            let l = env.bind("0.0.0.0:7001").await?;
            let (_tx, rx) = watch::channel(false);
            if let Err(e) = run_relay(env, l, config, state, rx).await {
                tracing::error!(target: "sim::harness", error = %e, "relay stopped");
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

pub fn add_edge(
    sim: &mut turmoil::Sim<'static>,
    seed: u64,
    spec: &ChainSpec,
    keys: &Keys,
    states: &NodeStates,
    disk: &SimDisk,
    variant: crate::world::Variant,
) {
    let text = files::edge(spec, keys, Some(RELAY_ADDR), Secrets::Inline);
    let Settings::Edge(settings) = parse(text) else {
        unreachable!("an edge file configures an edge")
    };
    let mut config = settings.config;
    #[cfg(feature = "broken-variants")]
    {
        config.broken = variant.broken_edge();
    }
    #[cfg(not(feature = "broken-variants"))]
    let _ = variant;
    config.journal = Some(JournalConfig::new(
        disk.clone(),
        causeway_edge::journal::edge_key(&keys.edge.private),
    ));
    let config = Arc::new(config);
    let states = states.edges.clone();
    let inc = Arc::new(AtomicU32::new(0));
    sim.host("edge", move || {
        let config = config.clone();
        let state = EdgeState::new();
        states.lock().unwrap().push(state.clone());
        let n = inc.fetch_add(1, Ordering::SeqCst);
        async move {
            let env = SimEnv::new(seed, "edge", n);
            let l = env.bind("0.0.0.0:7000").await?;
            let (_tx, rx) = watch::channel(false);
            if let Err(e) = run_edge(env, l, config, state, rx).await {
                tracing::error!(target: "sim::harness", error = %e, "edge stopped");
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

pub fn add_proxy(
    sim: &mut turmoil::Sim<'static>,
    params: &Params,
    spec: &ChainSpec,
    keys: &Keys,
    taps: &Taps,
    disk: Option<&SimDisk>,
    variant: crate::world::Variant,
) {
    let Settings::Client(settings) = parse(files::client(spec, keys, EDGE_ADDR, Secrets::Inline))
    else {
        unreachable!("a client file configures a client proxy")
    };
    #[allow(unused_mut)]
    let mut config = settings.config;
    #[cfg(feature = "broken-variants")]
    {
        config.broken = variant.broken_client();
    }
    #[cfg(not(feature = "broken-variants"))]
    let _ = variant;
    config.journal = disk.map(|d| {
        JournalConfig::new(
            d.clone(),
            causeway_client::journal_key(&keys.client.private),
        )
    });
    let config = Arc::new(config);
    let taps = taps.clone();
    let (seed, line) = (params.seed, params.line_rate);
    let inc = Arc::new(AtomicU32::new(0));
    sim.host("proxy", move || {
        let config = config.clone();
        let n = inc.fetch_add(1, Ordering::SeqCst);
        let taps = taps.clone();
        async move {
            let env = TappedEnv::new(SimEnv::new(seed, "proxy", n), taps, line);
            let l = env.bind("0.0.0.0:1110").await?;
            let imap = env.bind(&format!("0.0.0.0:{PROXY_IMAP_PORT}")).await?;
            let (_tx, rx) = watch::channel(false);
            let state = ClientState::new();
            if let Err(e) = run_client_counted(env, l, Some(imap), config, state, rx).await {
                tracing::error!(target: "sim::harness", error = %e, "client proxy stopped");
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}
