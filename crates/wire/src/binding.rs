//! Proofs bound to one handshake: how a client proxy re-attaches to its
//! edge session after a cut without the session's secret ever crossing the
//! line again.
//!
//! The edge gives each resumable session a fresh 32-byte secret inside the
//! encrypted `Welcome` (and a new one on every resume). To re-attach, the
//! client proxy runs a fresh handshake with its own key and sends
//! [`proof`]`(secret, channel.binding())`. The channel's binding is the Noise
//! handshake hash: both ends know it, nobody else does, and no two
//! handshakes share it. So a proof seen on one channel (by a compromised
//! forwarder after the encryption, say) cannot be used on another, the
//! secret itself is never sent again, and a secret that leaked after its
//! rotation is worth nothing.
//!
//! The proof is SHA-256 over a domain label, the secret and the binding, all
//! of fixed length: a keyed hash of a fixed-size message, where length
//! extension gives an attacker nothing (they would need the proof of a
//! different 32-byte binding, not of a longer message).

use sha2::{Digest, Sha256};

/// Length of a session secret and of a proof.
pub const SECRET_LEN: usize = 32;

const LABEL: &[u8] = b"causeway resume proof v1";

/// The proof that the holder of `secret` is at the other end of the channel
/// whose binding is `binding`.
pub fn proof(secret: &[u8; SECRET_LEN], binding: &[u8; 32]) -> [u8; SECRET_LEN] {
    let mut h = Sha256::new();
    h.update(LABEL);
    h.update(secret);
    h.update(binding);
    h.finalize().into()
}

/// Compares a proof in time independent of where it differs.
pub fn verify(secret: &[u8; SECRET_LEN], binding: &[u8; 32], got: &[u8]) -> bool {
    let want = proof(secret, binding);
    if got.len() != want.len() {
        return false;
    }
    got.iter()
        .zip(want.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_only_for_its_secret_and_binding() {
        let (s, b) = ([7; 32], [9; 32]);
        let p = proof(&s, &b);
        assert!(verify(&s, &b, &p));
        assert!(!verify(&[8; 32], &b, &p), "another secret");
        assert!(!verify(&s, &[1; 32], &p), "another channel");
        assert!(!verify(&s, &b, &p[..31]), "cut short");
    }
}
