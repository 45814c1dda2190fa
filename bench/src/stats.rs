//! Latency series and their summary, on HdrHistogram.
//!
//! A histogram with 3 significant digits keeps any percentile within 0.1% of the exact value in a few tens of
//! kilobytes, however long the run: the memory no longer grows with the request count, and merging the
//! per-thread series at the end is a sum of buckets. Each worker records into its own series (no lock on the
//! hot path); they are merged once when the phase ends.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::output::Json;

/// Significant decimal digits every series keeps (HdrHistogram's precision: 3 digits = 0.1%).
const SIGNIFICANT_DIGITS: u8 = 3;
/// Largest value a series records without saturating: one hour in nanoseconds, far beyond any timeout used.
const MAX_RECORDED_NS: u64 = 3_600_000_000_000;

/// Latencies of one kind of operation, in nanoseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    histogram: Histogram<u64>,
}

impl Default for Latency {
    fn default() -> Latency {
        // The bounds and precision are constants within HdrHistogram's documented ranges (1 ≤ low, high ≥ 2 ×
        // low, digits ≤ 5), so construction cannot fail.
        let histogram = Histogram::new_with_bounds(1, MAX_RECORDED_NS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Latency { histogram }
    }
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        self.record_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records `ns` (0 counts as 1 ns, the histogram's lowest value; anything past an hour as an hour).
    pub fn record_ns(&mut self, ns: u64) {
        self.histogram.saturating_record(ns.clamp(1, MAX_RECORDED_NS));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides: adding can only fail for a value beyond them, which `record_ns` prevents.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The usual percentiles.
    pub fn summary(&self) -> Summary {
        let h = &self.histogram;
        if h.is_empty() {
            return Summary::default();
        }
        let at = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Summary {
            count: h.len(),
            mean_us: h.mean() / 1e3,
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// Percentiles of one series, in microseconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Summary {
    pub fn json(&self, out: &mut Json) {
        out.open();
        out.num("count", self.count as f64);
        out.num("mean_us", self.mean_us);
        out.num("p50_us", self.p50_us);
        out.num("p90_us", self.p90_us);
        out.num("p99_us", self.p99_us);
        out.num("p999_us", self.p999_us);
        out.num("max_us", self.max_us);
        out.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b * 0.001
    }

    #[test]
    fn percentiles_are_within_the_histogram_precision() {
        let mut s = Latency::default();
        for i in 1..=100u64 {
            s.record_ns(i * 1000);
        }
        let m = s.summary();
        assert_eq!(m.count, 100);
        assert!(close(m.p50_us, 50.0), "p50 {}", m.p50_us);
        assert!(close(m.p99_us, 99.0), "p99 {}", m.p99_us);
        assert!(close(m.max_us, 100.0), "max {}", m.max_us);
    }

    #[test]
    fn merged_series_count_both_sides() {
        let (mut a, mut b) = (Latency::default(), Latency::default());
        a.record(Duration::from_micros(10));
        b.record(Duration::from_millis(10));
        b.record_ns(0);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(close(a.summary().max_us, 10_000.0));
    }

    #[test]
    fn an_empty_series_summarises_to_zeros() {
        let m = Latency::default().summary();
        assert_eq!((m.count, m.p99_us, m.max_us), (0, 0.0, 0.0));
    }
}
