//! The mail user over IMAP: a session at the client proxy's IMAP front
//! (`causeway_client::imap_front`), in the habits of getmail and mbsync:
//! LOGIN, SELECT INBOX with its listing, `UID FETCH (BODY.PEEK[])` of some
//! messages (or, in the habit of a client that shows a message as it reads
//! it, `BODY[]`, in a third of the sessions; there, now and then,
//! Thunderbird's `BODYSTRUCTURE` and `BODY[1]` instead, which is not the
//! whole message and so must leave it unread), `UID STORE +FLAGS.SILENT
//! (\Seen)` of some it has whole
//! (pausing after it now and then, as a person reading would, then looking
//! for news: NOOP, SELECT again, and peeks at some of the new messages),
//! then
//! `UID STORE (\Deleted)` + `UID EXPUNGE` of some it has whole, LOGOUT (or,
//! in a quarter of the sessions that got that far, a hang-up instead, as
//! neomutt does; and a hang-up before any command).
//!
//! IMAP shows no UIDL, so a message is known by its bytes: a body is the
//! message of the one server message with its SHA-256 (a body that is no
//! server's message is a violation of invariant 2 at once; one whose bytes
//! two messages share is read but never deleted). The record is the POP3
//! user's: bodies received whole, and deletes sent and acknowledged (only
//! the UIDs the `UID EXPUNGE` response reported expunged count as
//! acknowledged). Read marks are judged both ways: a message may end read
//! on its server only if the user read it with `BODY[]` (recorded as
//! received whole when the body has arrived whole: invariant 3 then
//! judges that the mark came after) or stored `\Seen` on it (recorded when
//! the STORE is sent): a peek alone must leave it unread; and one whose
//! STORE was answered `OK` must end read (invariant 4), even if the
//! session, the line or the nodes fail right after.

use std::num::NonZeroU32;
use std::time::Duration;

use causeway_imap::{ImapClient, ImapError, Timeouts};
use causeway_net::Env;

use super::flags::{FLAG_CHANCE, Shown, UNREAD_CHANCE};
use super::record::{Activity, Deletes, Ended, MsgKey};
use super::{Mua, sim_ms};

/// Where the client proxy serves IMAP in the simulation.
pub const PROXY_IMAP_PORT: u16 = 1143;

/// How often a session that did its work ends by hanging up, not LOGOUT.
const HANG_UP_CHANCE: f64 = 0.25;

/// How often the user pauses (1 to 20 s) after an expunge before it logs
/// out (drawn from the same stream as the stars).
const EXPUNGE_PAUSE_CHANCE: f64 = 0.3;

/// How often a read of a message is Thunderbird's: its `BODYSTRUCTURE` and
/// part 1, not the whole message (which must then stay unread).
const PART_CHANCE: f64 = 0.15;

/// How often the user pauses (1 to 30 s) after a STORE of `\Seen`.
const STORE_PAUSE_CHANCE: f64 = 0.3;

/// How often a session reads with `BODY[]` instead of peeking.
const READING_CHANCE: f64 = 0.33;

/// Where some servers' entries read a folder other than INBOX, how often a
/// session works in one of those folders (each shown as a folder named as
/// its entry) instead of INBOX.
const OTHER_FOLDER_CHANCE: f64 = 0.5;

/// Where the user may work in another folder, how often a look for news
/// selects another folder than the one it worked in (its read marks must
/// still reach their server; its UIDs are not the new folder's).
const SWITCH_FOLDER_CHANCE: f64 = 0.3;

/// The folder a session selected: its name at the client proxy and its
/// UIDVALIDITY there.
struct Folder {
    name: String,
    validity: Option<NonZeroU32>,
}

/// The mail user's IMAP client.
pub(super) type Client = ImapClient<causeway_net::SimEnv, <causeway_net::SimEnv as Env>::Stream>;

/// The session's outcome, as `Mua::pop3_session` and `Mua::imap_session` return it.
type Outcome = (Ended, Vec<String>, u32, (Option<u64>, Option<u64>));

use super::trash::{TRASH, TRASH_CHANCE, TRASH_SESSION_CHANCE};

impl Mua {
    /// One IMAP session.
    pub(super) async fn imap_session(&self, n: u32) -> Outcome {
        let host = self.proxy.rsplit_once(':').map_or("proxy", |(h, _)| h);
        let address = format!("{host}:{PROXY_IMAP_PORT}");
        self.log.event(
            sim_ms(),
            format!("client {} IMAP session {n} connecting", self.client),
        );
        let stream = match self
            .env
            .timeout(
                Duration::from_secs(30),
                "connect",
                self.env.connect(&address),
            )
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) | Err(e) => return broken(format!("connect: {e}"), 0),
        };
        let timeouts = Timeouts {
            greeting: Duration::from_secs(60),
            command: super::COMMAND_SILENCE,
        };
        let mut c = match ImapClient::start(self.env.clone(), stream, timeouts, 64 << 20).await {
            Ok(c) => c,
            Err(e) => return broken(format!("greeting: {e}"), 0),
        };
        let mut commands = 1;
        // Its listing behind is taken after the LOGIN is sent.
        let login_sent = self.env.unix_millis();
        self.log
            .with(|m| m.imap_logged_in.insert((self.client, n), login_sent));
        if let Err(e) = c.login(&self.user, self.password.as_bytes()).await {
            return broken(format!("LOGIN: {e}"), commands);
        }
        let opened = Some(sim_ms());
        commands += 1;
        let (folder, listed) = match select(&mut c, self.folder_to_work_in()).await {
            Ok((folder, listed, starred)) => {
                self.saw_stars((&folder.name, folder.validity), n, &starred);
                (folder, listed)
            }
            Err(e) => return broken(e, commands),
        };
        if let Err(ended) = self.maybe_append(&mut c, n, &mut commands).await {
            return (ended, Vec::new(), commands, (opened, None));
        }
        let mut deletes = Deletes::default();
        let mut whole: Vec<(NonZeroU32, Option<MsgKey>)> = Vec::new();
        let reads = self.chance(READING_CHANCE);
        let mut ended = self
            .fetch_some(
                &mut c,
                &folder,
                &listed,
                &mut whole,
                (n, reads),
                &mut commands,
            )
            .await
            .err();
        if ended.is_none() {
            let searched = self.maybe_search(&mut c, &folder.name, &whole, &mut commands);
            ended = searched.await.err();
        }
        let mut quit = None;
        if ended.is_none() {
            ended = Some(
                self.finish(
                    &mut c,
                    (&folder, &listed),
                    &mut whole,
                    &mut deletes,
                    (n, reads),
                    &mut commands,
                )
                .await,
            );
        }
        let ended = match ended.expect("set above") {
            // Some clients (neomutt) hang up without LOGOUT: what was
            // answered must stand all the same, and no more.
            Ended::Quit if self.chance(HANG_UP_CHANCE) => {
                self.log.with(|m| m.imap_hung_up += 1);
                self.log.event(
                    sim_ms(),
                    format!("client {} hangs up without LOGOUT", self.client),
                );
                Ended::GaveUp
            }
            Ended::Quit => {
                quit = Some(sim_ms());
                commands += 1;
                match c.logout_saying().await {
                    Ok(bye) => {
                        // Every read mark the session earned was made: its
                        // reading FETCHes' messages must end read (each was
                        // proved taken whole by the command after it).
                        if bye == causeway_client::LOGGED_OUT {
                            self.log.with(|m| {
                                let owed = m
                                    .imap_reads_of
                                    .remove(&(self.client, n))
                                    .unwrap_or_default();
                                m.imap_reads_owed += owed.len() as u32;
                                m.must_read.extend(owed);
                            });
                        }
                        Ended::Quit
                    }
                    Err(e) => Ended::Broken(format!("LOGOUT: {e}")),
                }
            }
            other => other,
        };
        let now = self.env.unix_millis();
        self.log.with(|m| {
            m.imap_reads_of.remove(&(self.client, n));
            let ours = (m.imap_unreads.values_mut().flatten())
                .filter(|u| (u.client, u.session) == (self.client, n));
            for u in ours {
                u.session_ended_ms = Some(now);
            }
        });
        deletes.settle(&self.log);
        self.log.with(|m| {
            m.imap_sessions += 1;
            m.imap_bodies += whole.len() as u32;
        });
        (ended, Vec::new(), commands, (opened, quit))
    }

    /// A NOOP or SELECT was just answered: the client proxy may have
    /// listed the folder again behind it, in a new edge session that the
    /// edge has not yet heard from the proxy on (invariant 9 allows for a
    /// cut right then, as right after a login).
    fn may_have_relisted(&self, session: u32) {
        let at = sim_ms();
        self.log.with(|m| {
            m.imap_relisted
                .entry((self.client, session))
                .or_default()
                .push(at)
        });
    }

    /// Fetches some of `listed` (peeked, or read when `session.1`; each body
    /// checked against the server's) into `whole`, one `UID FETCH` at a
    /// time, or all in one write where the user pipelines
    /// ([`MuaParams::imap_pipelined`](crate::swarm::MuaParams)); `Err`: how
    /// the session ended early.
    async fn fetch_some(
        &self,
        c: &mut Client,
        folder: &Folder,
        listed: &[(NonZeroU32, u32)],
        whole: &mut Vec<(NonZeroU32, Option<MsgKey>)>,
        (session, reads): (u32, bool),
        commands: &mut u32,
    ) -> Result<(), Ended> {
        let pipelined = self.params.imap_pipelined;
        let mut batch = Vec::new();
        let mut gave_up = false;
        for &(uid, size) in listed {
            if !self.chance(self.params.retr_chance) {
                continue;
            }
            if self.chance(self.params.give_up_chance) {
                gave_up = true;
                break;
            }
            *commands += 1;
            if pipelined {
                batch.push(uid);
                continue;
            }
            if reads && self.chance(PART_CHANCE) {
                match c.read_first_part(uid).await {
                    Ok(Some(part)) => self.saw_part(uid, &part),
                    Ok(None) => {}
                    // Refused rightly (`may_be_refused`): a message whose
                    // UIDL and size another shares (seed 503473307), or one
                    // the user deleted (seed 125923352).
                    Err(ImapError::Refused { .. }) if self.may_be_refused(&folder.name, size) => {}
                    Err(e) => {
                        return Err(Ended::Broken(format!("UID FETCH {uid} (part 1): {e}")));
                    }
                }
                continue;
            }
            let fetched = if reads {
                c.read_body(uid).await
            } else {
                c.fetch_body(uid).await
            };
            match fetched {
                Ok(Some(body)) => {
                    let at = self.env.unix_millis();
                    self.took((uid, size), &body, at, folder, (session, reads), whole);
                }
                Ok(None) => {}
                Err(ImapError::Refused { .. }) if self.may_be_refused(&folder.name, size) => {}
                Err(e) => return Err(Ended::Broken(format!("UID FETCH {uid}: {e}"))),
            }
        }
        if batch.len() > 1 {
            self.log.with(|m| m.imap_pipelined += 1);
        }
        // Giving up with the fetches in flight: none of those bodies was
        // received, so none may end read on its server.
        if gave_up && !batch.is_empty() && self.chance(0.5) {
            self.log.with(|m| m.imap_pipelined_left += 1);
            self.log.event(
                sim_ms(),
                format!(
                    "client {} hangs up with {} fetches in flight",
                    self.client,
                    batch.len()
                ),
            );
            let _ = c.fetch_and_hang_up(&batch, reads).await;
            return Err(Ended::GaveUp);
        }
        match c.fetch_bodies(&batch, reads).await {
            Ok((bodies, refused)) => {
                // Refused: only a message its server lists twice by the
                // same UIDL and size, which no one can fetch safely.
                let left_out = |uid: &NonZeroU32| bodies.iter().all(|(u, _, _)| u != uid);
                let size_of =
                    |uid: NonZeroU32| listed.iter().find(|(u, _)| *u == uid).map_or(0, |l| l.1);
                if let Some(e) = refused.first()
                    && !batch
                        .iter()
                        .filter(|u| left_out(u))
                        .all(|u| self.may_be_refused(&folder.name, size_of(*u)))
                {
                    return Err(Ended::Broken(format!(
                        "UID FETCH of {} bodies, pipelined: {e}",
                        batch.len()
                    )));
                }
                for (uid, body, at) in bodies {
                    self.took(
                        (uid, size_of(uid)),
                        &body,
                        at,
                        folder,
                        (session, reads),
                        whole,
                    );
                }
            }
            Err(e) => {
                return Err(Ended::Broken(format!(
                    "UID FETCH of {} bodies, pipelined: {e}",
                    batch.len()
                )));
            }
        }
        if gave_up {
            return Err(Ended::GaveUp);
        }
        Ok(())
    }

    /// Records body `body` of UID `uid` (listed as `size` octets), which
    /// arrived whole at `at` (the user's clock).
    fn took(
        &self,
        (uid, size): (NonZeroU32, u32),
        body: &[u8],
        at: u64,
        folder: &Folder,
        (session, reads): (u32, bool),
        whole: &mut Vec<(NonZeroU32, Option<MsgKey>)>,
    ) {
        if body.len() != size as usize {
            self.log.violation(
                2,
                None,
                format!(
                    "IMAP UID {uid}: listed as {size} octets, the body has {}",
                    body.len()
                ),
            );
        }
        let key = self.known(body);
        if folder.name == TRASH {
            if let Some(k) = &key
                && !self.log.with(|m| m.imap_trashed.contains(k))
            {
                self.log.violation(
                    2,
                    key.clone(),
                    format!("IMAP UID {uid} of {TRASH} is a message the user never moved there"),
                );
            }
        } else if let Some((host, _)) = &key
            && self.folder_of(host) != folder.name
        {
            self.log.violation(
                2,
                key.clone(),
                format!(
                    "IMAP UID {uid} of folder {} is a message of {host}, whose folder is {}",
                    folder.name,
                    self.folder_of(host)
                ),
            );
        }
        if let Some(k) = &key {
            self.log.with(|m| {
                let login = m.imap_logged_in.get(&(self.client, session)).copied();
                let acked = m.imap_expunge_acked.get(k).copied();
                if let (Some(login), Some(acked)) = (login, acked)
                    && acked < login
                {
                    m.imap_shown_again
                        .push((k.clone(), acked, login, self.client));
                }
            });
        }
        if let (Some(v), Some(k)) = (folder.validity, &key) {
            self.uid_names((&folder.name, v), uid, k, session);
            self.at_append_uid((&folder.name, v), uid, k);
        }
        if let (true, Some(k)) = (reads, &key) {
            self.log.with(|m| {
                m.read_whole(k, self.client, at);
                m.imap_read.insert(k.clone());
                m.imap_reads_of
                    .entry((self.client, session))
                    .or_default()
                    .push(k.clone());
            });
        }
        whole.push((uid, key));
    }

    /// After a pause: NOOP (the folder's news arrive), SELECT again, and
    /// some of the messages that are new since `listed` are fetched. Now
    /// and then the SELECT is of another folder ([`SWITCH_FOLDER_CHANCE`]):
    /// then `whole` is emptied (its UIDs are the other folder's), some of
    /// the new folder's messages are fetched, and the folder is returned.
    async fn look_again(
        &self,
        c: &mut Client,
        folder: &Folder,
        listed: &[(NonZeroU32, u32)],
        whole: &mut Vec<(NonZeroU32, Option<MsgKey>)>,
        session: (u32, bool),
        commands: &mut u32,
    ) -> Result<Option<Folder>, Ended> {
        *commands += 2;
        if session.1 {
            self.log.set(Activity::ImapRecheck);
        }
        if let Err(e) = c.noop().await {
            return Err(Ended::Broken(format!("NOOP: {e}")));
        }
        self.may_have_relisted(session.0);
        let (again, relisted, starred) = select(c, self.another_folder(&folder.name))
            .await
            .map_err(|e| Ended::Broken(format!("{e} (again)")))?;
        self.saw_stars((&again.name, again.validity), session.0, &starred);
        self.may_have_relisted(session.0);
        if again.name != folder.name {
            self.log.with(|m| m.imap_switched_folder += 1);
            whole.clear();
            self.fetch_some(c, &again, &relisted, whole, session, commands)
                .await?;
            return Ok(Some(again));
        }
        let new: Vec<(NonZeroU32, u32)> = relisted
            .into_iter()
            .filter(|(u, _)| !listed.iter().any(|(l, _)| l == u))
            .collect();
        if !new.is_empty() {
            self.log.with(|m| m.imap_new_listed += new.len() as u32);
        }
        self.fetch_some(c, &again, &new, whole, session, commands)
            .await?;
        Ok(None)
    }

    /// `current`, or now and then another folder the user may work in (no
    /// draw where there is none).
    fn another_folder(&self, current: &str) -> String {
        let mut folders = self.entry_folders();
        if folders.is_empty() || !self.chance(SWITCH_FOLDER_CHANCE) {
            return current.to_owned();
        }
        folders.push("INBOX");
        folders.retain(|f| *f != current);
        let i = self.env.rng().range(0, folders.len() as u64) as usize;
        folders[i].to_owned()
    }

    /// Checks that UID `uid` names message `key` in `folder` under
    /// `validity`, as it did in any earlier session of this user (invariant
    /// 2: a UID that names another message makes a client that keeps copies
    /// mix them up).
    pub(super) fn uid_names(
        &self,
        (folder, validity): (&str, NonZeroU32),
        uid: NonZeroU32,
        key: &MsgKey,
        session: u32,
    ) {
        let slot = (self.client, folder.to_owned(), validity.get(), uid.get());
        let clash = self.log.with(|m| match m.imap_uids.get(&slot) {
            None => {
                m.imap_uids.insert(slot, (key.clone(), session));
                None
            }
            Some((k, _)) if k != key => Some(k.clone()),
            Some((_, s)) => {
                if *s != session {
                    m.imap_uids_kept += 1;
                }
                None
            }
        });
        if let Some(earlier) = clash {
            self.log.violation(
                2,
                Some(key.clone()),
                format!(
                    "IMAP UID {uid} of {folder} under UIDVALIDITY {validity} named {earlier:?} \
                     before and another message now"
                ),
            );
        }
    }

    /// The folders of the entries that read a folder other than INBOX, as
    /// the client proxy names them (after their entries).
    pub(super) fn entry_folders(&self) -> Vec<&str> {
        self.stores
            .iter()
            .filter(|s| s.user.contains('/'))
            .map(|s| s.host.as_str())
            .collect()
    }

    /// Whether a fetch of a message of `size` octets shown in `folder` may
    /// rightly be refused: a server lists two messages by one UIDL and
    /// that size (the proxy refuses to fetch either: nothing could name
    /// the one meant, as for a POP3 `RETR`), or the user deleted one of
    /// that size (seed 125923352: a listing leaves out no message whose
    /// UIDL its server lists twice, so one whose delete an earlier
    /// session acknowledged is shown, and its server, which has the
    /// delete by then, refuses it).
    fn may_be_refused(&self, folder: &str, size: u32) -> bool {
        let deleted = |key: &MsgKey| self.log.with(|m| m.must_delete.contains(key));
        self.stores
            .iter()
            .filter(|s| self.folder_of(&s.host) == folder)
            .any(|s| {
                s.store.messages(&s.user).iter().any(|m| {
                    let key = (s.host.clone(), m.uid);
                    m.size == size as usize
                        && (deleted(&key) || m.deleted_at_ms.is_none() && self.shared(&key))
                })
            })
    }

    /// The folder the client proxy shows `host`'s messages in: its own
    /// where its entry reads a folder other than INBOX, else INBOX.
    pub(super) fn folder_of(&self, host: &str) -> &str {
        match self.stores.iter().find(|s| s.host == host) {
            Some(s) if s.user.contains('/') => &s.host,
            _ => "INBOX",
        }
    }

    /// INBOX, or, where some entries read another folder, now and then one
    /// of those (the client proxy shows each as a folder named as its
    /// entry). No draw where there is no such folder, so that those seeds
    /// run as before.
    fn folder_to_work_in(&self) -> String {
        let trashed = self.log.with(|m| !m.imap_trashed.is_empty());
        if trashed && self.chance(TRASH_SESSION_CHANCE) {
            return TRASH.into();
        }
        let folders = self.entry_folders();
        if folders.is_empty() || !self.chance(OTHER_FOLDER_CHANCE) {
            return "INBOX".into();
        }
        let i = self.env.rng().range(0, folders.len() as u64) as usize;
        folders[i].to_owned()
    }

    /// Marks and deletes some of the messages the session has whole.
    async fn finish(
        &self,
        c: &mut Client,
        (folder, listed): (&Folder, &[(NonZeroU32, u32)]),
        whole: &mut Vec<(NonZeroU32, Option<MsgKey>)>,
        deletes: &mut Deletes,
        session: (u32, bool),
        commands: &mut u32,
    ) -> Ended {
        // (Only messages it knows: marking one of two with the same bytes
        // would be judged as the other's.)
        let seen: Vec<&(NonZeroU32, Option<MsgKey>)> = whole
            .iter()
            .filter(|(_, k)| k.is_some())
            .filter(|_| self.chance(0.5))
            .collect();
        // Only these may end read on the server: a peek alone must not.
        let now = self.env.unix_millis();
        self.log.with(|m| {
            for (_, k) in &seen {
                if let Some(k) = k {
                    m.read_whole(k, self.client, now);
                }
            }
        });
        let marked: Vec<MsgKey> = seen.iter().filter_map(|(_, k)| k.clone()).collect();
        let seen: Vec<NonZeroU32> = seen.iter().map(|(u, _)| *u).collect();
        if self.flag_rng.chance(FLAG_CHANCE) {
            if let Err(ended) = self.flag_some(c, whole, commands).await {
                return ended;
            }
        }
        let mut switched = None;
        if !seen.is_empty() {
            *commands += 1;
            if let Err(e) = c.mark_seen(&seen).await {
                return Ended::Broken(format!("UID STORE (\\Seen): {e}"));
            }
            // Answered OK: a change made, whatever the line does next.
            if let Some(k) = marked.first() {
                self.log.set(Activity::SeenStored(k.clone()));
            }
            self.log.with(|m| {
                m.imap_seen_stored += marked.len() as u32;
                m.must_read.extend(marked);
            });
            // Sometimes the user reads on before the next command: a cut
            // meanwhile must not undo the answered STORE. Then it looks
            // for news.
            if self.chance(STORE_PAUSE_CHANCE) {
                let pause = self.env.rng().range(1_000, 30_000);
                self.env.sleep(Duration::from_millis(pause)).await;
                match self
                    .look_again(c, folder, listed, whole, session, commands)
                    .await
                {
                    Ok(again) => switched = again,
                    Err(ended) => return ended,
                }
            }
        }
        let mut unread = None;
        if self.flag_rng.chance(UNREAD_CHANCE) {
            match self.unread_one(c, whole, session.0, commands).await {
                Ok(uid) => unread = uid,
                Err(ended) => return ended,
            }
        }
        let folder = switched.as_ref().unwrap_or(folder);
        // (Not the message it marked unread to come back to.)
        let doomed: Vec<(NonZeroU32, MsgKey)> = whole
            .iter()
            .filter(|(u, _)| Some(*u) != unread)
            .filter_map(|(u, k)| Some((*u, k.clone()?)))
            .filter(|_| self.chance(self.params.dele_chance))
            .collect();
        if doomed.is_empty() {
            return Ended::Quit;
        }
        let in_trash = folder.name == TRASH;
        if !in_trash && self.chance(TRASH_CHANCE) {
            return self.move_to_trash(c, &doomed, commands).await;
        }
        if in_trash && self.chance(0.5) {
            return self.put_back(c, &doomed, commands).await;
        }
        for (_, k) in &doomed {
            deletes.sent(k);
            self.log.delete_sent(k);
        }
        *commands += 2;
        let uids: Vec<NonZeroU32> = doomed.iter().map(|(u, _)| *u).collect();
        match c.delete(&uids).await {
            Ok(gone) => {
                let now = self.env.unix_millis();
                for (u, k) in &doomed {
                    if gone.contains(u) {
                        deletes.acked(k);
                        self.log.with(|m| {
                            m.imap_expunge_acked.entry(k.clone()).or_insert(now);
                        });
                    }
                }
                if let Some((_, k)) = doomed.iter().find(|(u, _)| gone.contains(u)) {
                    self.log.set(Activity::DeleAcked(k.clone()));
                }
                let elsewhere = folder.name != "INBOX";
                self.log.with(|m| {
                    if in_trash {
                        let emptied = doomed.iter().filter(|(u, _)| gone.contains(u));
                        m.imap_trash_expunged
                            .extend(emptied.map(|(_, k)| k.clone()));
                    }
                    m.imap_expunged += gone.len() as u32;
                    if elsewhere {
                        m.imap_other_folder_expunged += gone.len() as u32;
                    }
                });
                // Sometimes the user reads on before logging out, and the
                // delete stays owed meanwhile: another client's session
                // must not show the message again (invariant 12).
                if !gone.is_empty() && self.flag_rng.chance(EXPUNGE_PAUSE_CHANCE) {
                    let pause = self.flag_rng.range(1_000, 20_000);
                    self.env.sleep(Duration::from_millis(pause)).await;
                }
                Ended::Quit
            }
            Err(e) => Ended::Broken(format!("UID EXPUNGE: {e}")),
        }
    }

    /// Part 1 of UID `uid`, read (`BODY[1]`): bytes that one of the
    /// servers' messages holds (its text, or its first MIME part: checked
    /// as a slice, independently of the proxy's MIME parser), or a
    /// violation of invariant 2. Not the whole message, so nothing is
    /// recorded as received: the message must not end read for it.
    fn saw_part(&self, uid: NonZeroU32, part: &[u8]) {
        self.log.with(|m| m.imap_parts_read += 1);
        let finder = memchr::memmem::Finder::new(part);
        let found = part.is_empty()
            || self.stores.iter().any(|s| {
                s.store.messages(&s.user).iter().any(|m| {
                    // By UID: a UIDL may be a duplicate's.
                    s.store
                        .body_by_uid_copy(&s.user, m.uid)
                        .is_some_and(|b| finder.find(&b).is_some())
                })
            });
        if !found {
            self.log.violation(
                2,
                None,
                format!(
                    "IMAP UID {uid}: BODY[1] of {} octets is in no server message",
                    part.len()
                ),
            );
        }
    }

    /// The server message with these bytes, if exactly one has them; a
    /// body that no server message has is a violation at once.
    fn known(&self, body: &[u8]) -> Option<MsgKey> {
        let sha = causeway_mailserver::content_sha256(body);
        let mut found: Vec<MsgKey> = Vec::new();
        for s in &self.stores {
            for m in s.store.messages(&s.user) {
                if m.sha256 == sha {
                    found.push((s.host.clone(), m.uid));
                }
            }
        }
        match found.as_slice() {
            [] => {
                self.log.violation(
                    2,
                    None,
                    format!(
                        "an IMAP body of {} octets is no server's message",
                        body.len()
                    ),
                );
                None
            }
            [k] => Some(k.clone()),
            _ => None,
        }
    }
}

/// A folder selected: its listing (UID, size), and each UID's flags as
/// shown.
type Selected = (Folder, Vec<(NonZeroU32, u32)>, Vec<Shown>);

/// SELECT of `name`: the folder and its listing, or what went wrong.
async fn select(c: &mut Client, name: String) -> Result<Selected, String> {
    match c.select(&name).await {
        Ok(f) => {
            let listed = f.listed().map(|l| (l.uid, l.size)).collect();
            let starred = f.listed().map(|l| (l.uid, l.marks[1], l.seen)).collect();
            let validity = f.uidvalidity;
            Ok((Folder { name, validity }, listed, starred))
        }
        Err(e) => Err(format!("SELECT {name}: {e}")),
    }
}

fn broken(why: String, commands: u32) -> Outcome {
    (Ended::Broken(why), Vec::new(), commands, (None, None))
}
