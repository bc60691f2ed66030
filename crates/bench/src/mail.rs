//! The mail a benchmark carries: real messages from a corpus (one file each,
//! an mbox `From ` line first), or generated ones.

use causeway_mailserver::generate;
use causeway_net::EnvRng;

pub use causeway::corpus::{Messages, load};

/// `n` generated messages of about `size` octets each, from a fixed seed.
pub fn generated(seed: u8, n: usize, size: usize) -> Messages {
    let rng = EnvRng::from_seed([seed; 32]);
    (0..n)
        .map(|i| causeway_pop3::multiline::normalise(&generate::message(&rng, i as u64, size)))
        .collect()
}

pub fn total(m: &Messages) -> u64 {
    m.iter().map(|x| x.len() as u64).sum()
}
