//! SEARCH: what the view holds is judged here; the mail's text (and the
//! day it was sent) is asked of the servers.
//!
//! Flags, sizes, dates of arrival, numbers and UIDs are in the view, so
//! those criteria cost nothing. A criterion on the text (`FROM`, `SUBJECT`,
//! `BODY`, `TEXT`, `HEADER`...) or on the day its `Date:` names
//! (`SENTBEFORE`, `SENTON`, `SENTSINCE`) needs every message whole, which the proxy
//! does not hold: each distinct one is asked of the servers behind
//! the folder (`XSEARCH`, one short turn of the line each), which search
//! where the mail lies. The answers then combine with the rest (`NOT`,
//! `OR`, flags) here, so a criterion the servers could not judge together
//! with our flags (a `\Deleted` only the proxy knows of) is still right.
//!
//! Only the servers whose messages the folder shows are asked (`XSEARCH
//! ... IN`). A POP3 server cannot search: the edge reads its messages whole
//! and judges them itself, which costs the server's hop, never the line.
//! The criteria no one here can judge (`MODSEQ`, `FUZZY`...) are
//! answered `NO [CANNOT]`.

use std::collections::{BTreeMap, BTreeSet};

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::{AString, Charset, Tag};
use causeway_imap::imap_types::datetime::NaiveDate;
use causeway_imap::imap_types::response::{Code, Data};
use causeway_imap::imap_types::search::SearchKey;
use causeway_imap::serve::view::{Message, seq_of, ymd};
use causeway_net::Env;
use causeway_pop3::search::{Day, Sent, TextField, TextKey};

use super::commands::{Flow, Front};
use super::replies::{cannot, no, ok};
use crate::broken::Broken;
use crate::uids::server_of;

/// The charsets a search text may come in: both are UTF-8.
const CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

impl<E: Env> Front<E> {
    pub(super) async fn search(
        &mut self,
        server: &mut Server,
        tag: Tag<'static>,
        charset: Option<&Charset<'_>>,
        criteria: &[SearchKey<'_>],
        uid: bool,
    ) -> Flow {
        if let Some(c) = charset.filter(|c| !known(c)) {
            let allowed = CHARSETS.map(|c| Charset::try_from(c).expect("an atom"));
            let code = Code::BadCharset {
                allowed: allowed.to_vec(),
            };
            let text = format!("{} is not a charset searched here", name(c));
            server.enqueue_status(no(tag, Some(code), text));
            return Flow::Go;
        }
        let mut leaves = Vec::new();
        text_leaves(criteria, &mut leaves);
        let servers = self.servers_shown();
        // Each distinct criterion is asked once; each leaf finds its answer.
        let mut asked: BTreeMap<TextKey, BTreeSet<u32>> = BTreeMap::new();
        let mut keys = Vec::with_capacity(leaves.len());
        for (_, how) in &leaves {
            let key = match how.clone() {
                Ok(key) => key,
                Err(why) => {
                    server.enqueue_status(no(tag, Some(cannot()), why));
                    return Flow::Go;
                }
            };
            if !asked.contains_key(&key) {
                let unasked = self.config.broken(Broken::ImapSearchUnasked);
                let numbers = match self.maildrop() {
                    _ if unasked => Ok(Vec::new()),
                    Ok(m) => m.search(key.clone(), servers.clone()).await,
                    Err(e) => Err(e),
                };
                match numbers {
                    Ok(ns) => asked.insert(key.clone(), ns.into_iter().collect()),
                    Err(e) => return self.lost(server, tag, &e),
                };
            }
            keys.push(key);
        }
        let text = |m: &Message<u32>, k: &SearchKey<'_>| {
            let leaf = leaves.iter().position(|(l, _)| std::ptr::eq(*l, k))?;
            Some(asked.get(&keys[leaf])?.contains(&m.key))
        };
        let v = self.view();
        match v.search(criteria, &text) {
            Ok(indices) => {
                let numbers = (indices.into_iter())
                    .map(|i| match uid {
                        true => v.get(i).uid,
                        false => seq_of(i).expect("in range"),
                    })
                    .collect();
                server.enqueue_data(Data::Search(numbers));
                server.enqueue_status(ok(tag, None, "SEARCH completed"));
            }
            Err(e) => {
                server.enqueue_status(no(tag, Some(cannot()), e.to_string()));
            }
        }
        Flow::Go
    }
}

impl<E: Env> Front<E> {
    /// The servers whose messages the folder shown holds: the only ones
    /// with something to find.
    fn servers_shown(&self) -> Vec<String> {
        let v = self.view.as_ref().expect("selected states have a view");
        let shown: BTreeSet<&str> = (0..v.exists() as usize)
            .filter_map(|i| self.book_keys.get(&v.get(i).uid))
            .map(|k| server_of(k))
            .collect();
        shown.into_iter().map(str::to_owned).collect()
    }
}

fn name(c: &Charset<'_>) -> String {
    let bytes: &[u8] = match c {
        Charset::Atom(a) => a.inner().as_bytes(),
        Charset::Quoted(q) => q.inner().as_bytes(),
    };
    String::from_utf8_lossy(bytes).into_owned()
}

fn known(c: &Charset<'_>) -> bool {
    CHARSETS.iter().any(|k| k.eq_ignore_ascii_case(&name(c)))
}

/// A criterion the servers judge, and how they are asked it (or why it
/// cannot be).
type Leaf<'k, 'a> = (&'k SearchKey<'a>, Result<TextKey, String>);

/// The criteria the servers judge (on the mail's text, or the day it was
/// sent), wherever they are in `keys`.
fn text_leaves<'k, 'a>(keys: &'k [SearchKey<'a>], out: &mut Vec<Leaf<'k, 'a>>) {
    for key in keys {
        match key {
            SearchKey::Not(k) => text_leaves(std::slice::from_ref(k.as_ref()), out),
            SearchKey::Or(a, b) => {
                text_leaves(std::slice::from_ref(a.as_ref()), out);
                text_leaves(std::slice::from_ref(b.as_ref()), out);
            }
            SearchKey::And(ks) => text_leaves(ks.as_ref(), out),
            k => out.extend(text_key(k).map(|asked| (k, asked))),
        }
    }
}

/// The criterion as the servers are asked it, or why it cannot be; `None`
/// for a criterion the view judges.
fn text_key(key: &SearchKey<'_>) -> Option<Result<TextKey, String>> {
    let text = |field, v: &AString<'_>| Some(utf8(v).map(|v| (field, v)));
    let day = |order, d: &NaiveDate| {
        let (year, month, day) = ymd(d);
        let day = Day { year, month, day };
        Some(Ok((TextField::Sent(order), day.to_string())))
    };
    let asked = match key {
        SearchKey::From(v) => text(TextField::From, v),
        SearchKey::To(v) => text(TextField::To, v),
        SearchKey::Cc(v) => text(TextField::Cc, v),
        SearchKey::Bcc(v) => text(TextField::Bcc, v),
        SearchKey::Subject(v) => text(TextField::Subject, v),
        SearchKey::Body(v) => text(TextField::Body, v),
        SearchKey::Text(v) => text(TextField::Text, v),
        SearchKey::Header(h, v) => match utf8(h) {
            Ok(h) => text(TextField::Header(h), v),
            Err(e) => Some(Err(e)),
        },
        SearchKey::SentBefore(d) => day(Sent::Before, d),
        SearchKey::SentOn(d) => day(Sent::On, d),
        SearchKey::SentSince(d) => day(Sent::Since, d),
        _ => None,
    }?;
    Some(asked.and_then(|(field, value)| TextKey::new(field, value).map_err(|e| e.to_string())))
}

fn utf8(s: &AString<'_>) -> Result<String, String> {
    String::from_utf8(s.as_ref().to_vec()).map_err(|_| "a search text that is not UTF-8".to_owned())
}
