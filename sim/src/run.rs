//! One seeded run: build the world, drive the fault phase, settle in a
//! quiet phase, then ask the oracle.
//!
//! In the fault phase the harness, every simulated second, rolls each fault
//! class of this seed's swarm and delivers new mail at drawn moments; it also
//! reacts to what the mail client is doing (`faults`). The quiet phase
//! starts once the fault phase is over and the mail client has finished:
//! every link is repaired, every host is up, and the run goes on until
//! nothing has been live for a minute (or for longer than any stale lock,
//! idle timeout and the edge's completion deadline). Then the invariants
//! are checked (`oracle`).

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;

use causeway_net::{EnvRng, derive_seed};

use crate::coverage::Cov;
use crate::faults::Faults;
use crate::journal_watch::JournalWatch;
use crate::oracle::{self, Verdict, Violation};
use crate::report::{Outcome, RunOptions, TraceMode};
use crate::swarm::{Focus, Params};
use crate::trace;
use crate::world::{Variant, World};

/// How long everything must stay idle before the quiet phase may end early.
const SETTLED_FOR: u64 = 20_000;

/// True when built with `--cfg tokio_unstable` (the workspace's
/// `.cargo/config.toml` sets it): turmoil then seeds tokio's per-runtime rng,
/// which `tokio::select!` draws from to pick among ready branches. Without it
/// that one choice comes from the OS, and a run could differ on replay.
pub const FULLY_SEEDED: bool = cfg!(tokio_unstable);

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
    if let Some(f) = focus.or_else(|| Focus::drawn(seed)) {
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

struct Harness {
    world: World,
    faults: Faults,
    verdict: Verdict,
}

impl Harness {
    fn new(seed: u64, params: Params, rng: EnvRng, variant: Variant) -> Harness {
        let world = World::build(seed, params, rng, variant);
        let faults = Faults::new(&world);
        let mut h = Harness {
            world,
            faults,
            verdict: Verdict::default(),
        };
        let w = &mut h.world;
        w.log_event(format!("seed {seed}"));
        for i in 0..w.servers.len() {
            for _ in 0..w.params.servers[i].initial_messages {
                w.deliver(i);
            }
            if w.params.servers[i].flagged_elsewhere {
                w.flag_elsewhere(i);
            }
        }
        if w.params.servers.len() >= 2 {
            w.coverage.insert(Cov::TwoPlusServers);
        }
        if w.params.via_relay() {
            w.coverage.insert(Cov::ViaRelay);
        }
        h
    }

    fn step(&mut self) -> bool {
        match self.world.step() {
            Ok(()) => true,
            Err(e) => {
                self.verdict.violations.push(Violation {
                    invariant: 0,
                    key: None,
                    message: format!("simulation error: {e}"),
                });
                false
            }
        }
    }

    fn run(mut self) -> Outcome {
        let fault_end = self.world.params.fault_phase.as_millis() as u64;
        let quiet = self.world.params.quiet_phase.as_millis() as u64;
        let mut quiet_from: Option<u64> = None;
        let mut settled_since: Option<u64> = None;
        let mut ok = true;
        let mut journal = JournalWatch::default();
        while ok {
            ok = self.step();
            let now = self.world.now_ms();
            journal.after_step(&mut self.world, &mut self.verdict);
            self.faults.undo_due(&mut self.world, now);
            if now < fault_end {
                self.faults.fault_phase_tick(&mut self.world, now);
                self.world.phone_tick(now);
            }
            if now % 1000 == 0 {
                self.faults.observe(&self.world);
            }
            let mua_done = self.world.mua.with(|m| m.all_done());
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
                    if self.world.settled() {
                        let since = *settled_since.get_or_insert(now);
                        if now - since >= SETTLED_FOR {
                            self.world.log_event(format!(
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
                self.verdict.violations.push(Violation {
                    invariant: 0,
                    key: None,
                    message: "the mail client did not finish within an hour after the fault phase"
                        .into(),
                });
                break;
            }
        }
        let (w, v) = (&mut self.world, &mut self.verdict);
        if ok {
            oracle::check_settled(w, &self.faults, v);
            oracle::check_fresh_sessions(w, v);
        }
        oracle::check_messages(w, &self.faults, v);
        oracle::check_appends(w, v);
        oracle::check_flags(w, v);
        oracle::check_stars_shown(w, v);
        oracle::check_unreads(w, v);
        oracle::check_expunges_final(w, v);
        oracle::check_liveness(w, &self.faults, v);
        oracle::check_taps(w, v);
        oracle::finish_coverage(w, &self.faults);
        let mut violations = w.mua.with(|m| {
            m.violations
                .iter()
                .map(|(inv, key, msg)| Violation {
                    invariant: *inv,
                    key: key.clone(),
                    message: msg.clone(),
                })
                .collect::<Vec<_>>()
        });
        violations.append(&mut v.violations);
        let mut log = w.log();
        log.extend(w.mua.with(|m| m.events.clone()));
        log.sort();
        Outcome {
            seed: w.seed,
            params: w.params.clone(),
            violations,
            notes: v.notes.clone(),
            coverage: w.coverage.clone(),
            log,
            trace: None,
            sim_ms: w.now_ms(),
            variant: w.variant,
            focus: w.params.focus,
        }
    }

    fn enter_quiet(&mut self) {
        let w = &mut self.world;
        w.log_event("quiet phase: repairing every link, restarting every host".into());
        self.faults.undo_all(w);
        // Both journals' disks: commits queued to fail and not yet struck
        // would otherwise fail the client proxy's retries to erase settled
        // entries all through the quiet phase (seed 305 `--focus servers`:
        // eleven queued, one retry every 80 s, one entry left at the end).
        w.disk.clear_faults();
        if let Some(d) = &w.proxy_disk {
            d.clear_faults();
        }
        // Quiet means the mail servers too: no more stalls, drops or delays
        // (seed 1538: with them on, every stall timed the edge out into a
        // 120 s stale lock, until its completion deadline ran out).
        for s in &w.servers {
            s.store.set_faults_enabled(false);
        }
        // The user's other mail client takes its \\Deleted flags back
        // (what the edge's log asks for when it holds a delete back).
        for (s, p) in w.servers.iter().zip(&w.params.servers) {
            if p.flagged_elsewhere {
                s.store.flag_deleted_elsewhere(&s.user, None, false);
            }
        }
        w.flags_withdrawn_ms = Some(w.unix_now());
        if w.params.faults.line_flaky > 0.0 {
            w.sim.set_link_fail_rate(w.line.0, w.line.1, 0.0);
            w.sim.repair(w.line.0, w.line.1);
        }
    }
}
