//! When to try a mail server again, and when not to.
//!
//! A server that is down, locked by another session (`[IN-USE]`), or behind
//! a cut relay link is worth another try later; one that refused our
//! credentials or our TLS (`[AUTH]`, `[SYS/PERM]`) is not, and retrying it
//! would only lock the account or fill its log. Waits grow from `min` to
//! `max`, doubling, with up to a quarter of jitter so that many sessions
//! knocked out by one event do not all come back in the same instant.

use std::time::Duration;

use causeway_net::EnvRng;
use causeway_proto::{ErrCode, OpError};

/// True if no retry can fix this error (credentials, TLS, configuration).
pub fn is_permanent(e: &OpError) -> bool {
    matches!(e.code, Some(ErrCode::Auth | ErrCode::SysPerm))
}

/// True if the server said another session holds the maildrop.
pub fn is_lock_busy(e: &OpError) -> bool {
    matches!(e.code, Some(ErrCode::InUse))
}

/// Growing pauses between attempts.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            next: min,
            max: max.max(min),
        }
    }

    /// The pause before the next attempt (with jitter drawn from `rng`);
    /// the one after it will be twice as long, up to the maximum.
    pub fn pause(&mut self, rng: &EnvRng) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rng.range(0, base.as_millis() as u64 / 4 + 1);
        base + Duration::from_millis(jitter)
    }

    /// The pause [`Backoff::pause`] would start from, without jitter.
    pub fn peek(&self) -> Duration {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_maximum_with_bounded_jitter() {
        let rng = EnvRng::from_seed([9; 32]);
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let mut bases = Vec::new();
        for _ in 0..5 {
            let base = b.peek();
            let p = b.pause(&rng);
            assert!(p >= base && p <= base + base / 4, "{p:?} for {base:?}");
            bases.push(base.as_secs());
        }
        assert_eq!(bases, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn which_errors_are_worth_a_retry() {
        let e = |c| OpError::new(c, "x");
        assert!(is_permanent(&e(Some(ErrCode::Auth))));
        assert!(is_permanent(&e(Some(ErrCode::SysPerm))));
        assert!(!is_permanent(&e(Some(ErrCode::InUse))));
        assert!(!is_permanent(&e(Some(ErrCode::SysTemp))));
        assert!(!is_permanent(&e(None)));
        assert!(is_lock_busy(&e(Some(ErrCode::InUse))));
    }
}
