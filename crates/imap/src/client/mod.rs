//! The async IMAP client: a thin loop around `imap_next::client::Client`.
//!
//! imap-next is sans-IO: it is given bytes and says what to write, when it
//! needs more input, and which responses arrived. This loop does the I/O
//! through [`Env`], so the same code runs on real sockets and in the
//! turmoil simulation, and every wait is bound by silence, never by size:
//! a read fails once nothing arrived for `command`, so a body of any size
//! has the time it needs while it keeps flowing (its size is capped by
//! `max_message` before it is held). End of stream before the tagged answer
//! is an error ([`ImapError::Eof`]), never a short success.
//!
//! After a transport or protocol error the connection's state is unknown,
//! so the client refuses further commands with [`ImapError::Broken`];
//! a refusal (`NO`, `BAD`) leaves it usable.

mod answer;
mod error;
mod login;
mod removal;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::Duration;

use causeway_net::wait::waited;
use causeway_net::{Env, Stream};
use imap_next::client::{Client, Event, Options};
use imap_next::{Interrupt, Io, State};
use imap_types::command::{Command, CommandBody};
use imap_types::core::Tag;
use imap_types::fetch::MessageDataItem;
use imap_types::flag::FlagNameAttribute;
use imap_types::mailbox::Mailbox;
use imap_types::response::{Code, Data, GreetingKind, Status, StatusBody, StatusKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use error::ImapError;

use crate::command;
use crate::folder::Folder;
use answer::Answer;
pub use answer::Appended;

pub use causeway_net::wait::Timeouts;

/// Room for a response's framing beside the message it carries.
const FRAMING: u32 = 4096;
/// Most bytes one read takes, into a buffer that lives for that read only:
/// an idle session holds none (#18).
const READ_CHUNK: usize = 16 * 1024;

/// Most bytes one write hands the stream before its deadline starts again.
const WRITE_PIECE: usize = 64 * 1024;

/// A thin async IMAP client over any stream.
pub struct ImapClient<E: Env, S> {
    env: E,
    stream: S,
    client: Client,
    timeouts: Timeouts,
    max_response: u32,
    tags: u32,
    /// Upper-case capability names, as the server last listed them.
    capabilities: BTreeSet<String>,
    /// Whether `capabilities` is the list for the current state (it may
    /// change at login).
    capabilities_fresh: bool,
    selected: Option<Folder>,
    broken: bool,
}

impl<E: Env, S> std::fmt::Debug for ImapClient<E, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapClient")
            .field("timeouts", &self.timeouts)
            .field("capabilities", &self.capabilities)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// What a status response said to the commands in flight
/// ([`ImapClient::status`]).
enum Said {
    Answer(StatusBody<'static>),
    Untagged,
    Bye(String),
}

impl<E: Env, S: Stream> ImapClient<E, S> {
    /// Reads the greeting on a fresh connection; a `BYE` greeting is
    /// [`ImapError::Bye`]. Responses larger than `max_message` plus their
    /// framing are refused ([`ImapError::TooLarge`]).
    pub async fn start(
        env: E,
        stream: S,
        timeouts: Timeouts,
        max_message: usize,
    ) -> Result<Self, ImapError> {
        let mut client = Self::new(env, stream, timeouts, max_message, false);
        let r = client.greeting().await;
        client.poison_on_err(r)?;
        Ok(client)
    }

    /// Takes up a session on `stream` after [`ImapClient::starttls`] and
    /// the TLS handshake: no greeting comes, and the capabilities are asked
    /// again (those sent in clear text are not to be trusted, RFC 3501
    /// §6.2.1).
    pub fn after_starttls(env: E, stream: S, timeouts: Timeouts, max_message: usize) -> Self {
        Self::new(env, stream, timeouts, max_message, true)
    }

    fn new(
        env: E,
        stream: S,
        timeouts: Timeouts,
        max_message: usize,
        discard_greeting: bool,
    ) -> Self {
        let max_response = u32::try_from(max_message)
            .unwrap_or(u32::MAX)
            .saturating_add(FRAMING);
        let mut options = Options::default();
        options.max_response_size = max_response;
        options.discard_greeting = discard_greeting;
        ImapClient {
            env,
            stream,
            client: Client::new(options),
            timeouts,
            max_response,
            tags: 0,
            capabilities: BTreeSet::new(),
            capabilities_fresh: false,
            selected: None,
            broken: false,
        }
    }

    async fn greeting(&mut self) -> Result<(), ImapError> {
        let what = "the IMAP greeting";
        loop {
            match self.client.next() {
                Ok(Event::GreetingReceived { greeting }) => {
                    if greeting.kind == GreetingKind::Bye {
                        return Err(ImapError::Bye(greeting.text.inner().to_owned()));
                    }
                    if let Some(code) = &greeting.code {
                        self.take_code(code);
                    }
                    return Ok(());
                }
                Ok(other) => {
                    return Err(ImapError::Protocol(format!(
                        "{other:?} before the greeting"
                    )));
                }
                Err(i) => self.interrupted(i, what, self.timeouts.greeting).await?,
            }
        }
    }

    /// Sends `body` and reads up to its tagged answer. `Ok` only for a
    /// tagged `OK`; `NO` and `BAD` are [`ImapError::Refused`].
    async fn run(
        &mut self,
        body: CommandBody<'static>,
        what: &'static str,
    ) -> Result<Answer, ImapError> {
        if self.broken {
            return Err(ImapError::Broken);
        }
        let r = self.run_inner(vec![body], what, false).await;
        match r {
            Err(ImapError::Refused { .. }) => r,
            r => self.poison_on_err(r),
        }
    }

    /// Sends `bodies` in one write, as a pipelining client (mbsync) does,
    /// and reads up to the last one's tagged answer. A command answered
    /// `NO` is in [`Answer::refused`] and the others' answers are read on;
    /// any other error (`BAD` included: the later commands' answers are
    /// still on their way) leaves the connection unusable.
    async fn run_pipelined(
        &mut self,
        bodies: Vec<CommandBody<'static>>,
        what: &'static str,
    ) -> Result<Answer, ImapError> {
        if self.broken {
            return Err(ImapError::Broken);
        }
        let r = self.run_inner(bodies, what, true).await;
        self.poison_on_err(r)
    }

    /// `each_no`: a `NO` answers one command of the pipeline, not all.
    async fn run_inner(
        &mut self,
        bodies: Vec<CommandBody<'static>>,
        what: &'static str,
        each_no: bool,
    ) -> Result<Answer, ImapError> {
        let body_budget = u64::from(self.max_response) * bodies.len() as u64;
        let mut tags = self.enqueue(bodies, what);
        let mut answer = Answer::default();
        let mut bye: Option<String> = None;
        loop {
            match self.client.next() {
                Ok(Event::CommandSent { .. }) => {}
                Ok(Event::CommandRejected { status, .. }) => {
                    return Err(refused(what, status_body(status)));
                }
                Ok(Event::DataReceived { data }) => {
                    self.take_data(&data)?;
                    answer.take(data, self.env.unix_millis(), body_budget)?;
                }
                Ok(Event::StatusReceived { status }) => match self.status(status, &tags)? {
                    Said::Answer(body) => {
                        tags.pop_front();
                        match body.kind {
                            StatusKind::No if each_no => answer.refused.push(refused(what, body)),
                            StatusKind::Ok => {
                                if let Some(Code::AppendUid { uid_validity, uid }) = body.code {
                                    answer.appended = Some(Appended {
                                        validity: uid_validity,
                                        uid,
                                    });
                                }
                            }
                            _ => return Err(refused(what, body)),
                        }
                        if tags.is_empty() {
                            return Ok(answer);
                        }
                    }
                    Said::Untagged => {}
                    // The server is closing: the answer may still come
                    // (LOGOUT's), else the end of stream says why.
                    Said::Bye(text) => {
                        answer.bye = Some(text.clone());
                        bye = Some(text);
                    }
                },
                Ok(other) => {
                    return Err(ImapError::Protocol(format!(
                        "unexpected {other:?} while waiting for the answer to {what}"
                    )));
                }
                Err(i) => match self.interrupted(i, what, self.timeouts.command).await {
                    Err(ImapError::Eof { .. }) if bye.is_some() => {
                        return Err(ImapError::Bye(bye.unwrap_or_default()));
                    }
                    r => r?,
                },
            }
        }
    }

    /// Gives each of `bodies` the next tag and queues it for sending;
    /// returns the tags in order.
    fn enqueue(
        &mut self,
        bodies: Vec<CommandBody<'static>>,
        what: &'static str,
    ) -> std::collections::VecDeque<Tag<'static>> {
        let mut tags = std::collections::VecDeque::with_capacity(bodies.len());
        for body in bodies {
            self.tags += 1;
            let tag = Tag::try_from(format!("C{}", self.tags)).expect("a valid tag");
            tracing::trace!(command = what, tag = %tag.inner(), "IMAP command");
            self.client.enqueue_command(Command {
                tag: tag.clone(),
                body,
            });
            tags.push_back(tag);
        }
        tags
    }

    /// A status response while commands tagged `waiting` are in flight:
    /// its code taken in; the tagged answer to the first of them, an
    /// untagged status, or `BYE` with its text. A tagged answer to any
    /// other tag is a protocol error.
    fn status(
        &mut self,
        status: Status<'static>,
        waiting: &std::collections::VecDeque<Tag<'static>>,
    ) -> Result<Said, ImapError> {
        match status {
            Status::Tagged(t) if waiting.front() == Some(&t.tag) => {
                if let Some(code) = &t.body.code {
                    self.take_code(code);
                }
                Ok(Said::Answer(t.body))
            }
            Status::Tagged(t) => Err(ImapError::Protocol(format!(
                "a tagged answer ({}) to a command that was not sent",
                t.tag.inner()
            ))),
            Status::Untagged(body) => {
                if let Some(code) = &body.code {
                    self.take_code(code);
                }
                Ok(Said::Untagged)
            }
            Status::Bye(b) => Ok(Said::Bye(b.text.inner().to_owned())),
        }
    }

    /// Does the I/O an interrupt asks for.
    async fn interrupted(
        &mut self,
        i: Interrupt<imap_next::client::Error>,
        what: &'static str,
        within: Duration,
    ) -> Result<(), ImapError> {
        match i {
            // A piece at a time, each within `within`: an APPEND's
            // literal of any size has the time it needs while it moves.
            Interrupt::Io(Io::Output(bytes)) => {
                for piece in bytes.chunks(WRITE_PIECE) {
                    let stream = &mut self.stream;
                    let timed = self
                        .env
                        .timeout(within, what, async move {
                            stream.write_all(piece).await?;
                            stream.flush().await
                        })
                        .await;
                    waited(timed, what, within)?;
                }
                Ok(())
            }
            Interrupt::Io(Io::NeedMoreInput) => {
                let stream = &mut self.stream;
                let mut buf = Vec::with_capacity(READ_CHUNK);
                let n = waited(
                    self.env
                        .timeout(within, what, stream.read_buf(&mut buf))
                        .await,
                    what,
                    within,
                )?;
                if n == 0 {
                    return Err(ImapError::Eof { during: what });
                }
                self.client.enqueue_input(&buf);
                Ok(())
            }
            Interrupt::Error(imap_next::client::Error::ResponseTooLong { .. }) => {
                Err(ImapError::TooLarge {
                    max: self.max_response - FRAMING,
                })
            }
            Interrupt::Error(e) => Err(ImapError::Protocol(format!("{e} (in {what})"))),
        }
    }

    fn poison_on_err<T>(&mut self, r: Result<T, ImapError>) -> Result<T, ImapError> {
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn take_code(&mut self, code: &Code<'_>) {
        match code {
            Code::Capability(caps) => {
                self.capabilities = caps
                    .as_ref()
                    .iter()
                    .map(|c| c.to_string().to_ascii_uppercase())
                    .collect();
                self.capabilities_fresh = true;
            }
            other => {
                if let Some(f) = &mut self.selected {
                    f.apply_code(other);
                }
            }
        }
    }

    fn take_data(&mut self, data: &Data<'_>) -> Result<(), ImapError> {
        if let Data::Capability(caps) = data {
            self.capabilities = caps
                .as_ref()
                .iter()
                .map(|c| c.to_string().to_ascii_uppercase())
                .collect();
            self.capabilities_fresh = true;
        }
        if let Some(f) = &mut self.selected {
            f.apply(data)?;
        }
        Ok(())
    }

    /// The server's capabilities for the current state (asks with
    /// `CAPABILITY` unless the last greeting or login listed them).
    pub async fn capabilities(&mut self) -> Result<&BTreeSet<String>, ImapError> {
        if !self.capabilities_fresh {
            self.run(CommandBody::Capability, "CAPABILITY").await?;
            if !self.capabilities_fresh {
                return Err(ImapError::Protocol(
                    "CAPABILITY answered without a capability list".into(),
                ));
            }
        }
        Ok(&self.capabilities)
    }

    /// `STARTTLS`: on `OK`, the stream, ready for the TLS handshake. A
    /// server that does not list STARTTLS is refused before anything is
    /// sent ([`ImapError::NoStarttls`]). The clear-text parser and whatever
    /// it buffered are dropped here, so nothing received before TLS can be
    /// read as an answer under TLS; a whole response that arrived after the
    /// `OK` is refused outright ([`ImapError::Injected`], the STARTTLS
    /// injection class of CVE-2011-0411).
    pub async fn starttls(mut self) -> Result<S, ImapError> {
        if !self.capabilities().await?.contains("STARTTLS") {
            return Err(ImapError::NoStarttls);
        }
        match self.run(CommandBody::StartTLS, "STARTTLS").await {
            Err(ImapError::Refused { kind, text, .. }) => {
                return Err(ImapError::StarttlsRefused(format!("{kind} {text}")));
            }
            r => r?,
        };
        match self.client.next() {
            Err(Interrupt::Io(Io::NeedMoreInput)) => Ok(self.stream),
            _ => Err(ImapError::Injected),
        }
    }

    /// `SELECT folder`, then its listing (`UID FETCH 1:* (UID RFC822.SIZE
    /// FLAGS)`). The folder stays selected for the commands that follow.
    pub async fn select(&mut self, folder: &str) -> Result<&Folder, ImapError> {
        let cmd = command::select(folder)?;
        self.selected = Some(Folder::default());
        if let Err(e) = self.run(cmd, "SELECT").await {
            self.selected = None;
            return Err(e);
        }
        if self.selected.as_ref().is_some_and(|f| f.exists() > 0) {
            self.run(command::listing(), "UID FETCH (the listing)")
                .await?;
        }
        self.selected.as_ref().ok_or(ImapError::NotSelected)
    }

    /// The selected folder as this session numbers it.
    pub fn folder(&self) -> Option<&Folder> {
        self.selected.as_ref()
    }

    /// The whole message `uid` of the selected folder, fetched with
    /// `BODY.PEEK[]` (it stays unread on the server). `None` if the server
    /// has no such message (expunged meanwhile).
    pub async fn fetch_body(&mut self, uid: NonZeroU32) -> Result<Option<Vec<u8>>, ImapError> {
        self.fetch_one(command::body(uid), uid, Cut::Whole, "UID FETCH (a body)")
            .await
    }

    /// The whole message `uid`, fetched with `BODY[]`: the server marks it
    /// `\Seen` as it sends it. For a mail client that reads (the
    /// simulation's mail user); the edge never reads this way.
    pub async fn read_body(&mut self, uid: NonZeroU32) -> Result<Option<Vec<u8>>, ImapError> {
        self.fetch_one(command::read(uid), uid, Cut::Whole, "UID FETCH (a body)")
            .await
    }

    /// The `BODYSTRUCTURE` of message `uid` and its part 1, read (not
    /// peeked), as Thunderbird shows a large message
    /// ([`command::read_first_part`]). `None` if the server no longer has
    /// it; a response without the structure is a protocol error.
    pub async fn read_first_part(&mut self, uid: NonZeroU32) -> Result<Option<Vec<u8>>, ImapError> {
        self.fetch_one(
            command::read_first_part(uid),
            uid,
            Cut::FirstPart,
            "UID FETCH (structure, part 1)",
        )
        .await
    }

    async fn fetch_one(
        &mut self,
        fetch: CommandBody<'static>,
        uid: NonZeroU32,
        cut: Cut,
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let answer = self.run(fetch, what).await?;
        for data in answer.data {
            if let Some(bytes) = fetched(data, uid, cut)? {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// The whole messages `uids`, their `UID FETCH`es sent in one write
    /// (pipelined, as mbsync does), peeked or read (`BODY[]`, as
    /// [`ImapClient::read_body`]); each with when it arrived
    /// (`Env::unix_millis`), in the order they came. A UID the server no
    /// longer has is left out; so is one whose `UID FETCH` was answered
    /// `NO`, and the refusals come second.
    pub async fn fetch_bodies(
        &mut self,
        uids: &[NonZeroU32],
        read: bool,
    ) -> Result<(Vec<(NonZeroU32, Vec<u8>, u64)>, Vec<ImapError>), ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        if uids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let answer = self
            .run_pipelined(fetches(uids, read), "UID FETCH (bodies, pipelined)")
            .await?;
        let mut out = Vec::new();
        for (data, at) in answer.data.into_iter().zip(answer.arrived) {
            let Data::Fetch { items, .. } = &data else {
                continue;
            };
            let uid = items.as_ref().iter().find_map(|i| match i {
                MessageDataItem::Uid(u) if uids.contains(u) => Some(*u),
                _ => None,
            });
            if let Some(uid) = uid {
                if let Some(body) = fetched(data, uid, Cut::Whole)? {
                    out.push((uid, body, at));
                }
            }
        }
        Ok((out, answer.refused))
    }

    /// Sends the `UID FETCH`es of `uids` in one write, as
    /// [`ImapClient::fetch_bodies`] does, and hangs up without reading a
    /// response: a mail client that gives up with its commands in flight.
    /// The connection is unusable afterwards. For the simulation's mail
    /// user (a command read before its predecessor's response was written
    /// proves nothing about that response).
    pub async fn fetch_and_hang_up(
        &mut self,
        uids: &[NonZeroU32],
        read: bool,
    ) -> Result<(), ImapError> {
        const WHAT: &str = "UID FETCH (then hanging up)";
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        self.broken = true;
        self.enqueue(fetches(uids, read), WHAT);
        let mut sent = 0;
        while sent < uids.len() {
            match self.client.next() {
                Ok(Event::CommandSent { .. }) => sent += 1,
                Ok(_) => {}
                Err(Interrupt::Io(Io::NeedMoreInput)) => break,
                Err(i) => self.interrupted(i, WHAT, self.timeouts.command).await?,
            }
        }
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    /// Marks `uids` read (`UID STORE +FLAGS.SILENT (\Seen)`): only once the
    /// mail client has each whole message.
    pub async fn mark_seen(&mut self, uids: &[NonZeroU32]) -> Result<(), ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let cmd = command::mark_seen(uids)?;
        self.run(cmd, "UID STORE (\\Seen)").await.map(drop)
    }

    /// Marks `uids` unread (`UID STORE -FLAGS.SILENT (\Seen)`), as the mail
    /// client asked.
    pub async fn unmark_seen(&mut self, uids: &[NonZeroU32]) -> Result<(), ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let cmd = command::unmark_seen(uids)?;
        self.run(cmd, "UID STORE (-\\Seen)").await.map(drop)
    }

    /// Adds `flags` to `uids` (`add`) or takes them away, as the mail client
    /// asked (`UID STORE ±FLAGS.SILENT`; see [`command::store_flags`] for
    /// the flags it refuses). A `NO` is [`ImapError::Refused`].
    pub async fn store_flags(
        &mut self,
        uids: &[NonZeroU32],
        add: bool,
        flags: &[String],
    ) -> Result<(), ImapError> {
        self.selected.as_ref().ok_or(ImapError::NotSelected)?;
        let cmd = command::store_flags(uids, add, flags)?;
        self.run(cmd, "UID STORE (flags)").await.map(drop)
    }

    /// `APPEND folder (flags) {n}`: stores `message` in `folder`, answered
    /// once the server said `OK`, with where it stored it when the server
    /// has UIDPLUS (a `NO`, over quota or too big, is
    /// [`ImapError::Refused`] and leaves the session usable). Not retried
    /// here: a session lost after the literal went out may or may not have
    /// stored it, and only the caller knows whether to ask again.
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[String],
        message: &[u8],
    ) -> Result<Option<Appended>, ImapError> {
        let cmd = command::append(folder, flags, message)?;
        self.run(cmd, "APPEND").await.map(|a| a.appended)
    }

    /// The names of the account's folders that can be selected (`LIST ""
    /// "*"`, without those marked `\Noselect` or `\NonExistent`), sorted;
    /// a name that is not UTF-8 as the server sent it is shown lossily.
    pub async fn folders(&mut self) -> Result<Vec<String>, ImapError> {
        let answer = self.run(command::list_all(), "LIST").await?;
        let mut names: Vec<String> = answer
            .data
            .iter()
            .filter_map(|d| match d {
                Data::List { items, mailbox, .. } if items.iter().all(selectable) => {
                    Some(match mailbox {
                        Mailbox::Inbox => "INBOX".to_owned(),
                        Mailbox::Other(other) => String::from_utf8_lossy(other.as_ref()).into(),
                    })
                }
                _ => None,
            })
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// `NOOP`: keeps the session alive and collects the server's news.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        self.run(CommandBody::Noop, "NOOP").await.map(drop)
    }

    /// `LOGOUT`, then closes our sending side. The server commits nothing
    /// at LOGOUT (IMAP changes take effect as each command is answered),
    /// but it ends the session cleanly, which frees a connection slot.
    pub async fn logout(self) -> Result<(), ImapError> {
        self.logout_saying().await.map(drop)
    }

    /// [`ImapClient::logout`], giving the text of the server's `BYE` (empty
    /// if it sent none before its `OK`).
    pub async fn logout_saying(mut self) -> Result<String, ImapError> {
        let r = self.run(CommandBody::Logout, "LOGOUT").await;
        let _ = self
            .env
            .timeout(
                self.timeouts.command,
                "closing the IMAP connection",
                self.stream.shutdown(),
            )
            .await;
        r.map(|a| a.bye.unwrap_or_default())
    }
}

/// The whole body in `data`, if it is the FETCH response of `uid` (not
/// an unsolicited flag change of another message).
/// The `UID FETCH`es of whole messages `uids`: read (`BODY[]`) or peeked.
fn fetches(uids: &[NonZeroU32], read: bool) -> Vec<CommandBody<'static>> {
    uids.iter()
        .map(|&u| {
            if read {
                command::read(u)
            } else {
                command::body(u)
            }
        })
        .collect()
}

/// Whether a LIST attribute leaves the name selectable.
fn selectable(attribute: &FlagNameAttribute<'_>) -> bool {
    !matches!(attribute, FlagNameAttribute::Noselect)
        && !attribute.to_string().eq_ignore_ascii_case("\\NonExistent")
}

/// What a `UID FETCH` asked for: the whole message or its first part.
#[derive(Clone, Copy, PartialEq)]
enum Cut {
    /// `BODY[]`: NIL is a protocol error.
    Whole,
    /// `BODY[1]`, with `BODYSTRUCTURE` beside it (a response without it
    /// is a protocol error); NIL is an empty part.
    FirstPart,
}

/// The bytes `data` carries for `uid` as `cut` asked; None if `data` is
/// not the FETCH of `uid` (an unsolicited one, another message's).
fn fetched(data: Data<'static>, uid: NonZeroU32, cut: Cut) -> Result<Option<Vec<u8>>, ImapError> {
    let Data::Fetch { items, .. } = data else {
        return Ok(None);
    };
    let items = items.into_inner();
    if !items
        .iter()
        .any(|i| matches!(i, MessageDataItem::Uid(u) if *u == uid))
    {
        return Ok(None);
    }
    let part = cut == Cut::FirstPart;
    if part
        && !items
            .iter()
            .any(|i| matches!(i, MessageDataItem::BodyStructure(_)))
    {
        return Err(ImapError::Protocol(format!(
            "no BODYSTRUCTURE for UID {uid}"
        )));
    }
    for item in items {
        if let MessageDataItem::BodyExt {
            section,
            origin: None,
            data,
        } = item
            && section.is_some() == part
        {
            return match data.into_option() {
                Some(bytes) => Ok(Some(bytes.into_owned())),
                None if part => Ok(Some(Vec::new())),
                None => Err(ImapError::Protocol(format!("NIL as the body of UID {uid}"))),
            };
        }
    }
    Ok(None)
}

fn status_body(status: Status<'static>) -> StatusBody<'static> {
    match status {
        Status::Untagged(b) => b,
        Status::Tagged(t) => t.body,
        Status::Bye(b) => StatusBody {
            kind: StatusKind::Bad,
            code: b.code,
            text: b.text,
        },
    }
}

fn refused(what: &'static str, body: StatusBody<'_>) -> ImapError {
    let code = body.code.as_ref().map(|c| match c {
        Code::Other(o) => String::from_utf8_lossy(o.inner()).to_ascii_uppercase(),
        other => format!("{other:?}").to_ascii_uppercase(),
    });
    ImapError::Refused {
        what,
        kind: match body.kind {
            StatusKind::No => "NO",
            StatusKind::Bad => "BAD",
            StatusKind::Ok => "OK",
        },
        code,
        text: body.text.inner().to_owned(),
    }
}
