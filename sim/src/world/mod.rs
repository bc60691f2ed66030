//! Building the world of one seed: the turmoil simulation, the model mail
//! servers (whose stores survive crashes, like a disk), the real relay, edge
//! and client proxy as hosts, the mail user, the bad line's latency, and the
//! shared record of what the run did (the harness log and coverage).
//!
//! Hosts: `mail1..3`, `relay`, `edge`, `proxy` (the client proxy), and the
//! clients `mua` (the workload) and, at the very end, `checker`.

pub mod nodes;
mod phone;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use causeway_edge::SimDisk;
use causeway_mailserver::{MailStore, ServerConfig, generate};
use causeway_net::{Env, EnvRng, SimEnv, derive_seed};

use crate::coverage::Cov;
use crate::swarm::Params;
use crate::tap_env::Taps;
use crate::trace;
use crate::workload::{MsgKey, Mua, MuaLog, StoreRef, fmt_ms};

/// Runs every future to its end, one after another in polling order (no
/// extra tasks: the simulation stays one task per host).
async fn futures_join_all<F: std::future::Future>(
    fs: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = fs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in pinned.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}
use causeway::chain::Keys;
use nodes::NodeStates;
pub use phone::PHONE;
use phone::{Phone, PhoneRead, PhoneStar};

/// turmoil's tick: the resolution of simulated time.
pub const TICK: Duration = Duration::from_millis(100);

/// What the mail client talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Variant {
    /// The client proxy, and through it the edge (the system under test).
    #[default]
    Causeway,
    /// The first mail server directly, over the bad line, as a mail client
    /// does without Causeway. Used to show that the checks catch what plain
    /// POP3 gets wrong (an acknowledged DELE lost with the line).
    DirectPop3,
    /// Causeway with a deliberately broken node (`--features
    /// broken-variants`): proves the simulation catches that bug.
    #[cfg(feature = "broken-variants")]
    Broken(Broken),
}

/// A deliberately broken node, by the name `--broken` takes.
#[cfg(feature = "broken-variants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    Edge(causeway_edge::broken::Broken),
    Client(causeway_client::broken::Broken),
    Relay(causeway_relay::broken::Broken),
}

#[cfg(feature = "broken-variants")]
impl Broken {
    /// Every broken variant of every node.
    pub fn all() -> Vec<Broken> {
        let mut all: Vec<Broken> = causeway_edge::broken::Broken::ALL
            .into_iter()
            .map(Broken::Edge)
            .collect();
        all.extend(
            causeway_client::broken::Broken::ALL
                .into_iter()
                .map(Broken::Client),
        );
        all.extend(
            causeway_relay::broken::Broken::ALL
                .into_iter()
                .map(Broken::Relay),
        );
        all
    }

    pub fn name(self) -> &'static str {
        match self {
            Broken::Edge(b) => b.name(),
            Broken::Client(b) => b.name(),
            Broken::Relay(b) => b.name(),
        }
    }

    pub fn parse(s: &str) -> Result<Broken, String> {
        Broken::all()
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Broken::all().iter().map(|b| b.name()).collect();
                format!("no broken variant {s:?}; one of: {}", names.join(", "))
            })
    }
}

impl Variant {
    /// The command-line words that select this variant, for replay commands
    /// and a sweep's worker processes.
    pub fn args(self) -> Vec<String> {
        match self {
            Variant::Causeway => Vec::new(),
            Variant::DirectPop3 => vec!["--baseline-direct".into()],
            #[cfg(feature = "broken-variants")]
            Variant::Broken(b) => vec!["--broken".into(), b.name().into()],
        }
    }

    /// The cargo features a replay of this variant must be built with.
    pub fn features(self) -> &'static str {
        match self {
            #[cfg(feature = "broken-variants")]
            Variant::Broken(_) => " --features broken-variants",
            _ => "",
        }
    }

    /// The broken behaviour the edge must have in this run, if any.
    #[cfg(feature = "broken-variants")]
    pub fn broken_edge(self) -> Option<causeway_edge::broken::Broken> {
        match self {
            Variant::Broken(Broken::Edge(b)) => Some(b),
            _ => None,
        }
    }

    /// The broken behaviour the client proxy must have in this run, if any.
    #[cfg(feature = "broken-variants")]
    pub fn broken_client(self) -> Option<causeway_client::broken::Broken> {
        match self {
            Variant::Broken(Broken::Client(b)) => Some(b),
            _ => None,
        }
    }

    /// The broken behaviour the relay must have in this run, if any.
    #[cfg(feature = "broken-variants")]
    pub fn broken_relay(self) -> Option<causeway_relay::broken::Broken> {
        match self {
            Variant::Broken(Broken::Relay(b)) => Some(b),
            _ => None,
        }
    }
}

/// One model mail server and its account.
pub struct Server {
    pub host: String,
    /// The maildrop the server's entry reads: the user's (INBOX), or the
    /// folder's ([`causeway_mailserver::folder_maildrop`]), under which the
    /// model's POP3 side also serves it (for the fresh-session check).
    pub user: String,
    pub password: String,
    pub store: MailStore,
    /// When the entry reads a folder: the user's INBOX, which holds mail
    /// no one asked for; it must end as it began.
    pub untouched_inbox: Option<String>,
}

/// Messages in the INBOX of a user whose entry reads another folder.
const INBOX_MESSAGES: usize = 3;

pub struct World {
    pub seed: u64,
    pub params: Params,
    /// The harness's own random stream (faults, deliveries).
    pub rng: EnvRng,
    /// The stream message contents are drawn from.
    msg_rng: EnvRng,
    pub sim: turmoil::Sim<'static>,
    pub servers: Vec<Server>,
    pub mua: MuaLog,
    pub nodes: NodeStates,
    pub relay_taps: Taps,
    pub line_taps: Taps,
    pub ips: BTreeMap<String, IpAddr>,
    /// The bad line's two ends: (`proxy`, `edge`), or (`mua`, `mail1`) in
    /// the plain-POP3 baseline.
    pub line: (&'static str, &'static str),
    pub variant: Variant,
    /// The edge journal's disk (every seed's edge has one).
    pub disk: SimDisk,
    /// The client proxy's delete journal's disk, if it has one.
    pub proxy_disk: Option<SimDisk>,
    /// What happened, for the report: the harness's events and the
    /// situations reached.
    log: Rc<RefCell<Vec<String>>>,
    pub coverage: BTreeSet<Cov>,
    delivered: u64,
    /// Messages another mail client flagged `\\Deleted` (IMAP servers with
    /// `flagged_elsewhere`), and when it took the flags back (unix ms).
    pub flagged_elsewhere: Vec<MsgKey>,
    pub flags_withdrawn_ms: Option<u64>,
    /// Messages whose exact copy (same UIDL, same bytes) the harness
    /// delivered after their delete was acknowledged ([`World::deliver_twin`]).
    pub twinned: BTreeSet<MsgKey>,
    /// The user's other device, every star it set or took away, and
    /// every message it read.
    phone: Phone,
    pub phone_stars: Vec<PhoneStar>,
    pub phone_reads: Vec<PhoneRead>,
}

impl World {
    /// Builds every host of the seed's world; nothing has run yet.
    pub fn build(seed: u64, params: Params, rng: EnvRng, variant: Variant) -> World {
        let line = match variant {
            Variant::DirectPop3 => ("mua", "mail1"),
            _ => ("proxy", "edge"),
        };
        let max = params.fault_phase + params.quiet_phase + Duration::from_secs(7200);
        let mut sim = turmoil::Builder::new()
            .simulation_duration(max)
            .tick_duration(TICK)
            .rng_seed(seed)
            .min_message_latency(Duration::ZERO)
            .max_message_latency(params.latency_max)
            .build();
        let keys = Keys::generate(&rng);
        let imap: Vec<bool> = params.servers.iter().map(|p| p.imap).collect();
        let phone = Phone::new(seed, &imap);
        let msg_rng = rng.fork();
        let servers: Vec<Server> = params
            .servers
            .iter()
            .map(|sp| {
                let store = MailStore::with_rng(&rng);
                store.add_user(&sp.user, &sp.password);
                let maildrop = match &sp.folder {
                    Some(folder) => {
                        for i in 0..INBOX_MESSAGES {
                            let body =
                                format!("Subject: in INBOX {i}\r\n\r\nNot in the folder read.\r\n");
                            store.deliver(&sp.user, body).expect("user exists");
                        }
                        store.add_folder(&sp.user, folder)
                    }
                    None => sp.user.clone(),
                };
                Server {
                    host: sp.host.clone(),
                    user: maildrop,
                    password: sp.password.clone(),
                    store,
                    untouched_inbox: sp.folder.as_ref().map(|_| sp.user.clone()),
                }
            })
            .collect();
        let relay_taps = Taps::new();
        let line_taps = Taps::new();
        let nodes = NodeStates::default();
        let mua_user = "me".to_owned();
        let mua_password = format!("local-{:016x}", rng.next_u64());
        for (i, s) in servers.iter().enumerate() {
            let sp = &params.servers[i];
            let config = ServerConfig {
                hostname: format!("{}.causeway.test", s.host),
                lock: sp.lock,
                seen_on_abrupt_close: sp.seen_on_abrupt_close,
                idle_timeout: nodes::SERVER_IDLE,
                faults: sp.faults.clone(),
                imap_uidplus: sp.imap_uidplus,
                imap_logins: sp.imap_logins,
                ..ServerConfig::default()
            };
            let store = s.store.clone();
            let host = s.host.clone();
            let imap = sp.imap;
            let inc = Arc::new(AtomicU32::new(0));
            sim.host(s.host.as_str(), move || {
                let store = store.clone();
                let config = config.clone();
                let host = host.clone();
                let n = inc.fetch_add(1, Ordering::SeqCst);
                async move {
                    let env = SimEnv::new(seed, &host, n);
                    if imap {
                        let l = env.bind(&format!("0.0.0.0:{}", nodes::IMAP_PORT)).await?;
                        let (env, store, config) = (env.clone(), store.clone(), config.clone());
                        tokio::spawn(causeway_mailserver::serve_imap(env, l, store, config));
                    }
                    let l = env.bind("0.0.0.0:110").await?;
                    if let Err(e) = causeway_mailserver::serve(env, l, store, config).await {
                        tracing::error!(target: "sim::harness", error = %e, "mail server stopped");
                    }
                    Ok(())
                }
            });
        }
        let spec = nodes::chain_spec(&params, &mua_user, &mua_password);
        if spec.needs_relay() {
            nodes::add_relay(&mut sim, seed, &spec, &keys, &nodes, &relay_taps, variant);
        }
        let disk = SimDisk::new();
        disk.set_sync_latency(params.journal_sync);
        nodes::add_edge(&mut sim, seed, &spec, &keys, &nodes, &disk, variant);
        let proxy_disk = params.proxy_journal.then(|| {
            let d = SimDisk::new();
            d.set_sync_latency(params.journal_sync);
            d
        });
        nodes::add_proxy(
            &mut sim,
            &params,
            &spec,
            &keys,
            &line_taps,
            proxy_disk.as_ref(),
            variant,
        );
        let mua = MuaLog::default();
        let (user, password, proxy, direct) = match variant {
            Variant::DirectPop3 => (
                servers[0].user.clone(),
                servers[0].password.clone(),
                format!("{}:110", servers[0].host),
                Some(servers[0].host.clone()),
            ),
            _ => (
                mua_user,
                mua_password.clone(),
                "proxy:1110".to_owned(),
                None,
            ),
        };
        let stores: Vec<StoreRef> = (servers.iter().zip(&params.servers))
            .map(|(s, p)| StoreRef {
                host: s.host.clone(),
                user: s.user.clone(),
                store: s.store.clone(),
                imap: p.imap,
            })
            .collect();
        let clients = params.mua.clients;
        mua.with(|m| m.clients = clients);
        let muas: Vec<Mua> = (0..clients)
            .map(|i| Mua {
                env: SimEnv::new(seed, "mua", i),
                flag_rng: EnvRng::from_seed(derive_seed(seed, &[b"mua flags", &[i as u8]])),
                client: i as u8,
                params: params.mua.clone(),
                user: user.clone(),
                password: password.clone(),
                proxy: proxy.clone(),
                direct: direct.clone(),
                stores: stores.clone(),
                log: mua.clone(),
                stop_after: params.fault_phase,
                dele_by_edge: !params.proxy_journal,
            })
            .collect();
        sim.client("mua", async move {
            let runs = muas.into_iter().enumerate().map(|(i, m)| async move {
                // Let the servers, edge and proxy bind first; a second
                // client starts a little later, and overlaps.
                m.env
                    .sleep(Duration::from_millis(500 + 1_500 * i as u64))
                    .await;
                m.run().await
            });
            for r in futures_join_all(runs).await {
                r?;
            }
            Ok(())
        });
        // The bad line is slower than the rest.
        sim.set_link_max_message_latency(line.0, line.1, params.line_latency_max);
        if params.faults.line_flaky > 0.0 {
            sim.set_link_fail_rate(line.0, line.1, params.faults.line_flaky);
        }
        let mut ips = BTreeMap::new();
        for h in ["edge", "relay", "proxy", "mua"] {
            if h != "relay" || spec.needs_relay() {
                ips.insert(h.to_owned(), sim.lookup(h));
            }
        }
        World {
            seed,
            params,
            rng,
            msg_rng,
            sim,
            servers,
            mua,
            nodes,
            relay_taps,
            line_taps,
            ips,
            line,
            variant,
            disk,
            proxy_disk,
            log: Rc::new(RefCell::new(Vec::new())),
            coverage: BTreeSet::new(),
            delivered: 0,
            flagged_elsewhere: Vec::new(),
            twinned: BTreeSet::new(),
            flags_withdrawn_ms: None,
            phone,
            phone_stars: Vec::new(),
            phone_reads: Vec::new(),
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    pub fn log_event(&self, text: String) {
        let at = self.now_ms();
        tracing::info!(target: "sim::harness", "{text}");
        self.log
            .borrow_mut()
            .push(format!("{:>9} harness: {text}", fmt_ms(at)));
    }

    /// The harness log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    /// Another mail client flags about a third of server `i`'s messages
    /// `\\Deleted` (at least one, if it has any). From a stream of its own.
    pub fn flag_elsewhere(&mut self, i: usize) {
        let rng = EnvRng::from_seed(derive_seed(self.seed, &[b"flagged elsewhere", &[i as u8]]));
        let s = &self.servers[i];
        let messages = s.store.messages(&s.user);
        let mut flagged = 0;
        for (n, m) in messages.iter().enumerate() {
            if rng.chance(0.3) || (n + 1 == messages.len() && flagged == 0) {
                s.store.flag_deleted_elsewhere(&s.user, Some(m.uid), true);
                self.flagged_elsewhere.push((s.host.clone(), m.uid));
                flagged += 1;
            }
        }
    }

    /// Delivers an exact copy of server `i`'s message `uid` (same UIDL,
    /// same bytes), as a broken migration does: from then on the two
    /// cannot be told apart, so the edge must neither delete nor mark
    /// either (issue #15's rule for ambiguous UIDLs), even for a delete
    /// acknowledged before the copy came.
    pub fn deliver_twin(&mut self, i: usize, uid: u32) {
        let s = &self.servers[i];
        let (Some(m), Some(body)) = (
            s.store.message_by_uid(&s.user, uid),
            s.store.body_by_uid_copy(&s.user, uid),
        ) else {
            return;
        };
        if m.deleted_at_ms.is_some() {
            return;
        }
        let at = Some(self.unix_now());
        s.store
            .deliver_with_uidl(&s.user, &body, m.uidl.as_str(), at)
            .expect("user exists");
        self.twinned.insert((s.host.clone(), uid));
        self.coverage.insert(Cov::TwinAfterDelete);
        self.log_event(format!(
            "delivered a twin of {}:{} (uid {uid}, {} octets)",
            s.host,
            m.uidl,
            body.len()
        ));
    }

    /// Delivers one new message to server `i` (drawn size and content).
    pub fn deliver(&mut self, i: usize) {
        self.delivered += 1;
        let odd = self.params.servers[i].odd_uidls && self.msg_rng.chance(0.3);
        let big = self.params.big_chance > 0.0 && self.msg_rng.chance(self.params.big_chance);
        let hint = if big {
            self.params.big_size
        } else {
            self.params.size_hint
        };
        let body = generate::message(&self.msg_rng, self.delivered, hint);
        if body.len() > 1 << 20 {
            self.coverage.insert(Cov::BigMessage);
        }
        let s = &self.servers[i];
        let uidl = if odd {
            // A long UIDL, or one an earlier message already has.
            let earlier = s.store.messages(&s.user);
            let uidl = if !earlier.is_empty() && self.msg_rng.chance(0.5) {
                let pick = self.msg_rng.range(0, earlier.len() as u64) as usize;
                self.coverage.insert(Cov::DuplicateUidl);
                earlier[pick].uidl.as_str().to_owned()
            } else {
                self.coverage.insert(Cov::LongUidl);
                format!("{}-{:0>120}", self.delivered, self.msg_rng.next_u64())
            };
            let at = Some(self.unix_now());
            s.store
                .deliver_with_uidl(&s.user, &body, &uidl, at)
                .expect("user exists");
            causeway_mailserver::Uidl::from(uidl)
        } else {
            s.store
                .deliver_at(&s.user, &body, self.unix_now())
                .expect("user exists")
        };
        let during = self.mua.with(|m| m.in_session > 0);
        if during && self.now_ms() > 0 {
            self.coverage.insert(Cov::NewMailDuringSession);
        }
        self.log_event(format!(
            "delivered {}:{} ({} octets){}",
            s.host,
            uidl,
            body.len(),
            if during { " during a session" } else { "" }
        ));
    }

    /// The wall clock the simulated hosts see (`SimEnv::unix_millis`).
    pub fn unix_now(&self) -> u64 {
        nodes::SIM_EPOCH_UNIX_MILLIS + self.now_ms()
    }

    /// The host name behind a simulated address.
    pub fn host_of(&self, ip: IpAddr) -> String {
        self.ips
            .iter()
            .find(|(_, a)| **a == ip)
            .map_or_else(|| ip.to_string(), |(h, _)| h.clone())
    }

    /// One turmoil step, keeping the trace's clock in step; `Err` with the
    /// simulation's own error.
    pub fn step(&mut self) -> Result<(), String> {
        self.sim.step().map_err(|e| e.to_string())?;
        trace::set_now_ms(self.now_ms());
        Ok(())
    }

    /// Nothing live anywhere: no server session or lock, no edge session,
    /// replica, owed work or replay, no relay link, no delete left in the
    /// client proxy's journal. (Edge journal entries whose erase failed are
    /// erased again by the worker that holds them.)
    pub fn settled(&self) -> bool {
        let now_unix = self.unix_now();
        let stores = self
            .servers
            .iter()
            .all(|s| s.store.live_sessions().is_empty() && s.store.locks_held(now_unix).is_empty());
        let edge = self.nodes.edges().last().is_none_or(|e| {
            e.live_sessions() == 0
                && e.live_replicas() == 0
                && e.pending_work() == 0
                && e.replay_finished()
        });
        let relay = self
            .nodes
            .relays()
            .last()
            .is_none_or(|r| r.live_links() == 0 && r.live_server_sessions() == 0);
        let proxy = self
            .proxy_disk
            .as_ref()
            .is_none_or(|d| causeway_client::owed_deletes(&d.durable()) == 0);
        stores && edge && relay && proxy
    }
}
