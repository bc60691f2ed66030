//! Writing a node's live counts as Prometheus (OpenMetrics) text.
//!
//! The edge and the relay keep their counts where the work happens (atomics
//! and [`crate::Count`]s in their state) and turn them into metrics only when
//! an operator scrapes: nothing is counted twice, and a node with no scrape
//! endpoint pays nothing. These helpers write one metric each, so a node's
//! collector reads as a list of what it exposes.

pub use prometheus_client::collector::Collector;
pub use prometheus_client::encoding::DescriptorEncoder;
pub use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The text an operator's scraper reads: every metric of `collector`, under
/// the `causeway_` prefix.
pub fn render(collector: impl Collector) -> String {
    let mut registry = Registry::with_prefix("causeway");
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// A value that goes up and down (sessions now, entries now).
pub fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    e.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

/// A count since the node started (written `NAME_total`).
pub fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    encode_counter(&mut m, v)
}

/// A count since start, split by the values of one label.
pub fn counters_by(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, v) in values {
        encode_counter(&mut m.encode_family(&[(label, *value)])?, *v)?;
    }
    Ok(())
}

/// A count since start, split by two labels.
pub fn counters_by2(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    labels: (&str, &str),
    values: &[((&str, &str), u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for ((a, b), v) in values {
        let set = [(labels.0, *a), (labels.1, *b)];
        encode_counter(&mut m.encode_family(&set)?, *v)?;
    }
    Ok(())
}

/// A distribution (latencies), as kept by a [`Histogram`].
pub fn histogram(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &Histogram,
) -> std::fmt::Result {
    h.encode(e.encode_descriptor(name, help, None, MetricType::Histogram)?)
}

fn encode_counter(m: &mut MetricEncoder, v: u64) -> std::fmt::Result {
    m.encode_counter::<prometheus_client::encoding::NoLabelSet, _, u64>(&v, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Two;

    impl Collector for Two {
        fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
            gauge(&mut e, "sessions", "Sessions now.", 3.0)?;
            counter(&mut e, "resumes", "Resumes since start.", 7)?;
            counters_by(&mut e, "failures", "By cause.", "cause", &[("line", 2)])?;
            let h = Histogram::new([0.001, 0.01]);
            h.observe(0.005);
            histogram(&mut e, "commit_seconds", "Commit time.", &h)
        }
    }

    #[test]
    fn metrics_render_as_openmetrics_text() {
        let text = render(Two);
        for line in [
            "# TYPE causeway_sessions gauge",
            "causeway_sessions 3.0",
            "# TYPE causeway_resumes counter",
            "causeway_resumes_total 7",
            "causeway_failures_total{cause=\"line\"} 2",
            "causeway_commit_seconds_bucket{le=\"0.01\"} 1",
            "causeway_commit_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
