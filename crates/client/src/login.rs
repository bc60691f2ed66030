//! The local login: who may use this client proxy.
//!
//! The proxy listens on loopback, but other local users can reach loopback
//! too. The mail client must therefore present the user name and password of
//! the proxy's configuration before the proxy opens a session with the edge
//! (which carries the real servers' credentials). Both are compared in
//! constant time, so response timing does not reveal how much of a guess was
//! right.

use causeway_proto::Secret;

/// The user name and password the mail client must present.
#[derive(Clone, Debug)]
pub struct LocalLogin {
    pub user: String,
    pub password: Secret,
}

impl LocalLogin {
    /// True if both match. Both comparisons always run.
    pub fn accepts(&self, user: &[u8], password: &[u8]) -> bool {
        let user_ok = constant_time_eq(self.user.as_bytes(), user);
        let password_ok = constant_time_eq(self.password.expose(), password);
        user_ok & password_ok
    }
}

/// Compares without an early exit: the time taken depends only on the
/// lengths, never on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_pair_is_accepted() {
        let login = LocalLogin {
            user: "me".into(),
            password: Secret::new(b"pw".to_vec()),
        };
        assert!(login.accepts(b"me", b"pw"));
        assert!(!login.accepts(b"me", b"pw "));
        assert!(!login.accepts(b"me", b"p"));
        assert!(!login.accepts(b"me", b"pW"));
        assert!(!login.accepts(b"you", b"pw"));
        assert!(!login.accepts(b"me", b""));
        assert!(!login.accepts(b"", b""));
    }
}
