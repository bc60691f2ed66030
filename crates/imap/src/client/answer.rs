//! What one command got back: its responses, bounded, and what its tagged
//! `OK` said (see [`Answer`]).

use std::num::NonZeroU32;

use imap_types::core::{NString, NString8};
use imap_types::fetch::MessageDataItem;
use imap_types::response::Data;

use super::ImapError;
use crate::folder::MAX_MESSAGES;

/// Responses one command's answer may hold: the listing of the largest
/// folder allowed, and room for the server's news beside it.
const MAX_ANSWER_RESPONSES: usize = MAX_MESSAGES as usize + 1024;

/// What a command got back before its tagged `OK`: each response, and
/// when it arrived (`Env::unix_millis`).
///
/// Bounded, because the server decides how much comes: imap-next caps each
/// response, not how many arrive, and a server that keeps sending
/// responses nobody asked for (unsolicited FETCHes with bodies, endless
/// flag updates) keeps the wait on silence from ever ending. So an answer
/// holds at most [`MAX_ANSWER_RESPONSES`] responses and, in bodies, the
/// size cap once per command sent: what the commands asked for, and no
/// more (see [`Answer::take`]).
#[derive(Default)]
pub(super) struct Answer {
    pub(super) data: Vec<Data<'static>>,
    pub(super) arrived: Vec<u64>,
    pub(super) body_bytes: u64,
    /// The text of a `BYE` before the tagged answer (LOGOUT's).
    pub(super) bye: Option<String>,
    /// Commands of a pipeline answered `NO`, where the caller takes each
    /// command's refusal on its own ([`super::ImapClient::fetch_bodies`]).
    pub(super) refused: Vec<ImapError>,
    /// The tagged `OK [APPENDUID ...]` of an APPEND (RFC 4315).
    pub(super) appended: Option<Appended>,
}

/// Where a server that has UIDPLUS says it stored an APPENDed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The folder's UIDVALIDITY.
    pub validity: NonZeroU32,
    /// The message's UID in it.
    pub uid: NonZeroU32,
}

impl Answer {
    /// Keeps `data`, or refuses it if that would hold more than the
    /// answer's bounds (`body_budget`: body bytes in all).
    pub(super) fn take(
        &mut self,
        data: Data<'static>,
        at: u64,
        body_budget: u64,
    ) -> Result<(), ImapError> {
        self.body_bytes = self.body_bytes.saturating_add(body_bytes(&data));
        if self.body_bytes > body_budget {
            return Err(ImapError::Protocol(format!(
                "the server sent {} octets of message bodies for one command, more than the \
                 {body_budget} asked for",
                self.body_bytes
            )));
        }
        if self.data.len() >= MAX_ANSWER_RESPONSES {
            return Err(ImapError::Protocol(format!(
                "the server sent more than {MAX_ANSWER_RESPONSES} responses to one command"
            )));
        }
        self.data.push(data);
        self.arrived.push(at);
        Ok(())
    }
}

/// The octets of message content `data` carries (a FETCH's body sections).
fn body_bytes(data: &Data<'_>) -> u64 {
    let Data::Fetch { items, .. } = data else {
        return 0;
    };
    let nstring = |n: &NString<'_>| n.0.as_ref().map_or(0, |s| s.as_ref().len() as u64);
    items
        .as_ref()
        .iter()
        .map(|i| match i {
            MessageDataItem::BodyExt { data, .. }
            | MessageDataItem::Rfc822(data)
            | MessageDataItem::Rfc822Header(data)
            | MessageDataItem::Rfc822Text(data) => nstring(data),
            MessageDataItem::Binary { value, .. } => match value {
                NString8::NString(n) => nstring(n),
                NString8::Literal8(l) => l.data.len() as u64,
            },
            _ => 0,
        })
        .sum()
}
