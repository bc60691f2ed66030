//! Parsing the numbers out of `STAT`, `LIST` and `UIDL` replies, and the
//! capability list of `CAPA`.
//!
//! RFC 1939 lets a scan listing carry extra information after the size
//! ("More advanced implementations may include other information"), so we
//! ignore anything after the second field. A unique-id must be printable
//! (0x21..=0x7E, RFC 1939 §7); RFC 1939 caps it at 70 characters, but real
//! servers send longer ones, and refusing them would make a whole mailbox
//! unavailable, so up to [`MAX_SERVER_UIDL`] are accepted. Anything else is a
//! protocol error rather than a silently mangled key.

use super::ClientError;

/// The longest unique-id accepted from a server. RFC 1939 says 70; servers
/// with longer ones exist, so we allow more, but never an unbounded string.
pub const MAX_SERVER_UIDL: usize = 256;

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
}

fn num<T: std::str::FromStr>(f: Option<&[u8]>, what: &str, line: &[u8]) -> Result<T, ClientError> {
    f.filter(|f| f.iter().all(u8::is_ascii_digit))
        .and_then(|f| std::str::from_utf8(f).ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ClientError::Protocol(format!("bad {what} in \"{}\"", crate::text::quote(line)))
        })
}

fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// `STAT`'s "+OK nn mm" text: (message count, total octets).
pub fn parse_stat(text: &[u8]) -> Result<(u32, u64), ClientError> {
    let mut f = fields(text);
    Ok((
        num(f.next(), "message count", text)?,
        num(f.next(), "mailbox size", text)?,
    ))
}

/// One scan line "n size" (the text of `LIST n`'s +OK, or a listing line).
pub fn parse_scan_line(line: &[u8]) -> Result<(u32, u64), ClientError> {
    let mut f = fields(line);
    Ok((
        num(f.next(), "message number", line)?,
        num(f.next(), "message size", line)?,
    ))
}

/// One unique-id line "n uid" (the text of `UIDL n`'s +OK, or a listing line).
pub fn parse_uidl_line(line: &[u8]) -> Result<(u32, String), ClientError> {
    let mut f = fields(line);
    let n = num(f.next(), "message number", line)?;
    let uid = f.next().unwrap_or_default();
    if uid.is_empty()
        || uid.len() > MAX_SERVER_UIDL
        || !uid.iter().all(|b| (0x21..=0x7e).contains(b))
    {
        return Err(ClientError::Protocol(format!(
            "bad unique-id in \"{}\" (must be 1 to {MAX_SERVER_UIDL} printable characters)",
            crate::text::quote(line)
        )));
    }
    // Checked printable ASCII above, so this is valid UTF-8.
    Ok((n, String::from_utf8_lossy(uid).into_owned()))
}

/// A `LIST` body: one "n size" per line.
pub fn parse_scan_listing(body: &[u8]) -> Result<Vec<(u32, u64)>, ClientError> {
    lines(body).map(parse_scan_line).collect()
}

/// An `XSEARCH` body: one message number per line.
pub fn parse_number_listing(body: &[u8]) -> Result<Vec<u32>, ClientError> {
    lines(body)
        .map(|line| num(fields(line).next(), "message number", line))
        .collect()
}

/// A `UIDL` body: one "n uid" per line.
pub fn parse_uidl_listing(body: &[u8]) -> Result<Vec<(u32, String)>, ClientError> {
    lines(body).map(parse_uidl_line).collect()
}

/// A `CAPA` body: one capability per line ("TOP", "SASL PLAIN LOGIN").
pub fn parse_capabilities(body: &[u8]) -> Vec<Vec<u8>> {
    lines(body).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings() {
        assert_eq!(
            parse_scan_listing(b"1 538\r\n2 540 extra\r\n").unwrap(),
            vec![(1, 538), (2, 540)]
        );
        assert_eq!(
            parse_uidl_listing(b"2 000000026b0b3d01\r\n").unwrap(),
            vec![(2, "000000026b0b3d01".to_string())]
        );
        assert!(parse_uidl_listing(b"1\r\n").is_err());
        // Longer than RFC 1939's 70 (real servers send them), up to the cap.
        let long = parse_uidl_listing(&[b"1 ".to_vec(), vec![b'a'; 200]].concat()).unwrap();
        assert_eq!(long[0].1.len(), 200);
        assert!(
            parse_uidl_listing(&[b"1 ".to_vec(), vec![b'a'; MAX_SERVER_UIDL + 1]].concat())
                .is_err()
        );
        assert!(parse_scan_listing(b"x 1\r\n").is_err());
        assert!(parse_scan_listing(b"-1 1\r\n").is_err());
        assert_eq!(parse_stat(b"2 1076").unwrap(), (2, 1076));
        assert!(parse_stat(b"2").is_err());
    }
}
