//! FETCH: the items asked for, from the folder view and from the message's
//! bytes, which come from the POP3 session with `TOP` (never `RETR`, so a
//! fetch alone never marks a message read). `ENVELOPE`, `BODYSTRUCTURE`
//! and MIME part sections are computed from those bytes
//! (`causeway_imap::serve`) as the server would give them.
//!
//! A non-peek item (`BODY[…]`, `RFC822`, `RFC822.TEXT`) answers as the
//! server would, `\Seen` in its flags. The read mark reaches the server
//! only if the response carried the whole message (`RFC822`, or `BODY[]`
//! uncut): a header or a part is not "all of it". That mark is queued, and
//! the POP3 session gets it only once the delivery is proved (see
//! `commands`).
//! One message's bytes are kept between commands, for the client that
//! fetches the header, then the text, then stores `\Seen`.

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::IntoStatic;
use causeway_imap::imap_types::core::{IString, Literal, NString, Tag, Vec1};
use causeway_imap::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use causeway_imap::imap_types::response::Data;
use causeway_imap::imap_types::sequence::SequenceSet;
use causeway_imap::serve::envelope::envelope;
use causeway_imap::serve::mime;
use causeway_imap::serve::sections::{self, Need};
use causeway_imap::serve::structure::structure;
use causeway_imap::serve::view::{internal_date, seq_of};
use causeway_net::Env;
use causeway_pop3::{ClientError, RespCode};

use super::commands::{Flow, Front};
use super::heartbeat::ClientGone;
use super::replies::{cannot, no, ok, refusal};

/// Why a FETCH ends, when the mail client hung up while its message was
/// on its way.
const CLIENT_GONE: &str = "the mail client closed the connection during a fetch";

/// Why a message's bytes are not in the cache.
enum NotFetched {
    /// The POP3 session behind refused or failed.
    Failed(ClientError),
    /// The mail client hung up meanwhile.
    ClientGone,
}

impl From<ClientError> for NotFetched {
    fn from(e: ClientError) -> Self {
        NotFetched::Failed(e)
    }
}

/// The bytes of one message, as far as fetched.
pub(super) struct Cached {
    /// Its POP3 number.
    pub message: u32,
    pub need: Need,
    pub bytes: Vec<u8>,
}

/// What a FETCH needs: the bytes (if any), and whether it reads.
struct Plan {
    need: Option<Need>,
    reads: bool,
}

fn plan(names: &[MessageDataItemName<'_>]) -> Result<Plan, String> {
    let mut p = Plan {
        need: None,
        reads: false,
    };
    for name in names {
        let (need, reads) = match name {
            MessageDataItemName::Uid
            | MessageDataItemName::Flags
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size => (None, false),
            MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => {
                (Some(Need::Whole), true)
            }
            MessageDataItemName::Rfc822Header | MessageDataItemName::Envelope => {
                (Some(Need::Header), false)
            }
            MessageDataItemName::Body | MessageDataItemName::BodyStructure => {
                (Some(Need::Whole), false)
            }
            MessageDataItemName::BodyExt { section, peek, .. } => {
                (Some(sections::need(section.as_ref())), !peek)
            }
            other => {
                return Err(format!(
                    "FETCH {other:?} is not served here (UID, FLAGS, INTERNALDATE, \
                     RFC822.SIZE, RFC822*, ENVELOPE, BODY, BODYSTRUCTURE and BODY[...] \
                     sections are)"
                ));
            }
        };
        p.need = p.need.max(need);
        p.reads |= reads;
    }
    Ok(p)
}

fn nstring(bytes: &[u8]) -> NString<'static> {
    // A literal carries any octets: mail is passed on as the server has it.
    NString(Some(IString::Literal(Literal::unvalidated(bytes.to_vec()))))
}

impl<E: Env> Front<E> {
    pub async fn fetch(
        &mut self,
        server: &mut Server,
        mail: &mut E::Stream,
        tag: Tag<'static>,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        uid: bool,
    ) -> Flow {
        let mut names = match items {
            MacroOrMessageDataItemNames::Macro(m) => m
                .expand()
                .into_iter()
                .map(IntoStatic::into_static)
                .collect(),
            MacroOrMessageDataItemNames::MessageDataItemNames(v) => v,
        };
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.push(MessageDataItemName::Uid);
        }
        let p = match plan(&names) {
            Ok(p) => p,
            Err(why) => {
                server.enqueue_status(no(tag, Some(cannot()), why));
                return Flow::Go;
            }
        };
        let reads = p.reads && !self.read_only();
        if reads && !names.contains(&MessageDataItemName::Flags) {
            names.push(MessageDataItemName::Flags);
        }
        // A message refused for good (one whose UIDL and size another
        // shares, one too big: `[SYS/PERM]`) is left out and the rest
        // served, as Dovecot does: one bad message must not hide every
        // later one from a client that fetches `1:*`. The tagged NO then
        // says why. Any other failure (the line to the edge lost, a server
        // out of reach) would fail the rest too: the command ends there.
        let mut refused = None;
        for i in self.view().resolve(set, uid) {
            let key = self.view().get(i).key;
            if let Some(need) = p.need {
                if let Err(e) = self.bytes_of(server, mail, key, need).await {
                    let e = match e {
                        NotFetched::ClientGone => return Flow::Close(CLIENT_GONE),
                        NotFetched::Failed(e) => e,
                    };
                    if !matches!(&e, ClientError::Refused(s) if s.code == Some(RespCode::SysPerm)) {
                        return self.lost(server, tag, &e);
                    }
                    refused.get_or_insert(e);
                    continue;
                }
                if need == Need::Whole {
                    let len = self.cache.as_ref().map_or(0, |c| c.bytes.len());
                    self.view().get_mut(i).size = len as u64;
                }
            }
            if reads {
                self.view().get_mut(i).flags.seen = true;
            }
            let m = self.view().get(i).clone();
            let mut whole = false;
            let bytes: &[u8] = self.cache.as_ref().map_or(&[], |c| &c.bytes);
            // BODY, BODYSTRUCTURE and part sections read the MIME tree:
            // found once per message, when the first of them asks.
            let mut tree = None;
            // The header's end, for the RFC822 header and text and the
            // envelope: found once per message, also when the first asks.
            let mut head = None;
            let mut items = Vec::with_capacity(names.len());
            for name in &names {
                items.push(match name {
                    MessageDataItemName::Uid => MessageDataItem::Uid(m.uid),
                    MessageDataItemName::Flags => {
                        MessageDataItem::Flags(m.flags.fetched(self.keywords()))
                    }
                    MessageDataItemName::InternalDate => {
                        MessageDataItem::InternalDate(internal_date(m.arrived))
                    }
                    MessageDataItemName::Rfc822Size => {
                        MessageDataItem::Rfc822Size(u32::try_from(m.size).unwrap_or(u32::MAX))
                    }
                    MessageDataItemName::Rfc822 => {
                        whole = true;
                        MessageDataItem::Rfc822(nstring(bytes))
                    }
                    MessageDataItemName::Rfc822Header => {
                        let end = *head.get_or_insert_with(|| sections::header_end(bytes));
                        MessageDataItem::Rfc822Header(nstring(&bytes[..end]))
                    }
                    MessageDataItemName::Rfc822Text => {
                        let end = *head.get_or_insert_with(|| sections::header_end(bytes));
                        MessageDataItem::Rfc822Text(nstring(&bytes[end..]))
                    }
                    MessageDataItemName::Envelope => {
                        let end = *head.get_or_insert_with(|| sections::header_end(bytes));
                        MessageDataItem::Envelope(envelope(&bytes[..end]))
                    }
                    MessageDataItemName::Body => MessageDataItem::Body(structure(
                        bytes,
                        tree.get_or_insert_with(|| mime::parse(bytes)),
                        false,
                    )),
                    MessageDataItemName::BodyStructure => MessageDataItem::BodyStructure(
                        structure(bytes, tree.get_or_insert_with(|| mime::parse(bytes)), true),
                    ),
                    MessageDataItemName::BodyExt {
                        section,
                        partial,
                        peek,
                    } => {
                        let cut = sections::cut_in(bytes, section.as_ref(), &mut tree);
                        let data = match partial {
                            Some((origin, length)) => {
                                sections::partial(&cut, *origin, length.get())
                            }
                            None => &cut,
                        };
                        whole |= !peek && section.is_none() && data.len() == bytes.len();
                        MessageDataItem::BodyExt {
                            section: section.clone(),
                            origin: partial.map(|(o, _)| o),
                            data: nstring(data),
                        }
                    }
                    _ => unreachable!("planned"),
                });
            }
            if whole && reads {
                self.marks.owed(key);
            }
            let seq = seq_of(i).expect("in range");
            server.enqueue_data(Data::Fetch {
                seq,
                items: Vec1::try_from(items).expect("not empty"),
            });
        }
        if let Some(e) = refused {
            let (code, text, _) = refusal(&e);
            let text = format!("some messages could not be fetched: {text}");
            server.enqueue_status(no(tag, code, text));
            return Flow::Go;
        }
        server.enqueue_status(ok(tag, None, "FETCH completed"));
        Flow::Go
    }

    /// Puts at least `need` of POP3 message `n` in the cache, keeping the
    /// mail client patient while it crosses the line ([`Heartbeat`]).
    async fn bytes_of(
        &mut self,
        server: &mut Server,
        mail: &mut E::Stream,
        n: u32,
        need: Need,
    ) -> Result<(), NotFetched> {
        if self
            .cache
            .as_ref()
            .is_some_and(|c| c.message == n && c.need >= need)
        {
            return Ok(());
        }
        self.cache = None;
        let beat = self.heartbeat(mail, server);
        let m = self.maildrop()?;
        let fetch = async {
            match need {
                Need::Header => m.header(n).await,
                Need::Whole => m.whole(n).await,
            }
        };
        let line = b"* OK Still fetching the message from its server.\r\n";
        let bytes = beat
            .around(line, fetch)
            .await
            .map_err(|ClientGone| NotFetched::ClientGone)??;
        self.cache = Some(Cached {
            message: n,
            need,
            bytes,
        });
        Ok(())
    }
}
