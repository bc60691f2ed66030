//! One IMAP session of the model server as a sans-IO state machine: a
//! parsed command in, the responses to send out.
//!
//! It serves a user's folders from the same [`MailStore`] and record as the
//! POP3 model (INBOX is the user's maildrop, any other folder the maildrop
//! [`crate::folder_maildrop`] names; SELECT of one that does not exist is
//! `NO [NONEXISTENT]`), with IMAP's semantics where they differ from
//! POP3's (that difference is what the edge's IMAP side must get right):
//!
//! - no lock, and no snapshot beyond the session's own view: SELECT lists
//!   the INBOX as it is, numbered by sequence; every EXPUNGE renumbers it;
//! - a change takes effect when it is answered: `UID STORE +FLAGS (\Seen)`
//!   marks the message read in the store at once, and so does a FETCH of
//!   `BODY[]` without `.PEEK` (RFC 3501 §6.4.5), which is how an edge that
//!   forgets to peek shows in the record;
//! - `\Deleted` is this session's flag until an EXPUNGE (bare: every
//!   flagged message; `UID EXPUNGE`: those of the given UIDs), which
//!   removes the message from the store, credited to the session. A flag
//!   another mail client set ([`MailStore::flag_deleted_elsewhere`]) counts
//!   too, at once, even after SELECT: `UID SEARCH DELETED` finds it and an
//!   EXPUNGE removes it, which is what an edge that expunges more than its
//!   user deleted runs into. Without UIDPLUS (`imap_uidplus` off) there is
//!   only the bare EXPUNGE;
//! - LOGOUT ends the session as QUIT does in the record ([`EndKind::Quit`]);
//!   a session that just stops ends abruptly and commits nothing more.
//!
//! `LIST` names INBOX and every other folder of the user, whatever the
//! pattern. Commands outside what the edge sends get `BAD`.

use std::num::NonZeroU32;

use imap_types::command::{Command, CommandBody};
use imap_types::core::{Literal, NString, QuotedChar, Tag, Vec1};
use imap_types::extensions::binary::LiteralOrLiteral8;
use imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName};
use imap_types::flag::{Flag, FlagFetch, StoreResponse, StoreType};
use imap_types::mailbox::Mailbox;
use imap_types::response::{Capability, Code, CodeOther, Data, Status};
use imap_types::search::SearchKey;

use super::search::Text;
use imap_types::sequence::{Sequence, SequenceSet};

use crate::record::{EndKind, SessionId};
use crate::store::{Commit, MailStore};
use crate::{ImapLogins, folder_maildrop};

/// What the model advertises: UIDPLUS unless configured off, and the
/// logins of its [`ImapLogins`].
fn capability_names(uidplus: bool, logins: ImapLogins) -> Vec<&'static str> {
    let mut caps = vec!["IMAP4rev1"];
    if uidplus {
        caps.push("UIDPLUS");
    }
    caps.push("LITERAL+");
    match logins {
        ImapLogins::Both => caps.extend(["AUTH=PLAIN", "SASL-IR"]),
        ImapLogins::LoginOnly => {}
        ImapLogins::PlainOnly => caps.extend(["AUTH=PLAIN", "LOGINDISABLED"]),
    }
    caps
}

/// One message in the session's view of INBOX.
#[derive(Debug, Clone)]
struct Viewed {
    uid: NonZeroU32,
    size: u32,
    seen: bool,
    deleted: bool,
    /// `\Answered`, `\Flagged`, `\Draft` as SELECT found them.
    marks: [bool; 3],
}

/// One IMAP session's protocol state, bound to a store.
pub(crate) struct ImapCore {
    store: MailStore,
    id: SessionId,
    user: Option<String>,
    /// The selected folder's maildrop in the store.
    maildrop: Option<String>,
    /// The selected folder, by sequence number minus one.
    view: Option<Vec<Viewed>>,
    ended: bool,
    uidplus: bool,
    logins: ImapLogins,
}

/// What to send for one command, and whether to hang up after it.
pub(crate) struct Answer {
    pub(crate) responses: Vec<Response>,
    pub(crate) close: bool,
}

/// How a command ended (its tagged status).
enum Outcome {
    Ok(&'static str),
    OkWith(Code<'static>, &'static str),
    No(&'static str),
    NoWith(Code<'static>, &'static str),
    /// `NO [AUTHENTICATIONFAILED]`.
    AuthFailed,
    Bad(&'static str),
}

pub(crate) enum Response {
    Data(Data<'static>),
    Status(Status<'static>),
}

fn capabilities(uidplus: bool, logins: ImapLogins) -> Vec1<Capability<'static>> {
    let caps: Vec<Capability<'static>> = capability_names(uidplus, logins)
        .into_iter()
        .map(|c| Capability::try_from(c.as_bytes().to_vec()).expect("a valid capability"))
        .collect();
    Vec1::try_from(caps).expect("not empty")
}

impl ImapCore {
    pub(crate) fn new(
        store: MailStore,
        peer: std::net::SocketAddr,
        now_ms: u64,
        uidplus: bool,
        logins: ImapLogins,
    ) -> Self {
        let id = store.begin_session(peer, now_ms);
        ImapCore {
            store,
            id,
            user: None,
            maildrop: None,
            view: None,
            ended: false,
            uidplus,
            logins,
        }
    }

    pub(crate) fn id(&self) -> SessionId {
        self.id
    }

    /// The greeting's capability code.
    pub(crate) fn greeting_code(&self) -> Code<'static> {
        Code::Capability(capabilities(self.uidplus, self.logins))
    }

    /// Whether AUTHENTICATE PLAIN is taken, and its response may come with
    /// the command (SASL-IR).
    pub(crate) fn plain(&self) -> (bool, bool) {
        match self.logins {
            ImapLogins::Both => (true, true),
            ImapLogins::LoginOnly => (false, false),
            ImapLogins::PlainOnly => (true, false),
        }
    }

    /// The tagged answer to `AUTHENTICATE PLAIN` with `response` (RFC
    /// 4616: authorisation identity, user, password; the first empty or
    /// the user's own), logged like a command.
    pub(crate) fn authenticate_plain(
        &mut self,
        tag: Tag<'static>,
        response: &[u8],
        now_ms: u64,
    ) -> Status<'static> {
        self.store
            .log_command(self.id, "AUTHENTICATE PLAIN".to_owned());
        let mut parts = response.split(|b| *b == 0);
        let outcome = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authz), Some(user), Some(password), None)
                if authz.is_empty() || authz == user =>
            {
                self.login(user, password, now_ms)
            }
            _ => Outcome::Bad("Invalid PLAIN response."),
        };
        status(tag, outcome)
    }

    /// Ends the session in the record (a no-op once ended).
    pub(crate) fn end(&mut self, kind: EndKind, now_ms: u64) {
        if !self.ended {
            self.ended = true;
            self.store
                .end_session(self.id, kind, now_ms, Commit::default(), None);
        }
    }

    pub(crate) fn handle(&mut self, command: Command<'static>, now_ms: u64) -> Answer {
        let Command { tag, body } = command;
        self.store.log_command(self.id, describe(&body).to_owned());
        let mut out = Vec::new();
        let result = match body {
            CommandBody::Capability => {
                out.push(Response::Data(Data::Capability(capabilities(
                    self.uidplus,
                    self.logins,
                ))));
                Outcome::Ok("CAPABILITY completed.")
            }
            CommandBody::Noop => Outcome::Ok("NOOP completed."),
            CommandBody::Logout => {
                out.push(Response::Status(
                    Status::bye(None, "Logging out").expect("valid"),
                ));
                out.push(Response::Status(
                    Status::ok(Some(tag), None, "Logout completed.").expect("valid"),
                ));
                self.end(EndKind::Quit, now_ms);
                return Answer {
                    responses: out,
                    close: true,
                };
            }
            // Dovecot's answer when it disables plaintext LOGIN.
            CommandBody::Login { .. } if self.logins == ImapLogins::PlainOnly => Outcome::NoWith(
                Code::Other(CodeOther::unvalidated(b"PRIVACYREQUIRED".to_vec())),
                "LOGIN is disabled here (LOGINDISABLED).",
            ),
            CommandBody::Login { username, password } => {
                self.login(username.as_ref(), password.declassify().as_ref(), now_ms)
            }
            CommandBody::Select { mailbox, .. } => self.select(&mailbox, &mut out),
            // Every folder, whatever the pattern: the edge asks for `*`.
            CommandBody::List { .. } => self.list(&mut out),
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid: true,
                ..
            } => self.fetch(&sequence_set, macro_or_item_names, now_ms, &mut out),
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid: true,
                ..
            } => self.store_flags(&sequence_set, kind, response, &flags, now_ms, &mut out),
            CommandBody::ExpungeUid { .. } if !self.uidplus => {
                Outcome::Bad("Unknown command (no UIDPLUS here).")
            }
            CommandBody::Search {
                criteria,
                uid: true,
                ..
            } if criteria.as_ref() == [SearchKey::Deleted] => self.search_deleted(&mut out),
            CommandBody::Search {
                criteria,
                uid: true,
                ..
            } if criteria.as_ref().len() == 1 => match Text::of(&criteria.as_ref()[0]) {
                Some(text) => self.search_text(&text, &mut out),
                None => Outcome::Bad("This model server searches DELETED or one text criterion."),
            },
            CommandBody::ExpungeUid { sequence_set } => {
                self.expunge(Some(&sequence_set), now_ms, &mut out)
            }
            CommandBody::Expunge => self.expunge(None, now_ms, &mut out),
            CommandBody::Append {
                mailbox,
                flags,
                message,
                ..
            } => {
                let message = match &message {
                    LiteralOrLiteral8::Literal(l) => l.data(),
                    LiteralOrLiteral8::Literal8(l) => l.data.as_ref(),
                };
                self.append(&mailbox, &flags, message, now_ms)
            }
            _ => Outcome::Bad("This model server does not know that command."),
        };
        out.push(Response::Status(status(tag, result)));
        Answer {
            responses: out,
            close: false,
        }
    }

    fn login(&mut self, user: &[u8], password: &[u8], now_ms: u64) -> Outcome {
        if self.user.is_some() {
            return Outcome::Bad("Already logged in.");
        }
        let user = String::from_utf8_lossy(user).into_owned();
        if !self.store.password_ok(&user, password) {
            return Outcome::AuthFailed;
        }
        // No lock: IMAP sessions of one user run side by side.
        let _ = self.store.login(self.id, &user, false, now_ms);
        self.user = Some(user);
        Outcome::Ok("Logged in")
    }

    fn list(&self, out: &mut Vec<Response>) -> Outcome {
        let Some(user) = &self.user else {
            return Outcome::Bad("Log in first.");
        };
        let folders = self.store.folders_of(user);
        let names = std::iter::once(Mailbox::Inbox).chain(
            folders
                .into_iter()
                .filter_map(|f| Mailbox::try_from(f).ok()),
        );
        for mailbox in names {
            out.push(Response::Data(Data::List {
                items: Vec::new(),
                delimiter: Some(QuotedChar::try_from('/').expect("a valid delimiter")),
                mailbox,
            }));
        }
        Outcome::Ok("List completed.")
    }

    fn select(&mut self, mailbox: &Mailbox<'_>, out: &mut Vec<Response>) -> Outcome {
        let Some(user) = self.user.clone() else {
            return Outcome::Bad("Log in first.");
        };
        let maildrop = match mailbox {
            Mailbox::Inbox => user.clone(),
            Mailbox::Other(other) => {
                folder_maildrop(&user, &String::from_utf8_lossy(other.as_ref()))
            }
        };
        if !self.store.has_maildrop(&maildrop) {
            self.view = None;
            self.maildrop = None;
            return Outcome::NoWith(
                Code::Other(CodeOther::unvalidated(b"NONEXISTENT".to_vec())),
                "Mailbox doesn't exist.",
            );
        }
        let snap = self
            .store
            .login(self.id, &maildrop, false, self.store.last_seen_ms())
            .unwrap_or_default();
        let view: Vec<Viewed> = snap
            .into_iter()
            .filter_map(|m| {
                Some(Viewed {
                    uid: NonZeroU32::new(m.uid)?,
                    size: u32::try_from(m.size).ok()?,
                    seen: m.seen,
                    deleted: m.flagged_elsewhere,
                    marks: MARKS.map(|f| m.flags.contains(&f.to_string())),
                })
            })
            .collect();
        let uidvalidity = self.store.uidvalidity(&maildrop).and_then(NonZeroU32::new);
        let uidnext = view
            .last()
            .and_then(|m| m.uid.checked_add(1))
            .unwrap_or(NonZeroU32::MIN);
        out.push(Response::Data(Data::Exists(view.len() as u32)));
        if let Some(v) = uidvalidity {
            out.push(Response::Status(
                Status::ok(None, Some(Code::UidValidity(v)), "UIDs valid").expect("valid"),
            ));
        }
        out.push(Response::Status(
            Status::ok(None, Some(Code::UidNext(uidnext)), "Predicted next UID").expect("valid"),
        ));
        self.view = Some(view);
        self.maildrop = Some(maildrop);
        Outcome::OkWith(Code::ReadWrite, "Select completed.")
    }

    /// Stores the message in the folder named (not the one selected), with
    /// `\Seen` and `\Deleted` as given; the other flags are not modelled.
    /// The message is in the next SELECT's listing, as a new arrival.
    fn append(
        &mut self,
        mailbox: &Mailbox<'_>,
        flags: &[Flag<'_>],
        message: &[u8],
        now_ms: u64,
    ) -> Outcome {
        let Some(user) = &self.user else {
            return Outcome::Bad("Log in first.");
        };
        let maildrop = match mailbox {
            Mailbox::Inbox => user.clone(),
            Mailbox::Other(other) => {
                folder_maildrop(user, &String::from_utf8_lossy(other.as_ref()))
            }
        };
        if !self.store.has_maildrop(&maildrop) {
            return Outcome::NoWith(Code::TryCreate, "Mailbox doesn't exist.");
        }
        let marks = (flags.contains(&Flag::Seen), flags.contains(&Flag::Deleted));
        match self
            .store
            .append(self.id, &maildrop, message, marks, now_ms)
        {
            Ok((v, uid)) => match (NonZeroU32::new(v), NonZeroU32::new(uid), self.uidplus) {
                (Some(uid_validity), Some(uid), true) => {
                    Outcome::OkWith(Code::AppendUid { uid_validity, uid }, "Append completed.")
                }
                _ => Outcome::Ok("Append completed."),
            },
            Err(_) => Outcome::No("Mailbox doesn't exist."),
        }
    }

    fn fetch(
        &mut self,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        now_ms: u64,
        out: &mut Vec<Response>,
    ) -> Outcome {
        let (Some(maildrop), Some(view)) = (self.maildrop.clone(), self.view.as_mut()) else {
            return Outcome::Bad("Select a folder first.");
        };
        let MacroOrMessageDataItemNames::MessageDataItemNames(names) = items else {
            return Outcome::Bad("This model server takes item lists only.");
        };
        let largest = largest_uid(view);
        let mut marked = Vec::new();
        for (i, m) in view.iter_mut().enumerate() {
            if !uid_in(set, m.uid, largest) {
                continue;
            }
            let mut items = Vec::new();
            for name in &names {
                match name {
                    MessageDataItemName::Uid => items.push(MessageDataItem::Uid(m.uid)),
                    MessageDataItemName::Rfc822Size => {
                        items.push(MessageDataItem::Rfc822Size(m.size))
                    }
                    MessageDataItemName::Flags => items.push(MessageDataItem::Flags(flags(m))),
                    MessageDataItemName::BodyExt {
                        section: None,
                        partial: None,
                        peek,
                    } => {
                        let Some(body) = self.store.body_by_uid(&maildrop, m.uid.get()) else {
                            continue;
                        };
                        let Ok(literal) = Literal::try_from(body.to_vec()) else {
                            return Outcome::No("This message cannot be sent as a literal.");
                        };
                        items.push(MessageDataItem::BodyExt {
                            section: None,
                            origin: None,
                            data: NString(Some(literal.into())),
                        });
                        if !peek && !m.seen {
                            m.seen = true;
                            marked.push(m.uid.get());
                        }
                    }
                    _ => return Outcome::Bad("This model server does not fetch that item."),
                }
            }
            if let Ok(items) = Vec1::try_from(items) {
                let seq = NonZeroU32::new(i as u32 + 1).expect("1-based");
                out.push(Response::Data(Data::Fetch { seq, items }));
            }
        }
        self.seen_now(marked, now_ms);
        Outcome::Ok("Fetch completed.")
    }

    /// Marks `uids` read in the store, as of now.
    fn seen_now(&self, uids: Vec<u32>, now_ms: u64) {
        if !uids.is_empty() {
            let commit = Commit {
                delete: Vec::new(),
                seen: uids,
            };
            self.store.commit_now(self.id, now_ms, &commit);
        }
    }

    fn store_flags(
        &mut self,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        new: &[Flag<'static>],
        now_ms: u64,
        out: &mut Vec<Response>,
    ) -> Outcome {
        let Some(view) = self.view.as_mut() else {
            return Outcome::Bad("Select a folder first.");
        };
        let (seen, deleted) = (new.contains(&Flag::Seen), new.contains(&Flag::Deleted));
        // The other flags go to the store at once, as a server keeps them.
        let others: Vec<String> = new
            .iter()
            .filter(|f| !matches!(f, Flag::Seen | Flag::Deleted))
            .map(ToString::to_string)
            .collect();
        let largest = largest_uid(view);
        let (mut marked, mut unmarked) = (Vec::new(), Vec::new());
        for (i, m) in view.iter_mut().enumerate() {
            if !uid_in(set, m.uid, largest) {
                continue;
            }
            if !others.is_empty() && kind != StoreType::Replace {
                let maildrop = self.maildrop.as_deref().expect("a view has its maildrop");
                let add = kind == StoreType::Add;
                self.store
                    .store_flags(maildrop, m.uid.get(), add, &others, now_ms);
            }
            match kind {
                StoreType::Add => {
                    m.deleted |= deleted;
                    if seen && !m.seen {
                        m.seen = true;
                        marked.push(m.uid.get());
                    }
                }
                StoreType::Remove => {
                    m.deleted &= !deleted;
                    // Read on the server since this session's SELECT (by
                    // another device) or not: unread now, as a server does.
                    if seen {
                        m.seen = false;
                        unmarked.push(m.uid.get());
                    }
                }
                StoreType::Replace => {
                    return Outcome::Bad("This model server takes +FLAGS and -FLAGS only.");
                }
            }
            if response == StoreResponse::Answer {
                let seq = NonZeroU32::new(i as u32 + 1).expect("1-based");
                let items = Vec1::from(MessageDataItem::Flags(flags(m)));
                out.push(Response::Data(Data::Fetch { seq, items }));
            }
        }
        self.seen_now(marked, now_ms);
        if !unmarked.is_empty() {
            self.store.unseen_now(self.id, now_ms, &unmarked);
        }
        Outcome::Ok("Store completed.")
    }

    /// EXPUNGE (`set` None) or UID EXPUNGE: removes the messages of `set`
    /// this session flagged `\Deleted`, highest sequence number first, so
    /// that each `* n EXPUNGE` names the message as the client numbers it.
    fn expunge(
        &mut self,
        set: Option<&SequenceSet>,
        now_ms: u64,
        out: &mut Vec<Response>,
    ) -> Outcome {
        let Some(view) = self.view.as_mut() else {
            return Outcome::Bad("Select a folder first.");
        };
        let largest = largest_uid(view);
        let elsewhere = match &self.maildrop {
            Some(u) => self.store.flagged_elsewhere(u),
            None => Vec::new(),
        };
        let gone: Vec<usize> = view
            .iter()
            .enumerate()
            .filter(|(_, m)| {
                (m.deleted || elsewhere.contains(&m.uid.get()))
                    && set.is_none_or(|s| uid_in(s, m.uid, largest))
            })
            .map(|(i, _)| i)
            .collect();
        let commit = Commit {
            delete: gone.iter().map(|&i| view[i].uid.get()).collect(),
            seen: Vec::new(),
        };
        self.store.commit_now(self.id, now_ms, &commit);
        for &i in gone.iter().rev() {
            view.remove(i);
            let seq = NonZeroU32::new(i as u32 + 1).expect("1-based");
            out.push(Response::Data(Data::Expunge(seq)));
        }
        Outcome::Ok("Expunge completed.")
    }
}

impl ImapCore {
    /// `UID SEARCH DELETED`: flagged by this session or by another client.
    fn search_deleted(&self, out: &mut Vec<Response>) -> Outcome {
        let (Some(maildrop), Some(view)) = (&self.maildrop, &self.view) else {
            return Outcome::Bad("Select a folder first.");
        };
        let elsewhere = self.store.flagged_elsewhere(maildrop);
        let found = view
            .iter()
            .filter(|m| m.deleted || elsewhere.contains(&m.uid.get()))
            .map(|m| m.uid)
            .collect();
        out.push(Response::Data(Data::Search(found)));
        Outcome::Ok("Search completed.")
    }
}

impl ImapCore {
    /// `UID SEARCH` of one text criterion, over the session's view.
    fn search_text(&self, text: &Text, out: &mut Vec<Response>) -> Outcome {
        let (Some(maildrop), Some(view)) = (&self.maildrop, &self.view) else {
            return Outcome::Bad("Select a folder first.");
        };
        let found = (view.iter())
            .filter(|m| {
                (self.store.body_by_uid(maildrop, m.uid.get())).is_some_and(|b| text.matches(&b))
            })
            .map(|m| m.uid)
            .collect();
        out.push(Response::Data(Data::Search(found)));
        Outcome::Ok("Search completed.")
    }
}

/// The highest UID in the view (what `*` means in a UID set).
fn largest_uid(view: &[Viewed]) -> NonZeroU32 {
    view.last().map_or(NonZeroU32::MIN, |m| m.uid)
}

/// Whether `uid` is in the UID set `set`, without expanding its ranges.
fn uid_in(set: &SequenceSet, uid: NonZeroU32, largest: NonZeroU32) -> bool {
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => v.expand(largest) == uid,
        Sequence::Range(a, b) => {
            let (a, b) = (a.expand(largest), b.expand(largest));
            a.min(b) <= uid && uid <= a.max(b)
        }
    })
}

/// The tagged status that ends a command.
fn status(tag: Tag<'static>, outcome: Outcome) -> Status<'static> {
    let status = match outcome {
        Outcome::Ok(text) => Status::ok(Some(tag), None, text),
        Outcome::OkWith(code, text) => Status::ok(Some(tag), Some(code), text),
        Outcome::AuthFailed => {
            let code = Code::Other(CodeOther::unvalidated(b"AUTHENTICATIONFAILED".to_vec()));
            Status::no(Some(tag), Some(code), "Authentication failed.")
        }
        Outcome::No(text) => Status::no(Some(tag), None, text),
        Outcome::NoWith(code, text) => Status::no(Some(tag), Some(code), text),
        Outcome::Bad(text) => Status::bad(Some(tag), None, text),
    };
    status.expect("valid status text")
}

/// The command as the session's command log keeps it (no credentials).
fn describe(body: &CommandBody<'_>) -> &'static str {
    match body {
        CommandBody::Login { .. } => "LOGIN",
        CommandBody::Fetch { .. } => "UID FETCH",
        CommandBody::Store { .. } => "UID STORE",
        CommandBody::ExpungeUid { .. } => "UID EXPUNGE",
        CommandBody::Search { .. } => "UID SEARCH",
        other => other.name(),
    }
}

/// A core dropped before its end is a session the server lost (its task
/// dropped, its host crashed).
impl Drop for ImapCore {
    fn drop(&mut self) {
        let now = self.store.last_seen_ms();
        self.end(EndKind::ServerShutdown, now);
    }
}

/// The flags other than `\Seen` and `\Deleted` a FETCH reports.
const MARKS: [Flag<'static>; 3] = [Flag::Answered, Flag::Flagged, Flag::Draft];

fn flags(m: &Viewed) -> Vec<FlagFetch<'static>> {
    let mut f = Vec::new();
    if m.seen {
        f.push(FlagFetch::Flag(Flag::Seen));
    }
    for (on, flag) in m.marks.iter().zip(MARKS) {
        if *on {
            f.push(FlagFetch::Flag(flag));
        }
    }
    if m.deleted {
        f.push(FlagFetch::Flag(Flag::Deleted));
    }
    f
}
