//! Invariant 7: no password or mail body in the clear on the edge <->
//! relay link or on the bad line. The taps record every byte our nodes
//! sent each other; this looks for each password and for needles cut from
//! each body (one automaton over all of them, so a run's megabytes are
//! scanned once).

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::{Verdict, Violation};
use crate::world::World;

/// Invariant 7: no password or mail body in the clear on the edge <->
/// relay link (the relay's accepted streams) or on the bad line (the
/// proxy's connections to the edge).
pub fn check_taps(w: &World, v: &mut Verdict) {
    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for s in &w.servers {
        needles.push((
            format!("{}'s password", s.host),
            s.password.clone().into_bytes(),
        ));
        for m in s.store.messages(&s.user) {
            let body = s.store.body(&s.user, m.uidl.as_str()).unwrap_or_default();
            for n in body_needles(&body) {
                needles.push((format!("body of {}:{}", s.host, m.uidl), n));
            }
        }
    }
    let links = w
        .relay_taps
        .entries()
        .into_iter()
        .filter(|e| e.accepted)
        .map(|e| (format!("edge<->relay ({})", e.label), e.log))
        .chain(
            w.line_taps
                .entries()
                .into_iter()
                .filter(|e| !e.accepted)
                .map(|e| (format!("bad line ({})", e.label), e.log)),
        );
    for (what, n) in &needles {
        if w.disk.contains(n) {
            v.violations.push(Violation {
                invariant: 7,
                key: None,
                message: format!("{what} seen in plaintext at rest in the edge journal"),
            });
        }
    }
    // The proxy's delete journal holds UIDLs, sealed like the rest.
    if let Some(d) = &w.proxy_disk {
        let uidls = w.servers.iter().flat_map(|s| {
            s.store.messages(&s.user).into_iter().map(move |m| {
                (
                    format!("UIDL {}:{}", s.host, m.uidl),
                    m.uidl.as_str().as_bytes().to_vec(),
                )
            })
        });
        for (what, n) in needles.iter().cloned().chain(uidls) {
            if d.contains(&n) {
                v.violations.push(Violation {
                    invariant: 7,
                    key: None,
                    message: format!(
                        "{what} seen in plaintext at rest in the client proxy's delete journal"
                    ),
                });
            }
        }
    }
    // One pass over each link's bytes for all needles at once.
    let needles: Vec<(String, Vec<u8>)> =
        needles.into_iter().filter(|(_, n)| !n.is_empty()).collect();
    // A contiguous NFA: a DFA of hundreds of needles costs more to build
    // than the one pass over the links saves (a twentieth of a seed's time).
    let Ok(matcher) = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(needles.iter().map(|(_, n)| n))
    else {
        v.violations.push(Violation {
            invariant: 0,
            key: None,
            message: "the plaintext needles do not build a matcher".into(),
        });
        return;
    };
    for (link, log) in links {
        for hay in [log.read_bytes(), log.written_bytes()] {
            let found: BTreeSet<usize> = matcher
                .find_overlapping_iter(&hay)
                .map(|m| m.pattern().as_usize())
                .collect();
            for i in found {
                v.violations.push(Violation {
                    invariant: 7,
                    key: None,
                    message: format!("{} seen in plaintext on {link}", needles[i].0),
                });
            }
        }
    }
}

/// Strings that occur in `body` and nowhere else: its Message-ID line and
/// a slice from its middle.
fn body_needles(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Some(p) = find_pos(body, b"Message-ID: ") {
        let end = body[p..]
            .iter()
            .position(|b| *b == b'\r')
            .map_or(body.len(), |e| p + e);
        out.push(body[p..end].to_vec());
    }
    if body.len() >= 200 {
        let mid = body.len() / 2;
        out.push(body[mid..mid + 48].to_vec());
    }
    out
}

fn find_pos(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_needles_are_the_message_id_line_and_the_middle() {
        let mut body = b"From: a\r\nMessage-ID: <x@y>\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'z', 300));
        let n = body_needles(&body);
        assert_eq!(n[0], b"Message-ID: <x@y>");
        assert_eq!(n[1].len(), 48);
    }
}
