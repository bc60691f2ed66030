//! How one server instance behaves: the knobs that make the model act like
//! Dovecot, like a stricter RFC 1939 server, or like a bad day on the wire.

use std::time::Duration;

/// What a second session for the same user meets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockPolicy {
    /// Dovecot's default (`pop3_lock_session = no`): any number of sessions.
    #[default]
    Shared,
    /// One session per maildrop: the next one gets `-ERR [IN-USE]` at PASS.
    /// The lock goes at once after QUIT or an idle timeout. After a session
    /// ends without QUIT (or its server dies) it stays, stale, for
    /// `stale_after_abrupt` (zero: it goes at once). Many servers keep it
    /// 5–15 minutes; Dovecot breaks a dead process's lock in about 3 s.
    Exclusive { stale_after_abrupt: Duration },
}

/// Faults the server injects, each drawn from the env's rng (so a seed
/// replays them). All off by default; an off fault draws nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Every reply waits a uniform time in `[reply_delay_min, reply_delay_max]`.
    pub reply_delay_min: Duration,
    pub reply_delay_max: Duration,
    /// Chance per reply that the server stops answering for `stall_for`.
    pub stall_probability: f64,
    pub stall_for: Duration,
    /// Chance per reply that the server sends only part of it and hangs up
    /// (e.g. halfway through a RETR body).
    pub drop_mid_response_probability: f64,
    /// Chance per QUIT in the TRANSACTION state that the server fails its
    /// UPDATE state (RFC 1939: "-ERR some deleted messages not removed"):
    /// it answers `-ERR`, commits nothing and closes.
    pub quit_refusal_probability: f64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            reply_delay_min: Duration::ZERO,
            reply_delay_max: Duration::ZERO,
            stall_probability: 0.0,
            stall_for: Duration::from_secs(300),
            drop_mid_response_probability: 0.0,
            quit_refusal_probability: 0.0,
        }
    }
}

/// One server instance's behaviour.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Named in the greeting.
    pub hostname: String,
    pub lock: LockPolicy,
    /// Commit RETR's seen flags when a session ends without QUIT, as Dovecot
    /// with maildir does. Deletions are never committed that way. Default
    /// false: RFC 1939, nothing changes without UPDATE.
    pub seen_on_abrupt_close: bool,
    /// A client silent this long is dropped (Dovecot: 10 minutes).
    pub idle_timeout: Duration,
    /// A failed PASS is answered after this long (Dovecot defaults to 2 s;
    /// zero here so tests stay fast).
    pub auth_failure_delay: Duration,
    pub faults: Faults,
    /// The largest message this server will hand out, in octets; RETR or TOP
    /// of a bigger one gets `-ERR [SYS/PERM]`.
    pub max_message: usize,
    /// IMAP: offer UIDPLUS (RFC 4315). Without it `UID EXPUNGE` is `BAD`,
    /// and only the bare EXPUNGE, which removes every flagged message,
    /// remains.
    pub imap_uidplus: bool,
    /// IMAP: which logins the server takes.
    pub imap_logins: ImapLogins,
}

/// The ways an IMAP server lets a client log in, as real ones differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImapLogins {
    /// `LOGIN`, and `AUTHENTICATE PLAIN` with its response on the command
    /// line (`SASL-IR`), as Dovecot.
    #[default]
    Both,
    /// `LOGIN` only (no `AUTH=` listed).
    LoginOnly,
    /// `AUTHENTICATE PLAIN` only, without `SASL-IR` (the response follows
    /// a continuation request); `LOGINDISABLED` listed and LOGIN refused.
    PlainOnly,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            hostname: "mail.causeway.test".to_owned(),
            lock: LockPolicy::Shared,
            seen_on_abrupt_close: false,
            idle_timeout: Duration::from_secs(600),
            auth_failure_delay: Duration::ZERO,
            faults: Faults::default(),
            max_message: 64 << 20,
            imap_uidplus: true,
            imap_logins: ImapLogins::Both,
        }
    }
}
