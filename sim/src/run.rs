//! One seeded run: build the world, drive faults, settle, check invariants.
//!
//! Hosts: `mail1..3` (model servers; their [`MailStore`]s live outside the
//! host closures and survive crashes, like a disk), `relay`, `edge`, `proxy`
//! (the client proxy), and the clients `mua` (the mail client workload) and,
//! at the very end, `checker` (a plain POP3 login per server).
//!
//! The run has two phases. In the fault phase the harness, every simulated
//! second, rolls each fault class of this seed's swarm (cuts, holds, crashes,
//! restarts) and delivers new mail at drawn moments; it also reacts to what
//! the mail client is doing (cut during a RETR, right after a DELE `+OK`).
//! The quiet phase starts once the fault phase is over and the mail client
//! has finished: every link is repaired, every host is up, and the run goes
//! on for longer than any stale lock, idle timeout and the edge's completion
//! deadline. Then the invariants are checked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_edge::SimDisk;
use causeway_mailserver::{EndKind, MailStore, ServerConfig, SessionId, generate};
use causeway_net::{Env, EnvRng, SimEnv, derive_seed};
use causeway_pop3::{Pop3Client, Timeouts};

use crate::coverage::Cov;
use crate::mua::{Activity, MsgKey, Mua, MuaLog, StoreRef, fmt_ms};
use crate::nodes::{self, Keys, NodeStates};
use crate::params::{Focus, MAX_STALE, Params};
use crate::tap_env::{Taps, find};
use crate::trace;

pub const TICK: Duration = Duration::from_millis(10);

/// How long everything must stay idle before the quiet phase may end early.
const SETTLED_FOR: u64 = 60_000;

/// True when built with `--cfg tokio_unstable` (the workspace's
/// `.cargo/config.toml` sets it): turmoil then seeds tokio's per-runtime rng,
/// which `tokio::select!` draws from to pick among ready branches. Without it
/// that one choice comes from the OS, and a run could differ on replay.
pub const FULLY_SEEDED: bool = cfg!(tokio_unstable);

/// How much the harness says while it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// Nothing but the outcome.
    #[default]
    Off,
    /// Every tracing event to stderr, with simulated timestamps.
    Stderr,
    /// Every tracing event into [`Outcome::trace`].
    Capture,
}

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
    /// Causeway with a deliberately broken edge (`--features
    /// broken-variants`): proves the simulation catches that bug.
    #[cfg(feature = "broken-variants")]
    BrokenEdge(causeway_edge::broken::Broken),
}

impl Variant {
    /// The command-line words that select this variant, for replay commands
    /// and a sweep's worker processes.
    pub fn args(self) -> Vec<String> {
        match self {
            Variant::Causeway => Vec::new(),
            Variant::DirectPop3 => vec!["--baseline-direct".into()],
            #[cfg(feature = "broken-variants")]
            Variant::BrokenEdge(b) => vec!["--broken".into(), b.name().into()],
        }
    }

    /// The cargo features a replay of this variant must be built with.
    fn features(self) -> &'static str {
        match self {
            #[cfg(feature = "broken-variants")]
            Variant::BrokenEdge(_) => " --features broken-variants",
            _ => "",
        }
    }

    /// The broken behaviour the edge must have in this run, if any.
    #[cfg(feature = "broken-variants")]
    pub fn broken_edge(self) -> Option<causeway_edge::broken::Broken> {
        match self {
            Variant::BrokenEdge(b) => Some(b),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub trace: TraceMode,
    pub variant: Variant,
    /// Turn the seed's swarm towards one fault class.
    pub focus: Option<Focus>,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-7 as in `docs/simulation.md`; 0 for the harness's own liveness and
    /// panics.
    pub invariant: u8,
    /// The message involved: (server, UIDL).
    pub key: Option<MsgKey>,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invariant {} ({})",
            self.invariant,
            invariant_name(self.invariant)
        )?;
        if let Some((s, u)) = &self.key {
            write!(f, " server {s} uidl {u}")?;
        }
        write!(f, ": {}", self.message)
    }
}

pub fn invariant_name(n: u8) -> &'static str {
    match n {
        0 => "the run itself: liveness, panics",
        1 => "no message lost",
        2 => "bodies byte-identical",
        3 => "read only if received whole",
        4 => "acknowledged DELE committed",
        5 => "no lock left, sessions QUIT",
        6 => "no replica outlives its session",
        7 => "no plaintext on our links",
        _ => "?",
    }
}

/// What one seed did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub params: Params,
    pub violations: Vec<Violation>,
    /// Exemptions applied and other remarks, for the person reading a failure.
    pub notes: Vec<String>,
    pub coverage: BTreeSet<Cov>,
    /// The harness's own event log.
    pub log: Vec<String>,
    /// The tracing output, with [`TraceMode::Capture`].
    pub trace: Option<Vec<u8>>,
    pub sim_ms: u64,
    pub variant: Variant,
    pub focus: Option<Focus>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    /// Everything the determinism check compares.
    pub fn fingerprint(&self) -> Vec<u8> {
        let mut out = self.trace.clone().unwrap_or_default();
        for l in &self.log {
            out.extend_from_slice(l.as_bytes());
            out.push(b'\n');
        }
        for v in &self.violations {
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// The one-line command that replays this run with full tracing.
    pub fn replay(&self) -> String {
        let focus = self
            .focus
            .map_or(String::new(), |f| format!(" --focus {}", f.name()));
        let variant: String = self
            .variant
            .args()
            .iter()
            .map(|a| format!(" {a}"))
            .collect();
        format!(
            "cargo run --release -p causeway-sim{} -- --seed {}{focus}{variant} --trace",
            self.variant.features(),
            self.seed
        )
    }

    /// The failure report: seed, parameters, violations, replay command.
    pub fn report(&self) -> String {
        let mut s = format!("FAIL seed {}\n{}\n", self.seed, self.params);
        for v in &self.violations {
            s.push_str(&format!("  VIOLATED {v}\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        let tail = self.log.len().saturating_sub(60);
        s.push_str("  harness log (last 60 events):\n");
        for l in &self.log[tail..] {
            s.push_str(&format!("    {l}\n"));
        }
        s.push_str(&format!("  replay: {}\n", self.replay()));
        s
    }
}

/// Runs one seed. Never panics: a panic inside the simulation becomes an
/// invariant-0 violation.
pub fn run_seed(seed: u64, opts: &RunOptions) -> Outcome {
    let v = (opts.variant, opts.focus);
    match opts.trace {
        // A subscriber that takes nothing, installed all the same: while
        // only one `Dispatch` exists in the process, tracing-core caches a
        // callsite's interest from whichever thread reaches it first, so a
        // subscriber-less run beside a capturing one (parallel tests) would
        // silence that callsite for the capture too (tokio-rs/tracing#3611).
        TraceMode::Off => {
            tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
                run_catching(seed, v)
            })
        }
        TraceMode::Stderr => {
            tracing::subscriber::with_default(trace::stderr_subscriber(), || run_catching(seed, v))
        }
        TraceMode::Capture => {
            let capture = trace::Capture::default();
            let mut out =
                tracing::subscriber::with_default(trace::capture_subscriber(&capture), || {
                    run_catching(seed, v)
                });
            out.trace = Some(capture.take());
            out
        }
    }
}

/// Makes the next tokio task id a multiple of 64.
///
/// tokio numbers tasks from one process-wide counter, and a current-thread
/// runtime keeps its tasks in 4 lists chosen by `id % 4`. When turmoil
/// crashes a host it drops the runtime, which drops the tasks list by list,
/// and with them their sockets, whose FIN/RST segments then draw their
/// latencies from turmoil's rng in that order. So the order, and the run,
/// would depend on how many tasks this process spawned before. Aligning the
/// counter at the start of every run makes each run's ids the same modulo
/// 64, as long as no other thread spawns tasks meanwhile (the sweep runs
/// seeds in child processes for that reason).
pub fn align_task_ids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a bare current-thread runtime");
    rt.block_on(async {
        loop {
            let h = tokio::spawn(async {});
            let id: u64 = h.id().to_string().parse().expect("task ids are numbers");
            let _ = h.await;
            if id % 64 == 63 {
                break;
            }
        }
    });
}

fn run_catching(seed: u64, (variant, focus): (Variant, Option<Focus>)) -> Outcome {
    align_task_ids();
    trace::set_now_ms(0);
    let hrng = EnvRng::from_seed(derive_seed(seed, &[b"harness"]));
    let mut params = Params::draw(seed, &hrng);
    if let Some(f) = focus {
        f.apply(&mut params);
    }
    let p2 = params.clone();
    match std::panic::catch_unwind(AssertUnwindSafe(|| {
        Harness::new(seed, params, hrng, variant).run()
    })) {
        Ok(o) => o,
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "non-string panic".into());
            Outcome {
                seed,
                params: p2,
                violations: vec![Violation {
                    invariant: 0,
                    key: None,
                    message: format!("panic: {msg}"),
                }],
                notes: vec![],
                coverage: BTreeSet::new(),
                log: vec![],
                trace: None,
                sim_ms: trace::now_ms(),
                variant,
                focus,
            }
        }
    }
}

/// A fault in force, and what undoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    RepairLine,
    ReleaseLine,
    BounceProxy,
    RepairRelayLink,
    BounceRelay,
    BounceEdge,
    BounceServer(usize),
}

struct Server {
    host: String,
    user: String,
    password: String,
    store: MailStore,
}

/// One server's fresh-session check: (host, outcome).
type CheckResult = (String, Result<(), String>);

/// A stale lock the harness saw: (server index, holder, first seen, until).
struct StaleSeen {
    server: usize,
    holder: SessionId,
    from_ms: u64,
    until_ms: u64,
}

struct Harness {
    seed: u64,
    params: Params,
    rng: EnvRng,
    msg_rng: EnvRng,
    sim: turmoil::Sim<'static>,
    servers: Vec<Server>,
    mua: MuaLog,
    nodes: NodeStates,
    relay_taps: Taps,
    line_taps: Taps,
    log: Rc<RefCell<Vec<String>>>,
    active: Vec<(u64, Undo)>,
    deliveries: Vec<u64>,
    delivered: u64,
    coverage: BTreeSet<Cov>,
    notes: Vec<String>,
    violations: Vec<Violation>,
    /// Server sessions cut by a crash of our own edge or relay: (server, id).
    crash_cut: BTreeSet<(usize, SessionId)>,
    restarted: BTreeSet<usize>,
    stale_seen: Vec<StaleSeen>,
    seen_activity: u64,
    ips: BTreeMap<String, IpAddr>,
    /// The bad line's two ends: (`proxy`, `edge`), or (`mua`, `mail1`) in
    /// the plain-POP3 baseline.
    line: (&'static str, &'static str),
    variant: Variant,
    /// The edge journal's disk (every seed's edge has one).
    disk: SimDisk,
}

impl Harness {
    fn new(seed: u64, params: Params, rng: EnvRng, variant: Variant) -> Harness {
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
        let msg_rng = rng.fork();
        let servers: Vec<Server> = params
            .servers
            .iter()
            .map(|sp| {
                let store = MailStore::with_rng(&rng);
                store.add_user(&sp.user, &sp.password);
                Server {
                    host: sp.host.clone(),
                    user: sp.user.clone(),
                    password: sp.password.clone(),
                    store,
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
                ..ServerConfig::default()
            };
            let store = s.store.clone();
            let host = s.host.clone();
            let inc = Arc::new(AtomicU32::new(0));
            sim.host(s.host.as_str(), move || {
                let store = store.clone();
                let config = config.clone();
                let host = host.clone();
                let n = inc.fetch_add(1, Ordering::SeqCst);
                async move {
                    let env = SimEnv::new(seed, &host, n);
                    let l = env.bind("0.0.0.0:110").await?;
                    if let Err(e) = causeway_mailserver::serve(env, l, store, config).await {
                        tracing::error!(target: "sim::harness", error = %e, "mail server stopped");
                    }
                    Ok(())
                }
            });
        }
        nodes::add_relay(&mut sim, seed, &params, &keys, &nodes, &relay_taps);
        let disk = SimDisk::new();
        disk.set_sync_latency(params.journal_sync);
        nodes::add_edge(&mut sim, seed, &params, &keys, &nodes, &disk, variant);
        let specs = servers
            .iter()
            .zip(&params.servers)
            .map(|(s, sp)| nodes::server_spec(&s.host, &s.user, &s.password, sp.via_relay))
            .collect();
        nodes::add_proxy(
            &mut sim,
            seed,
            &keys,
            specs,
            &mua_user,
            &mua_password,
            &line_taps,
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
        let m = Mua {
            env: SimEnv::new(seed, "mua", 0),
            params: params.mua.clone(),
            user,
            password,
            proxy,
            direct,
            stores: servers
                .iter()
                .map(|s| StoreRef {
                    host: s.host.clone(),
                    user: s.user.clone(),
                    store: s.store.clone(),
                })
                .collect(),
            log: mua.clone(),
            stop_after: params.fault_phase,
        };
        sim.client("mua", async move {
            // Let the servers, edge and proxy bind first.
            m.env.sleep(Duration::from_millis(500)).await;
            m.run().await
        });
        // The bad line is slower than the rest.
        sim.set_link_max_message_latency(line.0, line.1, params.line_latency_max);
        if params.faults.line_flaky > 0.0 {
            sim.set_link_fail_rate(line.0, line.1, params.faults.line_flaky);
        }
        let mut ips = BTreeMap::new();
        for h in ["edge", "relay", "proxy", "mua"] {
            ips.insert(h.to_owned(), sim.lookup(h));
        }
        let fault_ms = params.fault_phase.as_millis() as u64;
        let mut deliveries: Vec<u64> = (0..params.deliveries)
            .map(|_| rng.range(1_000, fault_ms))
            .collect();
        deliveries.sort_unstable();
        let mut h = Harness {
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
            log: Rc::new(RefCell::new(Vec::new())),
            active: Vec::new(),
            deliveries,
            delivered: 0,
            coverage: BTreeSet::new(),
            notes: Vec::new(),
            violations: Vec::new(),
            crash_cut: BTreeSet::new(),
            restarted: BTreeSet::new(),
            stale_seen: Vec::new(),
            seen_activity: 0,
            ips,
            line,
            variant,
            disk,
        };
        h.log_event(format!("seed {seed}"));
        for i in 0..h.servers.len() {
            for _ in 0..h.params.servers[i].initial_messages {
                h.deliver(i);
            }
        }
        if h.params.servers.len() >= 2 {
            h.coverage.insert(Cov::TwoPlusServers);
        }
        if h.params.via_relay() {
            h.coverage.insert(Cov::ViaRelay);
        }
        h
    }

    fn now_ms(&self) -> u64 {
        self.sim.elapsed().as_millis() as u64
    }

    fn log_event(&self, text: String) {
        let at = self.now_ms();
        tracing::info!(target: "sim::harness", "{text}");
        self.log
            .borrow_mut()
            .push(format!("{:>9} harness: {text}", fmt_ms(at)));
    }

    fn deliver(&mut self, i: usize) {
        self.delivered += 1;
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
        let uidl = s.store.deliver(&s.user, &body).expect("user exists");
        let during = self.mua.with(|m| m.in_session);
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

    fn outage(&self) -> u64 {
        let f = &self.params.faults;
        self.rng.range(
            f.outage_min.as_millis() as u64,
            f.outage_max.as_millis() as u64 + 1,
        )
    }

    fn active(&self, u: &Undo) -> bool {
        self.active.iter().any(|(_, a)| a == u)
    }

    fn line_faulted(&self) -> bool {
        self.active(&Undo::RepairLine) || self.active(&Undo::ReleaseLine)
    }

    fn schedule(&mut self, undo: Undo) {
        let at = self.now_ms() + self.outage();
        self.active.push((at, undo));
    }

    fn undo(&mut self, u: &Undo) {
        match u {
            Undo::RepairLine => self.sim.repair(self.line.0, self.line.1),
            Undo::ReleaseLine => self.sim.release(self.line.0, self.line.1),
            Undo::BounceProxy => self.sim.bounce("proxy"),
            Undo::RepairRelayLink => self.sim.repair("edge", "relay"),
            Undo::BounceRelay => self.sim.bounce("relay"),
            Undo::BounceEdge => self.sim.bounce("edge"),
            Undo::BounceServer(i) => {
                let h = self.servers[*i].host.clone();
                self.sim.bounce(h.as_str());
            }
        }
        self.log_event(format!("undo {u:?}"));
    }

    /// Marks the live server sessions of `host`'s node as cut by its crash.
    fn note_crash_cut(&mut self, host: &str) {
        let ip = self.ips[host];
        for (i, s) in self.servers.iter().enumerate() {
            for r in s.store.live_sessions() {
                if r.peer.ip() == ip {
                    self.crash_cut.insert((i, r.id));
                }
            }
        }
    }

    fn mua_activity(&self) -> Option<Activity> {
        self.mua.with(|m| m.activity.clone())
    }

    fn cut_line(&mut self, why: &str) {
        if self.line_faulted() {
            return;
        }
        match self.mua_activity() {
            Some(Activity::Retr(_)) => {
                self.coverage.insert(Cov::CutDuringRetr);
            }
            Some(Activity::DeleAcked(_)) => {
                self.coverage.insert(Cov::CutAfterDeleAck);
            }
            _ => {}
        }
        self.coverage.insert(Cov::LineCut);
        self.sim.partition(self.line.0, self.line.1);
        self.log_event(format!("cut the line ({why})"));
        self.schedule(Undo::RepairLine);
    }

    fn crash_relay(&mut self, why: &str) {
        if self.active(&Undo::BounceRelay) {
            return;
        }
        self.coverage.insert(Cov::RelayCrash);
        let pending = self.nodes.edge_pending_work();
        if pending > 0 && self.params.via_relay() {
            self.coverage.insert(Cov::RelayCrashPendingDelete);
        }
        self.note_crash_cut("relay");
        self.sim.crash("relay");
        self.log_event(format!("crash relay ({why}; edge pending work {pending})"));
        self.schedule(Undo::BounceRelay);
    }

    /// Rolls each fault class once (called once per simulated second).
    fn roll_faults(&mut self) {
        let f = self.params.faults.clone();
        let roll = |h: &Self, p: f64| p > 0.0 && h.rng.chance(p);
        if roll(self, f.line_cut) {
            self.cut_line("scheduled");
        }
        if roll(self, f.line_hold) && !self.line_faulted() {
            self.coverage.insert(Cov::LineHold);
            self.sim.hold(self.line.0, self.line.1);
            self.log_event("hold the line".into());
            self.schedule(Undo::ReleaseLine);
        }
        if roll(self, f.proxy_crash) && !self.active(&Undo::BounceProxy) {
            self.coverage.insert(Cov::ProxyCrash);
            self.sim.crash("proxy");
            self.log_event("crash proxy".into());
            self.schedule(Undo::BounceProxy);
        }
        if roll(self, f.relay_link_cut)
            && self.params.via_relay()
            && !self.active(&Undo::RepairRelayLink)
        {
            self.coverage.insert(Cov::RelayLinkCut);
            self.sim.partition("edge", "relay");
            self.log_event("cut edge<->relay".into());
            self.schedule(Undo::RepairRelayLink);
        }
        if roll(self, f.relay_crash) && self.params.via_relay() {
            self.crash_relay("scheduled");
        }
        if roll(self, f.edge_crash) && !self.active(&Undo::BounceEdge) {
            self.coverage.insert(Cov::EdgeCrash);
            self.note_crash_cut("edge");
            let pending = self.nodes.edge_pending_work();
            if pending > 0 {
                self.coverage.insert(Cov::EdgeCrashPendingWork);
            }
            self.sim.crash("edge");
            self.coverage.insert(Cov::EdgeCrashWithJournal);
            let lost = self.disk.crash();
            self.log_event(format!(
                "crash edge (pending work {pending}, journal lost {lost} unsynced commits)"
            ));
            self.schedule(Undo::BounceEdge);
        }
        if roll(self, f.journal_fail) {
            let n = self.rng.range(1, 4) as usize;
            self.disk.fail_next_commits(n);
            self.coverage.insert(Cov::JournalCommitFailed);
            self.log_event(format!("the journal's next {n} commits will fail"));
        }
        if roll(self, f.server_restart) {
            let i = self.rng.range(0, self.servers.len() as u64) as usize;
            if !self.active(&Undo::BounceServer(i)) {
                self.coverage.insert(Cov::ServerRestart);
                self.restarted.insert(i);
                let h = self.servers[i].host.clone();
                self.sim.crash(h.as_str());
                self.log_event(format!("crash {h}"));
                self.schedule(Undo::BounceServer(i));
            }
        }
    }

    /// Faults that answer what the mail client just did.
    fn react(&mut self) {
        let (seq, act) = self.mua.with(|m| (m.activity_seq, m.activity.clone()));
        if seq == self.seen_activity {
            return;
        }
        self.seen_activity = seq;
        let f = self.params.faults.clone();
        match act {
            Some(Activity::Retr(k))
                if f.cut_during_retr > 0.0 && self.rng.chance(f.cut_during_retr) =>
            {
                self.cut_line(&format!("during RETR of {}:{}", k.0, k.1));
            }
            Some(Activity::DeleAcked(k)) => {
                if f.cut_after_dele_ack > 0.0 && self.rng.chance(f.cut_after_dele_ack) {
                    self.cut_line(&format!("right after DELE {}:{} +OK", k.0, k.1));
                }
                let relayed = self.params.server(&k.0).is_some_and(|s| s.via_relay);
                if relayed
                    && f.relay_crash_after_dele > 0.0
                    && self.rng.chance(f.relay_crash_after_dele)
                {
                    self.crash_relay(&format!("right after DELE {}:{} +OK", k.0, k.1));
                }
            }
            _ => {}
        }
    }

    /// Once a second: what the stores show now (stale locks).
    fn observe(&mut self) {
        let now_unix = self.unix_now();
        for (i, s) in self.servers.iter().enumerate() {
            for l in s.store.locks_held(now_unix) {
                if let Some(until) = l.stale_until_ms {
                    if !self
                        .stale_seen
                        .iter()
                        .any(|x| x.server == i && x.holder == l.session)
                    {
                        self.stale_seen.push(StaleSeen {
                            server: i,
                            holder: l.session,
                            from_ms: now_unix,
                            until_ms: until,
                        });
                    }
                }
            }
        }
    }

    /// The wall clock the simulated hosts see (`SimEnv::unix_millis`).
    fn unix_now(&self) -> u64 {
        nodes::SIM_EPOCH_UNIX_MILLIS + self.now_ms()
    }

    fn step(&mut self) -> bool {
        match self.sim.step() {
            Ok(_) => {
                trace::set_now_ms(self.now_ms());
                true
            }
            Err(e) => {
                self.violations.push(Violation {
                    invariant: 0,
                    key: None,
                    message: format!("simulation error: {e}"),
                });
                false
            }
        }
    }

    fn run(mut self) -> Outcome {
        let fault_end = self.params.fault_phase.as_millis() as u64;
        let quiet = self.params.quiet_phase.as_millis() as u64;
        let mut quiet_from: Option<u64> = None;
        let mut settled_since: Option<u64> = None;
        let mut ok = true;
        while ok {
            ok = self.step();
            let now = self.now_ms();
            // Undo faults whose time is up (during the fault phase).
            let mut due = Vec::new();
            self.active.retain(|(at, u)| {
                if *at <= now {
                    due.push(u.clone());
                    false
                } else {
                    true
                }
            });
            for u in due {
                self.undo(&u);
            }
            if now < fault_end {
                self.react();
                while self.deliveries.first().is_some_and(|t| *t <= now) {
                    self.deliveries.remove(0);
                    let i = self.rng.range(0, self.servers.len() as u64) as usize;
                    self.deliver(i);
                }
                if now % 1000 == 0 {
                    self.roll_faults();
                }
            }
            if now % 1000 == 0 {
                self.observe();
            }
            let mua_done = self.mua.with(|m| m.finished);
            if quiet_from.is_none() && now >= fault_end && mua_done {
                self.enter_quiet();
                quiet_from = Some(now);
            }
            if let Some(q) = quiet_from {
                if now >= q + quiet {
                    break;
                }
                // Quiescence: once nothing is live anywhere (no session, no
                // lock, stale or not, no owed work, no link) for a whole
                // minute, nothing is left to happen; stop waiting early.
                if now % 1000 == 0 {
                    if self.settled() {
                        let since = *settled_since.get_or_insert(now);
                        if now - since >= SETTLED_FOR {
                            self.log_event(format!(
                                "settled {}s into the quiet phase",
                                (now - q) / 1000
                            ));
                            break;
                        }
                    } else {
                        settled_since = None;
                    }
                }
            }
            if now > fault_end + 3_600_000 {
                self.violations.push(Violation {
                    invariant: 0,
                    key: None,
                    message: "the mail client did not finish within an hour after the fault phase"
                        .into(),
                });
                break;
            }
        }
        if ok {
            self.settle_journal();
            self.check_settled();
            self.check_fresh_sessions();
        }
        self.check_messages();
        self.check_taps();
        self.finish_coverage();
        let mut violations = self.mua.with(|m| {
            m.violations
                .iter()
                .map(|(inv, key, msg)| Violation {
                    invariant: *inv,
                    key: key.clone(),
                    message: msg.clone(),
                })
                .collect::<Vec<_>>()
        });
        violations.append(&mut self.violations);
        let mut log = self.log.borrow().clone();
        log.extend(self.mua.with(|m| m.events.clone()));
        log.sort();
        Outcome {
            seed: self.seed,
            params: self.params.clone(),
            violations,
            notes: self.notes.clone(),
            coverage: self.coverage.clone(),
            log,
            trace: None,
            sim_ms: self.now_ms(),
            variant: self.variant,
            focus: self.params.focus,
        }
    }

    /// Nothing live anywhere: no server session or lock, no edge session,
    /// replica, owed work or replay, no relay link. (Journal entries whose
    /// erase failed wait for the edge's next start: `settle_journal`.)
    fn settled(&self) -> bool {
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
        stores && edge && relay
    }

    fn enter_quiet(&mut self) {
        self.log_event("quiet phase: repairing every link, restarting every host".into());
        let active = std::mem::take(&mut self.active);
        for (_, u) in active {
            self.undo(&u);
        }
        self.disk.clear_faults();
        // Quiet means the mail servers too: no more stalls, drops or delays
        // (seed 1538: with them on, every stall timed the edge out into a
        // 120 s stale lock, until its completion deadline ran out).
        for s in &self.servers {
            s.store.set_faults_enabled(false);
        }
        if self.params.faults.line_flaky > 0.0 {
            self.sim.set_link_fail_rate(self.line.0, self.line.1, 0.0);
            self.sim.repair(self.line.0, self.line.1);
        }
    }

    /// A journal may keep entries whose work was committed but whose erase
    /// failed (an injected disk fault): the edge redoes them, harmlessly, at
    /// its next start. So if entries remain, restart the edge once more and
    /// let its replay finish them; invariant 6 then wants the journal empty.
    fn settle_journal(&mut self) {
        let d = self.disk.clone();
        if d.owed_entries() == 0 {
            return;
        }
        self.coverage.insert(Cov::JournalReplayAtEnd);
        self.log_event(format!(
            "journal holds {} owed entries after the quiet phase: restarting the edge to replay them",
            d.owed_entries()
        ));
        self.sim.bounce("edge");
        let start = self.now_ms();
        while self.now_ms() - start < 1_200_000 {
            if !self.step() {
                return;
            }
            let done = self
                .nodes
                .edges()
                .last()
                .is_some_and(|st| st.replay_finished());
            if done {
                break;
            }
        }
        // Let the replay's server sessions end, by the quiet phase's own
        // rule (nothing live for a whole minute), not a fixed wait: a server
        // stalled mid-session (an injected fault) notices a connection the
        // replay gave up on only when its stall ends (seed 446: 95 s).
        let start = self.now_ms();
        let mut settled_since: Option<u64> = None;
        while self.now_ms() - start < 1_200_000 {
            if !self.step() {
                return;
            }
            let now = self.now_ms();
            if now % 1000 == 0 {
                if self.settled() {
                    if now - *settled_since.get_or_insert(now) >= SETTLED_FOR {
                        break;
                    }
                } else {
                    settled_since = None;
                }
            }
        }
        self.log_event(format!(
            "after the replay the journal holds {} owed entries",
            d.owed_entries()
        ));
    }

    /// Invariants 5 and 6: nothing left running, no lock held, sessions QUIT.
    fn check_settled(&mut self) {
        let now_unix = self.unix_now();
        for (i, s) in self.servers.iter().enumerate() {
            for l in s.store.locks_held(now_unix) {
                self.violations.push(Violation {
                    invariant: 5,
                    key: None,
                    message: format!(
                        "{}: lock on {} still held after the quiet phase by {} (acquired {}, stale until {:?})",
                        s.host, l.user, l.session, l.acquired_ms, l.stale_until_ms
                    ),
                });
            }
            for r in s.store.sessions() {
                let exempt_crash = self.crash_cut.contains(&(i, r.id));
                let exempt_fault = !r.faults.is_empty();
                let exempt_restart =
                    r.end_kind() == Some(EndKind::ServerShutdown) && self.restarted.contains(&i);
                match r.end_kind() {
                    None => self.violations.push(Violation {
                        invariant: 5,
                        key: None,
                        message: format!(
                            "{}: session {} from {} still live after the quiet phase; commands: {}",
                            s.host,
                            r.id,
                            r.peer,
                            r.commands.join("; ")
                        ),
                    }),
                    Some(EndKind::Quit) => {}
                    Some(kind) if exempt_crash || exempt_fault || exempt_restart => {
                        let why = if exempt_crash {
                            "cut by a crash of our node"
                        } else if exempt_fault {
                            "server-injected fault"
                        } else {
                            "server restart"
                        };
                        self.notes.push(format!(
                            "{}: session {} ended {kind} (exempt: {why})",
                            s.host, r.id
                        ));
                    }
                    Some(kind) => self.violations.push(Violation {
                        invariant: 5,
                        key: None,
                        message: format!(
                            "{}: session {} from {} ({}) ended {kind}, not with QUIT; commands: {}",
                            s.host,
                            r.id,
                            r.peer,
                            self.host_of(r.peer.ip()),
                            r.commands.join("; ")
                        ),
                    }),
                }
            }
        }
        let edges = self.nodes.edges();
        let last = edges.len().saturating_sub(1);
        for (inc, st) in edges.iter().enumerate() {
            if st.live_replicas() != 0 || st.live_sessions() != 0 {
                self.violations.push(Violation {
                    invariant: 6,
                    key: None,
                    message: format!(
                        "edge incarnation {inc}: {} replicas and {} sessions alive after every session ended",
                        st.live_replicas(),
                        st.live_sessions()
                    ),
                });
            }
            if st.pending_work() != 0 {
                self.violations.push(Violation {
                    invariant: 6,
                    key: None,
                    message: format!(
                        "edge incarnation {inc}: {} pieces of acknowledged work still pending after the quiet phase",
                        st.pending_work()
                    ),
                });
            }
            for rec in st.sessions() {
                if !rec.abandoned.is_empty() {
                    self.notes.push(format!(
                        "edge incarnation {inc}: session {} gave up on {:?}",
                        rec.id, rec.abandoned
                    ));
                }
                // A crashed incarnation's records stop where it died.
                if rec.end.is_none() && inc == last {
                    self.violations.push(Violation {
                        invariant: 6,
                        key: None,
                        message: format!("edge incarnation {inc}: session {} never ended", rec.id),
                    });
                }
            }
        }
        let d = &self.disk;
        if d.owed_entries() != 0 {
            self.violations.push(Violation {
                invariant: 6,
                key: None,
                message: format!(
                    "the edge journal still holds {} owed entries after the quiet phase ({d:?})",
                    d.owed_entries()
                ),
            });
        }
        if let Some(st) = edges.last() {
            let abandoned = st.replay_abandoned();
            if !abandoned.is_empty() {
                self.notes
                    .push(format!("edge replay gave up on {abandoned:?}"));
            }
            if st.journal_unreadable_entries() != 0 {
                self.violations.push(Violation {
                    invariant: 6,
                    key: None,
                    message: format!(
                        "the edge found {} unreadable journal entries",
                        st.journal_unreadable_entries()
                    ),
                });
            }
        }
        for (inc, st) in self.nodes.relays().iter().enumerate() {
            if st.live_links() != 0 || st.live_server_sessions() != 0 {
                self.violations.push(Violation {
                    invariant: 6,
                    key: None,
                    message: format!(
                        "relay incarnation {inc}: {} links and {} server sessions alive after the quiet phase",
                        st.live_links(),
                        st.live_server_sessions()
                    ),
                });
            }
        }
    }

    fn host_of(&self, ip: IpAddr) -> String {
        self.ips
            .iter()
            .find(|(_, a)| **a == ip)
            .map_or_else(|| ip.to_string(), |(h, _)| h.clone())
    }

    /// Invariant 5, second half: a fresh plain POP3 session logs in to every
    /// server and QUITs.
    fn check_fresh_sessions(&mut self) {
        let results: Arc<Mutex<Vec<CheckResult>>> = Arc::default();
        let out = results.clone();
        let creds: Vec<(String, String, String)> = self
            .servers
            .iter()
            .map(|s| (s.host.clone(), s.user.clone(), s.password.clone()))
            .collect();
        let seed = self.seed;
        self.sim.client("checker", async move {
            let env = SimEnv::new(seed, "checker", 0);
            for (host, user, pw) in creds {
                // Up to five tries: the server's own injected faults (stalls,
                // drops) may still hit one; a stale lock or a wedged server
                // fails them all.
                let mut errors = Vec::new();
                for _ in 0..5 {
                    let r: Result<(), String> = async {
                        let stream = env
                            .timeout(
                                Duration::from_secs(30),
                                "connect",
                                env.connect(&format!("{host}:110")),
                            )
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                        let timeouts = Timeouts {
                            greeting: Duration::from_secs(300),
                            command: Duration::from_secs(300),
                            per_mib: Duration::from_secs(60),
                        };
                        let (mut c, _) = Pop3Client::start(env.clone(), stream, timeouts, 64 << 20)
                            .await
                            .map_err(|e| e.to_string())?;
                        c.login(user.as_bytes(), pw.as_bytes())
                            .await
                            .map_err(|e| format!("login: {e}"))?;
                        c.quit().await.map_err(|e| format!("QUIT: {e}"))?;
                        Ok(())
                    }
                    .await;
                    match r {
                        Ok(()) => {
                            errors.clear();
                            break;
                        }
                        Err(e) => {
                            errors.push(e);
                            // A drop the server injected into this very try
                            // leaves a stale lock: outwait it.
                            env.sleep(MAX_STALE + Duration::from_secs(10)).await;
                        }
                    }
                }
                let r = if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join(" / "))
                };
                out.lock().unwrap().push((host, r));
            }
            Ok(())
        });
        let start = self.now_ms();
        loop {
            match self.sim.step() {
                Ok(true) => break,
                Ok(false) if self.now_ms() - start < 3_600_000 => {}
                Ok(false) => {
                    self.violations.push(Violation {
                        invariant: 5,
                        key: None,
                        message: "the final plain POP3 check did not finish in an hour".into(),
                    });
                    return;
                }
                Err(e) => {
                    self.violations.push(Violation {
                        invariant: 0,
                        key: None,
                        message: format!("simulation error in the final check: {e}"),
                    });
                    return;
                }
            }
            trace::set_now_ms(self.now_ms());
        }
        for (host, r) in results.lock().unwrap().iter() {
            if let Err(e) = r {
                self.violations.push(Violation {
                    invariant: 5,
                    key: None,
                    message: format!("{host}: a fresh session after the quiet phase failed: {e}"),
                });
            }
        }
    }

    /// Invariants 1, 3 and 4, per message.
    fn check_messages(&mut self) {
        let (asked, acked, retrieved, abandoned) = self.mua.with(|m| {
            (
                m.dele_asked.clone(),
                m.dele_acked.clone(),
                m.retrieved.clone(),
                m.retr_abandoned.clone(),
            )
        });
        for s in &self.servers {
            for m in s.store.messages(&s.user) {
                let key: MsgKey = (s.host.clone(), m.uidl.as_str().to_owned());
                if let Some(by) = m.deleted_by {
                    self.coverage.insert(Cov::DeleteCommitted);
                    if !asked.contains(&key) {
                        let cmds = s
                            .store
                            .session(by)
                            .map(|r| r.commands.join("; "))
                            .unwrap_or_default();
                        self.violations.push(Violation {
                            invariant: 1,
                            key: Some(key.clone()),
                            message: format!(
                                "deleted by session {by} but the mail client never asked; that session's commands: {cmds}"
                            ),
                        });
                    }
                } else if acked.contains(&key) {
                    self.violations.push(Violation {
                        invariant: 4,
                        key: Some(key.clone()),
                        message: "DELE was answered +OK to the mail client but the message is still on the server after the quiet phase".into(),
                    });
                }
                if let Some(by) = m.seen_by {
                    self.coverage.insert(Cov::SeenCommitted);
                    if !retrieved.contains_key(&key) {
                        if abandoned.contains(&key) {
                            self.notes.push(format!(
                                "{}:{} marked read though the mail client abandoned its RETR mid-body (exempt: the body was written to the mail client's socket)",
                                key.0, key.1
                            ));
                        } else {
                            self.violations.push(Violation {
                                invariant: 3,
                                key: Some(key.clone()),
                                message: format!(
                                    "marked read by session {by} but the mail client never received it whole"
                                ),
                            });
                        }
                    }
                }
            }
        }
    }

    /// Invariant 7: no password or mail body in the clear on the edge <->
    /// relay link (the relay's accepted streams) or on the bad line (the
    /// proxy's connections to the edge).
    fn check_taps(&mut self) {
        let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
        for s in &self.servers {
            needles.push((
                format!("{}'s password", s.host),
                s.password.clone().into_bytes(),
            ));
            for m in s.store.messages(&s.user) {
                let body = s.store.body(&s.user, m.uidl.as_str()).unwrap_or_default();
                for n in body_needles(&body) {
                    needles.push((format!("body of {}:{}", s.host, m.uidl), n));
                }
            }
        }
        let links = self
            .relay_taps
            .entries()
            .into_iter()
            .filter(|e| e.accepted)
            .map(|e| (format!("edge<->relay ({})", e.label), e.log))
            .chain(
                self.line_taps
                    .entries()
                    .into_iter()
                    .filter(|e| !e.accepted)
                    .map(|e| (format!("bad line ({})", e.label), e.log)),
            );
        for (what, n) in &needles {
            if self.disk.contains(n) {
                self.violations.push(Violation {
                    invariant: 7,
                    key: None,
                    message: format!("{what} seen in plaintext at rest in the edge journal"),
                });
            }
        }
        for (link, log) in links {
            for hay in [log.read_bytes(), log.written_bytes()] {
                for (what, n) in &needles {
                    if find(&hay, n) {
                        self.violations.push(Violation {
                            invariant: 7,
                            key: None,
                            message: format!("{what} seen in plaintext on {link}"),
                        });
                    }
                }
            }
        }
    }

    fn finish_coverage(&mut self) {
        let (gave_up, mid) = self.mua.with(|m| (m.gave_up, m.gave_up_mid_retr));
        if gave_up > 0 {
            self.coverage.insert(Cov::MuaGaveUp);
        }
        if mid > 0 {
            self.coverage.insert(Cov::MuaGaveUpMidRetr);
        }
        if self
            .nodes
            .edges()
            .iter()
            .any(|e| e.superseded_sessions() > 0)
        {
            self.coverage.insert(Cov::LostSessionEnded);
        }
        for (i, s) in self.servers.iter().enumerate() {
            for r in s.store.sessions() {
                for f in &r.faults {
                    match f {
                        causeway_mailserver::InjectedFault::Stall(_) => {
                            self.coverage.insert(Cov::ServerStall);
                        }
                        causeway_mailserver::InjectedFault::DropMidResponse { .. } => {
                            self.coverage.insert(Cov::ServerDropMidReply);
                        }
                    }
                }
                let refused = r.user.is_none() && r.commands.iter().any(|c| c.starts_with("PASS"));
                if refused {
                    self.coverage.insert(Cov::LockInUse);
                    if self.stale_seen.iter().any(|x| {
                        x.server == i
                            && x.holder != r.id
                            && r.started_ms + 1_000 >= x.from_ms
                            && r.started_ms <= x.until_ms
                    }) {
                        self.coverage.insert(Cov::StaleLockMet);
                    }
                }
            }
        }
    }
}

/// Strings that occur in `body` and nowhere else: its Message-ID line and
/// a slice from its middle.
fn body_needles(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(p) = find_pos(body, b"Message-ID: ") {
        let end = body[p..]
            .iter()
            .position(|b| *b == b'\r')
            .map_or(body.len(), |e| p + e);
        out.push(body[p..end].to_vec());
    }
    if body.len() >= 200 {
        let mid = body.len() / 2;
        out.push(body[mid..mid + 48].to_vec());
    }
    out
}

fn find_pos(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
