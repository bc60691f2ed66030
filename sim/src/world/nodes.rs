//! The real nodes, as turmoil hosts: the relay, the edge and the client
//! proxy, each restarted with a fresh incarnation (a new `SimEnv` random
//! stream, new state counters) after a crash, with configuration and keys
//! that survive like files on disk.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_client::{ClientConfig, run_client};
use causeway_edge::{
    EdgeConfig, EdgeState, EdgeTimeouts, JournalConfig, JournalKey, RelayRef, SimDisk, run_edge,
};
use causeway_net::{Env, EnvRng, SimEnv};
use causeway_proto::Secret;
use causeway_proto::user::{Protocol, Route, ServerSpec, TlsMode};
use causeway_relay::{RelayConfig, RelayState, RelayTimeouts, run_relay};
use causeway_upstream::ServerTimeouts;
use causeway_wire::{ChannelConfig, Keypair};
use tokio::sync::watch;

use crate::swarm::Params;
use crate::tap_env::{TappedEnv, Taps};

/// `SimEnv::unix_millis` at simulated time zero (2026-01-01T00:00:00Z).
pub const SIM_EPOCH_UNIX_MILLIS: u64 = 1_767_225_600_000;

/// The model servers hang up on a client silent this long.
/// Kept above the relay's link idle time (45 s), which is above the edge's
/// NOOP interval (15 s): a dead link is noticed, and QUIT sent, before the
/// server gives up on the session.
pub const SERVER_IDLE: Duration = Duration::from_secs(120);

pub const EDGE_ADDR: &str = "edge:7000";
pub const RELAY_ADDR: &str = "relay:7001";
pub const RELAY_NAME: &str = "relay";

/// Static keys: configuration, the same in every incarnation.
pub struct Keys {
    pub edge: Keypair,
    pub relay: Keypair,
    pub client: Keypair,
}

impl Keys {
    pub fn generate(rng: &EnvRng) -> Keys {
        Keys {
            edge: Keypair::generate(rng),
            relay: Keypair::generate(rng),
            client: Keypair::generate(rng),
        }
    }
}

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

fn server_timeouts() -> ServerTimeouts {
    ServerTimeouts {
        connect: Duration::from_secs(10),
        command: Duration::from_secs(30),
        per_mib: Duration::from_secs(30),
    }
}

pub fn server_spec(host: &str, user: &str, password: &str, via_relay: bool) -> ServerSpec {
    ServerSpec {
        name: host.to_owned(),
        protocol: Protocol::Pop3,
        host: host.to_owned(),
        port: 110,
        tls: TlsMode::None,
        user: user.to_owned(),
        password: Secret::new(password.as_bytes().to_vec()),
        route: if via_relay {
            Route::Relay(RELAY_NAME.to_owned())
        } else {
            Route::Direct
        },
    }
}

fn server_addrs(params: &Params) -> Vec<String> {
    params
        .servers
        .iter()
        .map(|s| format!("{}:110", s.host))
        .collect()
}

pub fn add_relay(
    sim: &mut turmoil::Sim<'static>,
    seed: u64,
    params: &Params,
    keys: &Keys,
    states: &NodeStates,
    taps: &Taps,
) {
    let mut config = RelayConfig::new(keys.relay.clone());
    config.allowed_edges = vec![keys.edge.public];
    config.allowed_servers = server_addrs(params);
    config.channel = ChannelConfig::default();
    config.timeouts = RelayTimeouts {
        open: Duration::from_secs(30),
        link_idle: Duration::from_secs(45),
        server: server_timeouts(),
    };
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
            let env = TappedEnv::new(SimEnv::new(seed, "relay", n), taps);
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
    params: &Params,
    keys: &Keys,
    states: &NodeStates,
    disk: &SimDisk,
    variant: crate::world::Variant,
) {
    let mut config = EdgeConfig::new(keys.edge.clone());
    #[cfg(feature = "broken-variants")]
    {
        config.broken = variant.broken_edge();
    }
    #[cfg(not(feature = "broken-variants"))]
    let _ = variant;
    config.journal = Some(JournalConfig::new(
        disk.clone(),
        JournalKey::derive_from(&keys.edge.private),
    ));
    config.allowed_clients = vec![keys.client.public];
    config.allowed_servers = server_addrs(params);
    config.relays = vec![RelayRef {
        name: RELAY_NAME.to_owned(),
        address: RELAY_ADDR.to_owned(),
        public_key: keys.relay.public,
    }];
    config.timeouts = EdgeTimeouts {
        hello: Duration::from_secs(30),
        client_idle: Duration::from_secs(90),
        server: server_timeouts(),
        relay_reply: Duration::from_secs(90),
        completion_deadline: params.completion_deadline,
        noop_interval: Duration::from_secs(15),
        retry_min: Duration::from_millis(500),
        retry_max: Duration::from_secs(10),
    };
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
    seed: u64,
    keys: &Keys,
    servers: Vec<ServerSpec>,
    user: &str,
    password: &str,
    taps: &Taps,
) {
    let config = Arc::new(ClientConfig {
        // What the config says (validated as loopback); the simulation binds
        // the listener on all addresses so the `mua` host can reach it.
        listen: "127.0.0.1:1110".into(),
        user: user.to_owned(),
        password: Secret::new(password.as_bytes().to_vec()),
        edge: EDGE_ADDR.to_owned(),
        edge_key: keys.edge.public,
        keypair: keys.client.clone(),
        psk: None,
        servers,
        channel: ChannelConfig::default(),
        timeouts: causeway_client::Timeouts::default(),
    });
    let taps = taps.clone();
    let inc = Arc::new(AtomicU32::new(0));
    sim.host("proxy", move || {
        let config = config.clone();
        let n = inc.fetch_add(1, Ordering::SeqCst);
        let taps = taps.clone();
        async move {
            let env = TappedEnv::new(SimEnv::new(seed, "proxy", n), taps);
            let l = env.bind("0.0.0.0:1110").await?;
            let (_tx, rx) = watch::channel(false);
            if let Err(e) = run_client(env, l, config, rx).await {
                tracing::error!(target: "sim::harness", error = %e, "client proxy stopped");
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}
