//! What the mail client said and was told, recorded on the client proxy's
//! listening side, and read back as POP3 or IMAP (by the greeting) at the
//! end of the demo: which messages it fully received, which deletes it was
//! told succeeded.
//!
//! The proxy runs over [`FrontEnv`], a [`TokioEnv`] whose accepted streams
//! are tapped (`causeway_net::tap`); its outgoing connections (to the edge)
//! are not recorded.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use causeway_net::tap::{TapLog, Tapped};
use causeway_net::{Env, EnvRng, Listener, TokioEnv};
use sha2::{Digest, Sha256};

#[derive(Default, Debug)]
pub struct Conversation {
    /// Mail client -> proxy.
    pub commands: Vec<u8>,
    /// Proxy -> mail client.
    pub replies: Vec<u8>,
}

/// Every accepted connection's tap, in order.
pub type Book = Arc<Mutex<Vec<TapLog>>>;

impl Conversation {
    /// What a tapped mail-client connection carried.
    pub fn from_tap(log: &TapLog) -> Self {
        Self {
            commands: log.read_bytes(),
            replies: log.written_bytes(),
        }
    }
}

#[derive(Clone)]
pub struct FrontEnv {
    pub inner: TokioEnv,
    pub book: Book,
}

pub struct FrontListener {
    inner: <TokioEnv as Env>::Listener,
    book: Book,
}

impl Listener for FrontListener {
    type Stream = Tapped<<TokioEnv as Env>::Stream>;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        let (s, peer) = self.inner.accept().await?;
        let log = TapLog::new();
        self.book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log.clone());
        Ok((Tapped::new(s, log), peer))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl Env for FrontEnv {
    type Stream = Tapped<<TokioEnv as Env>::Stream>;
    type Listener = FrontListener;

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        Ok(Tapped::untapped(self.inner.connect(addr).await?))
    }

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        Ok(FrontListener {
            inner: self.inner.bind(addr).await?,
            book: self.book.clone(),
        })
    }

    fn unix_millis(&self) -> u64 {
        self.inner.unix_millis()
    }

    fn rng(&self) -> &EnvRng {
        self.inner.rng()
    }
}

/// What one mail client session achieved, as the mail client saw it.
#[derive(Default, Debug)]
pub struct Outcome {
    /// SHA-256 (hex) of every message body fully received (RETR).
    pub received: Vec<String>,
    /// Deletes answered `+OK` and not undone by an `RSET`: the proxy's UIDL
    /// when the session listed UIDLs, else `None`.
    pub deleted: Vec<Option<String>>,
    /// Whether the session ended with `QUIT` answered `+OK`.
    pub quit: bool,
}

/// Reads one recorded conversation as POP3 (commands and replies strictly
/// alternate; mail clients do not pipeline without CAPA's PIPELINING), or
/// as IMAP if the greeting was IMAP's.
pub fn outcome(conv: &Conversation) -> Outcome {
    if conv.replies.starts_with(b"* ") {
        return imap_outcome(conv);
    }
    let mut out = Outcome::default();
    let mut uidls: BTreeMap<String, String> = BTreeMap::new();
    let mut pending_deletes: Vec<Option<String>> = Vec::new();
    let mut replies = Lines::new(&conv.replies);
    // Greeting.
    if replies.next().is_none() {
        return out;
    }
    for cmd in Lines::new(&conv.commands) {
        let cmd = String::from_utf8_lossy(cmd);
        let mut words = cmd.split_whitespace();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.collect();
        let Some(status) = replies.next() else { break };
        if !status.starts_with(b"+OK") {
            if status.starts_with(b"+ ") {
                // A SASL continuation: we cannot follow the exchange.
                break;
            }
            continue;
        }
        let multi = matches!(verb.as_str(), "RETR" | "TOP" | "CAPA")
            || (matches!(verb.as_str(), "LIST" | "UIDL") && args.is_empty());
        let mut body: Vec<u8> = Vec::new();
        let mut complete = !multi;
        if multi {
            for line in replies.by_ref() {
                if line == b"." {
                    complete = true;
                    break;
                }
                let line = line
                    .strip_prefix(b".")
                    .filter(|_| line.starts_with(b".."))
                    .unwrap_or(line);
                if verb == "UIDL" {
                    let text = String::from_utf8_lossy(line);
                    if let Some((n, u)) = text.split_once(' ') {
                        uidls.insert(n.to_owned(), u.trim().to_owned());
                    }
                } else if verb == "RETR" {
                    body.extend_from_slice(line);
                    body.extend_from_slice(b"\r\n");
                }
            }
            if !complete {
                break;
            }
        }
        match verb.as_str() {
            "RETR" if complete => out.received.push(hex(&Sha256::digest(&body))),
            "DELE" => {
                let n = args.first().copied().unwrap_or("");
                pending_deletes.push(uidls.get(n).cloned());
            }
            "RSET" => pending_deletes.clear(),
            "QUIT" => out.quit = true,
            _ => {}
        }
    }
    out.deleted = pending_deletes;
    out
}

/// An IMAP conversation, from the responses alone (parsed by imap-codec):
/// a message is received when a complete FETCH response carried all of it
/// (`BODY[]` or `RFC822`, uncut), a delete acknowledged with each
/// `* n EXPUNGE`, and the session ended well if LOGOUT was answered OK.
/// A `CLOSE` expunges without saying what, so its deletes are not counted.
fn imap_outcome(conv: &Conversation) -> Outcome {
    use causeway_imap::imap_codec::ResponseCodec;
    use causeway_imap::imap_codec::decode::Decoder;
    use causeway_imap::imap_types::core::NString;
    use causeway_imap::imap_types::fetch::MessageDataItem;
    use causeway_imap::imap_types::response::{Data, Response, Status};

    let mut out = Outcome::default();
    let codec = ResponseCodec::default();
    let mut rest: &[u8] = &conv.replies;
    while let Ok((rem, response)) = codec.decode(rest) {
        rest = rem;
        match response {
            Response::Data(Data::Fetch { items, .. }) => {
                for item in items.as_ref() {
                    let whole = match item {
                        MessageDataItem::Rfc822(NString(Some(s))) => Some(s),
                        MessageDataItem::BodyExt {
                            section: None,
                            origin: None,
                            data: NString(Some(s)),
                        } => Some(s),
                        _ => None,
                    };
                    if let Some(s) = whole {
                        out.received.push(hex(&Sha256::digest(s.as_ref())));
                    }
                }
            }
            Response::Data(Data::Expunge(_)) => out.deleted.push(None),
            Response::Status(Status::Tagged(t)) if t.body.text.as_ref() == "LOGOUT completed" => {
                out.quit = true;
            }
            _ => {}
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CRLF- (or LF-) terminated lines, without their ends; an unterminated
/// tail is not a line.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Lines<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let i = self.rest.iter().position(|b| *b == b'\n')?;
        let line = &self.rest[..i];
        self.rest = &self.rest[i + 1..];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_conversation() {
        let conv = Conversation {
            commands: b"USER a\r\nPASS b\r\nUIDL\r\nRETR 1\r\nDELE 2\r\nRETR 2\r\nQUIT\r\n".to_vec(),
            replies: b"+OK hi\r\n+OK\r\n+OK\r\n+OK\r\n1 H:a\r\n2 H:b\r\n.\r\n+OK\r\nx\r\n..y\r\n.\r\n+OK\r\n-ERR gone\r\n+OK bye\r\n"
                .to_vec(),
        };
        let o = outcome(&conv);
        assert_eq!(o.received, vec![hex(&Sha256::digest(b"x\r\n.y\r\n"))]);
        assert_eq!(o.deleted, vec![Some("H:b".to_owned())]);
        assert!(o.quit);
    }

    #[test]
    fn reads_an_imap_conversation() {
        let conv = Conversation {
            commands: b"a LOGIN x y\r\n".to_vec(),
            replies: b"* OK hi\r\na OK in\r\n* 1 FETCH (BODY[] {3}\r\nx\r\n FLAGS (\\Seen))\r\n\
                * 2 FETCH (BODY[HEADER] {2}\r\n\r\n)\r\n* 3 EXPUNGE\r\nb OK done\r\n\
                * BYE bye\r\nc OK LOGOUT completed\r\n* 4 FETCH (RFC822 {9}\r\nhalf"
                .to_vec(),
        };
        let o = outcome(&conv);
        assert_eq!(o.received, vec![hex(&Sha256::digest(b"x\r\n"))]);
        assert_eq!(o.deleted, vec![None]);
        assert!(o.quit);
    }

    #[test]
    fn a_cut_body_is_not_received() {
        let conv = Conversation {
            commands: b"USER a\r\nPASS b\r\nRETR 1\r\n".to_vec(),
            replies: b"+OK hi\r\n+OK\r\n+OK\r\n+OK\r\nhalf a bo".to_vec(),
        };
        assert!(outcome(&conv).received.is_empty());
    }
}
