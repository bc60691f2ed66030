//! An instrumented model mail server (POP3, and IMAP's INBOX), for
//! simulation, tests and the demo.
//!
//! Causeway's end-to-end claims ("no mail lost, none fetched twice, a dropped
//! line never deletes anything") are about what happens on the *real* mail
//! server. This crate is that server as a model: it speaks RFC 1939 like
//! Dovecot (texts, snapshot semantics, commit only at QUIT, optional
//! exclusive locks that go stale after a drop), runs over the
//! [`causeway_net::Env`] seam so it works inside turmoil and on loopback
//! alike, and records in a shared [`MailStore`] exactly what happened to every
//! message, session and lock, so tests can check invariants instead of
//! guessing from the outside.
//!
//! - [`MailStore`]: maildrops, delivery, and the instrumentation.
//! - [`ServerConfig`]: lock policy, seen-on-drop, idle timeout, faults.
//! - [`serve`]: the accept loop; [`SessionCore`]: one session, sans IO.
//! - [`serve_imap`]: the same store over IMAP (INBOX only; changes take
//!   effect when answered, `BODY[]` without `.PEEK` marks read), so the
//!   edge's IMAP side is judged from the same record.
//! - [`generate`]: realistic made-up mail.
//!
//! Owns: the model server and its record. Depends only on `causeway-net`
//! and `causeway-pop3`; no node depends on it (only tests, the simulation,
//! the demo and the benchmarks do).

mod config;
pub mod generate;
mod imap;
mod lock;
mod record;
mod server;
mod session;
mod store;
mod uidl;

pub use config::{Faults, ImapLogins, LockPolicy, ServerConfig};
pub use imap::{run_imap_session, serve_imap, text_matches};
pub use record::{
    EndKind, FlagStored, InjectedFault, LockInfo, MessageRecord, SessionEnd, SessionId,
    SessionRecord, content_sha256,
};
pub use server::{run_session, serve};
pub use session::{Reply, SessionCore, top};
pub use store::{COMMAND_LOG_LIMIT, MailStore, StoreError, folder_maildrop};
pub use uidl::{Uidl, UidlFormat};
