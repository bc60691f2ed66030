//! Who may start a handshake: the edge's defence against connection floods
//! and key guessing, before any peer is authenticated.
//!
//! The edge listens on the open internet (it sits where the line connects),
//! so anyone may connect, and each connection costs a task, a socket and up
//! to the `hello` timeout of waiting. Two limits, both checked before a
//! byte of the handshake is read:
//!
//! - **Handshakes in progress**, edge-wide: at most
//!   [`AdmissionLimits::max_handshakes`]; one more is closed at once. This
//!   bounds what a flood of silent connections can hold. Such closes are
//!   logged at most once every [`BUSY_LOG_EVERY`], with how many there were:
//!   a flood, or every client proxy coming back after a restart, would
//!   otherwise write a line per connection.
//! - **Failed handshakes per address**: each failed authentication (a key
//!   not on the allow list, a wrong pre-shared key, a damaged or hostile
//!   handshake) takes one credit from the address's bucket, which holds
//!   [`AdmissionLimits::failures_burst`] and refills at
//!   [`AdmissionLimits::failures_per_minute`]; an address with no credit
//!   is closed at once until one is back. A handshake that succeeds costs
//!   nothing, and neither does one the line cut, so clients whose key is
//!   allowed are never slowed, even many behind one address (a hotel's
//!   NAT), unless someone behind that address keeps failing. IPv6
//!   addresses count by their /64, which one host usually holds whole.
//!
//! Sans-IO: the caller passes the time; the edge's session task asks.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use causeway_net::Instant;

use crate::failures::{Failures, Lockout};

/// The limits (`[edge]` in the configuration file).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Handshakes in progress at once, edge-wide.
    pub max_handshakes: usize,
    /// Failed handshakes an address may make in a row.
    pub failures_burst: u32,
    /// How fast an address earns back a failed handshake.
    pub failures_per_minute: u32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_handshakes: 256,
            failures_burst: 10,
            failures_per_minute: 6,
        }
    }
}

/// Addresses tracked at most (see [`Failures`]).
const MAX_ADDRESSES: usize = 65_536;

/// Why a connection was closed before its handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The address (or IPv6 /64) that failed too often.
    pub source: String,
    /// Until a try is back.
    pub wait: Duration,
    /// True for the first refusal since the address ran out: the one worth
    /// a log line.
    pub first: bool,
}

/// The per-address buckets, shared by every connection. The limits
/// themselves are read from each connection's configuration; a reload
/// passes the new rate in with [`Admission::set_rate`].
/// At most one log line this often about connections closed because
/// `max_handshakes` were in progress.
pub(crate) const BUSY_LOG_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Admission {
    failures: Failures<IpAddr>,
    /// When the last busy line was logged, and closes since not told of.
    busy: Mutex<(Option<Instant>, u64)>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission {
            failures: Failures::new(
                limits.failures_burst,
                limits.failures_per_minute,
                MAX_ADDRESSES,
            ),
            busy: Mutex::default(),
        }
    }

    /// A connection was closed because `max_handshakes` were in progress:
    /// `Some(closes)` when a log line is due (the first such close, then at
    /// most one per [`BUSY_LOG_EVERY`]), counting every close since the
    /// last line, this one included.
    pub fn closed_busy(&self, now: Instant) -> Option<u64> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        busy.1 += 1;
        let due = busy
            .0
            .is_none_or(|at| now.saturating_duration_since(at) >= BUSY_LOG_EVERY);
        if !due {
            return None;
        }
        let closes = busy.1;
        *busy = (Some(now), 0);
        Some(closes)
    }

    /// Takes the failure rate of a new configuration.
    pub fn set_rate(&self, limits: &AdmissionLimits) {
        self.failures
            .set_rate(limits.failures_burst, limits.failures_per_minute);
    }

    /// May `ip` start a handshake now?
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let key = source(ip);
        self.failures
            .check(&key, now)
            .map_err(|Lockout { wait, first }| Refusal {
                source: shown(key),
                wait,
                first,
            })
    }

    /// A handshake from `ip` failed to authenticate.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        self.failures.failed(source(ip), now);
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.failures.tracked()
    }
}

/// The key an address counts under: itself, or its /64 for IPv6.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::from(o)
        }
    }
}

fn shown(key: IpAddr) -> String {
    match key {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("{a}/64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_net::Env;

    fn limits(burst: u32, per_minute: u32) -> Admission {
        Admission::new(AdmissionLimits {
            max_handshakes: 8,
            failures_burst: burst,
            failures_per_minute: per_minute,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_that_keeps_failing_waits_for_its_credit_and_others_do_not() {
        let a = limits(3, 60); // a credit per second
        let t0 = causeway_net::TokioEnv::new().now();
        let bad = ip("198.51.100.7");
        for _ in 0..3 {
            assert_eq!(a.check(bad, t0), Ok(()));
            a.failed(bad, t0);
        }
        let r = a.check(bad, t0).unwrap_err();
        assert_eq!(r.source, "198.51.100.7");
        assert_eq!(r.wait, Duration::from_secs(1));
        assert!(r.first);
        // Logged once per lockout.
        assert!(!a.check(bad, t0).unwrap_err().first);
        // Another address is not held back.
        assert_eq!(a.check(ip("198.51.100.8"), t0), Ok(()));
        // Half a credit is not enough; a whole one is, for one try.
        let half = t0 + Duration::from_millis(500);
        assert_eq!(
            a.check(bad, half).unwrap_err().wait,
            Duration::from_millis(500)
        );
        let one = t0 + Duration::from_secs(1);
        assert_eq!(a.check(bad, one), Ok(()));
        a.failed(bad, one);
        assert!(a.check(bad, one).unwrap_err().first);
        // Refilled, never past the burst.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(a.check(bad, later), Ok(()));
            a.failed(bad, later);
        }
        assert!(a.check(bad, later).is_err());
    }

    #[test]
    fn closes_of_a_busy_edge_are_logged_once_per_interval_with_their_count() {
        let a = limits(3, 60);
        let t0 = causeway_net::TokioEnv::new().now();
        assert_eq!(a.closed_busy(t0), Some(1));
        for i in 1..=500 {
            let t = t0 + Duration::from_millis(i * 10);
            assert_eq!(a.closed_busy(t), None, "close {i}");
        }
        // The 501 closes after the first line are told of in the next one.
        assert_eq!(a.closed_busy(t0 + BUSY_LOG_EVERY), Some(501));
        assert_eq!(a.closed_busy(t0 + BUSY_LOG_EVERY), None);
        assert_eq!(a.closed_busy(t0 + 3 * BUSY_LOG_EVERY), Some(2));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let a = limits(1, 1);
        let t = causeway_net::TokioEnv::new().now();
        a.failed(ip("2001:db8:1:2::1"), t);
        let r = a.check(ip("2001:db8:1:2:ffff::9"), t).unwrap_err();
        assert_eq!(r.source, "2001:db8:1:2::/64");
        assert_eq!(r.wait, Duration::from_secs(60));
        assert_eq!(a.check(ip("2001:db8:1:3::1"), t), Ok(()));
    }

    #[test]
    fn memory_is_bounded_however_many_addresses_fail() {
        let a = limits(2, 60);
        let t = causeway_net::TokioEnv::new().now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            a.failed(IpAddr::from(i.to_be_bytes()), t);
        }
        assert_eq!(a.tracked(), MAX_ADDRESSES);
        // Once their buckets are full again they make room.
        let later = t + Duration::from_secs(10);
        a.failed(ip("203.0.113.1"), later);
        assert_eq!(a.tracked(), 1);
    }
}
