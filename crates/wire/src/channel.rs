//! The async driver: moves the bytes [`Sealer`] and [`Opener`] produce and
//! consume over a stream. All the rules live in `seal.rs`; this file only
//! reads, writes, flushes, and keeps a half that failed mid-write from being
//! used again.
//!
//! `recv` has no timeout of its own: an idle session may legitimately wait
//! for hours. Callers that want one wrap it in `Env::timeout`. `recv` is
//! cancel-safe (a partly read record stays buffered for the next call), so a
//! timeout around it loses nothing. `send` is not: a send cancelled half-way
//! leaves half a record on the line, and the writer answers `Broken` from
//! then on.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use causeway_net::Stream;

use crate::codec;
use crate::counters::{Counters, Dir};
use crate::error::WireError;
use crate::history::History;
use crate::keys::PublicKey;
use crate::record::RecordBuf;
use crate::seal::{Compress, Opened, Opener, Sealer};

/// A cut channel's recent plaintext, by direction ([`SecureChannel::park`]).
#[derive(Debug, Default, Clone)]
pub struct Parked {
    pub sent: History,
    pub received: History,
}

/// What `recv` got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<T> {
    Msg(T),
    /// The peer closed its direction with this reason; it will send nothing
    /// more. Further `recv` calls return this again.
    Closed {
        reason: String,
    },
}

/// An established, authenticated channel to `peer()`.
pub struct SecureChannel<S> {
    stream: S,
    outbound: Outbound,
    inbound: Inbound,
    peer: PublicKey,
    counters: Counters,
    /// The handshake hash (see [`SecureChannel::binding`]).
    pub(crate) binding: [u8; 32],
}

impl<S: Stream> SecureChannel<S> {
    pub(crate) fn new(
        stream: S,
        sealer: Sealer,
        opener: Opener,
        peer: PublicKey,
        counters: Counters,
    ) -> Self {
        Self {
            stream,
            outbound: Outbound::new(sealer, counters.clone()),
            inbound: Inbound::new(opener, counters.clone()),
            peer,
            counters,
            binding: [0; 32],
        }
    }

    /// Sends one message and flushes. Anything carrying a secret goes with
    /// `Compress::Never`.
    pub async fn send<T: Serialize + ?Sized>(
        &mut self,
        msg: &T,
        c: Compress,
    ) -> Result<(), WireError> {
        self.outbound.send(&mut self.stream, msg, c).await
    }

    /// Adds one message to what the next [`SecureChannel::flush`] sends:
    /// messages queued together are compressed as one unit, so a stream of
    /// small messages costs one flush of the compressor, not one each.
    /// `Compress::Never` messages stay out of the unit (and its context).
    pub fn queue<T: Serialize + ?Sized>(&mut self, msg: &T, c: Compress) -> Result<(), WireError> {
        self.outbound.queue(msg, c)
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), WireError> {
        self.outbound.flush(&mut self.stream).await
    }

    /// Sends everything queued, ends the compression frame and frees the
    /// context on both sides: for a sender that goes idle.
    pub async fn rest(&mut self) -> Result<(), WireError> {
        self.outbound.rest(&mut self.stream).await
    }

    /// The zstd level of the next compression frame; an open frame at
    /// another level ends with the next unit (see `compress.rs`).
    pub fn set_level(&mut self, level: i32) {
        self.outbound.sealer.set_level(level);
    }

    /// About `bytes` of plaintext are to follow: if the next unit queued
    /// opens a compression frame, its context is sized for that, not for
    /// the level's largest input (a few megabytes zeroed per frame).
    pub fn expect(&mut self, bytes: u64) {
        self.outbound.sealer.expect(bytes);
    }

    /// The level of the open compression frame, or `None` while resting.
    pub fn compressing(&self) -> Option<i32> {
        self.outbound.sealer.compressing()
    }

    /// True while the peer's compression frame is open here.
    pub fn decompressing(&self) -> bool {
        self.inbound.opener.decompressing()
    }

    /// Waits for the next message (no timeout: see the module docs).
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Received<T>, WireError> {
        self.inbound.recv(&mut self.stream).await
    }

    /// Sends a close frame with `reason` (cut to 256 bytes) and shuts the
    /// stream down for writing.
    pub async fn close(mut self, reason: &str) -> Result<(), WireError> {
        self.close_in_place(reason).await
    }

    /// [`SecureChannel::close`] for a channel the caller cannot give up
    /// (nothing may be sent on it afterwards).
    pub async fn close_in_place(&mut self, reason: &str) -> Result<(), WireError> {
        self.outbound.close(&mut self.stream, reason).await
    }

    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// For a channel whose line was cut: frees both compression contexts
    /// and the send buffer, and gives back each direction's recent
    /// plaintext (see [`crate::history`]). Nothing more can be sent or
    /// received on it.
    pub fn park(&mut self) -> Parked {
        self.outbound.broken = true;
        self.outbound.buf = Vec::new();
        Parked {
            sent: self.outbound.sealer.discard(),
            received: self.inbound.opener.discard(),
        }
    }

    /// Starts the first compression frame this channel sends primed with
    /// `primer`, which the peer's receiving side must be primed with too
    /// ([`SecureChannel::prime_receiving`]). Call it before anything
    /// compressed is queued. False (and no priming) where a trained
    /// dictionary is configured, which the frame uses instead.
    pub fn prime_sending(&mut self, primer: Vec<u8>) -> bool {
        self.outbound.sealer.prime(primer)
    }

    /// The receiving mirror of [`SecureChannel::prime_sending`]: call it
    /// before the first compressed message arrives.
    pub fn prime_receiving(&mut self, primer: Vec<u8>) -> bool {
        self.inbound.opener.prime(primer)
    }

    /// The peer's static key, as proven in the handshake.
    pub fn peer(&self) -> &PublicKey {
        &self.peer
    }

    /// The Noise handshake hash of this channel: the same at both ends,
    /// different for every handshake. A resume proves itself over it
    /// ([`crate::binding::proof`]), so a proof seen on one channel is worth
    /// nothing on another.
    pub fn binding(&self) -> &[u8; 32] {
        &self.binding
    }
}

/// Keep a send buffer this large between sends; drop larger ones so one big
/// message does not pin its memory for the life of the connection.
const KEEP_BUF: usize = 1 << 20;

/// Bytes handed to the socket per write, so that progress is seen while a
/// large message drains through a slow line.
const WRITE_PIECE: usize = 16 << 10;

struct Outbound {
    sealer: Sealer,
    counters: Counters,
    buf: Vec<u8>,
    /// Set while a write is in flight (and left set if it fails or is
    /// cancelled): the peer may hold half a record, so nothing may follow.
    broken: bool,
}

impl Outbound {
    fn new(sealer: Sealer, counters: Counters) -> Self {
        Self {
            sealer,
            counters,
            buf: Vec::new(),
            broken: false,
        }
    }

    async fn send<W, T>(&mut self, w: &mut W, msg: &T, c: Compress) -> Result<(), WireError>
    where
        W: AsyncWrite + Unpin,
        T: Serialize + ?Sized,
    {
        self.queue(msg, c)?;
        self.flush(w).await
    }

    fn queue<T: Serialize + ?Sized>(&mut self, msg: &T, c: Compress) -> Result<(), WireError> {
        if self.broken {
            return Err(WireError::Broken);
        }
        let plain = codec::encode(msg)?;
        if let Err(e) = self.sealer.queue_message(&plain, c, &mut self.buf) {
            // Refusing an oversize message changes nothing; anything else
            // may have used nonces or fed the compressor.
            self.broken = !matches!(e, WireError::FrameTooLarge { .. });
            return Err(e);
        }
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<(), WireError> {
        self.seal_and_write(w, Sealer::flush).await
    }

    /// Ends the compression frame; the send buffer a transfer grew is
    /// given back too, since a resting line may stay idle for hours.
    async fn rest<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<(), WireError> {
        self.seal_and_write(w, Sealer::rest).await?;
        self.buf = Vec::new();
        Ok(())
    }

    /// Seals what `seal` adds to the buffer, then writes it all out.
    async fn seal_and_write<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        seal: fn(&mut Sealer, &mut Vec<u8>) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        if self.broken {
            return Err(WireError::Broken);
        }
        if let Err(e) = seal(&mut self.sealer, &mut self.buf) {
            self.broken = true;
            return Err(e);
        }
        self.write_out(w).await
    }

    async fn close<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        reason: &str,
    ) -> Result<(), WireError> {
        if self.broken {
            return Err(WireError::Broken);
        }
        self.broken = true;
        self.sealer.seal_close(reason, &mut self.buf)?;
        self.write_out(w).await?;
        w.shutdown().await?;
        Ok(())
    }

    async fn write_out<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> Result<(), WireError> {
        self.broken = true;
        let mut at = 0;
        while at < self.buf.len() {
            let end = (at + WRITE_PIECE).min(self.buf.len());
            let n = w.write(&self.buf[at..end]).await?;
            if n == 0 {
                return Err(WireError::Io(std::io::ErrorKind::WriteZero.into()));
            }
            at += n;
            self.counters.add_moved(Dir::Sent, n);
        }
        w.flush().await?;
        self.broken = false;
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUF {
            self.buf = Vec::new();
        }
        Ok(())
    }
}

struct Inbound {
    opener: Opener,
    records: RecordBuf,
    counters: Counters,
}

impl Inbound {
    fn new(opener: Opener, counters: Counters) -> Self {
        Self {
            opener,
            records: RecordBuf::new(),
            counters,
        }
    }

    async fn recv<R, T>(&mut self, r: &mut R) -> Result<Received<T>, WireError>
    where
        R: AsyncRead + Unpin,
        T: DeserializeOwned,
    {
        loop {
            if let Some(plain) = self.opener.next_queued() {
                return self.opener.decode(&plain).map(Received::Msg);
            }
            if let Some(reason) = self.opener.closed() {
                return Ok(Received::Closed {
                    reason: reason.to_string(),
                });
            }
            self.opener.check_usable()?;
            let record = match read_record(r, &mut self.records, &self.counters).await {
                Ok(record) => record,
                Err(e) => {
                    let frames = self.opener.frames();
                    return Err(self.opener.fail(WireError::from_read(e, frames)));
                }
            };
            match self.opener.open_record(record)? {
                None => continue,
                Some(Opened::Message(plain)) => {
                    return self.opener.decode(&plain).map(Received::Msg);
                }
                Some(Opened::Close(reason)) => return Ok(Received::Closed { reason }),
            }
        }
    }
}

/// Reads until `rb` holds one whole record and returns its body. Cancel-safe:
/// bytes read so far stay in `rb`. EOF, even between records, is an
/// `UnexpectedEof` error: a stream may only end after a close frame, and
/// nobody reads past that.
pub(crate) async fn read_record<'b, R: AsyncRead + Unpin>(
    r: &mut R,
    rb: &'b mut RecordBuf,
    counters: &Counters,
) -> std::io::Result<&'b [u8]> {
    while !rb.is_complete() {
        let n = r.read(rb.unfilled()).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        rb.advance(n);
        counters.add_moved(Dir::Received, n);
    }
    Ok(rb.take())
}
