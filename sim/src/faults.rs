//! The faults of one seed, as the run goes: rolled once per simulated
//! second from the seed's swarm (cuts, holds, crashes, restarts, journal
//! failures), reactive ones that answer what the mail client just did (a cut
//! during a RETR, right after a DELE `+OK`), new mail at drawn moments, and
//! each fault undone after a drawn outage. Also what the harness saw of the
//! faults' effects (sessions cut by our own crashes, stale locks), which the
//! oracle needs to tell a fault's consequence from a bug.

use std::collections::BTreeSet;

use causeway_mailserver::SessionId;
use causeway_net::{EnvRng, derive_seed};

use crate::coverage::Cov;
use crate::swarm::Focus;
use crate::workload::{Activity, MsgKey};
use crate::world::World;

/// Where the line is cut during RETRs, how often an APPEND meets a cut
/// too: APPENDs are few (an IMAP session that can store mail), and each
/// must be judged through cuts (invariant 10).
const APPEND_CUT_CHANCE: f64 = 0.5;

/// A fault in force, and what undoes it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Undo {
    RepairLine,
    ReleaseLine,
    BounceProxy,
    RepairRelayLink,
    ReleaseRelayLink,
    BounceRelay,
    BounceEdge,
    BounceServer(usize),
}

/// The client proxy's reads from the line, as [`Faults::cut_mid_stream`]
/// follows them.
#[derive(Default)]
struct LineRead {
    bytes: u64,
    grew_ms: u64,
    since_ms: u64,
}

/// A pause in the line's bytes longer than this ends a stream: on the
/// slowest line a packet comes every 300 ms.
const GAP_MS: u64 = 1_000;

/// A stale lock the harness saw: (server index, holder, first seen, until).
pub struct StaleSeen {
    pub server: usize,
    pub holder: SessionId,
    pub from_ms: u64,
    pub until_ms: u64,
}

pub struct Faults {
    /// Faults in force, with the time each is undone.
    active: Vec<(u64, Undo)>,
    /// When new mail arrives (simulated ms), earliest first.
    deliveries: Vec<u64>,
    /// The mail client's activity counter last reacted to.
    seen_activity: u64,
    /// Server sessions cut by a crash of our own edge or relay: (server, id).
    pub crash_cut: BTreeSet<(usize, SessionId)>,
    /// Servers the harness restarted.
    pub restarted: BTreeSet<usize>,
    pub stale_seen: Vec<StaleSeen>,
    /// When a fault was in force (or its effects could be): (from, until),
    /// simulated ms. A mail session outside all of them met no fault.
    pub windows: Vec<(u64, u64)>,
    /// Those of [`Faults::windows`] that were a cut or hold of the bad line
    /// alone: what a resume covers (invariant 9).
    pub line_windows: Vec<(u64, u64)>,
    /// Between two edge crashes (simulated ms) in which a journal commit
    /// failed: a read mark the edge could not journal is made from memory
    /// only, so the crash may lose it (the message stays unread: benign).
    pub memory_only_reads: Vec<(u64, u64)>,
    /// The last edge crash: (simulated ms, journal commits failed by then).
    last_edge_crash: (u64, u64),
    /// The bytes the client proxy had read from the line by the last tick,
    /// when they last grew and since when they have kept growing (no gap
    /// of a second), simulated ms (see [`Faults::cut_mid_stream`]).
    line_read: LineRead,
    /// Draws for those cuts, apart from the harness's stream so that they
    /// move no other draw of the seed.
    mid_stream_rng: EnvRng,
    /// Draws for twins ([`Faults::twin_after_delete`]), apart likewise.
    twin_rng: EnvRng,
    /// Draws for cuts at an IMAP recheck ([`Activity::ImapRecheck`]),
    /// apart likewise.
    recheck_rng: EnvRng,
    /// POP3 QUITs seen, and draws for crashing the client proxy behind
    /// one ([`Faults::crash_proxy_after_quit`]), apart likewise.
    quits_seen: u64,
    quit_rng: EnvRng,
    /// When the client proxy crashes, drawn at a QUIT.
    proxy_crash_due: Option<u64>,
}

impl Faults {
    /// Draws when new mail will arrive during the fault phase.
    pub fn new(w: &World) -> Faults {
        let fault_ms = w.params.fault_phase.as_millis() as u64;
        let mut deliveries: Vec<u64> = (0..w.params.deliveries)
            .map(|_| w.rng.range(1_000, fault_ms))
            .collect();
        deliveries.sort_unstable();
        Faults {
            active: Vec::new(),
            deliveries,
            seen_activity: 0,
            crash_cut: BTreeSet::new(),
            restarted: BTreeSet::new(),
            stale_seen: Vec::new(),
            line_windows: Vec::new(),
            memory_only_reads: Vec::new(),
            last_edge_crash: (0, 0),
            line_read: LineRead::default(),
            mid_stream_rng: EnvRng::from_seed(derive_seed(w.seed, &[b"mid-stream cut"])),
            twin_rng: EnvRng::from_seed(derive_seed(w.seed, &[b"twin after delete"])),
            recheck_rng: EnvRng::from_seed(derive_seed(w.seed, &[b"cut at an IMAP recheck"])),
            quits_seen: 0,
            quit_rng: EnvRng::from_seed(derive_seed(w.seed, &[b"proxy crash after QUIT"])),
            proxy_crash_due: None,
            windows: if w.params.faults.line_flaky > 0.0 {
                // Random losses on the line, the whole fault phase.
                vec![(0, fault_ms)]
            } else {
                Vec::new()
            },
        }
    }

    /// Undoes the faults whose outage is over.
    pub fn undo_due(&mut self, w: &mut World, now: u64) {
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
            Self::undo(w, &u);
        }
    }

    /// One tick of the fault phase: react to the mail client, deliver mail
    /// that is due, and once a second roll every fault class.
    pub fn fault_phase_tick(&mut self, w: &mut World, now: u64) {
        self.react(w);
        self.cut_mid_stream(w);
        self.crash_proxy_after_quit(w, now);
        while self.deliveries.first().is_some_and(|t| *t <= now) {
            self.deliveries.remove(0);
            let i = w.rng.range(0, w.servers.len() as u64) as usize;
            w.deliver(i);
        }
        if now % 1000 == 0 {
            self.roll_faults(w);
        }
    }

    /// The quiet phase begins: every fault in force is undone at once.
    pub fn undo_all(&mut self, w: &mut World) {
        for (_, u) in std::mem::take(&mut self.active) {
            Self::undo(w, &u);
        }
    }

    fn outage(&self, w: &World) -> u64 {
        let f = &w.params.faults;
        w.rng.range(
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

    fn schedule(&mut self, w: &mut World, undo: Undo) {
        let now = w.now_ms();
        let at = now + self.outage(w);
        self.active.push((at, undo));
        self.windows.push((now, at));
    }

    fn undo(w: &mut World, u: &Undo) {
        match u {
            Undo::RepairLine => w.sim.repair(w.line.0, w.line.1),
            Undo::ReleaseLine => w.sim.release(w.line.0, w.line.1),
            Undo::BounceProxy => w.sim.bounce("proxy"),
            Undo::RepairRelayLink => w.sim.repair("edge", "relay"),
            Undo::ReleaseRelayLink => w.sim.release("edge", "relay"),
            Undo::BounceRelay => w.sim.bounce("relay"),
            Undo::BounceEdge => w.sim.bounce("edge"),
            Undo::BounceServer(i) => {
                let h = w.servers[*i].host.clone();
                w.sim.bounce(h.as_str());
            }
        }
        w.log_event(format!("undo {u:?}"));
    }

    /// On a server with odd UIDLs, now and then: an exact copy of a message
    /// whose DELE was just acknowledged arrives (a broken migration), and
    /// half the time the edge crashes with it, so
    /// that the delete is owed in a server session whose listing holds
    /// both. The edge must then leave both alone and drop that one delete
    /// with a log line, erasing part of a group's journal work while the
    /// rest of it stays owed: the rare state `journal-header-erased-early`
    /// needs. Twins stay, so the rest of the fault phase is a fault window
    /// (the front refuses to serve or delete either).
    ///
    /// Drawn by `--focus twins` and by standard seeds whose mail user
    /// speaks POP3 only: the oracle cannot yet tell an IMAP read of a copy
    /// from one of the original (docs/simulation.md). Seeds whose client
    /// proxy crashes draw them too since protocol 12: a restarted proxy
    /// forgets which deletes were done and carries them again, with the
    /// witness its journal kept.
    fn twin_after_delete(&mut self, w: &mut World, k: &MsgKey) {
        let p = &w.params;
        let drawn = match p.focus {
            Some(f) => f == Focus::Twins,
            None => p.mua.imap_share == 0.0,
        };
        if !drawn {
            return;
        }
        let Some(i) = w.servers.iter().position(|s| s.host == k.0) else {
            return;
        };
        if !w.params.servers[i].odd_uidls || !self.twin_rng.chance(twin_chance(w, i, k.1)) {
            return;
        }
        w.deliver_twin(i, k.1);
        self.windows
            .push((w.now_ms(), w.params.fault_phase.as_millis() as u64));
        if self.twin_rng.chance(0.5) {
            self.crash_edge(w, &format!("right after a twin of {}:{} arrived", k.0, k.1));
        }
    }

    /// Marks the live server sessions of `host`'s node as cut by its crash.
    fn note_crash_cut(&mut self, w: &mut World, host: &str) {
        let ip = w.ips[host];
        for (i, s) in w.servers.iter().enumerate() {
            for r in s.store.live_sessions() {
                if r.peer.ip() == ip {
                    self.crash_cut.insert((i, r.id));
                }
            }
        }
    }

    fn cut_line(&mut self, w: &mut World, why: &str) {
        if self.line_faulted() {
            return;
        }
        match w.mua.with(|m| m.activity.clone()) {
            Some(Activity::Retr(_)) => {
                w.coverage.insert(Cov::CutDuringRetr);
            }
            Some(Activity::DeleAcked(_)) => {
                w.coverage.insert(Cov::CutAfterDeleAck);
            }
            Some(Activity::SeenStored(_)) => {
                w.coverage.insert(Cov::CutAfterSeenStored);
            }
            Some(Activity::ImapRecheck) => {
                w.coverage.insert(Cov::CutAtImapRecheck);
            }
            Some(Activity::Appending) => {
                w.coverage.insert(Cov::CutDuringAppend);
            }
            _ => {}
        }
        w.coverage.insert(Cov::LineCut);
        w.sim.partition(w.line.0, w.line.1);
        w.log_event(format!("cut the line ({why})"));
        self.schedule(w, Undo::RepairLine);
        self.line_windows.extend(self.windows.last().copied());
    }

    fn crash_relay(&mut self, w: &mut World, why: &str) {
        if self.active(&Undo::BounceRelay) {
            return;
        }
        w.coverage.insert(Cov::RelayCrash);
        let pending = w.nodes.edge_pending_work();
        if pending > 0 && w.params.via_relay() {
            w.coverage.insert(Cov::RelayCrashPendingDelete);
        }
        self.note_crash_cut(w, "relay");
        w.sim.crash("relay");
        w.log_event(format!("crash relay ({why}; edge pending work {pending})"));
        self.schedule(w, Undo::BounceRelay);
    }

    fn crash_edge(&mut self, w: &mut World, why: &str) {
        if self.active(&Undo::BounceEdge) {
            return;
        }
        w.coverage.insert(Cov::EdgeCrash);
        self.note_crash_cut(w, "edge");
        let pending = w.nodes.edge_pending_work();
        if pending > 0 {
            w.coverage.insert(Cov::EdgeCrashPendingWork);
        }
        // The disk first: the host's tasks, dropped next, would otherwise
        // see their commits through (`SimDisk`: a commit nobody waits for
        // still completes, unless the machine is gone).
        let lost = w.disk.crash();
        let keys = w.disk.durable_keys();
        let census = causeway_edge::journal::census(keys.iter().map(Vec::as_slice));
        if !census.quits_sent.is_empty() {
            w.coverage.insert(Cov::EdgeCrashQuitInDoubt);
        }
        w.sim.crash("edge");
        let (_, failed, _) = w.disk.counts();
        let (since, failed_before) = self.last_edge_crash;
        if failed > failed_before {
            self.memory_only_reads.push((since, w.now_ms()));
        }
        self.last_edge_crash = (w.now_ms(), failed);
        w.coverage.insert(Cov::EdgeCrashWithJournal);
        w.log_event(format!(
            "crash edge ({why}; pending work {pending}, journal lost {lost} unsynced commits)"
        ));
        self.schedule(w, Undo::BounceEdge);
    }

    /// Rolls each fault class once (called once per simulated second).
    fn roll_faults(&mut self, w: &mut World) {
        let f = w.params.faults.clone();
        let roll = |w: &World, p: f64| p > 0.0 && w.rng.chance(p);
        if roll(w, f.line_cut) {
            self.cut_line(w, "scheduled");
        }
        if roll(w, f.line_hold) && !self.line_faulted() {
            w.coverage.insert(Cov::LineHold);
            w.sim.hold(w.line.0, w.line.1);
            w.log_event("hold the line".into());
            self.schedule(w, Undo::ReleaseLine);
            self.line_windows.extend(self.windows.last().copied());
        }
        if roll(w, f.proxy_crash) {
            self.crash_proxy(w, "scheduled");
        }
        if roll(w, f.relay_link_cut)
            && w.params.via_relay()
            && !self.active(&Undo::RepairRelayLink)
            && !self.active(&Undo::ReleaseRelayLink)
        {
            w.coverage.insert(Cov::RelayLinkCut);
            w.sim.partition("edge", "relay");
            w.log_event("cut edge<->relay".into());
            self.schedule(w, Undo::RepairRelayLink);
        }
        if roll(w, f.relay_crash) && w.params.via_relay() {
            self.crash_relay(w, "scheduled");
        }
        if roll(w, f.edge_crash) {
            self.crash_edge(w, "scheduled");
        }
        if roll(w, f.journal_fail) {
            let n = w.rng.range(1, 4) as usize;
            w.disk.fail_next_commits(n);
            if let Some(d) = &w.proxy_disk {
                d.fail_next_commits(n);
            }
            // The failing commits may come at any later moment.
            let fault_end = w.params.fault_phase.as_millis() as u64;
            self.windows.push((w.now_ms(), fault_end));
            w.coverage.insert(Cov::JournalCommitFailed);
            w.log_event(format!("the journals' next {n} commits will fail"));
        }
        if roll(w, f.server_restart) {
            let i = w.rng.range(0, w.servers.len() as u64) as usize;
            if !self.active(&Undo::BounceServer(i)) {
                w.coverage.insert(Cov::ServerRestart);
                self.restarted.insert(i);
                let h = w.servers[i].host.clone();
                w.sim.crash(h.as_str());
                w.log_event(format!("crash {h}"));
                self.schedule(w, Undo::BounceServer(i));
            }
        }
    }

    /// Crashes the client proxy (unless it is down already).
    fn crash_proxy(&mut self, w: &mut World, why: &str) {
        if self.active(&Undo::BounceProxy) {
            return;
        }
        w.coverage.insert(Cov::ProxyCrash);
        if let Some(d) = &w.proxy_disk {
            let lost = d.crash();
            if !d.is_empty() {
                w.coverage.insert(Cov::ProxyCrashWithDeletes);
            }
            w.log_event(format!(
                "proxy delete journal: {} entries, {lost} unsynced commits lost",
                d.len()
            ));
        }
        w.sim.crash("proxy");
        w.log_event(format!("crash proxy ({why})"));
        self.schedule(w, Undo::BounceProxy);
    }

    /// In seeds whose client proxy crashes and keeps a delete journal, a
    /// POP3 QUIT may be followed by a crash of the proxy within two of the
    /// line's longest delays: often after its last batch of deletes and its
    /// `Quit` reached the edge and before `Held` and `Bye` came back, so
    /// the restarted proxy carries deletes the edge has done (seed 72540,
    /// which the scheduled crashes reached once in 70,000 seeds).
    fn crash_proxy_after_quit(&mut self, w: &mut World, now: u64) {
        let quits = w.mua.with(|m| m.quits_sent);
        if quits != self.quits_seen {
            self.quits_seen = quits;
            let f = &w.params.faults;
            if f.proxy_crash > 0.0
                && w.proxy_disk.is_some()
                && self.proxy_crash_due.is_none()
                && self.quit_rng.chance(quit_crash_chance(w.params.focus))
            {
                let within = 2 * w.params.line_latency_max.as_millis() as u64;
                self.proxy_crash_due = Some(now + self.quit_rng.range(0, within.max(1)));
            }
        }
        if self.proxy_crash_due.is_some_and(|at| at <= now) {
            self.proxy_crash_due = None;
            self.crash_proxy(w, "behind a QUIT");
        }
    }
}

/// How often a POP3 QUIT is followed by a crash of the client proxy, in
/// seeds whose proxy crashes: most QUITs under `--focus twins`, where a
/// carried delete meets an exact copy that arrived after it was taken
/// (seed 72540); the standard sweep meets that state through the seeds
/// that draw that focus ([`Focus::DRAWN`]).
/// How often a message whose DELE was just acknowledged gets a copy: most
/// of the time under `--focus twins` when no message of its maildrop came
/// after it, so that it has no witness (a delete of it done twice takes
/// the copy: seed 72540); else three times in ten.
fn twin_chance(w: &World, i: usize, uid: u32) -> f64 {
    let s = &w.servers[i];
    let last = s
        .store
        .messages(&s.user)
        .iter()
        .filter(|m| m.deleted_at_ms.is_none())
        .all(|m| m.uid <= uid);
    match w.params.focus {
        Some(Focus::Twins) if last => 0.9,
        _ => 0.3,
    }
}

fn quit_crash_chance(focus: Option<Focus>) -> f64 {
    match focus {
        Some(Focus::Twins) => 0.8,
        _ => 0.3,
    }
}

impl Faults {
    /// Cuts the line while the edge is streaming to the client proxy (its
    /// bytes have come in for the last few ticks), in the seeds that cut
    /// during RETRs. A cut at a RETR itself mostly lands before the edge
    /// sent a byte of the body, or after the body came ahead of the RETR;
    /// one in the middle of a stream leaves the edge's compression frame
    /// open, so the resume primes the new stream with the cut one's
    /// history (and a body continues part-way). At the highest rate, one
    /// stream of 4 s in three is cut.
    fn cut_mid_stream(&mut self, w: &mut World) {
        let f = w.params.faults.cut_during_retr;
        if f <= 0.0 {
            return;
        }
        let read = w.line_taps.read_by_connections();
        let now = w.now_ms();
        let r = &mut self.line_read;
        if read > r.bytes {
            if now - r.grew_ms > GAP_MS {
                r.since_ms = now;
            }
            r.bytes = read;
            r.grew_ms = now;
        }
        let streaming = now - r.grew_ms <= GAP_MS && now - r.since_ms >= GAP_MS;
        if streaming && !self.line_faulted() && self.mid_stream_rng.chance(f / 40.0) {
            w.coverage.insert(Cov::CutMidStream);
            self.cut_line(w, "while the edge streams to the proxy");
        }
    }

    /// Faults that answer what the mail client just did.
    fn react(&mut self, w: &mut World) {
        let (seq, act) = w.mua.with(|m| (m.activity_seq, m.activity.clone()));
        if seq == self.seen_activity {
            return;
        }
        self.seen_activity = seq;
        let f = w.params.faults.clone();
        match act {
            Some(Activity::Retr(k))
                if f.cut_during_retr > 0.0 && w.rng.chance(f.cut_during_retr) =>
            {
                self.cut_line(w, &format!("during RETR of {}:{}", k.0, k.1));
            }
            // Mid-upload, or while the answer comes back: the edge must
            // store the message once, and an edge that dies meanwhile
            // leaves the outcome unknown (at most once).
            Some(Activity::Appending) => {
                if f.cut_during_retr > 0.0 && w.rng.chance(APPEND_CUT_CHANCE) {
                    self.cut_line(w, "during an APPEND");
                } else if f.edge_crash_after_dele > 0.0 && w.rng.chance(f.edge_crash_after_dele) {
                    self.crash_edge(w, "during an APPEND");
                }
            }
            Some(Activity::DeleAcked(k)) => {
                if f.cut_after_dele_ack > 0.0 && w.rng.chance(f.cut_after_dele_ack) {
                    self.cut_line(w, &format!("right after DELE {}:{} +OK", k.0, k.1));
                }
                let relayed = w.params.server(&k.0).is_some_and(|s| s.via_relay);
                if relayed
                    && f.relay_crash_after_dele > 0.0
                    && w.rng.chance(f.relay_crash_after_dele)
                {
                    self.crash_relay(w, &format!("right after DELE {}:{} +OK", k.0, k.1));
                }
                if f.edge_crash_after_dele > 0.0 && w.rng.chance(f.edge_crash_after_dele) {
                    self.crash_edge(w, &format!("right after DELE {}:{} +OK", k.0, k.1));
                }
                self.twin_after_delete(w, &k);
            }
            // The line cut before the client's next command: the answered
            // STORE must stand.
            Some(Activity::SeenStored(k))
                if f.cut_after_dele_ack > 0.0 && w.rng.chance(f.cut_after_dele_ack) =>
            {
                self.cut_line(
                    w,
                    &format!("right after STORE \\Seen of {}:{} OK", k.0, k.1),
                );
            }
            // The read marks the session earned went to the session behind
            // unproved; the NOOP may end it with a QUIT the cut loses, and
            // those marks must be sent again in the next one.
            Some(Activity::ImapRecheck)
                if f.cut_after_dele_ack > 0.0 && self.recheck_rng.chance(f.cut_after_dele_ack) =>
            {
                self.cut_line(w, "as an IMAP NOOP went out after BODY[] reads");
            }
            Some(Activity::RsetSent(hosts)) => {
                // An RSET undoing deletes on a relayed server: hold what the
                // edge sends the relay from now on, so that the RSET it
                // forwards can be lost with the link below.
                let relayed = hosts
                    .iter()
                    .any(|h| w.params.server(h).is_some_and(|s| s.via_relay));
                if relayed
                    && f.relay_cut_at_rset > 0.0
                    && w.rng.chance(f.relay_cut_at_rset)
                    && !self.active(&Undo::RepairRelayLink)
                    && !self.active(&Undo::ReleaseRelayLink)
                {
                    w.sim.hold("edge", "relay");
                    w.log_event("hold edge<->relay while RSET is on its way".into());
                    self.schedule(w, Undo::ReleaseRelayLink);
                }
            }
            Some(Activity::RsetAcked) => {
                w.coverage.insert(Cov::RsetAcked);
                // The line cut at once: what the proxy kept of the undone
                // deletes would be carried into a later session.
                if f.cut_after_dele_ack > 0.0 && w.rng.chance(f.cut_after_dele_ack) {
                    w.coverage.insert(Cov::CutAfterRsetAck);
                    self.cut_line(w, "right after RSET +OK");
                }
                // The RSET's +OK reached the mail client: cut the relay link
                // (dropping an RSET held on it) or crash the relay now,
                // before the server may have seen the RSET.
                if !w.params.via_relay() {
                    return;
                }
                if self.active(&Undo::ReleaseRelayLink) {
                    self.active.retain(|(_, u)| *u != Undo::ReleaseRelayLink);
                    w.coverage.insert(Cov::RelayCutAfterRset);
                    w.sim.partition("edge", "relay");
                    w.log_event(
                        "cut edge<->relay, dropping what it held, right after RSET +OK".into(),
                    );
                    self.schedule(w, Undo::RepairRelayLink);
                } else if f.relay_crash_after_dele > 0.0 {
                    if !w.rng.chance(0.5) {
                        w.coverage.insert(Cov::RelayCutAfterRset);
                        self.crash_relay(w, "right after RSET +OK");
                    } else if !self.active(&Undo::RepairRelayLink) {
                        w.coverage.insert(Cov::RelayCutAfterRset);
                        w.sim.partition("edge", "relay");
                        w.log_event("cut edge<->relay right after RSET +OK".into());
                        self.schedule(w, Undo::RepairRelayLink);
                    }
                }
            }
            _ => {}
        }
    }

    /// Once a second: what the stores show now (stale locks).
    pub fn observe(&mut self, w: &World) {
        let now_unix = w.unix_now();
        for (i, s) in w.servers.iter().enumerate() {
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
}
