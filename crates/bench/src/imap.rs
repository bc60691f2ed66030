//! Figure 7: W1 over IMAP, a whole folder synced and emptied by a mail
//! client that speaks IMAP, on the client's line.
//!
//! The mail client does what mbsync does for a pull with expunge: LOGIN,
//! SELECT INBOX, `UID FETCH 1:* (UID FLAGS RFC822.SIZE)`, every body with
//! `UID FETCH n (BODY.PEEK[])`, then `UID STORE 1:* +FLAGS.SILENT
//! (\Deleted)` and `UID EXPUNGE 1:*`, then LOGOUT. Pipelined, as mbsync
//! sends (its `PipelineDepth` is unlimited by default): every body fetch
//! goes out at once, the store and the expunge together. Lock-step, as
//! offlineimap, fetchmail and getmail do: one command, then its answer.
//! Every body is checked byte for byte, and the server must end with an
//! empty INBOX.
//!
//! Through Causeway the bytes counted are the client's line (proxy to
//! edge); direct, everything between the mail client and the model
//! server's IMAP. The direct transcript is also compressed as
//! COMPRESS=DEFLATE (RFC 4978) would carry it: one raw deflate stream per
//! direction at zlib's default level (Dovecot's `imap_zlib` default is 6),
//! flushed where a peer waits (the client after each batch of commands, the
//! server after each command's answer), without TCP/IP headers.
//!
//! Responses are parsed with imap-codec, as the product does; the commands
//! are fixed text.

use std::io::Write;
use std::time::{Duration, Instant};

use causeway_imap::imap_codec::decode::{Decoder, GreetingDecodeError, ResponseDecodeError};
use causeway_imap::imap_codec::{GreetingCodec, ResponseCodec};
use causeway_imap::imap_types::fetch::MessageDataItem;
use causeway_imap::imap_types::response::{Data, Response, Status, StatusKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::line::{LineCost, PROFILES, model_seconds};
use crate::mail::{self, Messages};
use crate::nodes::{Chain, ChainSpec, DIRECT_USER, LOCAL_PASSWORD, LOCAL_USER, PASSWORD, USER};
use crate::{Figure, progress};

/// A silent peer for this long fails the session (progress, not size).
const SILENCE: Duration = Duration::from_secs(600);
const READ_CHUNK: usize = 64 * 1024;

/// How the mail client sends its commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// mbsync: every body fetch at once.
    Pipelined,
    /// offlineimap, fetchmail, getmail: one command at a time.
    LockStep,
}

/// What one direct session wrote and read, cut where COMPRESS=DEFLATE
/// would flush.
#[derive(Default)]
struct Segments {
    up: Vec<Vec<u8>>,
    down: Vec<Vec<u8>>,
}

/// A minimal IMAP mail client over any stream.
struct Mua<S> {
    stream: S,
    /// Bytes read and not yet decoded.
    input: Vec<u8>,
    /// Bytes of responses decoded since the last tagged answer.
    answer: Vec<u8>,
    tags: u32,
    segments: Segments,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Mua<S> {
    async fn start(stream: S) -> Result<Self, String> {
        let mut m = Mua {
            stream,
            input: Vec::new(),
            answer: Vec::new(),
            tags: 0,
            segments: Segments::default(),
        };
        loop {
            match GreetingCodec::default().decode_static(&m.input) {
                Ok((rest, _)) => {
                    let used = m.input.len() - rest.len();
                    m.segments.down.push(m.input.drain(..used).collect());
                    return Ok(m);
                }
                Err(GreetingDecodeError::Incomplete) => m.read().await?,
                Err(e) => return Err(format!("the IMAP greeting: {e:?}")),
            }
        }
    }

    async fn read(&mut self) -> Result<(), String> {
        let mut chunk = vec![0u8; READ_CHUNK];
        let n = tokio::time::timeout(SILENCE, self.stream.read(&mut chunk))
            .await
            .map_err(|_| format!("nothing from the IMAP server for {SILENCE:?}"))?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the IMAP server closed the connection mid-answer".into());
        }
        self.input.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn response(&mut self) -> Result<Response<'static>, String> {
        loop {
            match ResponseCodec::default().decode_static(&self.input) {
                Ok((rest, r)) => {
                    let used = self.input.len() - rest.len();
                    self.answer.extend(self.input.drain(..used));
                    return Ok(r);
                }
                Err(ResponseDecodeError::Incomplete | ResponseDecodeError::LiteralFound { .. }) => {
                    self.read().await?
                }
                Err(e) => return Err(format!("an IMAP response: {e:?}")),
            }
        }
    }

    /// Sends `commands` in one write; answers their tags.
    async fn send(&mut self, commands: &[String]) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut tags = Vec::new();
        for c in commands {
            self.tags += 1;
            let tag = format!("W{}", self.tags);
            out.extend_from_slice(format!("{tag} {c}\r\n").as_bytes());
            tags.push(tag);
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|e| e.to_string())?;
        self.segments.up.push(out);
        Ok(tags)
    }

    /// Reads up to the tagged answer of each of `tags`, in order; each
    /// command's untagged data.
    async fn answers(&mut self, tags: &[String]) -> Result<Vec<Vec<Data<'static>>>, String> {
        let mut all = Vec::with_capacity(tags.len());
        let mut data = Vec::new();
        for tag in tags {
            loop {
                match self.response().await? {
                    Response::Data(d) => data.push(d),
                    Response::Status(Status::Tagged(t)) => {
                        if t.tag.inner() != tag.as_str() {
                            return Err(format!("answer to {} before {tag}", t.tag.inner()));
                        }
                        if t.body.kind != StatusKind::Ok {
                            return Err(format!("{tag} refused: {}", t.body.text.inner()));
                        }
                        self.segments.down.push(std::mem::take(&mut self.answer));
                        all.push(std::mem::take(&mut data));
                        break;
                    }
                    Response::Status(_) | Response::CommandContinuationRequest(_) => {}
                }
            }
        }
        Ok(all)
    }

    /// Sends `commands` as `style` says; their data.
    async fn run(
        &mut self,
        commands: &[String],
        style: Style,
    ) -> Result<Vec<Vec<Data<'static>>>, String> {
        match style {
            Style::Pipelined => {
                let tags = self.send(commands).await?;
                self.answers(&tags).await
            }
            Style::LockStep => {
                let mut all = Vec::with_capacity(commands.len());
                for c in commands {
                    let tags = self.send(std::slice::from_ref(c)).await?;
                    all.extend(self.answers(&tags).await?);
                }
                Ok(all)
            }
        }
    }
}

fn uid_of(d: &Data<'_>) -> Option<u32> {
    let Data::Fetch { items, .. } = d else {
        return None;
    };
    items.as_ref().iter().find_map(|i| match i {
        MessageDataItem::Uid(u) => Some(u.get()),
        _ => None,
    })
}

fn body_of(d: &Data<'_>) -> Option<Vec<u8>> {
    let Data::Fetch { items, .. } = d else {
        return None;
    };
    items.as_ref().iter().find_map(|i| match i {
        MessageDataItem::BodyExt { data, .. } => data.0.as_ref().map(|s| s.as_ref().to_vec()),
        _ => None,
    })
}

/// The whole session; every body checked against `messages`.
async fn sync_folder<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    user: &str,
    password: &str,
    messages: &Messages,
    style: Style,
) -> Result<Segments, String> {
    let mut m = Mua::start(stream).await?;
    m.run(&[format!("LOGIN \"{user}\" \"{password}\"")], style)
        .await?;
    m.run(&["SELECT INBOX".into()], style).await?;
    let listed = m
        .run(&["UID FETCH 1:* (UID FLAGS RFC822.SIZE)".into()], style)
        .await?;
    let uids: Vec<u32> = listed.iter().flatten().filter_map(uid_of).collect();
    if uids.len() != messages.len() {
        return Err(format!(
            "SELECT shows {} messages, {} delivered",
            uids.len(),
            messages.len()
        ));
    }
    let fetches: Vec<String> = uids
        .iter()
        .map(|u| format!("UID FETCH {u} (BODY.PEEK[])"))
        .collect();
    let bodies = m.run(&fetches, style).await?;
    for (i, (data, expected)) in bodies.iter().zip(messages).enumerate() {
        match data.iter().find_map(body_of) {
            Some(b) if b == *expected => {}
            Some(_) => return Err(format!("message {} came back altered", i + 1)),
            None => return Err(format!("message {} came back without a body", i + 1)),
        }
    }
    m.run(
        &[
            "UID STORE 1:* +FLAGS.SILENT (\\Deleted)".into(),
            "UID EXPUNGE 1:*".into(),
        ],
        style,
    )
    .await?;
    m.run(&["LOGOUT".into()], style).await?;
    Ok(m.segments)
}

/// One session through Causeway's IMAP front.
async fn causeway_session(
    chain: &Chain,
    messages: &Messages,
    style: Style,
) -> Result<LineCost, String> {
    for m in messages {
        chain.store.deliver(USER, m).map_err(|e| e.to_string())?;
    }
    let dir = causeway_tests::Dir::Up;
    let (u0, d0, t0, w0) = (
        chain.line.bytes(dir),
        chain.line.bytes(causeway_tests::Dir::Down),
        chain.line.round_trips(),
        chain.client.line_waits(),
    );
    let started = Instant::now();
    let stream = connect(&chain.imap_proxy).await?;
    sync_folder(stream, LOCAL_USER, LOCAL_PASSWORD, messages, style).await?;
    let seconds = started.elapsed().as_secs_f64();
    let (direction_changes, turns) = (
        chain.line.round_trips() - t0,
        chain.client.line_waits() - w0,
    );
    chain.settle().await?;
    if !chain.store.present_uidls(USER).is_empty() {
        return Err("the expunge through Causeway was not committed".into());
    }
    Ok(LineCost {
        up: chain.line.bytes(dir) - u0,
        down: chain.line.bytes(causeway_tests::Dir::Down) - d0,
        turns,
        direction_changes,
        seconds,
    })
}

/// The same session straight to the model server's IMAP, through the
/// plain forward (which counts turns).
async fn direct_session(
    chain: &Chain,
    messages: &Messages,
    style: Style,
) -> Result<(LineCost, Segments), String> {
    for m in messages {
        chain
            .store
            .deliver(DIRECT_USER, m)
            .map_err(|e| e.to_string())?;
    }
    let f = &chain.imap_forward;
    let (u0, d0, t0) = (
        f.bytes(causeway_tests::Dir::Up),
        f.bytes(causeway_tests::Dir::Down),
        f.round_trips(),
    );
    let started = Instant::now();
    let stream = connect(&f.addr()).await?;
    let segments = sync_folder(stream, DIRECT_USER, PASSWORD, messages, style).await?;
    let seconds = started.elapsed().as_secs_f64();
    // The greeting, waited for after connecting, has no turn before it.
    let turns = f.round_trips() - t0 + 1;
    chain.settle().await?;
    if !chain.store.present_uidls(DIRECT_USER).is_empty() {
        return Err("the direct expunge was not committed".into());
    }
    let cost = LineCost {
        up: f.bytes(causeway_tests::Dir::Up) - u0,
        down: f.bytes(causeway_tests::Dir::Down) - d0,
        turns,
        direction_changes: turns,
        seconds,
    };
    Ok((cost, segments))
}

async fn connect(addr: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    Ok(s)
}

/// One raw deflate stream, sync-flushed after each segment: what
/// COMPRESS=DEFLATE carries for one direction.
fn compress_deflate(segments: &[Vec<u8>]) -> u64 {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    for s in segments {
        z.write_all(s).expect("deflate to memory");
        z.flush().expect("deflate to memory");
    }
    z.finish().expect("deflate to memory").len() as u64
}

pub async fn figures(messages: &Messages) -> Result<Vec<Figure>, String> {
    let n = messages.len();
    let chain = Chain::start(ChainSpec::default()).await;
    let cw = causeway_session(&chain, messages, Style::Pipelined).await?;
    let (direct, segments) = direct_session(&chain, messages, Style::Pipelined).await?;
    progress("figure 7: the same folder lock-step, through Causeway and direct");
    let cw_step = causeway_session(&chain, messages, Style::LockStep).await?;
    let (direct_step, _) = direct_session(&chain, messages, Style::LockStep).await?;
    drop(chain);
    let deflated = compress_deflate(&segments.up) + compress_deflate(&segments.down);
    let mut out = vec![
        Figure::new(
            "imap_line_bytes",
            "bytes",
            cw.bytes() as f64,
            vec![
                ("direct", direct.bytes() as f64),
                ("direct+compress_deflate", deflated as f64),
            ],
        )
        .note(format!(
            "{n} messages, {} mail bytes, synced and expunged over IMAP (mbsync-like, pipelined) on loopback; causeway up {} down {}; direct up {} down {}; COMPRESS=DEFLATE emulated on the direct transcript ({} client flushes, {} server flushes)",
            mail::total(messages),
            cw.up,
            cw.down,
            direct.up,
            direct.down,
            segments.up.len(),
            segments.down.len()
        )),
        Figure::new(
            "imap_round_trips",
            "turns",
            cw.turns as f64,
            vec![
                ("direct", direct.turns as f64),
                ("causeway_lockstep", cw_step.turns as f64),
                ("direct_lockstep", direct_step.turns as f64),
            ],
        )
        .note(format!(
            "{n} messages; direct pipelined = 7 (greeting, LOGIN, SELECT, listing, the bodies, STORE+EXPUNGE, LOGOUT), lock-step n+7; causeway = waits of the client proxy on its line; lock-step causeway bytes {}",
            cw_step.bytes()
        )),
    ];
    for (name, bps, rtt) in PROFILES {
        let t = |c: &LineCost| model_seconds(c.bytes(), c.turns, *bps, *rtt);
        out.push(
            Figure::new(
                &format!("imap_time_{name}"),
                "s (model)",
                t(&cw),
                vec![
                    ("direct", t(&direct)),
                    (
                        "direct+compress_deflate",
                        model_seconds(deflated, direct.turns, *bps, *rtt),
                    ),
                    ("direct_lockstep", t(&direct_step)),
                ],
            )
            .note(format!(
                "{} kbit/s, {} ms RTT: (turns+1) x RTT + bytes x 8 / rate",
                bps / 1e3,
                rtt * 1e3
            )),
        );
    }
    Ok(out)
}
