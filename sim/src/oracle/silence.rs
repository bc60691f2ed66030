//! Invariant 9's allowance for a line cut so often that no resume can keep
//! a mail client from hearing nothing for its whole patience.

/// How long after a cut begins the client proxy may take to find the
/// connection dead (its `timeouts.request` without progress), and after it
/// ends to try again (its longest pause between attempts).
const CUT_FOUND_MS: u64 = 60_000;
const RESUME_PAUSE_MS: u64 = 20_000;

/// True if cuts `cuts` (simulated ms) follow each other so closely that the
/// mail client may hear nothing for its whole patience
/// ([`crate::workload::COMMAND_SILENCE`]), or the client proxy try to
/// resume for longer than it may (`resume_ms`, its `timeouts.resume` or
/// the edge's window, whichever is shorter): each cut silences the line
/// from its start until the proxy found it dead and resumed, `max(start +
/// 60 s, end + 20 s)`, and silences that overlap add up. No resume covers
/// that: the mail client rightly gives up, as fetchmail would on that
/// line. (Seed 503471123: three cuts, each shorter than the proxy's 137 s,
/// with 5 s and 1 s of line between them, which its pauses between
/// attempts missed: one silence of 240 s.)
pub(super) fn cuts_outlast_patience(cuts: &[(u64, u64)], resume_ms: u64) -> bool {
    let patience = (crate::workload::COMMAND_SILENCE.as_millis() as u64).min(resume_ms);
    let mut silences: Vec<(u64, u64)> = cuts
        .iter()
        .map(|&(a, b)| {
            let until = (a + CUT_FOUND_MS).max(b + RESUME_PAUSE_MS) + super::RESUME_MARGIN_MS;
            (a, until)
        })
        .collect();
    silences.sort_unstable();
    let mut run: Option<(u64, u64)> = None;
    for (a, b) in silences {
        run = match run {
            Some((from, until)) if a <= until => Some((from, until.max(b))),
            _ => Some((a, b)),
        };
        if run.is_some_and(|(from, until)| until - from >= patience) {
            return true;
        }
    }
    false
}
#[cfg(test)]
mod tests {
    use super::cuts_outlast_patience;

    /// The cuts of seeds 3208 and 4968 (focus resume), in simulated ms.
    #[test]
    fn cuts_close_enough_to_starve_a_command_are_told_apart() {
        // Five cuts with the line up between them long enough to resume:
        // the longest silence they can make is 164 s, so a mail client
        // that heard nothing for 300 s met a defect (a TOP that waited
        // for a whole body).
        let sparse = [
            (6_000, 43_300),
            (75_000, 98_300),
            (128_000, 154_700),
            (176_400, 190_500),
            (273_200, 302_100),
        ];
        assert!(!cuts_outlast_patience(&sparse, u64::MAX));
        // Cuts of 50-66 s with 10-45 s between them: each found dead only
        // after 60 s, so the silences join into one of 345 s.
        let dense = [
            (60_000, 127_800),
            (143_100, 209_000),
            (220_000, 269_900),
            (285_900, 295_900),
            (341_000, 398_500),
            (408_500, 468_300),
        ];
        assert!(cuts_outlast_patience(&dense, u64::MAX));
        assert!(!cuts_outlast_patience(&[], u64::MAX));
    }

    /// Seed 503471123's cuts: one silence of 240 s, within the mail
    /// client's 300 s but past a client proxy that resumes for 137 s.
    #[test]
    fn cuts_that_outlast_the_proxys_resume_are_told_apart() {
        let cuts = [(50_500, 136_900), (142_000, 185_900), (187_000, 268_700)];
        assert!(cuts_outlast_patience(&cuts, 137_000));
        assert!(!cuts_outlast_patience(&cuts, 600_000));
    }
}
