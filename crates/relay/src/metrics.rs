//! What the relay shows an operator's Prometheus, read from [`RelayState`]
//! at scrape time (see `causeway_net::metrics` and `docs/operations.md`).

use causeway_net::metrics::{Collector, DescriptorEncoder, counter, counters_by, gauge, render};

use crate::RelayState;

/// The relay's metrics as OpenMetrics text.
pub fn metrics_text(state: &RelayState) -> String {
    render(RelayMetrics(state.clone()))
}

#[derive(Debug)]
struct RelayMetrics(RelayState);

impl Collector for RelayMetrics {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let (s, e) = (&self.0, &mut e);
        gauge(
            e,
            "relay_links",
            "Edge links carrying a server session now (links the edge keeps between sessions not counted).",
            s.live_links() as f64,
        )?;
        counter(
            e,
            "relay_edge_handshakes",
            "Edge handshakes completed; fewer than server sessions opened when the edge reuses links.",
            s.handshakes(),
        )?;
        gauge(
            e,
            "relay_server_sessions",
            "Mail server sessions logged in for an edge now.",
            s.live_server_sessions() as f64,
        )?;
        s.edge_hop().write_metric(
            e,
            "relay_edge_bytes",
            "Bytes on the edge hop: plain (messages before compression), compressed, wire (with handshakes, framing and tags).",
        )?;
        counters_by(
            e,
            "relay_handshake_failures",
            "Edge handshakes that failed, by cause: not_allowed, psk, other_key, malformed, line.",
            "cause",
            &s.handshake_failures(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_writes_its_links_sessions_bytes_and_failures() {
        let s = RelayState::new();
        let _link = s.links.ticket();
        s.handshake_failed("line");
        let text = metrics_text(&s);
        for line in [
            "causeway_relay_links 1.0",
            "causeway_relay_server_sessions 0.0",
            "causeway_relay_edge_handshakes_total 0",
            "causeway_relay_handshake_failures_total{cause=\"line\"} 1",
            "causeway_relay_edge_bytes_total{direction=\"in\",stage=\"plain\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
    }
}
