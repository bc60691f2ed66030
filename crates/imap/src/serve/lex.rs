//! The lexical layer of header values (RFC 5322 §3.2, RFC 2045 §5.1):
//! white space and comments between words, atoms and MIME tokens, quoted
//! strings, and MIME parameters with RFC 2231 continuations. Used for
//! `Content-*` fields ([`super::mime`]) and address lists
//! ([`super::envelope`]).
//!
//! Every step moves forward or stops, so a hostile value costs one pass;
//! comments nest without recursion.

/// A cursor over one unfolded header value.
pub struct Lexer<'a> {
    s: &'a [u8],
    at: usize,
    /// The text of the last comment skipped (an address's name when it
    /// has no other, as in `a@b (Ann)`).
    pub last_comment: Option<Vec<u8>>,
}

/// RFC 2045 `tspecials`: what ends a MIME token.
const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";
/// RFC 5322 `specials`: what ends an atom.
const SPECIALS: &[u8] = b"()<>[]:;@\\,.\"";

impl<'a> Lexer<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            at: 0,
            last_comment: None,
        }
    }

    /// How far it has read.
    pub fn pos(&self) -> usize {
        self.at
    }

    pub fn at_end(&mut self) -> bool {
        self.skip_cfws();
        self.at >= self.s.len()
    }

    /// The next byte after white space and comments, not taken.
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_cfws();
        self.s.get(self.at).copied()
    }

    /// Takes `b` if it comes next (after white space and comments).
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Skips one byte (something no rule takes).
    pub fn skip(&mut self) {
        self.at = (self.at + 1).min(self.s.len());
    }

    /// Skips white space and comments (nested, with quoted pairs).
    pub fn skip_cfws(&mut self) {
        while let Some(&b) = self.s.get(self.at) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.at += 1,
                b'(' => {
                    let mut depth = 0usize;
                    let mut text = Vec::new();
                    while let Some(&c) = self.s.get(self.at) {
                        self.at += 1;
                        match c {
                            b'\\' => {
                                if let Some(&q) = self.s.get(self.at) {
                                    text.push(q);
                                    self.at += 1;
                                }
                            }
                            b'(' => {
                                if depth > 0 {
                                    text.push(c);
                                }
                                depth += 1;
                            }
                            b')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                                text.push(c);
                            }
                            _ => text.push(c),
                        }
                    }
                    self.last_comment = Some(text);
                }
                _ => return,
            }
        }
    }

    fn run(&mut self, stop: &[u8]) -> Option<&'a [u8]> {
        self.skip_cfws();
        let start = self.at;
        while let Some(&b) = self.s.get(self.at) {
            if b <= b' ' || b == 0x7f || stop.contains(&b) {
                break;
            }
            self.at += 1;
        }
        (self.at > start).then(|| &self.s[start..self.at])
    }

    /// A MIME token (RFC 2045).
    pub fn token(&mut self) -> Option<String> {
        self.run(TSPECIALS).map(lossy)
    }

    /// An atom (RFC 5322).
    pub fn atom(&mut self) -> Option<&'a [u8]> {
        self.run(SPECIALS)
    }

    /// A quoted string's content, quoted pairs undone; `None` (nothing
    /// taken) unless one comes next. An unclosed one ends with the value.
    pub fn quoted(&mut self) -> Option<Vec<u8>> {
        self.skip_cfws();
        if self.s.get(self.at) != Some(&b'"') {
            return None;
        }
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&b) = self.s.get(self.at) {
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(&q) = self.s.get(self.at) {
                        out.push(q);
                        self.at += 1;
                    }
                }
                b'\r' | b'\n' => {}
                _ => out.push(b),
            }
        }
        Some(out)
    }

    /// A domain literal (`[1.2.3.4]`), brackets kept.
    pub fn domain_literal(&mut self) -> Option<Vec<u8>> {
        if self.peek() != Some(b'[') {
            return None;
        }
        let start = self.at;
        while let Some(&b) = self.s.get(self.at) {
            self.at += 1;
            if b == b']' {
                break;
            }
        }
        Some(self.s[start..self.at].to_vec())
    }

    /// `type/subtype` (RFC 2045 §5.1).
    pub fn media_type(&mut self) -> Option<(String, String)> {
        let kind = self.token()?;
        if !self.eat(b'/') {
            return None;
        }
        let subtype = self.token()?;
        Some((kind, subtype))
    }

    /// A comma-separated list of tokens (`Content-Language`).
    pub fn token_list(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(t) = self.token() {
            out.push(t);
            if !self.eat(b',') {
                break;
            }
        }
        out
    }

    /// `*(";" attribute "=" value)`, stopping at the first that does not
    /// parse; RFC 2231 continuations (`name*0`, `name*1*`) joined after the
    /// others, under `name` (`name*` if any piece is extended: its value
    /// keeps the charset'language' prefix), as Dovecot lists them.
    pub fn params(&mut self) -> Vec<(String, String)> {
        let mut raw: Vec<(String, String)> = Vec::new();
        while self.eat(b';') {
            let Some(name) = self.token() else { break };
            if !self.eat(b'=') {
                break;
            }
            let value = match self.quoted() {
                Some(q) => lossy(&q),
                None => match self.token() {
                    Some(t) => t,
                    None => break,
                },
            };
            raw.push((name, value));
        }
        join_continuations(raw)
    }
}

/// A continued parameter's pieces: (N, extended, value).
type Pieces = Vec<(u32, bool, String)>;

/// `name*N` and `name*N*` pieces joined in `N` order (RFC 2231 §3).
fn join_continuations(raw: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    // (base, pieces: (n, extended, value)), after the plain ones, in the
    // order of their first piece (as Dovecot lists them).
    let mut groups: Vec<(String, Pieces)> = Vec::new();
    for (name, value) in raw {
        let piece = name.split_once('*').and_then(|(base, rest)| {
            let (digits, extended) = match rest.strip_suffix('*') {
                Some(d) => (d, true),
                None => (rest, false),
            };
            digits
                .parse::<u32>()
                .ok()
                .filter(|_| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                .map(|n| (base.to_owned(), n, extended))
        });
        match piece {
            Some((base, n, extended)) => {
                match groups.iter_mut().find(|g| g.0.eq_ignore_ascii_case(&base)) {
                    Some(g) => g.1.push((n, extended, value)),
                    None => groups.push((base, vec![(n, extended, value)])),
                }
            }
            None => out.push((name, value)),
        }
    }
    for (base, mut pieces) in groups {
        pieces.sort_by_key(|p| p.0);
        let extended = pieces.iter().any(|p| p.1);
        let value: String = pieces.into_iter().map(|p| p.2).collect();
        out.push((if extended { format!("{base}*") } else { base }, value));
    }
    out
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_and_parameters_with_comments_and_quotes() {
        let mut l = Lexer::new(b"text/plain (a comment); charset=\"utf-8\" ;format=flowed");
        assert_eq!(l.media_type(), Some(("text".into(), "plain".into())));
        assert_eq!(
            l.params(),
            vec![
                ("charset".into(), "utf-8".into()),
                ("format".into(), "flowed".into())
            ]
        );
    }

    #[test]
    fn continuations_join_in_order() {
        let mut l = Lexer::new(
            b"attachment; filename*1=\"b.txt\"; filename*0=\"a\"; size=3; title*0*=us-ascii'en'x; title*1=y",
        );
        assert_eq!(l.token().as_deref(), Some("attachment"));
        assert_eq!(
            l.params(),
            vec![
                ("size".into(), "3".into()),
                ("filename".into(), "ab.txt".into()),
                ("title*".into(), "us-ascii'en'xy".into()),
            ]
        );
    }

    #[test]
    fn nested_comments_and_unclosed_quotes_end() {
        let mut l = Lexer::new(b"(a (nested) one) word");
        assert_eq!(l.atom(), Some(&b"word"[..]));
        assert_eq!(l.last_comment.as_deref(), Some(&b"a (nested) one"[..]));
        let mut l = Lexer::new(b"\"never closed");
        assert_eq!(l.quoted().as_deref(), Some(&b"never closed"[..]));
        assert!(l.at_end());
        let mut l = Lexer::new(b"((((");
        assert!(l.at_end());
    }
}
