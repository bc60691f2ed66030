//! What the IMAP front says: response codes mail clients classify (RFC
//! 5530), texts IMAP accepts, the capabilities it really serves, and how a
//! refusal of the POP3 session behind it reads to an IMAP client.

use causeway_imap::imap_types::auth::AuthMechanism;
use causeway_imap::imap_types::core::{Tag, Vec1};
use causeway_imap::imap_types::response::{Capability, Code, CodeOther, Status};
use causeway_pop3::{ClientError, RespCode};

/// An IMAP response code the imap-types enum does not name (RFC 5530).
pub(super) fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

pub(super) fn cannot() -> Code<'static> {
    code("CANNOT")
}

/// Text that IMAP accepts: printable ASCII, not empty, not opening with
/// `[` (which would read as a response code).
pub(super) fn text(s: impl Into<String>) -> String {
    let s: String = s
        .into()
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { ' ' })
        .collect();
    let s = s.trim().trim_start_matches('[').to_string();
    if s.is_empty() { "-".into() } else { s }
}

pub(super) fn ok(
    tag: Tag<'static>,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Status<'static> {
    Status::ok(Some(tag), code, text(t)).expect("sanitised text")
}

pub(super) fn no(
    tag: Tag<'static>,
    code: Option<Code<'static>>,
    t: impl Into<String>,
) -> Status<'static> {
    Status::no(Some(tag), code, text(t)).expect("sanitised text")
}

pub(super) fn bad(tag: Tag<'static>, t: impl Into<String>) -> Status<'static> {
    Status::bad(Some(tag), None, text(t)).expect("sanitised text")
}

/// What the client is told when the POP3 session refused or failed, and
/// whether the session is over. The codes are those IMAP clients classify:
/// `AUTHENTICATIONFAILED` only for a wrong login, `UNAVAILABLE` for
/// anything temporary (a lost line, a server out of reach).
pub(super) fn refusal(e: &ClientError) -> (Option<Code<'static>>, String, bool) {
    match e {
        ClientError::Refused(s) => {
            let c = match &s.code {
                Some(RespCode::Auth) => Some(code("AUTHENTICATIONFAILED")),
                Some(RespCode::InUse) => Some(code("INUSE")),
                Some(RespCode::SysTemp | RespCode::LoginDelay) | None => Some(code("UNAVAILABLE")),
                Some(RespCode::SysPerm | RespCode::Other(_)) => None,
            };
            (c, String::from_utf8_lossy(&s.text).into_owned(), false)
        }
        e => (
            Some(code("UNAVAILABLE")),
            format!("the client proxy's session behind this connection ended ({e}); connect again"),
            true,
        ),
    }
}

/// The capabilities: what this front really serves.
pub(super) fn capabilities(authed: bool) -> Vec1<Capability<'static>> {
    let mut caps = vec![Capability::Imap4Rev1];
    if !authed {
        caps.extend([Capability::Auth(AuthMechanism::Plain), Capability::SaslIr]);
    }
    caps.extend([
        Capability::LiteralPlus,
        Capability::UidPlus,
        Capability::Id,
        Capability::Namespace,
        Capability::Unselect,
        Capability::Enable,
        Capability::Idle,
        Capability::Move,
    ]);
    if authed {
        // RFC 7889: the largest message APPEND stores.
        let limit = format!("APPENDLIMIT={}", causeway_proto::session::MAX_APPEND);
        caps.push(Capability::try_from(limit.into_bytes()).expect("a valid capability"));
    }
    Vec1::try_from(caps).expect("not empty")
}

pub(super) fn capability_code(authed: bool) -> Code<'static> {
    Code::Capability(capabilities(authed))
}
