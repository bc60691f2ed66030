//! The IMAP front's answers, command by command: what is answered from the
//! folder view, and what becomes an operation on the POP3 session.
//!
//! What the client changes (flags, read marks, expunges) is in
//! [`super::changes`].

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::command::{Command, CommandBody};
use causeway_imap::imap_types::core::{IString, NString, QuotedChar, Tag};
use causeway_imap::imap_types::extensions::namespace::Namespace;
use causeway_imap::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use causeway_imap::imap_types::mailbox::{ListMailbox, Mailbox};
use causeway_imap::imap_types::response::{Code, Data, Status};
use causeway_imap::imap_types::status::{StatusDataItem, StatusDataItemName};
use causeway_imap::serve::keywords::Keywords;
use causeway_imap::serve::list_matches;
use causeway_imap::serve::view::View;
use causeway_net::{Env, Instant};
use causeway_pop3::ClientError;
use causeway_proto::session::ServerFlags;
use tokio::sync::watch;

use super::changes::Marks;
use super::fetch::Cached;
use super::maildrop::Maildrop;
use super::recheck::Unlisted;
use super::replies::{bad, capabilities, code, no, ok, refusal, text};
use crate::broken::Broken;
use crate::config::{ClientConfig, TRASH};
use crate::shared::Shared;

/// The unified mailbox of every entry that reads an INBOX; the other
/// folders are named as their entries (`ClientConfig::imap_folders`).
pub(super) const INBOX: &str = causeway_proto::user::INBOX;

/// LOGOUT's `BYE` when every read mark the session earned was made and
/// every session behind committed its work.
pub const LOGGED_OUT: &str = "Causeway logging out";

/// Whether the session goes on.
pub(super) enum Flow {
    Go,
    Close(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Greeted,
    Authed,
    Selected { read_only: bool },
}

pub(super) struct Front<E: Env> {
    pub(super) env: E,
    pub(super) shared: Shared,
    pub(super) maildrop: Option<Maildrop<E>>,
    pub(super) state: State,
    /// The folder [`Front::view`] shows: `INBOX` until another is selected.
    pub(super) folder: String,
    /// The session behind's listing: (POP3 number, size, shown UIDL) of the
    /// messages of every folder.
    pub(super) listing: Vec<(u32, u64, String)>,
    /// What the IMAP servers said of the listing's flags, by POP3 number
    /// (`super::recheck`).
    pub(super) server_flags: BTreeMap<u32, ServerFlags>,
    pub(super) view: Option<View<u32>>,
    /// The UID book's key of each message shown, by UID (`crate::uids`).
    pub(super) book_keys: BTreeMap<NonZeroU32, String>,
    pub(super) marks: Marks,
    /// A read mark was refused, or a session behind ended without
    /// committing everything: LOGOUT does not say [`LOGGED_OUT`].
    pub(super) uncommitted: bool,
    pub(super) cache: Option<Cached>,
    /// The tag of an AUTHENTICATE waiting for its data.
    pub(super) authenticating: Option<Tag<'static>>,
    /// How often a long fetch tells the mail client it goes on.
    pub(super) heartbeat: std::time::Duration,
    /// The silence allowed writing to the mail client.
    pub(super) request: std::time::Duration,
    pub(super) config: Arc<ClientConfig>,
    pub(super) shutdown: watch::Receiver<bool>,
    /// When the session behind listed the folder ([`Front::recheck`]).
    pub(super) listed_at: Instant,
    /// When the session behind that listed it started, in Unix
    /// milliseconds: a message stored since may be missing from the
    /// listing, and the UID book does not forget it for that.
    pub(super) listed_ms: u64,
    /// `Broken::ImapUidsByListing` (never in a shipped build).
    pub(super) uids_by_listing: bool,
    /// `Broken::ImapSeenUnowed` (never in a shipped build).
    pub(super) seen_unowed: bool,
    /// `Broken::ImapPipelinedProvesRead` (never in a shipped build).
    pipelined_proves_read: bool,
}

impl<E: Env> Front<E> {
    pub fn new(
        env: E,
        shared: Shared,
        maildrop: Maildrop<E>,
        config: Arc<ClientConfig>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let timeouts = &config.timeouts;
        Front {
            listed_at: env.now(),
            listed_ms: env.unix_millis(),
            uids_by_listing: config.broken(Broken::ImapUidsByListing),
            seen_unowed: config.broken(Broken::ImapSeenUnowed),
            pipelined_proves_read: config.broken(Broken::ImapPipelinedProvesRead),
            uncommitted: false,
            // Half the ping interval: well inside any mail client's
            // timeout (fetchmail's default is 300 s, imaplib has none).
            heartbeat: timeouts.ping_interval / 2,
            request: timeouts.request,
            env,
            shared,
            maildrop: Some(maildrop),
            state: State::Greeted,
            folder: INBOX.to_owned(),
            listing: Vec::new(),
            server_flags: BTreeMap::new(),
            view: None,
            book_keys: BTreeMap::new(),
            marks: Marks::default(),
            cache: None,
            authenticating: None,
            config,
            shutdown,
        }
    }

    pub(super) fn maildrop(&mut self) -> Result<&mut Maildrop<E>, ClientError> {
        self.maildrop.as_mut().ok_or(ClientError::Broken)
    }

    pub(super) fn view(&mut self) -> &mut View<u32> {
        self.view.as_mut().expect("selected states have a view")
    }

    /// The shown folder's keyword table.
    pub(super) fn keywords(&self) -> &Keywords {
        &self
            .view
            .as_ref()
            .expect("selected states have a view")
            .keywords
    }

    pub(super) fn read_only(&self) -> bool {
        matches!(self.state, State::Selected { read_only: true })
    }

    /// Everything enqueued so far is on the socket: the next command read
    /// proves the client took it.
    pub fn all_written(&mut self) {
        let m = &mut self.marks;
        m.due.append(&mut m.awaiting);
    }

    /// While the client is quiet: keeps the POP3 session alive once logged
    /// in (before, its own silence bound applies: an IMAP client that never
    /// logs in is let go after `client_idle`). A lost line shows here.
    pub async fn keep_alive(&mut self) -> Result<(), ClientError> {
        if self.state == State::Greeted {
            return Ok(());
        }
        self.maildrop()?.noop().await
    }

    /// Answers a command imap-next could not take: `tag BAD` when its
    /// first word is a tag, so the client that waits for that tag is told
    /// (an untagged `* BAD` alone leaves it waiting for ever); `* BAD` when
    /// nothing readable as a tag came first.
    pub fn refuse_unparsed(&mut self, server: &mut Server, discarded: &[u8], why: &str) {
        let tag = discarded
            .split(|b| *b == b' ')
            .next()
            .and_then(|first| Tag::try_from(first.to_vec()).ok());
        let bad = Status::bad(tag, None, text(format!("{why}; command ignored"))).expect("text");
        server.enqueue_status(bad);
    }

    pub fn bye(&mut self, server: &mut Server, why: &str) {
        let bye = Status::bye(Some(code("UNAVAILABLE")), text(why)).expect("text");
        server.enqueue_status(bye);
    }

    /// The session is over without LOGOUT. In IMAP what was answered `OK`
    /// is done (a client need not log out for its flags and expunges to
    /// count: neomutt quits without LOGOUT): the edge owed each stored
    /// `\Seen` before its STORE was answered, and the POP3 session ends
    /// with QUIT, which commits them and the deletes at once. A body it
    /// took without a later command proved nothing and stays unread.
    pub async fn end(mut self) {
        if self.state == State::Greeted || self.maildrop.is_none() {
            return;
        }
        // Its server sessions hold the maildrop locks until the QUIT is
        // done: a mail client that logs in meanwhile waits for it.
        let committing = self.shared.committing.clone();
        let _committing = committing.lock().await;
        if let Some(Err(e)) = self.quit_behind().await {
            tracing::debug!(error = %e, "the POP3 session behind ended before its QUIT")
        }
    }

    pub async fn command(
        &mut self,
        server: &mut Server,
        mail: &mut E::Stream,
        cmd: Command<'static>,
    ) -> Flow {
        let tag = cmd.tag;
        tracing::debug!(
            tag = tag.as_ref(),
            command = cmd.body.name(),
            "IMAP command"
        );
        if self.pipelined_proves_read {
            self.all_written();
        }
        if let Err(e) = self.settle_marks().await {
            return self.lost(server, tag, &e);
        }
        let authed = self.state != State::Greeted;
        let selected = matches!(self.state, State::Selected { .. });
        match cmd.body {
            CommandBody::Capability => {
                server.enqueue_data(Data::Capability(capabilities(authed)));
                server.enqueue_status(ok(tag, None, "CAPABILITY completed"));
            }
            CommandBody::Noop | CommandBody::Check => {
                if let Err(e) = self.recheck(server, selected).await {
                    return self.lost(server, tag, &e);
                }
                server.enqueue_status(ok(tag, None, "completed"));
            }
            CommandBody::Logout => return self.logout(server, tag).await,
            CommandBody::StartTLS => {
                server.enqueue_status(bad(tag, "STARTTLS is not offered on loopback"));
            }
            CommandBody::Id { .. } => {
                let name = (
                    IString::try_from("name").expect("atom"),
                    NString::try_from("Causeway").expect("quoted"),
                );
                server.enqueue_data(Data::Id {
                    parameters: Some(vec![name]),
                });
                server.enqueue_status(ok(tag, None, "ID completed"));
            }
            CommandBody::Login { username, password } if !authed => {
                let status = self
                    .login(tag, username.as_ref(), password.declassify().as_ref())
                    .await;
                return self.logged_in(server, status);
            }
            CommandBody::Login { .. } => {
                server.enqueue_status(bad(tag, "already logged in"));
            }
            _ if !authed => {
                server.enqueue_status(bad(tag, "log in first (LOGIN or AUTHENTICATE PLAIN)"));
            }
            CommandBody::Enable { .. } => {
                server.enqueue_data(Data::Enabled {
                    capabilities: vec![],
                });
                server.enqueue_status(ok(tag, None, "nothing to enable"));
            }
            CommandBody::Namespace => {
                let personal =
                    Namespace::new(IString::try_from("").expect("quoted"), Some(delimiter()));
                server.enqueue_data(Data::Namespace {
                    personal: vec![personal],
                    other: vec![],
                    shared: vec![],
                });
                server.enqueue_status(ok(tag, None, "NAMESPACE completed"));
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(server, tag, &reference, &mailbox_wildcard, false),
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(server, tag, &reference, &mailbox_wildcard, true),
            CommandBody::Status {
                mailbox,
                item_names,
            } => return self.status(server, tag, &mailbox, &item_names).await,
            CommandBody::Append {
                mailbox,
                flags,
                message,
                ..
            } => {
                return self
                    .append(server, mail, tag, &mailbox, &flags, &message)
                    .await;
            }
            CommandBody::Select { mailbox, .. } => {
                return self.open_folder(server, tag, &mailbox, false).await;
            }
            CommandBody::Examine { mailbox, .. } => {
                return self.open_folder(server, tag, &mailbox, true).await;
            }
            _ if !selected => {
                server.enqueue_status(bad(tag, "select a folder first"));
            }
            CommandBody::Unselect => {
                self.state = State::Authed;
                server.enqueue_status(ok(tag, None, "UNSELECT completed"));
            }
            CommandBody::Close => {
                let flow = if self.read_only() {
                    server.enqueue_status(ok(tag, None, "CLOSE completed"));
                    Flow::Go
                } else {
                    self.expunge(server, tag, None, false).await
                };
                self.state = State::Authed;
                return flow;
            }
            CommandBody::Expunge => return self.expunge(server, tag, None, true).await,
            CommandBody::ExpungeUid { sequence_set } => {
                return self.expunge(server, tag, Some(sequence_set), true).await;
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } => {
                return self
                    .search(server, tag, charset.as_ref(), criteria.as_ref(), uid)
                    .await;
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                ..
            } => {
                return self
                    .store(server, tag, &sequence_set, kind, response, &flags, uid)
                    .await;
            }
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } => {
                return self
                    .move_messages(server, tag, &sequence_set, &mailbox, uid)
                    .await;
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                ..
            } => {
                return self
                    .fetch(server, mail, tag, &sequence_set, macro_or_item_names, uid)
                    .await;
            }
            CommandBody::Copy { .. } => {
                server.enqueue_status(no(
                    tag,
                    Some(code("CANNOT")),
                    "Causeway cannot copy mail: the servers behind it have nowhere to keep a \
                     copy. To delete a message, move it to Trash (MOVE)",
                ));
            }
            other => {
                let what = other.name();
                server.enqueue_status(no(
                    tag,
                    Some(code("CANNOT")),
                    format!(
                        "{what} is not served by Causeway yet: it shows the configured \
                         folders to read and delete"
                    ),
                ));
            }
        }
        Flow::Go
    }

    /// The POP3 session failed: tells the client and ends.
    pub(super) fn lost(&mut self, server: &mut Server, tag: Tag<'static>, e: &ClientError) -> Flow {
        let (c, t, over) = refusal(e);
        if over {
            tracing::warn!(error = %e, "the POP3 session behind this IMAP client ended; closing it");
            self.maildrop = None;
            self.bye(server, &t);
            server.enqueue_status(no(tag, c, t));
            return Flow::Close("the POP3 session behind it ended");
        }
        server.enqueue_status(no(tag, c, t));
        Flow::Go
    }

    /// LOGOUT: the session behind ends with QUIT, and the `BYE` says
    /// whether everything this session earned was committed: every read
    /// mark made, on this session behind and on the ones rechecks ended
    /// ([`LOGGED_OUT`]), or not.
    async fn logout(&mut self, server: &mut Server, tag: Tag<'static>) -> Flow {
        let bye = match self.quit_behind().await {
            Some(Ok(s)) if s.status == causeway_pop3::Status::Ok && !self.uncommitted => {
                LOGGED_OUT.to_string()
            }
            Some(Ok(s)) if s.status == causeway_pop3::Status::Ok => {
                "logging out; some read marks could not be made (the proxy's log says which); \
                 deletes already acknowledged are carried out"
                    .to_string()
            }
            Some(Ok(s)) => format!(
                "logging out; not everything could be committed now ({}); deletes already \
                 acknowledged are still carried out",
                String::from_utf8_lossy(&s.text)
            ),
            Some(Err(e)) => format!("logging out; the session behind ended ({e})"),
            None => "logging out".into(),
        };
        server.enqueue_status(Status::bye(None, text(bye)).expect("text"));
        server.enqueue_status(ok(tag, None, "LOGOUT completed"));
        Flow::Close("the mail client logged out")
    }

    fn list(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        reference: &Mailbox<'_>,
        pattern: &ListMailbox<'_>,
        lsub: bool,
    ) {
        let reference = mailbox_bytes(reference);
        let pattern: &[u8] = match pattern {
            ListMailbox::Token(t) => t.as_ref(),
            ListMailbox::String(s) => s.as_ref(),
        };
        if pattern.is_empty() && !lsub {
            // The hierarchy delimiter and root (RFC 3501 §6.3.8).
            server.enqueue_data(Data::List {
                items: vec![FlagNameAttribute::Noselect],
                delimiter: Some(delimiter()),
                mailbox: Mailbox::try_from("").expect("empty quoted"),
            });
        } else {
            for folder in self.config.imap_folders() {
                if !list_matches(&reference, pattern, folder) {
                    continue;
                }
                let attribute = |a: &'static str| {
                    FlagNameAttribute::from(
                        causeway_imap::imap_types::core::Atom::try_from(a).expect("atom"),
                    )
                };
                let mut items = vec![attribute("HasNoChildren")];
                if folder == TRASH {
                    // RFC 6154: how clients find it under any name.
                    items.push(attribute("Trash"));
                }
                let mailbox =
                    Mailbox::try_from(folder.to_owned()).expect("an entry's name is an atom");
                server.enqueue_data(if lsub {
                    Data::Lsub {
                        items,
                        delimiter: Some(delimiter()),
                        mailbox,
                    }
                } else {
                    Data::List {
                        items,
                        delimiter: Some(delimiter()),
                        mailbox,
                    }
                });
            }
        }
        server.enqueue_status(ok(
            tag,
            None,
            if lsub {
                "LSUB completed"
            } else {
                "LIST completed"
            },
        ));
    }

    /// STATUS: the shown folder's from its view, another's from the
    /// session behind's listing, numbered by its UID book.
    async fn status(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        names: &[StatusDataItemName],
    ) -> Flow {
        let Some(folder) = self.folder_named(mailbox) else {
            server.enqueue_status(nonexistent(tag));
            return Flow::Go;
        };
        let other;
        let v = if folder == self.folder {
            self.view()
        } else {
            match self.number_folder(&folder).await {
                Ok(listed) => {
                    other = listed.into_view();
                    &other
                }
                Err(e) => return self.unlisted(server, tag, e),
            }
        };
        let mut items = Vec::new();
        for n in names {
            items.push(match n {
                StatusDataItemName::Messages => StatusDataItem::Messages(v.exists()),
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(v.uid_next()),
                StatusDataItemName::UidValidity => StatusDataItem::UidValidity(v.uid_validity),
                StatusDataItemName::Unseen => StatusDataItem::Unseen(v.unseen()),
                other => {
                    server.enqueue_status(no(
                        tag,
                        Some(code("CANNOT")),
                        format!("STATUS {other:?} is not served here"),
                    ));
                    return Flow::Go;
                }
            });
        }
        server.enqueue_data(Data::Status {
            mailbox: mailbox.clone(),
            items: items.into(),
        });
        server.enqueue_status(ok(tag, None, "STATUS completed"));
        Flow::Go
    }

    /// The folder `mailbox` names, if the configuration has it: `INBOX` in
    /// any case (RFC 3501 §5.1), another as its entry spells it.
    pub(super) fn folder_named(&self, mailbox: &Mailbox<'_>) -> Option<String> {
        let name = mailbox_bytes(mailbox);
        self.config
            .imap_folders()
            .into_iter()
            .find(|f| f.as_bytes() == name.as_slice())
            .map(str::to_owned)
    }

    /// The folder could not be numbered: a session that lost the edge ends
    /// as any other; a UID book that cannot be written ends it too, since
    /// nothing may be shown.
    fn unlisted(&mut self, server: &mut Server, tag: Tag<'static>, e: Unlisted) -> Flow {
        match e {
            Unlisted::Session(e) => self.lost(server, tag, &e),
            Unlisted::Book => {
                self.maildrop = None;
                self.lost(server, tag, &ClientError::Broken)
            }
        }
    }

    /// SELECT or EXAMINE: a new view for the client, listed again if due
    /// (what changed is not reported: the client starts afresh).
    async fn open_folder(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        mailbox: &Mailbox<'_>,
        read_only: bool,
    ) -> Flow {
        let Some(folder) = self.folder_named(mailbox) else {
            // RFC 3501 §6.3.1: a failed SELECT leaves no folder selected.
            self.state = State::Authed;
            server.enqueue_status(nonexistent(tag));
            return Flow::Go;
        };
        if let Err(e) = self.recheck(server, false).await {
            return self.lost(server, tag, &e);
        }
        if folder != self.folder {
            // The shown folder's proved read marks go into its UID book
            // before its view goes.
            if let Err(e) = self.prove_marks().await {
                return self.lost(server, tag, &e);
            }
            match self.number_folder(&folder).await {
                Ok(listed) => {
                    self.show(listed);
                    self.folder = folder;
                }
                Err(e) => return self.unlisted(server, tag, e),
            }
        }
        self.drop_out_of_reach();
        self.select(server, tag, read_only);
        Flow::Go
    }

    /// The folder's FLAGS and PERMANENTFLAGS: the system flags and its
    /// keywords, all kept across sessions by the UID book (`crate::uids`),
    /// and `\*` while its keyword table has room. At SELECT, and when a
    /// STORE defined a keyword.
    pub(super) fn announce_flags(&self, server: &mut Server, read_only: bool) {
        let keywords = self.keywords();
        let mut flags = vec![
            Flag::Seen,
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Draft,
        ];
        flags.extend(keywords.all());
        let permanent = if read_only {
            vec![]
        } else {
            let mut p: Vec<FlagPerm> = flags.iter().cloned().map(FlagPerm::Flag).collect();
            if keywords.has_room() {
                p.push(FlagPerm::Asterisk);
            }
            p
        };
        server.enqueue_data(Data::Flags(flags));
        let permitted = Status::ok(
            None,
            Some(Code::PermanentFlags(permanent)),
            "Flags permitted.",
        );
        server.enqueue_status(permitted.expect("text"));
    }

    fn select(&mut self, server: &mut Server, tag: Tag<'static>, read_only: bool) {
        let v = self.view();
        let (exists, first_unseen, validity, next) =
            (v.exists(), v.first_unseen(), v.uid_validity, v.uid_next());
        self.announce_flags(server, read_only);
        server.enqueue_data(Data::Exists(exists));
        server.enqueue_data(Data::Recent(0));
        let info = |c: Code<'static>, t: &'static str| Status::ok(None, Some(c), t).expect("text");
        // Plain texts, as Dovecot's: fetchmail takes any untagged line with
        // the word EXPUNGE (or EXISTS, RECENT) in it for that response.
        if let Some(n) = first_unseen {
            server.enqueue_status(info(Code::Unseen(n), "First unseen."));
        }
        server.enqueue_status(info(Code::UidValidity(validity), "UIDs valid."));
        server.enqueue_status(info(Code::UidNext(next), "Predicted next UID."));
        self.state = State::Selected { read_only };
        let c = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        let selected = format!("{} selected", self.folder);
        server.enqueue_status(ok(tag, Some(c), selected));
    }
}

fn nonexistent(tag: Tag<'static>) -> Status<'static> {
    no(
        tag,
        Some(code("NONEXISTENT")),
        "no such folder here: INBOX holds the mail of every server entry that reads an \
         INBOX, and each entry that reads another folder is a folder of its name (LIST \
         shows them)",
    )
}

fn delimiter() -> QuotedChar {
    QuotedChar::try_from('/').expect("valid")
}

pub(super) fn mailbox_bytes(m: &Mailbox<'_>) -> Vec<u8> {
    match m {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.inner().as_ref().to_vec(),
    }
}
