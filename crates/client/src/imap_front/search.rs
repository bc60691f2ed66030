//! SEARCH: what the view holds is judged here; the mail's text is asked of
//! the servers.
//!
//! Flags, sizes, dates of arrival, numbers and UIDs are in the view, so
//! those criteria cost nothing. A criterion on the text (`FROM`, `SUBJECT`,
//! `BODY`, `TEXT`, `HEADER`...) needs every message whole, which the proxy
//! does not hold: each distinct one is asked of the servers behind
//! the folder (`XSEARCH`, one short turn of the line each), which search
//! where the mail lies. The answers then combine with the rest (`NOT`,
//! `OR`, flags) here, so a criterion the servers could not judge together
//! with our flags (a `\Deleted` only the proxy knows of) is still right.
//!
//! Only the servers whose messages the folder shows are asked (`XSEARCH
//! ... IN`). A POP3 server cannot search: the edge reads its messages whole
//! and judges them itself, which costs the server's hop, never the line.
//! The criteria no one here can judge (`SENTBEFORE`, `MODSEQ`...) are
//! answered `NO [CANNOT]`.

use std::collections::{BTreeMap, BTreeSet};

use causeway_imap::imap_next::server::Server;
use causeway_imap::imap_types::core::{AString, Charset, Tag};
use causeway_imap::imap_types::response::{Code, Data};
use causeway_imap::imap_types::search::SearchKey;
use causeway_imap::serve::view::{Message, seq_of};
use causeway_net::Env;
use causeway_pop3::search::{TextField, TextKey};

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
        for leaf in &leaves {
            let key = match text_key(leaf) {
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
        let found: Vec<&BTreeSet<u32>> = keys.iter().map(|k| &asked[k]).collect();
        let text = |m: &Message<u32>, k: &SearchKey<'_>| {
            let leaf = leaves.iter().position(|l| std::ptr::eq(*l, k))?;
            Some(found[leaf].contains(&m.key))
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

/// The criteria on the mail's text, wherever they are in `keys`.
fn text_leaves<'k, 'a>(keys: &'k [SearchKey<'a>], out: &mut Vec<&'k SearchKey<'a>>) {
    for key in keys {
        match key {
            SearchKey::Not(k) => text_leaves(std::slice::from_ref(k.as_ref()), out),
            SearchKey::Or(a, b) => {
                text_leaves(std::slice::from_ref(a.as_ref()), out);
                text_leaves(std::slice::from_ref(b.as_ref()), out);
            }
            SearchKey::And(ks) => text_leaves(ks.as_ref(), out),
            k if field(k).is_some() => out.push(k),
            _ => {}
        }
    }
}

/// Where a text criterion looks and what for; `None` for any other.
fn field<'k>(key: &'k SearchKey<'_>) -> Option<(TextField, &'k AString<'k>)> {
    Some(match key {
        SearchKey::From(v) => (TextField::From, v),
        SearchKey::To(v) => (TextField::To, v),
        SearchKey::Cc(v) => (TextField::Cc, v),
        SearchKey::Bcc(v) => (TextField::Bcc, v),
        SearchKey::Subject(v) => (TextField::Subject, v),
        SearchKey::Body(v) => (TextField::Body, v),
        SearchKey::Text(v) => (TextField::Text, v),
        SearchKey::Header(h, v) => (TextField::Header(utf8(h).ok()?), v),
        _ => return None,
    })
}

/// The criterion as the servers are asked it, or why it cannot be.
fn text_key(key: &SearchKey<'_>) -> Result<TextKey, String> {
    let (field, value) = field(key).ok_or("not a criterion on the mail's text")?;
    TextKey::new(field, utf8(value)?).map_err(|e| e.to_string())
}

fn utf8(s: &AString<'_>) -> Result<String, String> {
    String::from_utf8(s.as_ref().to_vec()).map_err(|_| "a search text that is not UTF-8".to_owned())
}
