//! The server side of IMAP, as far as a proxy serving one folder needs it:
//! the folder as the client sees it ([`view`]) and its [`keywords`], the parts of a message a
//! FETCH asks for ([`sections`]), found in its MIME tree ([`mime`]), its
//! `BODYSTRUCTURE` ([`structure`]) and `ENVELOPE` ([`envelope`]), and
//! LIST's wildcards ([`list_matches`]).
//!
//! Sans-IO, like the rest of this crate: the client proxy's IMAP front
//! (`causeway-client`) drives imap-next's server state machine and asks
//! these modules what to answer.

pub mod envelope;
pub mod keywords;
mod lex;
pub mod mime;
pub mod sections;
mod strings;
pub mod structure;
pub mod view;

/// Whether the mailbox `name` matches LIST's `reference` and `pattern`
/// (RFC 3501 §6.3.8): `*` matches anything, `%` anything but the hierarchy
/// delimiter `/`. `INBOX` matches in any case, as the RFC requires.
pub fn list_matches(reference: &[u8], pattern: &[u8], name: &str) -> bool {
    let full: Vec<u8> = [reference, pattern].concat();
    let folded = |b: &[u8]| {
        if b.eq_ignore_ascii_case(b"INBOX") {
            b"INBOX".to_vec()
        } else {
            b.to_vec()
        }
    };
    glob(&folded(&full), &folded(name.as_bytes()))
}

/// Wildcard matching by dynamic programming: time is pattern length times
/// name length, whatever the pattern (a recursive matcher would take
/// exponential time on a pattern of many `*` that fails).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    // `row[j]`: whether the pattern so far matches `name[..j]`.
    let mut row = vec![false; name.len() + 1];
    row[0] = true;
    for &p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                for j in 0..=name.len() {
                    next[j] =
                        row[j] || (j > 0 && next[j - 1] && (p == b'*' || name[j - 1] != b'/'));
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = row[j - 1] && name[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[name.len()]
}

#[cfg(test)]
mod tests {
    use super::list_matches;

    #[test]
    fn list_wildcards() {
        for (reference, pattern, name, want) in [
            ("", "*", "INBOX", true),
            ("", "%", "INBOX", true),
            ("", "inbox", "INBOX", true),
            ("", "INB*", "INBOX", true),
            ("", "", "INBOX", false),
            ("", "Archive", "INBOX", false),
            ("", "%", "a/b", false),
            ("", "*", "a/b", true),
            ("a/", "%", "a/b", true),
        ] {
            assert_eq!(
                list_matches(reference.as_bytes(), pattern.as_bytes(), name),
                want,
                "{reference:?} {pattern:?} {name:?}"
            );
        }
    }

    #[test]
    fn a_hostile_pattern_stays_cheap() {
        // Many stars and a pattern that fails at the end: a backtracking
        // matcher would take 6^10000 steps here.
        let mut pattern = vec![b'*'; 10_000];
        assert!(list_matches(b"", &pattern, "INBOX"));
        pattern.push(b'Z');
        assert!(!list_matches(b"", &pattern, "INBOX"));
    }
}
