//! Records: the unit on the line once the handshake is done (and the framing
//! of the handshake messages themselves).
//!
//! ```text
//! +----------------+-------------------------------------------+
//! | len: u16 BE    | len bytes: one Noise message              |
//! +----------------+-------------------------------------------+
//! ```
//!
//! The length is two bytes because a Noise message can never exceed 65,535
//! bytes: an over-cap record is not merely refused, it cannot be expressed,
//! and a reader never needs a buffer larger than [`MAX_RECORD`]. After the
//! handshake a record's body is ciphertext plus a 16-byte Poly1305 tag; the
//! nonce is implicit (a counter per direction), which is why a replayed,
//! dropped or reordered record fails authentication.

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 2;

/// Largest record body: Noise's maximum message length.
pub const MAX_RECORD: usize = 65_535;

/// The Poly1305 tag at the end of every transport record.
pub const TAG_LEN: usize = 16;

/// Largest plaintext one transport record carries.
pub const MAX_PLAINTEXT: usize = MAX_RECORD - TAG_LEN;

/// The length prefix for a record body of `len` bytes (`len <= MAX_RECORD`,
/// guaranteed by the callers, which only frame Noise messages).
pub(crate) fn header(len: usize) -> [u8; HEADER_LEN] {
    debug_assert!(len <= MAX_RECORD);
    (len as u16).to_be_bytes()
}

/// Appends one record (header and body) to `out`.
pub(crate) fn push(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&header(body.len()));
    out.extend_from_slice(body);
}

/// How many bytes the record starting at `buf[0]` occupies in total, once
/// its header is there.
pub(crate) fn total_len(buf: &[u8]) -> Option<usize> {
    let h: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    Some(HEADER_LEN + usize::from(u16::from_be_bytes(h)))
}

/// Records up to this size keep a buffer at most this large: what an idle
/// session holds between pings (`fit`).
pub(crate) const SMALL_RECORD: usize = 4 << 10;

/// Makes `buf` exactly `want` bytes long, keeping its first `keep` bytes.
/// A buffer that grew for large records is given back as soon as a small
/// one comes, so a session that rests after a transfer does not keep 64
/// KiB per direction (#18); during a transfer, records are all large and
/// the buffer is reused.
pub(crate) fn fit(buf: &mut Vec<u8>, want: usize, keep: usize) {
    if want <= SMALL_RECORD && buf.capacity() > SMALL_RECORD {
        let mut small = Vec::with_capacity(want.max(HEADER_LEN));
        small.extend_from_slice(&buf[..keep]);
        *buf = small;
    }
    buf.resize(want, 0);
}

/// Reassembles records from the bytes of a stream: the sans-IO half of the
/// reader. The buffer never holds more than one record, and only as much
/// of it as the record's header declared.
pub(crate) struct RecordBuf {
    buf: Vec<u8>,
    filled: usize,
}

impl RecordBuf {
    pub(crate) fn new() -> Self {
        Self {
            buf: Vec::new(),
            filled: 0,
        }
    }

    /// The space the next read should fill: never past the current record,
    /// so bytes of the next one stay in the stream.
    pub(crate) fn unfilled(&mut self) -> &mut [u8] {
        let want = total_len(&self.buf[..self.filled]).unwrap_or(HEADER_LEN);
        if self.buf.len() != want {
            fit(&mut self.buf, want, self.filled);
        }
        &mut self.buf[self.filled..want]
    }

    /// Records that `n` bytes were read into [`RecordBuf::unfilled`].
    pub(crate) fn advance(&mut self, n: usize) {
        self.filled += n;
    }

    /// True once a whole record is buffered.
    pub(crate) fn is_complete(&self) -> bool {
        total_len(&self.buf[..self.filled]).is_some_and(|total| self.filled >= total)
    }

    /// The body of the buffered record, which is consumed: the next
    /// [`RecordBuf::unfilled`] starts a new one. Call only when
    /// [`RecordBuf::is_complete`].
    pub(crate) fn take(&mut self) -> &[u8] {
        debug_assert!(self.is_complete());
        let end = total_len(&self.buf[..self.filled])
            .unwrap_or(0)
            .min(self.filled);
        let start = HEADER_LEN.min(end);
        self.filled = 0;
        &self.buf[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(rb: &mut RecordBuf, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            if rb.is_complete() {
                out.push(rb.take().to_vec());
                continue;
            }
            if bytes.is_empty() {
                return out;
            }
            let space = rb.unfilled();
            let n = space.len().min(bytes.len()).min(3); // dribble
            space[..n].copy_from_slice(&bytes[..n]);
            rb.advance(n);
            bytes = &bytes[n..];
        }
    }

    #[test]
    fn records_split_anywhere_reassemble() {
        let mut wire = Vec::new();
        push(&mut wire, b"hello");
        push(&mut wire, b"");
        push(&mut wire, &[7; 300]);
        let mut rb = RecordBuf::new();
        let got = feed(&mut rb, &wire);
        assert_eq!(got, vec![b"hello".to_vec(), vec![], vec![7; 300]]);
        assert_eq!(rb.unfilled().len(), HEADER_LEN);
    }

    #[test]
    fn record_header_cannot_declare_more_than_the_cap() {
        // The largest header a peer can send declares MAX_RECORD: no bigger
        // allocation can be asked for.
        assert_eq!(total_len(&[0xff, 0xff]), Some(HEADER_LEN + MAX_RECORD));
        let mut rb = RecordBuf::new();
        rb.unfilled().copy_from_slice(&[0xff, 0xff]);
        rb.advance(2);
        assert_eq!(rb.unfilled().len(), MAX_RECORD);
        assert!(!rb.is_complete());
    }
}
