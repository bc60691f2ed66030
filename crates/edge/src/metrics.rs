//! What the edge shows an operator's Prometheus: each metric read from
//! [`EdgeState`] at scrape time (see `causeway_net::metrics`), named and
//! explained in `docs/operations.md` with the alerts worth setting on them.

use causeway_net::Instant;
use causeway_net::metrics::{
    Collector, DescriptorEncoder, counter, counters_by, gauge, histogram, render,
};

use crate::state::EdgeState;

/// The edge's metrics as OpenMetrics text, ages measured up to `now`.
pub fn metrics_text(state: &EdgeState, now: Instant) -> String {
    render(EdgeMetrics {
        state: state.clone(),
        now,
    })
}

struct EdgeMetrics {
    state: EdgeState,
    now: Instant,
}

impl std::fmt::Debug for EdgeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeMetrics")
    }
}

impl Collector for EdgeMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.state;
        let e = &mut e;
        gauge(
            e,
            "edge_sessions",
            "Client sessions being served now (handshake done, not ended; a session waiting for a resume counts).",
            s.live_sessions() as f64,
        )?;
        gauge(
            e,
            "edge_handshakes",
            "Client handshakes in progress now.",
            s.handshakes() as f64,
        )?;
        gauge(
            e,
            "edge_replicas",
            "Mailbox replicas held now: one per mail server session a client session opened.",
            s.live_replicas() as f64,
        )?;
        gauge(
            e,
            "edge_cached_body_bytes",
            "Bytes of message bodies the replicas keep, all sessions together (capped by replica_cache_total_bytes).",
            s.cached_body_bytes() as f64,
        )?;
        gauge(
            e,
            "edge_upload_bytes",
            "Bytes of messages held on their way up to their servers (IMAP APPEND), all sessions together (capped by upload_total_bytes).",
            s.upload_bytes() as f64,
        )?;
        gauge(
            e,
            "edge_owed_items",
            "Acknowledged deletes and read marks a mail server has not committed yet.",
            s.pending_work() as f64,
        )?;
        let oldest = s
            .oldest_pending_work()
            .map_or(0.0, |t| self.now.saturating_duration_since(t).as_secs_f64());
        gauge(
            e,
            "edge_owed_oldest_seconds",
            "How long the oldest owed item has waited for its mail server (0 when none waits).",
            oldest,
        )?;
        gauge(
            e,
            "edge_journal_entries",
            "Owed items in the crash journal now.",
            s.journal_entries() as f64,
        )?;
        gauge(
            e,
            "edge_taken_delete_records",
            "Records of deletes taken from client proxies, kept so that one carried again is not done twice; each goes at its proxy's next session.",
            s.taken_records() as f64,
        )?;
        gauge(
            e,
            "edge_journal_unreadable_entries",
            "Journal entries found at start that could not be read (wrong key or damage).",
            s.journal_unreadable_entries() as f64,
        )?;
        counter(
            e,
            "edge_journal_failures",
            "Crash-journal commits that failed (each refused an acknowledgement).",
            s.journal_failures() as u64,
        )?;
        histogram(
            e,
            "edge_journal_commit_seconds",
            "Time of each crash-journal commit, write and fsync.",
            s.journal_commit_times(),
        )?;
        gauge(
            e,
            "edge_replaying_groups",
            "Journaled work of an earlier life of the edge being carried out now.",
            s.replaying() as f64,
        )?;
        gauge(
            e,
            "edge_bulk_contexts",
            "Sessions compressing at the bulk level now.",
            s.bulk_contexts() as f64,
        )?;
        s.client_hop().write_metric(
            e,
            "edge_client_bytes",
            "Bytes on the client proxy hop: plain (messages before compression), compressed, wire (with handshakes, framing and tags).",
        )?;
        let failures = s.handshake_failures();
        counters_by(
            e,
            "edge_handshake_failures",
            "Client handshakes that failed, by cause: not_allowed, psk, other_key, malformed, line (a cut line or a peer that gave up).",
            "cause",
            &failures,
        )?;
        counter(
            e,
            "edge_refused_connections",
            "Connections closed before their handshake: max_handshakes reached, or an address that failed too often.",
            s.refused_connections() as u64,
        )?;
        counter(
            e,
            "edge_resumes",
            "Sessions resumed on a new channel after a cut.",
            s.resumes() as u64,
        )?;
        counter(
            e,
            "edge_resumes_primed",
            "Resumes whose stream started primed with the cut one's history.",
            s.resumes_primed() as u64,
        )?;
        counter(
            e,
            "edge_superseded_sessions",
            "Cut sessions ended because their client's next session named them lost.",
            s.superseded_sessions() as u64,
        )?;
        counter(
            e,
            "edge_owed_adopted_items",
            "Owed items handed to the session that held their maildrop's lock.",
            s.adopted_items() as u64,
        )?;
        counter(
            e,
            "edge_owed_lock_busy",
            "Times owed work found its maildrop locked by another session.",
            s.owed_lock_busy_waits() as u64,
        )?;
        counter(
            e,
            "edge_streamed_ahead_unread",
            "Bodies streamed ahead that the mail client never received (left unread).",
            s.streamed_ahead_unread() as u64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_written_with_its_value() {
        let s = EdgeState::new();
        let now = crate::state::test_now();
        let owed = s.work_ticket(now);
        s.handshake_failed("not_allowed");
        s.handshake_failed("not_allowed");
        s.journal_committed(std::time::Duration::from_millis(3));
        let text = metrics_text(&s, now + std::time::Duration::from_secs(90));
        for line in [
            "causeway_edge_owed_items 1.0",
            "causeway_edge_owed_oldest_seconds 90.0",
            "causeway_edge_handshake_failures_total{cause=\"not_allowed\"} 2",
            "causeway_edge_journal_commit_seconds_count 1",
            "causeway_edge_client_bytes_total{direction=\"out\",stage=\"wire\"} 0",
            "causeway_edge_sessions 0.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        drop(owed);
        let text = metrics_text(&s, now);
        assert!(
            text.contains("causeway_edge_owed_oldest_seconds 0.0\n"),
            "{text}"
        );
    }
}
