//! POP3 commands (RFC 1939 §§ 5-7, RFC 2449 CAPA, RFC 2595 STLS): parsing
//! what a mail client sends and encoding what we send to a server.
//!
//! Parsing is liberal where real clients differ and the meaning is still
//! clear: keywords are case-insensitive, arguments may be separated by runs
//! of spaces, a trailing space is ignored, and a lone LF ends a line.
//! `USER` and `PASS` take the rest of the line verbatim (RFC 1939 §7 allows a
//! server to treat spaces as part of the password). CR, LF and NUL inside an
//! argument are refused: they could smuggle a second command past a proxy.
//!
//! Errors print as text fit to send after "-ERR ", quoting at most a short,
//! printable excerpt of what the client sent.

use std::fmt;

use crate::response::{RespCode, Status, StatusLine};
use crate::search::{self, BadCriterion, TextKey};
use crate::text::{push_no_eol, quote};

/// A POP3 command.
///
/// `Debug` redacts the `PASS` password and the `APOP` digest, so a command
/// can be logged without leaking a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`
    User(Vec<u8>),
    /// `PASS secret` (the rest of the line, spaces included)
    Pass(Vec<u8>),
    /// `APOP name digest`
    Apop { name: Vec<u8>, digest: Vec<u8> },
    /// `STAT`
    Stat,
    /// `LIST [msg]`
    List(Option<u32>),
    /// `UIDL [msg]`
    Uidl(Option<u32>),
    /// `RETR msg`
    Retr(u32),
    /// `TOP msg lines`
    Top { msg: u32, lines: u32 },
    /// `DELE msg`
    Dele(u32),
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `QUIT`
    Quit,
    /// `CAPA` (RFC 2449)
    Capa,
    /// `STLS` (RFC 2595)
    Stls,
    /// `XAPPEND server octets [flag ...]`: Causeway's own extension, by
    /// which the client proxy's IMAP front hands an IMAP APPEND to the
    /// proxy's POP3 session in process; never sent to a mail server. The
    /// server answers `+ ` (a go-ahead, as for an IMAP literal), then reads
    /// exactly `octets` octets of message, then answers `+OK` once stored.
    Xappend {
        server: Vec<u8>,
        octets: u32,
        /// IMAP flag names (`\Seen`, `\Draft`, keywords), at most
        /// [`MAX_XAPPEND_FLAGS`].
        flags: Vec<Vec<u8>>,
    },
    /// `XSTORE msg +|- flag [flag ...]`: Causeway's own extension, by which
    /// the IMAP front has flags other than `\Seen` and `\Deleted` (those
    /// are read marks and deletes, with rules of their own) added to or
    /// taken from a message on its IMAP server, and by which the edge asks
    /// a relay the same. Answered `+OK` once the server stored them; a POP3
    /// server has no flags and is never sent one.
    Xstore {
        msg: u32,
        /// `+` (true) or `-`.
        add: bool,
        /// IMAP flag names (`\Flagged`, `\Answered`, keywords), 1 to
        /// [`MAX_XAPPEND_FLAGS`].
        flags: Vec<Vec<u8>>,
    },
    /// `XFLAGS`: Causeway's own extension, by which the edge asks a relay,
    /// and the IMAP front its POP3 session, which of the system flags the
    /// IMAP server keeps each message has, set there by any client: a
    /// multi-line answer of `n mask` lines, as LIST's (`mask` is
    /// `causeway_proto::session::ServerFlags`: 1 `\Seen`, 2 `\Answered`, 4
    /// `\Flagged`, 8 `\Draft`). A POP3 server keeps none and is never
    /// asked.
    Xflags,
    /// `XSEARCH field =hex... [IN name,name]`: Causeway's own extension,
    /// by which the IMAP front asks the servers, through the edge, which
    /// messages one text criterion of a `SEARCH` matches
    /// (`crate::search`): a multi-line answer of message numbers, one per
    /// line. `servers`: the ones to ask; empty, every server (and always
    /// empty where one server's session is asked). The edge searches a
    /// POP3 server itself; only an IMAP server is sent the command.
    Xsearch { key: TextKey, servers: Vec<String> },
}

/// The response code of an `XAPPEND`'s progress lines, `+OK [XPROGRESS]
/// sent total`: one per piece of the message that crossed the line.
pub const XPROGRESS: &str = "XPROGRESS";

/// The response code of a stored `XAPPEND`'s outcome when the server said
/// where it stored the message: `+OK [XUIDL] uidl Stored.`, where `uidl`
/// is the UIDL the message will be listed by (RFC 1939: 1 to 70 printable
/// characters), so that the IMAP front can number it at once (APPENDUID).
pub const XUIDL: &str = "XUIDL";

/// The `+OK` outcome of a stored `XAPPEND`, with the UIDL the message will
/// be listed by when it is known (see [`XUIDL`]).
pub fn stored(uidl: Option<&str>) -> StatusLine {
    match uidl {
        Some(u) if valid_uidl(u.as_bytes()) => StatusLine {
            status: Status::Ok,
            code: Some(RespCode::Other(XUIDL.to_owned())),
            text: format!("{u} Stored.").into_bytes(),
        },
        _ => StatusLine::ok("Stored."),
    }
}

/// The UIDL a stored `XAPPEND`'s outcome names (see [`stored`]), if any.
pub fn stored_uidl(line: &StatusLine) -> Option<String> {
    let named = matches!(&line.code, Some(RespCode::Other(c)) if c == XUIDL);
    let uidl = line.text.split(|&b| b == b' ').next()?;
    (line.is_ok() && named && valid_uidl(uidl)).then(|| String::from_utf8_lossy(uidl).into_owned())
}

/// RFC 1939: a UIDL is 1 to 70 characters in the range 0x21 to 0x7E.
fn valid_uidl(u: &[u8]) -> bool {
    (1..=70).contains(&u.len()) && u.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The most flags one `XAPPEND` or `XSTORE` names.
pub const MAX_XAPPEND_FLAGS: usize = 64;

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Command::User(n) => f.debug_tuple("User").field(&s(n)).finish(),
            Command::Pass(_) => f.write_str("Pass(<redacted>)"),
            Command::Apop { name, .. } => f
                .debug_struct("Apop")
                .field("name", &s(name))
                .field("digest", &format_args!("<redacted>"))
                .finish(),
            Command::Stat => f.write_str("Stat"),
            Command::List(n) => f.debug_tuple("List").field(n).finish(),
            Command::Uidl(n) => f.debug_tuple("Uidl").field(n).finish(),
            Command::Retr(n) => f.debug_tuple("Retr").field(n).finish(),
            Command::Top { msg, lines } => f
                .debug_struct("Top")
                .field("msg", msg)
                .field("lines", lines)
                .finish(),
            Command::Dele(n) => f.debug_tuple("Dele").field(n).finish(),
            Command::Noop => f.write_str("Noop"),
            Command::Rset => f.write_str("Rset"),
            Command::Quit => f.write_str("Quit"),
            Command::Capa => f.write_str("Capa"),
            Command::Xflags => f.write_str("Xflags"),
            Command::Xsearch { key, servers } => (f.debug_struct("Xsearch"))
                .field("key", key)
                .field("servers", servers)
                .finish(),
            Command::Stls => f.write_str("Stls"),
            Command::Xappend {
                server,
                octets,
                flags,
            } => f
                .debug_struct("Xappend")
                .field("server", &s(server))
                .field("octets", octets)
                .field("flags", &flags.iter().map(|f| s(f)).collect::<Vec<_>>())
                .finish(),
            Command::Xstore { msg, add, flags } => f
                .debug_struct("Xstore")
                .field("msg", msg)
                .field("add", add)
                .field("flags", &flags.iter().map(|f| s(f)).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// Why a command line was refused. `Display` is fit to send after "-ERR ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The line was empty (or only spaces).
    #[error("Empty command")]
    Empty,
    /// The keyword is not one we know (quoted, printable, bounded).
    #[error("Unknown command: {0}")]
    Unknown(String),
    /// A required argument is missing.
    #[error("Missing argument: {what}")]
    MissingArgument { what: &'static str },
    /// A number argument is not a decimal number that fits in 32 bits.
    #[error("Invalid {what}: {got}")]
    InvalidNumber { what: &'static str, got: String },
    /// More arguments than the command takes.
    #[error("Noise after {after}")]
    Noise { after: &'static str },
    /// CR, LF or NUL inside an argument.
    #[error("Invalid character in argument")]
    BadCharacter,
    /// The line was longer than [`crate::MAX_COMMAND_LINE`].
    #[error("Command line too long")]
    LineTooLong,
}

const MESSAGE_NUMBER: &str = "message number";
const LINE_COUNT: &str = "number of lines";

impl Command {
    /// Parses one command line, given without its CRLF / LF.
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        if keyword.is_empty() {
            return Err(if line.iter().all(|&b| b == b' ') {
                CommandError::Empty
            } else {
                CommandError::Unknown(String::new())
            });
        }
        if rest.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(CommandError::BadCharacter);
        }
        let mut upper = [0u8; 7];
        if keyword.len() > upper.len() {
            return Err(CommandError::Unknown(quote(keyword)));
        }
        for (u, k) in upper.iter_mut().zip(keyword) {
            *u = k.to_ascii_uppercase();
        }
        let mut args = rest.split(|&b| b == b' ').filter(|a| !a.is_empty());
        let cmd = match &upper[..keyword.len()] {
            b"USER" => Command::User(whole_rest(rest, "user name")?),
            b"PASS" => Command::Pass(whole_rest(rest, "password")?),
            b"APOP" => {
                let name = args
                    .next()
                    .ok_or(CommandError::MissingArgument { what: "user name" })?;
                let digest = args
                    .next()
                    .ok_or(CommandError::MissingArgument { what: "digest" })?;
                if args.next().is_some() {
                    return Err(CommandError::Noise { after: "digest" });
                }
                Command::Apop {
                    name: name.to_vec(),
                    digest: digest.to_vec(),
                }
            }
            b"STAT" => no_args(args, Command::Stat)?,
            b"NOOP" => no_args(args, Command::Noop)?,
            b"RSET" => no_args(args, Command::Rset)?,
            b"QUIT" => no_args(args, Command::Quit)?,
            b"CAPA" => no_args(args, Command::Capa)?,
            b"XFLAGS" => no_args(args, Command::Xflags)?,
            b"STLS" => no_args(args, Command::Stls)?,
            b"LIST" => Command::List(optional_number(&mut args)?),
            b"UIDL" => Command::Uidl(optional_number(&mut args)?),
            b"RETR" => Command::Retr(one_number(&mut args)?),
            b"DELE" => Command::Dele(one_number(&mut args)?),
            b"TOP" => {
                let msg = number(args.next(), MESSAGE_NUMBER)?;
                let lines = number(args.next(), LINE_COUNT)?;
                if args.next().is_some() {
                    return Err(CommandError::Noise { after: LINE_COUNT });
                }
                Command::Top { msg, lines }
            }
            b"XAPPEND" => {
                let server = args
                    .next()
                    .ok_or(CommandError::MissingArgument { what: "server" })?;
                let octets = number(args.next(), "size in octets")?;
                let flags: Vec<Vec<u8>> = args.map(<[u8]>::to_vec).collect();
                if flags.len() > MAX_XAPPEND_FLAGS {
                    return Err(CommandError::Noise { after: "the flags" });
                }
                Command::Xappend {
                    server: server.to_vec(),
                    octets,
                    flags,
                }
            }
            b"XSTORE" => {
                let msg = number(args.next(), MESSAGE_NUMBER)?;
                let add = match args.next() {
                    Some(b"+") => true,
                    Some(b"-") => false,
                    _ => return Err(CommandError::MissingArgument { what: "+ or -" }),
                };
                let flags: Vec<Vec<u8>> = args.map(<[u8]>::to_vec).collect();
                if flags.is_empty() {
                    return Err(CommandError::MissingArgument { what: "flag" });
                }
                if flags.len() > MAX_XAPPEND_FLAGS {
                    return Err(CommandError::Noise { after: "the flags" });
                }
                Command::Xstore { msg, add, flags }
            }
            b"XSEARCH" => {
                let (key, rest) = TextKey::parse(args).map_err(bad_criterion)?;
                let servers = search::parse_servers(rest).map_err(bad_criterion)?;
                Command::Xsearch { key, servers }
            }
            _ => return Err(CommandError::Unknown(quote(keyword))),
        };
        Ok(cmd)
    }

    /// Appends the command line, "KEYWORD args\r\n", to `out`. CR and LF
    /// inside arguments are dropped so an argument can never end the line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.keyword().as_bytes());
        let num = |out: &mut Vec<u8>, n: u32| {
            out.push(b' ');
            out.extend_from_slice(n.to_string().as_bytes());
        };
        match self {
            Command::User(a) | Command::Pass(a) => {
                out.push(b' ');
                push_no_eol(out, a);
            }
            Command::Apop { name, digest } => {
                out.push(b' ');
                push_no_eol(out, name);
                out.push(b' ');
                push_no_eol(out, digest);
            }
            Command::List(Some(n)) | Command::Uidl(Some(n)) => num(out, *n),
            Command::Retr(n) | Command::Dele(n) => num(out, *n),
            Command::Top { msg, lines } => {
                num(out, *msg);
                num(out, *lines);
            }
            Command::Xappend {
                server,
                octets,
                flags,
            } => {
                out.push(b' ');
                push_no_eol(out, server);
                num(out, *octets);
                for f in flags {
                    out.push(b' ');
                    push_no_eol(out, f);
                }
            }
            Command::Xstore { msg, add, flags } => {
                num(out, *msg);
                out.extend_from_slice(if *add { b" +" } else { b" -" });
                for f in flags {
                    out.push(b' ');
                    push_no_eol(out, f);
                }
            }
            Command::Xsearch { key, servers } => {
                key.encode(out);
                search::push_servers(out, servers);
            }
            Command::Stat
            | Command::List(None)
            | Command::Uidl(None)
            | Command::Noop
            | Command::Rset
            | Command::Quit
            | Command::Capa
            | Command::Xflags
            | Command::Stls => {}
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Whether a `+OK` reply to this command is multi-line (ends with a "."
    /// line): `LIST` and `UIDL` without argument, `RETR`, `TOP`, `CAPA`,
    /// `XFLAGS`, `XSEARCH`. A `-ERR` reply is always a single line.
    pub fn expects_multiline(&self) -> bool {
        matches!(
            self,
            Command::List(None)
                | Command::Uidl(None)
                | Command::Retr(_)
                | Command::Top { .. }
                | Command::Capa
                | Command::Xflags
                | Command::Xsearch { .. }
        )
    }

    /// The upper-case keyword ("RETR").
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Top { .. } => "TOP",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Quit => "QUIT",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Xappend { .. } => "XAPPEND",
            Command::Xstore { .. } => "XSTORE",
            Command::Xflags => "XFLAGS",
            Command::Xsearch { .. } => "XSEARCH",
        }
    }
}

fn bad_criterion(e: BadCriterion) -> CommandError {
    match e {
        BadCriterion::Missing(what) => CommandError::MissingArgument { what },
        BadCriterion::Invalid { what, got } => CommandError::InvalidNumber { what, got },
        BadCriterion::Noise => CommandError::Noise {
            after: "search text",
        },
        BadCriterion::TooLong => CommandError::LineTooLong,
    }
}

fn whole_rest(rest: &[u8], what: &'static str) -> Result<Vec<u8>, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::MissingArgument { what });
    }
    Ok(rest.to_vec())
}

fn no_args<'a>(
    mut args: impl Iterator<Item = &'a [u8]>,
    cmd: Command,
) -> Result<Command, CommandError> {
    match args.next() {
        Some(_) => Err(CommandError::Noise { after: "command" }),
        None => Ok(cmd),
    }
}

fn optional_number<'a>(
    args: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<Option<u32>, CommandError> {
    let Some(a) = args.next() else {
        return Ok(None);
    };
    let n = number(Some(a), MESSAGE_NUMBER)?;
    if args.next().is_some() {
        return Err(CommandError::Noise {
            after: MESSAGE_NUMBER,
        });
    }
    Ok(Some(n))
}

fn one_number<'a>(args: &mut impl Iterator<Item = &'a [u8]>) -> Result<u32, CommandError> {
    let n = number(args.next(), MESSAGE_NUMBER)?;
    if args.next().is_some() {
        return Err(CommandError::Noise {
            after: MESSAGE_NUMBER,
        });
    }
    Ok(n)
}

/// A decimal number: ASCII digits only (no sign), fitting in a `u32`.
fn number(arg: Option<&[u8]>, what: &'static str) -> Result<u32, CommandError> {
    let arg = arg.ok_or(CommandError::MissingArgument { what })?;
    let invalid = || CommandError::InvalidNumber {
        what,
        got: quote(arg),
    };
    if !arg.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    let mut n: u32 = 0;
    for &d in arg {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let cases: &[(&[u8], Command)] = &[
            (b"USER alice", Command::User(b"alice".to_vec())),
            (b"pass se cret ", Command::Pass(b"se cret ".to_vec())),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Command::Apop {
                    name: b"mrose".to_vec(),
                    digest: b"c4c9334bac560ecc979e58001b3e22fb".to_vec(),
                },
            ),
            (b"STAT", Command::Stat),
            (b"list", Command::List(None)),
            (b"LIST 2", Command::List(Some(2))),
            (b"UIDL", Command::Uidl(None)),
            (b"UIDL  007 ", Command::Uidl(Some(7))),
            (b"RETR 1", Command::Retr(1)),
            (b"TOP 1 0", Command::Top { msg: 1, lines: 0 }),
            (b"DELE 4294967295", Command::Dele(u32::MAX)),
            (b"NOOP", Command::Noop),
            (b"RSET", Command::Rset),
            (b"QUIT\r", Command::Quit),
            (b"CAPA", Command::Capa),
            (b"XFLAGS", Command::Xflags),
            (b"stls", Command::Stls),
            (
                b"XAPPEND Sent 120 \\Seen $Label1",
                Command::Xappend {
                    server: b"Sent".to_vec(),
                    octets: 120,
                    flags: vec![b"\\Seen".to_vec(), b"$Label1".to_vec()],
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                &Command::parse(line).unwrap(),
                want,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_stored_outcome_names_its_uidl_only_when_it_is_a_uidl() {
        let line = |l: &StatusLine| {
            let mut out = Vec::new();
            l.encode(&mut out);
            StatusLine::parse(&out[..out.len() - 2]).unwrap()
        };
        let named = line(&stored(Some("0000000603e42aa5")));
        assert_eq!(named.text, b"0000000603e42aa5 Stored.");
        assert_eq!(stored_uidl(&named).as_deref(), Some("0000000603e42aa5"));
        // No UIDL, or one RFC 1939 does not allow: a plain `+OK`.
        for bad in [None, Some(""), Some("two words"), Some(&*"x".repeat(71))] {
            let plain = line(&stored(bad));
            assert_eq!(plain, StatusLine::ok("Stored."), "{bad:?}");
            assert_eq!(stored_uidl(&plain), None);
        }
        // Only an `+OK` with the code names one.
        let refused = StatusLine::err(Some(RespCode::Other(XUIDL.into())), "abc no");
        assert_eq!(stored_uidl(&refused), None);
        assert_eq!(stored_uidl(&StatusLine::ok("abc Stored.")), None);
    }

    #[test]
    fn xappend_round_trips_and_caps_its_flags() {
        let cmd = Command::Xappend {
            server: b"Sent".to_vec(),
            octets: 7,
            flags: vec![b"\\Draft".to_vec()],
        };
        let mut line = Vec::new();
        cmd.encode(&mut line);
        assert_eq!(line, b"XAPPEND Sent 7 \\Draft\r\n");
        assert_eq!(Command::parse(&line[..line.len() - 2]).unwrap(), cmd);
        assert!(!cmd.expects_multiline(), "its go-ahead is one line");
        let many = format!("XAPPEND s 1{}", " f".repeat(MAX_XAPPEND_FLAGS + 1));
        assert!(Command::parse(many.as_bytes()).is_err());
        assert!(Command::parse(b"XAPPEND s").is_err());
        assert!(
            Command::parse(b"XAPPENDS s 1").is_err(),
            "longer keywords are unknown"
        );
    }

    #[test]
    fn xstore_round_trips_and_needs_a_sign_and_a_flag() {
        for add in [true, false] {
            let cmd = Command::Xstore {
                msg: 3,
                add,
                flags: vec![b"\\Flagged".to_vec(), b"$Label1".to_vec()],
            };
            let mut line = Vec::new();
            cmd.encode(&mut line);
            let sign = if add { '+' } else { '-' };
            assert_eq!(
                line,
                format!("XSTORE 3 {sign} \\Flagged $Label1\r\n").as_bytes()
            );
            assert_eq!(Command::parse(&line[..line.len() - 2]).unwrap(), cmd);
            assert!(!cmd.expects_multiline());
        }
        for bad in [
            "XSTORE 3 +",
            "XSTORE 3 \\Flagged",
            "XSTORE 3 * \\Flagged",
            "XSTORE + f",
        ] {
            assert!(Command::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let many = format!("XSTORE 1 +{}", " f".repeat(MAX_XAPPEND_FLAGS + 1));
        assert!(Command::parse(many.as_bytes()).is_err());
    }

    #[test]
    fn errors_read_well_after_err() {
        let e = |l: &[u8]| Command::parse(l).unwrap_err().to_string();
        assert_eq!(e(b"FOO"), "Unknown command: FOO");
        assert_eq!(e(b"RETR abc"), "Invalid message number: abc");
        assert_eq!(e(b"RETR 1 2"), "Noise after message number");
        assert_eq!(e(b"RETR"), "Missing argument: message number");
        assert_eq!(e(b"RETR -1"), "Invalid message number: -1");
        assert_eq!(e(b"RETR 4294967296"), "Invalid message number: 4294967296");
        assert_eq!(e(b"TOP 1"), "Missing argument: number of lines");
        assert_eq!(e(b"TOP 1 x"), "Invalid number of lines: x");
        assert_eq!(e(b"STAT 1"), "Noise after command");
        assert_eq!(e(b"PASS"), "Missing argument: password");
        assert_eq!(e(b""), "Empty command");
        assert_eq!(e(b"USER a\rb"), "Invalid character in argument");
        assert_eq!(e(b"X\xff\x00\r\nY"), "Unknown command: X????Y");
    }

    #[test]
    fn debug_redacts_secrets() {
        let p = format!("{:?}", Command::Pass(b"hunter2".to_vec()));
        assert!(!p.contains("hunter2"), "{p}");
        let a = format!(
            "{:?}",
            Command::Apop {
                name: b"bob".to_vec(),
                digest: b"c4c9334bac".to_vec()
            }
        );
        assert!(a.contains("bob") && !a.contains("c4c9334bac"), "{a}");
    }

    #[test]
    fn encode_never_lets_an_argument_end_the_line() {
        let mut out = Vec::new();
        Command::User(b"a\r\nDELE 1".to_vec()).encode(&mut out);
        assert_eq!(out, b"USER aDELE 1\r\n");
    }
}
