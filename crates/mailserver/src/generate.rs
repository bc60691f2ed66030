//! Realistic generated mail, for tests, simulations and the demo.
//!
//! Bugs in mail transport hide in the details real mail has and toy strings
//! lack: lines that begin with a dot (which POP3 must stuff and unstuff), a
//! line that is a lone dot, long base64 attachments, sizes from a few hundred
//! octets to many kilobytes. Every message here is made up from word lists
//! and the given rng, so a seed always gives the same mail and no real
//! correspondence is copied.

use causeway_net::EnvRng;

const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];
const DOMAINS: &[&str] = &[
    "example.org",
    "example.net",
    "mail.example.com",
    "post.invalid",
    "island.test",
];
const WORDS: &[&str] = &[
    "the",
    "boat",
    "arrives",
    "on",
    "tuesday",
    "if",
    "weather",
    "allows",
    "and",
    "we",
    "will",
    "need",
    "fuel",
    "for",
    "generator",
    "please",
    "send",
    "list",
    "of",
    "supplies",
    "school",
    "report",
    "is",
    "attached",
    "meeting",
    "moved",
    "to",
    "harbour",
    "office",
    "after",
    "storm",
    "signal",
    "was",
    "weak",
    "again",
    "this",
    "week",
    "thanks",
    "your",
    "letter",
    "family",
    "doing",
    "well",
    "fish",
    "prices",
    "went",
    "up",
    "radio",
    "link",
    "down",
    "since",
    "morning",
    "invoice",
    "number",
    "due",
    "by",
    "friday",
    "clinic",
    "open",
    "two",
    "days",
    "a",
    "more",
];
const TOPICS: &[&str] = &[
    "Supplies",
    "Boat schedule",
    "Invoice",
    "School report",
    "Re: meeting",
    "Weather",
    "Clinic hours",
    "Photos",
    "Fwd: radio link",
];

/// Midnight 2026-01-01 UTC, in seconds since the Unix epoch.
const BASE_UNIX: u64 = 1_767_225_600;

fn pick<'a>(rng: &EnvRng, xs: &[&'a str]) -> &'a str {
    xs[rng.range(0, xs.len() as u64) as usize]
}

/// One RFC 5322 message, CRLF line ends, of roughly `size_hint` octets (it
/// varies by up to half either way). `index` makes the Message-ID and Date
/// distinct and increasing across a mailbox.
pub fn message(rng: &EnvRng, index: u64, size_hint: usize) -> Vec<u8> {
    let from = format!("{}@{}", pick(rng, NAMES), pick(rng, DOMAINS));
    let to = format!("{}@{}", pick(rng, NAMES), pick(rng, DOMAINS));
    let when = BASE_UNIX + index * 3600 + rng.range(0, 3600);
    let subject = format!("{} #{index}", pick(rng, TOPICS));
    let id = format!("<{index}.{:016x}@{}>", rng.next_u64(), pick(rng, DOMAINS));
    let hint = size_hint.max(200) as u64;
    let target = rng.range(hint / 2, hint + hint / 2 + 1) as usize;
    let multipart = target > 1500 && rng.chance(0.2);

    let mut m = String::with_capacity(target + 512);
    let mut header = |k: &str, v: &str| {
        m.push_str(k);
        m.push_str(": ");
        m.push_str(v);
        m.push_str("\r\n");
    };
    header("From", &from);
    header("To", &to);
    header("Subject", &subject);
    header("Date", &rfc5322_date(when));
    header("Message-ID", &id);
    header("MIME-Version", "1.0");
    if multipart {
        let boundary = format!("=_causeway_{:08x}", rng.next_u32());
        header(
            "Content-Type",
            &format!("multipart/mixed; boundary=\"{boundary}\""),
        );
        m.push_str("\r\n");
        m.push_str("This is a multi-part message in MIME format.\r\n\r\n");
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
        text(rng, &mut m, target / 3);
        m.push_str(&format!("--{boundary}\r\n"));
        m.push_str("Content-Type: application/octet-stream; name=\"data.bin\"\r\n");
        m.push_str("Content-Transfer-Encoding: base64\r\n");
        m.push_str("Content-Disposition: attachment; filename=\"data.bin\"\r\n\r\n");
        let mut raw = vec![0u8; target / 2];
        rng.fill_bytes(&mut raw);
        for line in base64(&raw).as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap_or_default());
            m.push_str("\r\n");
        }
        m.push_str(&format!("--{boundary}--\r\n"));
    } else {
        header("Content-Type", "text/plain; charset=us-ascii");
        m.push_str("\r\n");
        let room = target.saturating_sub(m.len());
        text(rng, &mut m, room);
    }
    m.into_bytes()
}

/// Appends about `size` octets of wrapped text, with the occasional line
/// that starts with a dot (or is just one).
fn text(rng: &EnvRng, out: &mut String, size: usize) {
    let end = out.len() + size.max(40);
    let mut line = String::new();
    while out.len() + line.len() < end {
        let w = pick(rng, WORDS);
        if line.len() + w.len() + 1 > 72 {
            out.push_str(&line);
            out.push_str("\r\n");
            line.clear();
            if rng.chance(0.05) {
                out.push_str(pick(rng, &[".", "..", ". indented by a dot", ".signature"]));
                out.push_str("\r\n");
            } else if rng.chance(0.15) {
                out.push_str("\r\n");
            }
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(w);
    }
    out.push_str(&line);
    out.push_str("\r\n");
}

/// `Thu, 01 Jan 2026 00:00:00 +0000`.
fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, mo, d) = civil_from_days(days as i64);
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(mo - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: u8) -> EnvRng {
        EnvRng::from_seed([seed; 32])
    }

    #[test]
    fn same_rng_same_mail() {
        let a: Vec<_> = (0..20).map(|i| message(&rng(1), i, 3000)).collect();
        let b: Vec<_> = (0..20).map(|i| message(&rng(1), i, 3000)).collect();
        assert_eq!(a, b);
        assert_ne!(message(&rng(1), 0, 3000), message(&rng(2), 0, 3000));
    }

    #[test]
    fn looks_like_mail() {
        let r = rng(3);
        let mut dotted = 0;
        let mut multipart = 0;
        for i in 0..200 {
            let m = message(&r, i, 4000);
            let s = String::from_utf8(m.clone()).unwrap();
            for h in ["From: ", "To: ", "Subject: ", "Date: ", "Message-ID: <"] {
                assert!(s.contains(h), "missing {h} in {s}");
            }
            assert!(s.ends_with("\r\n"));
            assert!(!s.replace("\r\n", "").contains('\n'), "bare LF");
            assert!(m.len() >= 1000 && m.len() < 12_000, "{}", m.len());
            dotted += s.split("\r\n").filter(|l| l.starts_with('.')).count();
            multipart += usize::from(s.contains("multipart/mixed"));
        }
        assert!(dotted > 10, "only {dotted} dot lines");
        assert!(multipart > 5 && multipart < 100, "{multipart} multiparts");
    }

    #[test]
    fn dates_and_base64_are_right() {
        assert_eq!(rfc5322_date(BASE_UNIX), "Thu, 01 Jan 2026 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
    }
}
