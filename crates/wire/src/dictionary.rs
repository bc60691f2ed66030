//! Training a zstd dictionary for [`ChannelConfig::dictionary`](crate::ChannelConfig).
//!
//! The channel already compresses each direction as one stream, so from the
//! second message of a session on zstd can refer back to the first. A
//! dictionary helps what the stream cannot: the first messages of every
//! session (the listing, the first bodies), and the headers every mail shares.
//! Both peers must pin the same bytes; a mismatch is a decompression error on
//! the first compressed frame, not silent damage.
//!
//! Train on mail like the mail that will be carried, normalised the way the
//! POP3 codec sends it (CRLF line ends), and never on mail the dictionary will
//! later be measured on.

use std::fmt;

/// Why a dictionary could not be trained.
#[derive(Debug)]
pub enum TrainError {
    /// Nothing to learn from (no samples, or all of them empty).
    NoSamples,
    /// `max_size` is below what zstd can use.
    TooSmall { max_size: usize },
    /// zstd's trainer refused (typically too few or too small samples for
    /// the size asked for).
    Zstd(String),
}

impl fmt::Display for TrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrainError::NoSamples => write!(f, "no non-empty samples to train a dictionary on"),
            TrainError::TooSmall { max_size } => write!(
                f,
                "a dictionary of {max_size} bytes is too small; ask for at least {MIN_SIZE}"
            ),
            TrainError::Zstd(e) => write!(f, "zstd could not train a dictionary: {e}"),
        }
    }
}

impl std::error::Error for TrainError {}

/// The smallest dictionary size accepted (zstd's own floor is 256 bytes).
pub const MIN_SIZE: usize = 1024;

/// Trains a zstd dictionary of at most `max_size` bytes on `samples` (one
/// message each), with zstd's default trainer (fastcover, as `zstd --train`).
/// About 100 times the dictionary size in samples gives a good dictionary;
/// 110 KB from a few thousand mails is the usual choice.
pub fn train(samples: &[Vec<u8>], max_size: usize) -> Result<Vec<u8>, TrainError> {
    if max_size < MIN_SIZE {
        return Err(TrainError::TooSmall { max_size });
    }
    let samples: Vec<&[u8]> = samples
        .iter()
        .filter(|s| !s.is_empty())
        .map(Vec::as_slice)
        .collect();
    if samples.is_empty() {
        return Err(TrainError::NoSamples);
    }
    zstd::dict::from_samples(&samples, max_size).map_err(|e| TrainError::Zstd(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(i: usize) -> Vec<u8> {
        format!(
            "Received: from mx{}.example.org by mail.example.net\r\n\
             From: sender{i}@example.org\r\nTo: list@example.net\r\n\
             Subject: weekly report number {i}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n\
             Dear all, the figures for week {i} are attached below.\r\n\
             Regards, the harbour office\r\n",
            i % 7
        )
        .into_bytes()
    }

    #[test]
    fn a_trained_dictionary_makes_a_lone_message_smaller() {
        let samples: Vec<Vec<u8>> = (0..400).map(mail).collect();
        let dict = train(&samples, 4096).unwrap();
        assert!(!dict.is_empty() && dict.len() <= 4096, "{}", dict.len());
        let m = mail(9999);
        let plain = zstd::bulk::compress(&m, 3).unwrap();
        let with = zstd::bulk::Compressor::with_dictionary(3, &dict)
            .unwrap()
            .compress(&m)
            .unwrap();
        assert!(
            with.len() * 2 < plain.len(),
            "{} vs {}",
            with.len(),
            plain.len()
        );
    }

    #[test]
    fn nothing_to_learn_from_is_an_error() {
        assert!(matches!(train(&[], 4096), Err(TrainError::NoSamples)));
        assert!(matches!(
            train(&[Vec::new()], 4096),
            Err(TrainError::NoSamples)
        ));
        assert!(matches!(
            train(&[mail(1)], 10),
            Err(TrainError::TooSmall { max_size: 10 })
        ));
    }
}
