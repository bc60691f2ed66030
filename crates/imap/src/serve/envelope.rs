//! `ENVELOPE` (RFC 3501 §7.4.2) from a message's header: date, subject,
//! the address lists parsed into (name, route, mailbox, host), the
//! message ids. Values are the header's own (unfolded, encoded words left
//! as they are, as servers send them; the subject's white space runs made
//! one space, as Dovecot does); `Sender` and `Reply-To` default to
//! `From`, as the RFC asks. An address that lacks a part gets Dovecot's
//! placeholders (`MISSING_MAILBOX`, `MISSING_DOMAIN`), so a client that
//! cached the server's answer sees the same one from us.

use imap_types::core::NString;
use imap_types::envelope::{Address, Envelope};

use super::lex::Lexer;
use super::mime::{header_fields, unfold};
use super::strings::{for_humans, istring, nstring};

/// The envelope of the message whose header is `header`.
pub fn envelope(header: &[u8]) -> Envelope<'static> {
    let fields = header_fields(header);
    let first = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    };
    let text = |name: &str| first(name).map_or(NString(None), |v| nstring(&unfold(v)));
    let list = |name: &str| first(name).map(addresses).unwrap_or_default();
    let from = list("From");
    let or_from = |l: Vec<Address<'static>>| if l.is_empty() { from.clone() } else { l };
    Envelope {
        date: text("Date"),
        subject: first("Subject").map_or(NString(None), |v| NString(Some(for_humans(v)))),
        sender: or_from(list("Sender")),
        reply_to: or_from(list("Reply-To")),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: text("In-Reply-To"),
        message_id: text("Message-ID"),
        from,
    }
}

/// An address list (RFC 5322 §3.4), groups as RFC 3501 writes them: a
/// start `(NIL NIL "name" NIL)`, the members, an end `(NIL NIL NIL NIL)`.
pub fn addresses(value: &[u8]) -> Vec<Address<'static>> {
    let mut lex = Lexer::new(value);
    let mut out = Vec::new();
    let mut group_open = false;
    while !lex.at_end() {
        let before = lex.pos();
        if lex.eat(b',') {
            continue;
        }
        if group_open && lex.eat(b';') {
            out.push(group_end());
            group_open = false;
            continue;
        }
        let mut words = Words::default();
        words.read(&mut lex);
        match lex.peek() {
            Some(b':') if !group_open => {
                lex.skip();
                out.push(address(None, None, words.phrase(), None));
                group_open = true;
            }
            Some(b'<') => {
                lex.skip();
                match angle(&mut lex) {
                    Ok((adl, mailbox, host)) => {
                        out.push(filled(words.phrase(), adl, mailbox, host))
                    }
                    Err(mailbox) => {
                        // As Dovecot: the address so far, marked, and
                        // nothing after it.
                        out.push(filled(
                            words.phrase(),
                            None,
                            Some(mailbox),
                            Some(b"SYNTAX_ERROR".to_vec()),
                        ));
                        return out;
                    }
                }
            }
            Some(b'@') => {
                lex.skip();
                lex.last_comment = None;
                let host = domain(&mut lex);
                // A comment after an address names it when nothing else does.
                lex.peek();
                let name = lex.last_comment.take();
                out.push(filled(name, None, Some(words.local), host));
            }
            _ if !words.local.is_empty() => {
                out.push(filled(None, None, Some(words.local), None));
            }
            _ => {}
        }
        if lex.pos() == before {
            lex.skip();
        }
    }
    if group_open {
        out.push(group_end());
    }
    out
}

/// Words before a `<`, `@` or `:`: read once, for a display name (words
/// joined by spaces, a `.` kept with its word) or a local part (joined
/// as they are).
#[derive(Default)]
struct Words {
    phrase: Vec<u8>,
    local: Vec<u8>,
}

impl Words {
    fn read(&mut self, lex: &mut Lexer<'_>) {
        loop {
            // Words are spaced as the header spaced them: `John Q. Public`,
            // but `a.b.c` as one.
            let before = lex.pos();
            lex.skip_cfws();
            let gap = lex.pos() > before;
            let word = match lex.quoted() {
                // A quoted local part loses its quotes, as in Dovecot.
                Some(q) => {
                    self.local.extend_from_slice(&q);
                    q
                }
                None => match lex.atom() {
                    Some(a) => {
                        self.local.extend_from_slice(a);
                        a.to_vec()
                    }
                    None if lex.peek() == Some(b'.') => {
                        lex.skip();
                        self.local.push(b'.');
                        b".".to_vec()
                    }
                    None => return,
                },
            };
            if gap && !self.phrase.is_empty() {
                self.phrase.push(b' ');
            }
            self.phrase.extend_from_slice(&word);
        }
    }

    fn phrase(&self) -> Option<Vec<u8>> {
        (!self.phrase.is_empty()).then(|| self.phrase.clone())
    }
}

/// An address in angle brackets: route, mailbox, host.
type RouteAddr = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// After `<`: an optional route (`@a,@b:`), the addr-spec, `>`. A local
/// part followed by neither `@` nor `>` is a syntax error (given with the
/// local part).
fn angle(lex: &mut Lexer<'_>) -> Result<RouteAddr, Vec<u8>> {
    let mut route = Vec::new();
    while lex.peek() == Some(b'@') {
        lex.skip();
        route.push(b'@');
        route.extend(domain(lex).unwrap_or_default());
        if lex.eat(b',') {
            route.push(b',');
        }
    }
    if !route.is_empty() {
        lex.eat(b':');
    }
    let mut words = Words::default();
    words.read(lex);
    let host = if lex.eat(b'@') {
        domain(lex)
    } else if lex.peek().is_some_and(|b| b != b'>') {
        return Err(words.local);
    } else {
        None
    };
    lex.eat(b'>');
    let mailbox = (!words.local.is_empty()).then_some(words.local);
    Ok(((!route.is_empty()).then_some(route), mailbox, host))
}

/// A domain: dot-separated atoms, or a literal in brackets.
fn domain(lex: &mut Lexer<'_>) -> Option<Vec<u8>> {
    if let Some(l) = lex.domain_literal() {
        return Some(l);
    }
    let mut out = Vec::new();
    loop {
        match lex.atom() {
            Some(a) => out.extend_from_slice(a),
            None if lex.peek() == Some(b'.') => {
                lex.skip();
                out.push(b'.');
            }
            None => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

fn address(
    name: Option<Vec<u8>>,
    adl: Option<Vec<u8>>,
    mailbox: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
) -> Address<'static> {
    let n = |v: Option<Vec<u8>>| v.map_or(NString(None), |b| NString(Some(istring(&b))));
    Address {
        // A name is for people: white space made single, as Dovecot does.
        name: name.map_or(NString(None), |b| NString(Some(for_humans(&b)))),
        adl: n(adl),
        mailbox: n(mailbox),
        host: n(host),
    }
}

/// A mailbox address, with Dovecot's placeholders for a missing part.
fn filled(
    name: Option<Vec<u8>>,
    adl: Option<Vec<u8>>,
    mailbox: Option<Vec<u8>>,
    host: Option<Vec<u8>>,
) -> Address<'static> {
    address(
        name,
        adl,
        Some(mailbox.unwrap_or_else(|| b"MISSING_MAILBOX".to_vec())),
        Some(host.unwrap_or_else(|| b"MISSING_DOMAIN".to_vec())),
    )
}

fn group_end() -> Address<'static> {
    address(None, None, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(list: &[Address<'_>]) -> Vec<String> {
        let s = |n: &NString<'_>| match &n.0 {
            None => "NIL".to_string(),
            Some(i) => String::from_utf8_lossy(i.as_ref()).into_owned(),
        };
        list.iter()
            .map(|a| {
                format!(
                    "{}|{}|{}|{}",
                    s(&a.name),
                    s(&a.adl),
                    s(&a.mailbox),
                    s(&a.host)
                )
            })
            .collect()
    }

    #[test]
    fn the_forms_mail_uses() {
        assert_eq!(
            show(&addresses(
                b"\"Doe, John\" <john@example.org>, jane.q@example.com (Jane Q), <x@y.z>, John Q. Public <jqp@a.b>"
            )),
            [
                "Doe, John|NIL|john|example.org",
                "Jane Q|NIL|jane.q|example.com",
                "NIL|NIL|x|y.z",
                "John Q. Public|NIL|jqp|a.b",
            ]
        );
    }

    #[test]
    fn groups_routes_and_missing_parts() {
        assert_eq!(
            show(&addresses(
                b"undisclosed-recipients:;, Team: a@b, c@d;, <@relay.example:u@h>, nobody"
            )),
            [
                "NIL|NIL|undisclosed-recipients|NIL",
                "NIL|NIL|NIL|NIL",
                "NIL|NIL|Team|NIL",
                "NIL|NIL|a|b",
                "NIL|NIL|c|d",
                "NIL|NIL|NIL|NIL",
                "NIL|@relay.example|u|h",
                "NIL|NIL|nobody|MISSING_DOMAIN",
            ]
        );
    }

    #[test]
    fn sender_and_reply_to_default_to_from() {
        let e = envelope(b"From: a@b\r\nSubject: hi\r\n  there\r\nTo: c@d\r\n\r\n");
        assert_eq!(show(&e.sender), ["NIL|NIL|a|b"]);
        assert_eq!(show(&e.reply_to), ["NIL|NIL|a|b"]);
        assert_eq!(e.date, NString(None));
        // Folded: one space, and a literal, as Dovecot writes it.
        let Some(imap_types::core::IString::Literal(subject)) = &e.subject.0 else {
            panic!("{:?}", e.subject)
        };
        assert_eq!(subject.as_ref(), b"hi there");
        assert!(e.cc.is_empty());
    }

    #[test]
    fn hostile_lists_end() {
        for v in [
            &b"<<<<>>>>,,,;;;::"[..],
            b"\"",
            b"(",
            b"a@",
            b"@",
            b"<@",
            b":",
        ] {
            addresses(v);
        }
    }
}
