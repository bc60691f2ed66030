//! The oracle: what must hold, judged from the model servers' own records
//! and the mail user's own record, never from the nodes' counters alone
//! (those are checked too, as a second opinion: a node that says it is idle
//! must be).
//!
//! Invariants, numbered as in `docs/simulation.md`: 1 no message lost, 2
//! bodies byte-identical (checked by the workload as each body arrives), 3
//! read only if received whole, 4 acknowledged work committed (deletes and
//! read marks), 5 no lock left and every server session QUIT, 6 no replica,
//! session or owed work outlives its session, 7 no plaintext on our links
//! or at rest, 8 a session that meets no fault works, 9 a cut a resume
//! covers is never seen by the mail client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_mailserver::EndKind;
use causeway_net::{Env, SimEnv};
use causeway_pop3::{Pop3Client, Timeouts};

use crate::coverage::Cov;
use crate::faults::Faults;
use crate::swarm::MAX_STALE;
use crate::trace;
use crate::workload::{Ended, MsgKey};
use crate::world::World;

mod messages;
mod silence;
mod taps;
pub use messages::{
    check_appends, check_expunges_final, check_flags, check_messages, check_stars_shown,
    check_unreads,
};
pub use taps::check_taps;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-7 as in `docs/simulation.md`; 0 for the harness's own liveness and
    /// panics.
    pub invariant: u8,
    /// The message involved: (server, the store's UID).
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
            write!(f, " server {s} message uid {u}")?;
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
        4 => "acknowledged work committed (DELE, read marks)",
        5 => "no lock left, sessions QUIT",
        6 => "no replica outlives its session",
        7 => "no plaintext on our links",
        8 => "a session that meets no fault works",
        9 => "a cut a resume covers is never seen",
        10 => "an APPEND answered OK is stored once, one unanswered at most once",
        11 => "stored flags on the IMAP server as the user left them",
        12 => "an IMAP expunge is final in every later session",
        13 => "a listing at the IMAP front shows the server's flags",
        14 => "a message marked unread stays unread on its server until read again",
        15 => "a text search finds the messages whose text matches, and no other",
        _ => "?",
    }
}

/// What the oracle found: violations, and remarks for the person reading a
/// failure (exemptions applied, work given up on).
#[derive(Default)]
pub struct Verdict {
    pub violations: Vec<Violation>,
    pub notes: Vec<String>,
}

/// One server's fresh-session check: (host, outcome).
type CheckResult = (String, Result<(), String>);

/// Invariants 5 and 6: nothing left running, no lock held, sessions QUIT.
pub fn check_settled(w: &World, faults: &Faults, v: &mut Verdict) {
    let now_unix = w.unix_now();
    for (i, s) in w.servers.iter().enumerate() {
        for l in s.store.locks_held(now_unix) {
            v.violations.push(Violation {
                invariant: 5,
                key: None,
                message: format!(
                    "{}: lock on {} still held after the quiet phase by {} (acquired {}, stale until {:?})",
                    s.host, l.user, l.session, l.acquired_ms, l.stale_until_ms
                ),
            });
        }
        for r in s.store.sessions() {
            let exempt_crash = faults.crash_cut.contains(&(i, r.id));
            let exempt_fault = !r.faults.is_empty();
            let exempt_restart =
                r.end_kind() == Some(EndKind::ServerShutdown) && faults.restarted.contains(&i);
            match r.end_kind() {
                None => v.violations.push(Violation {
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
                    v.notes.push(format!(
                        "{}: session {} ended {kind} (exempt: {why})",
                        s.host, r.id
                    ));
                }
                Some(kind) => v.violations.push(Violation {
                    invariant: 5,
                    key: None,
                    message: format!(
                        "{}: session {} from {} ({}) ended {kind}, not with QUIT; commands: {}",
                        s.host,
                        r.id,
                        r.peer,
                        w.host_of(r.peer.ip()),
                        r.commands.join("; ")
                    ),
                }),
            }
        }
    }
    let edges = w.nodes.edges();
    let last = edges.len().saturating_sub(1);
    for (inc, st) in edges.iter().enumerate() {
        if st.live_replicas() != 0 || st.live_sessions() != 0 {
            v.violations.push(Violation {
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
            v.violations.push(Violation {
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
                v.notes.push(format!(
                    "edge incarnation {inc}: session {} gave up on {:?}",
                    rec.id, rec.abandoned
                ));
            }
            // A crashed incarnation's records stop where it died.
            if rec.end.is_none() && inc == last {
                v.violations.push(Violation {
                    invariant: 6,
                    key: None,
                    message: format!("edge incarnation {inc}: session {} never ended", rec.id),
                });
            }
        }
    }
    let d = &w.disk;
    if causeway_edge::journal::owed_entries(&d.durable()) != 0 {
        v.violations.push(Violation {
            invariant: 6,
            key: None,
            message: format!(
                "the edge journal still holds {} owed entries after the quiet phase ({d:?})",
                causeway_edge::journal::owed_entries(&d.durable())
            ),
        });
    }
    // A header left without entries owes nothing, but it holds the
    // server's password: it goes with the group's last entry. (The records
    // of deletes taken from a client proxy stay until its next `Hello`
    // says it can no longer carry them; they hold no credentials:
    // `causeway_edge::journal::taken`.)
    let durable = d.durable();
    let census = causeway_edge::journal::census(durable.iter().map(|(k, _)| k.as_slice()));
    // A record of the work a QUIT was sent for goes with its group's
    // header, or once a listing settled the batch; one left would make
    // the next start doubt work that is done.
    if !census.quits_sent.is_empty() && census.entries.is_empty() {
        v.violations.push(Violation {
            invariant: 6,
            key: None,
            message: format!(
                "the edge journal still holds {} records of a QUIT sent after the quiet phase, \
                 and no owed work ({d:?})",
                census.quits_sent.len()
            ),
        });
    }
    let left = census.headers.len();
    if left != 0 && causeway_edge::journal::owed_entries(&durable) == 0 {
        v.violations.push(Violation {
            invariant: 6,
            key: None,
            message: format!(
                "the edge journal still holds {left} group headers (with credentials) after \
                 the quiet phase, and no owed work ({d:?})"
            ),
        });
    }
    if let Some(d) = &w.proxy_disk {
        let owed = causeway_client::owed_deletes(&d.durable());
        if owed != 0 {
            v.violations.push(Violation {
                invariant: 6,
                key: None,
                message: format!(
                    "the client proxy's delete journal still holds {owed} entries after the quiet phase ({d:?})"
                ),
            });
        }
    }
    if let Some(st) = edges.last() {
        if st.journal_unreadable_entries() != 0 {
            v.violations.push(Violation {
                invariant: 6,
                key: None,
                message: format!(
                    "the edge found {} unreadable journal entries",
                    st.journal_unreadable_entries()
                ),
            });
        }
    }
    for (inc, st) in w.nodes.relays().iter().enumerate() {
        if st.live_links() != 0 || st.live_server_sessions() != 0 {
            v.violations.push(Violation {
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

/// Invariant 5, second half: a fresh plain POP3 session logs in to every
/// server and QUITs.
pub fn check_fresh_sessions(w: &mut World, v: &mut Verdict) {
    let results: Arc<Mutex<Vec<CheckResult>>> = Arc::default();
    let out = results.clone();
    let creds: Vec<(String, String, String)> = w
        .servers
        .iter()
        .map(|s| (s.host.clone(), s.user.clone(), s.password.clone()))
        .collect();
    let seed = w.seed;
    w.sim.client("checker", async move {
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
    let start = w.now_ms();
    loop {
        match w.sim.step() {
            Ok(true) => break,
            Ok(false) if w.now_ms() - start < 3_600_000 => {}
            Ok(false) => {
                v.violations.push(Violation {
                    invariant: 5,
                    key: None,
                    message: "the final plain POP3 check did not finish in an hour".into(),
                });
                return;
            }
            Err(e) => {
                v.violations.push(Violation {
                    invariant: 0,
                    key: None,
                    message: format!("simulation error in the final check: {e}"),
                });
                return;
            }
        }
        trace::set_now_ms(w.now_ms());
    }
    for (host, r) in results.lock().unwrap().iter() {
        if let Err(e) = r {
            v.violations.push(Violation {
                invariant: 5,
                key: None,
                message: format!("{host}: a fresh session after the quiet phase failed: {e}"),
            });
        }
    }
}

/// Coverage of the IMAP servers' strains, from the model's record: a
/// delete held back (a session without UIDPLUS that searched for
/// `\\Deleted` and never expunged), and a message another client flagged
/// still there although a session of ours expunged in that folder while
/// it was flagged. (That it is never deleted at all is invariant 1: the
/// mail user never saw it, so never deleted it.)
pub(super) fn imap_strains_covered(w: &mut World) {
    let withdrawn = w.flags_withdrawn_ms.unwrap_or(u64::MAX);
    for (s, p) in w.servers.iter().zip(&w.params.servers) {
        let sessions = s.store.sessions();
        let logs =
            |r: &causeway_mailserver::SessionRecord, c: &str| r.commands.iter().any(|x| x == c);
        if !p.imap_uidplus
            && sessions
                .iter()
                .any(|r| logs(r, "UID SEARCH") && !logs(r, "EXPUNGE"))
        {
            w.coverage.insert(Cov::ImapExpungeHeldBack);
        }
        // Logged in (it selected) where only AUTHENTICATE PLAIN works.
        if p.imap_logins == causeway_mailserver::ImapLogins::PlainOnly
            && sessions
                .iter()
                .any(|r| logs(r, "AUTHENTICATE PLAIN") && logs(r, "SELECT"))
        {
            w.coverage.insert(Cov::ImapPlainOnlyLogin);
        }
        let expunged_while_flagged = s.store.messages(&s.user).iter().any(|m| {
            m.deleted_at_ms.is_some_and(|at| at < withdrawn)
                && m.deleted_by
                    .and_then(|by| s.store.session(by))
                    .is_some_and(|r| logs(&r, "UID EXPUNGE") || logs(&r, "EXPUNGE"))
        });
        let kept = w.flagged_elsewhere.iter().any(|(host, uid)| {
            *host == s.host
                && s.store
                    .messages(&s.user)
                    .iter()
                    .any(|m| m.uid == *uid && m.deleted_by.is_none())
        });
        if expunged_while_flagged && kept {
            w.coverage.insert(Cov::ImapFlaggedElsewhereKept);
        }
    }
}

/// Liveness: a mail session that met no fault must simply work: every
/// command `+OK`, QUIT `+OK`. A session met no fault when no fault was in
/// force from a stale lock's lifetime before it began until it ended, no
/// server-injected fault hit a server session meanwhile, and no other mail
/// client of the user was in a session at the same time (whose lock it
/// would compete for).
pub fn check_liveness(w: &mut World, faults: &Faults, v: &mut Verdict) {
    let sessions = w.mua.with(|m| m.sessions.clone());
    let mut windows = faults.windows.clone();
    for s in &w.servers {
        for r in s.store.sessions() {
            if !r.faults.is_empty() {
                let start = r
                    .started_ms
                    .saturating_sub(crate::world::nodes::SIM_EPOCH_UNIX_MILLIS);
                let end = r.end.map_or(u64::MAX, |e| {
                    e.at_ms
                        .saturating_sub(crate::world::nodes::SIM_EPOCH_UNIX_MILLIS)
                });
                windows.push((start, end));
            }
        }
    }
    // A server that cannot expunge while another client's \\Deleted stands
    // (no UIDPLUS) holds deletes back until the quiet phase: the sessions
    // until then may end with QUIT refused, as they must.
    if w.params
        .servers
        .iter()
        .any(|p| p.flagged_elsewhere && !p.imap_uidplus)
    {
        let withdrawn = w.flags_withdrawn_ms.map_or(u64::MAX, |t| {
            t.saturating_sub(crate::world::nodes::SIM_EPOCH_UNIX_MILLIS)
        });
        windows.push((0, withdrawn));
    }
    let margin = MAX_STALE.as_millis() as u64 + 10_000;
    for s in &sessions {
        let from = s.start_ms.saturating_sub(margin);
        let faulted = windows.iter().any(|(a, b)| *a <= s.end_ms && *b >= from);
        let overlapped = sessions
            .iter()
            .any(|o| o.client != s.client && o.start_ms <= s.end_ms && o.end_ms >= s.start_ms);
        if overlapped || s.ended == Ended::GaveUp {
            continue;
        }
        if faulted {
            check_resumed(w, faults, &windows, s, from, v);
            continue;
        }
        w.coverage.insert(Cov::CleanSession);
        if w.params.line_rate.is_some_and(|r| r.is_slow()) {
            w.coverage.insert(Cov::SlowLine);
        }
        if s.ended != Ended::Quit || !s.refused.is_empty() {
            v.violations.push(Violation {
                invariant: 8,
                key: None,
                message: format!(
                    "client {} session {} met no fault yet did not simply work: ended {:?}, refused {:?}",
                    s.client, s.number, s.ended, s.refused
                ),
            });
        }
    }
}

pub fn finish_coverage(w: &mut World, faults: &Faults) {
    let m = w.mua.with(|m| {
        [
            (m.gave_up > 0, Cov::MuaGaveUp),
            (m.gave_up_mid_retr > 0, Cov::MuaGaveUpMidRetr),
            (m.rsets_acked > 0, Cov::RsetAcked),
            (m.pipelined > 0, Cov::Pipelined),
            (m.imap_sessions > 0, Cov::ImapFrontSession),
            (m.imap_expunged > 0, Cov::ImapFrontExpunged),
            (m.imap_other_folder_expunged > 0, Cov::ImapFrontOtherFolder),
            (m.imap_switched_folder > 0, Cov::ImapFrontSwitchedFolder),
            (m.imap_seen_stored > 0, Cov::ImapFrontSeenStored),
            (m.imap_reads_owed > 0, Cov::ImapFrontReadOwed),
            (m.imap_new_listed > 0, Cov::ImapFrontNewListed),
            (m.imap_uids_kept > 0, Cov::ImapUidKept),
            (m.imap_hung_up > 0, Cov::ImapHungUp),
            (m.imap_pipelined > 0, Cov::ImapPipelined),
            (m.imap_pipelined_left > 0, Cov::ImapPipelinedLeft),
            (m.imap_parts_read > 0, Cov::ImapPartRead),
            (m.imap_moved_to_trash > 0, Cov::ImapMovedToTrash),
            (m.imap_put_back > 0, Cov::ImapPutBack),
            (m.imap_append_uid_given > 0, Cov::ImapAppendUidGiven),
            (m.imap_append_uid_kept > 0, Cov::ImapAppendUidKept),
            (m.imap_searched > 0, Cov::ImapTextSearched),
            (m.imap_searched_pop3 > 0, Cov::Pop3TextSearched),
            (m.imap_searched_by_day > 0, Cov::ImapDaySearched),
            (m.long_sessions > 0, Cov::LongSession),
            (m.clients > 1, Cov::TwoClients),
            (m.tops > 0, Cov::TopAsked),
        ]
    });
    for (reached, c) in m {
        if reached {
            w.coverage.insert(c);
        }
    }
    if w.nodes.edges().iter().any(|e| e.carried_taken_before() > 0) {
        w.coverage.insert(Cov::CarriedTakenBefore);
    }
    if w.nodes.edges().iter().any(|e| e.adopted_items() > 0) {
        w.coverage.insert(Cov::OwedWorkAdopted);
    }
    if w.nodes
        .edges()
        .iter()
        .any(|e| e.streamed_ahead_unread() > 0)
    {
        w.coverage.insert(Cov::StreamedAheadUnread);
    }
    if w.nodes.edges().iter().any(|e| e.superseded_sessions() > 0) {
        w.coverage.insert(Cov::LostSessionEnded);
    }
    if w.nodes.edges().iter().any(|e| e.resumes() > 0) {
        w.coverage.insert(Cov::Resumed);
    }
    if w.nodes
        .edges()
        .iter()
        .any(|e| e.resumed_partial_bodies() > 0)
    {
        w.coverage.insert(Cov::ResumedPartialBody);
    }
    if w.nodes.edges().iter().any(|e| e.resumes_primed() > 0) {
        w.coverage.insert(Cov::ResumePrimed);
    }
    for (i, s) in w.servers.iter().enumerate() {
        for r in s.store.sessions() {
            for f in &r.faults {
                match f {
                    causeway_mailserver::InjectedFault::Stall(_) => {
                        w.coverage.insert(Cov::ServerStall);
                    }
                    causeway_mailserver::InjectedFault::QuitRefused => {
                        w.coverage.insert(Cov::ServerRefusedQuit);
                    }
                    causeway_mailserver::InjectedFault::DropMidResponse { .. } => {
                        w.coverage.insert(Cov::ServerDropMidReply);
                    }
                }
            }
            let refused = r.user.is_none() && r.commands.iter().any(|c| c.starts_with("PASS"));
            if refused {
                w.coverage.insert(Cov::LockInUse);
                if faults.stale_seen.iter().any(|x| {
                    x.server == i
                        && x.holder != r.id
                        && r.started_ms + 1_000 >= x.from_ms
                        && r.started_ms <= x.until_ms
                }) {
                    w.coverage.insert(Cov::StaleLockMet);
                }
            }
        }
    }
}

/// How long after the login's `+OK`, and before QUIT is sent, a cut
/// begins for a resume to cover it: the client proxy's first message after
/// `Welcome` (which lets the edge keep the session) is on the line for up
/// to the line's latency then.
const RESUME_MARGIN_MS: u64 = 2_000;

/// How long before the answer to a NOOP or SELECT that listed the folder
/// again its new edge session's `Welcome` may have come (the front lists
/// it in process, then answers).
const RELISTED_BEFORE_MS: u64 = 1_000;

/// Invariant 9, a cut the resume covers is never seen: a session whose
/// only faults were cuts or holds of the bad line (each shorter than the
/// client proxy's resume time), all begun after its login was answered and
/// before it sent QUIT, works as if there had been none. Before the login
/// the edge session is not resumable yet (the proxy has no `Ticket`); once
/// QUIT reached the edge it is finishing, and a cut then is the mail
/// client's to see.
fn check_resumed(
    w: &mut World,
    faults: &Faults,
    windows: &[(u64, u64)],
    s: &crate::workload::record::SessionLog,
    from: u64,
    v: &mut Verdict,
) {
    let Some(opened) = s.opened_ms else { return };
    let quit = s.quit_ms.unwrap_or(u64::MAX);
    let relisted = w.mua.with(|m| {
        m.imap_relisted
            .get(&(s.client, s.number))
            .cloned()
            .unwrap_or_default()
    });
    // Other faults count from a stale lock's lifetime before the session
    // (as for invariant 8); the line's only while the session lasts: a cut
    // before it left nothing behind that the proxy does not end (its next
    // `Hello` names the sessions it lost).
    let hit = |(a, b): &(u64, u64), from: u64| *a <= s.end_ms && *b >= from;
    let mut line_cuts = Vec::new();
    for win in windows.iter().filter(|x| hit(x, from)) {
        let line = faults.line_windows.contains(win);
        if line && !hit(win, s.start_ms) {
            continue;
        }
        if !line {
            return;
        }
        // Both ends must wait out the cut and the proxy's last pause
        // between two attempts (up to 20 s).
        let (a, b) = *win;
        let patience = w.params.client_resume.min(w.params.resume_window);
        // A NOOP or SELECT answered may have opened a new edge session
        // behind the IMAP front, as a login does: a cut right then (from
        // just before its answer, when its `Welcome` came) is not one a
        // resume covers (seed 85213067: 0.1 s after).
        let relisted = relisted
            .iter()
            .any(|&r| a + RELISTED_BEFORE_MS >= r && a < r + RESUME_MARGIN_MS);
        let resumable = a >= opened + RESUME_MARGIN_MS
            && !relisted
            && a < quit
            && b - a + RESUME_MARGIN_MS + 20_000 < patience.as_millis() as u64;
        if !resumable {
            return;
        }
        line_cuts.push(*win);
    }
    let resume = w.params.client_resume.min(w.params.resume_window);
    if line_cuts.is_empty() || silence::cuts_outlast_patience(&line_cuts, resume.as_millis() as u64)
    {
        return;
    }
    w.coverage.insert(Cov::CutCovered);
    if s.ended != Ended::Quit || !s.refused.is_empty() {
        v.violations.push(Violation {
            invariant: 9,
            key: None,
            message: format!(
                "client {} session {} met only line cuts a resume covers ({}), yet did not \
                 simply work: ended {:?}, refused {:?}",
                s.client,
                s.number,
                line_cuts.len(),
                s.ended,
                s.refused
            ),
        });
    }
}
