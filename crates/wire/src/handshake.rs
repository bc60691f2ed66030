//! The Noise handshake as a sans-IO state machine: it produces the bytes to
//! send and consumes the bytes received, and turns every failure into an
//! error that names the key involved.
//!
//! Two patterns (see `docs/protocol.md` for the full reasoning):
//!
//! - client proxy -> edge: `Noise_XK_25519_ChaChaPoly_BLAKE2s`, or
//!   `Noise_XKpsk3_...` with a pre-shared key. The client pins the edge's key;
//!   the edge learns the client's key (encrypted, in message 3) and checks it
//!   against its allow list.
//! - edge <-> relay: `Noise_KK_25519_ChaChaPoly_BLAKE2s`, both keys pinned.
//!
//! Handshake messages never carry payload: we send none and refuse any, so
//! nothing an application says (credentials above all) travels under keys
//! that are not yet fully authenticated, and no first message carries data
//! that could be replayed.

use std::sync::Arc;

use causeway_net::EnvRng;
use snow::{Builder, HandshakeState};

use crate::entropy::EnvResolver;
use crate::error::WireError;
use crate::keys::{KEY_LEN, Keypair, Psk, PublicKey};
use crate::record::{self, MAX_RECORD};
use crate::seal::Transport;

/// Mixed into every handshake hash: peers running a different version of
/// this protocol fail the handshake instead of misreading each other later.
const PROLOGUE: &[u8] = b"causeway-wire/1";

/// What a finished handshake yields: the transport keys and the peer's
/// (now authenticated) static key.
pub(crate) type Established = (Transport, PublicKey);

const XK: &str = "Noise_XK_25519_ChaChaPoly_BLAKE2s";
const XK_PSK: &str = "Noise_XKpsk3_25519_ChaChaPoly_BLAKE2s";
const KK: &str = "Noise_KK_25519_ChaChaPoly_BLAKE2s";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Xk { psk: bool },
    Kk,
}

pub(crate) struct Handshake {
    state: HandshakeState,
    pattern: Pattern,
    local: PublicKey,
    /// The key we expect the peer to hold, when we know it in advance.
    pinned: Option<PublicKey>,
    /// Handshake messages sent or received so far.
    done: usize,
}

impl Handshake {
    /// Client proxy side of XK: `edge` is the pinned key of the edge.
    pub(crate) fn xk_initiator(
        rng: &EnvRng,
        local: &Keypair,
        edge: &PublicKey,
        psk: Option<&Psk>,
    ) -> Result<Self, WireError> {
        let pattern = Pattern::Xk { psk: psk.is_some() };
        Self::build(rng, pattern, local, Some(edge), psk, true)
    }

    /// Edge side of XK: the client's key is learned from message 3.
    pub(crate) fn xk_responder(
        rng: &EnvRng,
        local: &Keypair,
        psk: Option<&Psk>,
    ) -> Result<Self, WireError> {
        let pattern = Pattern::Xk { psk: psk.is_some() };
        Self::build(rng, pattern, local, None, psk, false)
    }

    /// Either side of KK; `peer` is the pinned key of the other side.
    pub(crate) fn kk(
        rng: &EnvRng,
        local: &Keypair,
        peer: &PublicKey,
        initiator: bool,
    ) -> Result<Self, WireError> {
        Self::build(rng, Pattern::Kk, local, Some(peer), None, initiator)
    }

    fn build(
        rng: &EnvRng,
        pattern: Pattern,
        local: &Keypair,
        remote: Option<&PublicKey>,
        psk: Option<&Psk>,
        initiator: bool,
    ) -> Result<Self, WireError> {
        let name = match pattern {
            Pattern::Xk { psk: false } => XK,
            Pattern::Xk { psk: true } => XK_PSK,
            Pattern::Kk => KK,
        };
        let setup = |e: snow::Error| WireError::Handshake {
            stage: "setup",
            detail: e.to_string(),
        };
        let params = name.parse().map_err(setup)?;
        let mut b = Builder::with_resolver(params, Box::new(EnvResolver::new(rng)))
            .local_private_key(local.private.as_bytes())
            .map_err(setup)?
            .prologue(PROLOGUE)
            .map_err(setup)?;
        if let Some(r) = remote {
            b = b.remote_public_key(r.as_bytes()).map_err(setup)?;
        }
        if let Some(p) = psk {
            b = b.psk(3, p.as_bytes()).map_err(setup)?;
        }
        let state = if initiator {
            b.build_initiator()
        } else {
            b.build_responder()
        }
        .map_err(setup)?;
        Ok(Self {
            state,
            pattern,
            local: local.public,
            pinned: remote.copied(),
            done: 0,
        })
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    pub(crate) fn is_my_turn(&self) -> bool {
        self.state.is_my_turn()
    }

    /// The handshake hash once finished: unique to this handshake and known
    /// only to its two ends, so a proof computed over it cannot be replayed
    /// on another channel (see [`crate::binding`]).
    pub(crate) fn binding(&self) -> [u8; 32] {
        let mut b = [0; 32];
        let h = self.state.get_handshake_hash();
        let n = h.len().min(32);
        b[..n].copy_from_slice(&h[..n]);
        b
    }

    fn stage(&self) -> &'static str {
        match (self.pattern, self.done) {
            (_, 0) => "message 1",
            (_, 1) => "message 2",
            (Pattern::Xk { .. }, _) => "message 3 of 3",
            (Pattern::Kk, _) => "after message 2 of 2",
        }
    }

    /// The next handshake message, framed as a record. Carries no payload.
    pub(crate) fn write(&mut self) -> Result<Vec<u8>, WireError> {
        let mut msg = vec![0u8; MAX_RECORD];
        let n = self
            .state
            .write_message(&[], &mut msg)
            .map_err(|e| WireError::Handshake {
                stage: self.stage(),
                detail: e.to_string(),
            })?;
        self.done += 1;
        let mut out = Vec::with_capacity(record::HEADER_LEN + n);
        record::push(&mut out, &msg[..n]);
        Ok(out)
    }

    /// Consumes the peer's next handshake message (a record body).
    pub(crate) fn read(&mut self, msg: &[u8]) -> Result<(), WireError> {
        let mut payload = vec![0u8; MAX_RECORD];
        let n = self
            .state
            .read_message(msg, &mut payload)
            .map_err(|e| self.read_error(e, msg.len()))?;
        if n != 0 {
            return Err(WireError::Handshake {
                stage: self.stage(),
                detail: format!(
                    "the message carried {n} bytes of payload; this protocol sends \
                     nothing before the handshake completes"
                ),
            });
        }
        self.done += 1;
        Ok(())
    }

    fn read_error(&self, e: snow::Error, len: usize) -> WireError {
        let initiator = self.state.is_initiator();
        match (e, self.pattern, self.done) {
            (snow::Error::Decrypt, _, _) if initiator => match self.pinned {
                Some(pinned) => WireError::PeerUnproven { pinned },
                None => WireError::Decrypt,
            },
            (snow::Error::Decrypt, Pattern::Xk { .. }, 0) => {
                WireError::NotForUs { ours: self.local }
            }
            (snow::Error::Decrypt, Pattern::Kk, 0) => match self.pinned {
                Some(expected) => WireError::KkMismatch {
                    expected,
                    ours: self.local,
                },
                None => WireError::Decrypt,
            },
            (snow::Error::Decrypt, Pattern::Xk { psk: true }, _) => WireError::PskMismatch,
            (snow::Error::Decrypt, _, _) => WireError::Handshake {
                stage: self.stage(),
                detail: "the client's static key did not authenticate (damaged message?)".into(),
            },
            (snow::Error::Input, _, _) => WireError::Handshake {
                stage: self.stage(),
                detail: format!("malformed message of {len} bytes"),
            },
            (other, _, _) => WireError::Handshake {
                stage: self.stage(),
                detail: other.to_string(),
            },
        }
    }

    /// The error for the peer hanging up while we wait for its message: a
    /// cut line, as far as anyone can tell (a peer that refuses us without a
    /// word looks the same).
    pub(crate) fn eof_error(&self) -> WireError {
        WireError::HandshakeCut {
            waiting_for: self.stage(),
            pinned: self.pinned.filter(|_| self.state.is_initiator()),
        }
    }

    pub(crate) fn finish(self) -> Result<Established, WireError> {
        let fail = |detail: String| WireError::Handshake {
            stage: "finish",
            detail,
        };
        let peer: [u8; KEY_LEN] = self
            .state
            .get_remote_static()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| fail("no remote static key".into()))?;
        let transport = self
            .state
            .into_stateless_transport_mode()
            .map_err(|e| fail(e.to_string()))?;
        Ok((Arc::new(transport), PublicKey::from_bytes(peer)))
    }
}

/// Runs a handshake between two in-memory state machines: what the sans-IO
/// tests and fuzz targets build their channels on.
pub(crate) fn run_in_memory(
    mut initiator: Handshake,
    mut responder: Handshake,
) -> Result<(Established, Established), WireError> {
    let mut turn = 0;
    while !initiator.is_finished() || !responder.is_finished() {
        let (from, to) = if turn % 2 == 0 {
            (&mut initiator, &mut responder)
        } else {
            (&mut responder, &mut initiator)
        };
        let record = from.write()?;
        to.read(&record[record::HEADER_LEN..])?;
        turn += 1;
    }
    Ok((initiator.finish()?, responder.finish()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(seed: u8) -> (EnvRng, Keypair, Keypair) {
        let rng = EnvRng::from_seed([seed; 32]);
        let a = Keypair::generate(&rng);
        let b = Keypair::generate(&rng);
        (rng, a, b)
    }

    #[test]
    fn xk_and_kk_agree_on_keys_and_identities() {
        let (rng, client, edge) = keys(1);
        let (i, r) = run_in_memory(
            Handshake::xk_initiator(&rng, &client, &edge.public, None).unwrap(),
            Handshake::xk_responder(&rng, &edge, None).unwrap(),
        )
        .unwrap();
        assert_eq!(i.1, edge.public);
        assert_eq!(r.1, client.public);
        let (i, r) = run_in_memory(
            Handshake::kk(&rng, &client, &edge.public, true).unwrap(),
            Handshake::kk(&rng, &edge, &client.public, false).unwrap(),
        )
        .unwrap();
        assert_eq!((i.1, r.1), (edge.public, client.public));
    }

    #[test]
    fn xk_edge_with_another_key_says_whose_key_it_is() {
        let (rng, client, edge) = keys(2);
        let impostor = Keypair::generate(&rng);
        let e = run_in_memory(
            Handshake::xk_initiator(&rng, &client, &edge.public, None).unwrap(),
            Handshake::xk_responder(&rng, &impostor, None).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(e, WireError::NotForUs { ours } if ours == impostor.public),
            "{e}"
        );
        assert!(e.to_string().contains(&impostor.public.to_string()), "{e}");
    }

    #[test]
    fn a_damaged_second_message_means_the_peer_is_unproven() {
        let (rng, client, edge) = keys(3);
        let mut i = Handshake::xk_initiator(&rng, &client, &edge.public, None).unwrap();
        let mut r = Handshake::xk_responder(&rng, &edge, None).unwrap();
        r.read(&i.write().unwrap()[2..]).unwrap();
        let mut m2 = r.write().unwrap();
        let last = m2.len() - 1;
        m2[last] ^= 1;
        let e = i.read(&m2[2..]).unwrap_err();
        assert!(matches!(e, WireError::PeerUnproven { pinned } if pinned == edge.public));
        assert!(
            e.to_string().contains(&format!(
                "did not prove possession of the pinned key {}",
                edge.public
            )),
            "{e}"
        );
    }

    #[test]
    fn kk_mismatch_names_both_keys() {
        let (rng, edge, relay) = keys(4);
        let stranger = Keypair::generate(&rng);
        // The relay expects `edge`, but `stranger` connects.
        let e = run_in_memory(
            Handshake::kk(&rng, &stranger, &relay.public, true).unwrap(),
            Handshake::kk(&rng, &relay, &edge.public, false).unwrap(),
        )
        .unwrap_err();
        assert!(
            matches!(e, WireError::KkMismatch { expected, ours } if expected == edge.public && ours == relay.public),
            "{e}"
        );
    }

    #[test]
    fn a_wrong_psk_is_reported_as_such() {
        let (rng, client, edge) = keys(5);
        let e = run_in_memory(
            Handshake::xk_initiator(&rng, &client, &edge.public, Some(&Psk::generate(&rng)))
                .unwrap(),
            Handshake::xk_responder(&rng, &edge, Some(&Psk::generate(&rng))).unwrap(),
        )
        .unwrap_err();
        assert!(matches!(e, WireError::PskMismatch), "{e}");
        // A PSK on one side only changes the protocol name: message 1 fails.
        let e = run_in_memory(
            Handshake::xk_initiator(&rng, &client, &edge.public, None).unwrap(),
            Handshake::xk_responder(&rng, &edge, Some(&Psk::generate(&rng))).unwrap(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("pre-shared key"), "{e}");
    }

    #[test]
    fn payload_in_a_handshake_message_is_refused() {
        let (rng, client, edge) = keys(6);
        let mut evil = Builder::new(XK.parse().unwrap())
            .local_private_key(client.private.as_bytes())
            .unwrap()
            .remote_public_key(edge.public.as_bytes())
            .unwrap()
            .prologue(PROLOGUE)
            .unwrap()
            .fixed_ephemeral_key_for_testing_only(&[7; 32])
            .build_initiator()
            .unwrap();
        let mut msg = vec![0u8; 1024];
        let n = evil
            .write_message(b"USER alice PASS hunter2", &mut msg)
            .unwrap();
        let mut r = Handshake::xk_responder(&rng, &edge, None).unwrap();
        let e = r.read(&msg[..n]).unwrap_err();
        assert!(e.to_string().contains("23 bytes of payload"), "{e}");
    }
}
