//! What each step measured: counts, answers by status, and latency in an HDR histogram.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Measurements of one step (one kind of request), kept per virtual user and merged.
#[derive(Debug, Clone)]
pub struct StepStats {
    latency_us: Histogram<u64>,
    by_status: BTreeMap<u16, u64>,
}

impl Default for StepStats {
    fn default() -> Self {
        StepStats {
            // Up to a minute, three significant figures.
            #[allow(clippy::expect_used, reason = "constant bounds that are valid")]
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            by_status: BTreeMap::new(),
        }
    }
}

/// One step's figures, as printed and as written to `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: String,
    pub count: u64,
    /// Answers that were not 2xx, by status (0: no answer).
    pub errors: BTreeMap<u16, u64>,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl StepStats {
    /// Records one request.
    pub fn record(&mut self, status: u16, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latency_us.record(micros.min(60_000_000));
        *self.by_status.entry(status).or_default() += 1;
    }

    /// Adds another user's measurements.
    pub fn merge(&mut self, other: &StepStats) {
        let _ = self.latency_us.add(&other.latency_us);
        for (status, n) in &other.by_status {
            *self.by_status.entry(*status).or_default() += n;
        }
    }

    /// The figures over a run of `elapsed`.
    pub fn report(&self, step: &str, elapsed: Duration) -> StepReport {
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        let count = self.latency_us.len();
        StepReport {
            step: step.to_string(),
            count,
            errors: self
                .by_status
                .iter()
                .filter(|(status, _)| !(200..300).contains(*status))
                .map(|(s, n)| (*s, *n))
                .collect(),
            requests_per_second: count as f64 / elapsed.as_secs_f64().max(0.001),
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            max_ms: self.latency_us.max() as f64 / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_errors_come_from_what_was_recorded() {
        let mut a = StepStats::default();
        for ms in 1..=100 {
            a.record(200, Duration::from_millis(ms));
        }
        let mut b = StepStats::default();
        b.record(409, Duration::from_millis(5));
        b.record(503, Duration::from_millis(5));
        a.merge(&b);
        let report = a.report("add", Duration::from_secs(2));
        assert_eq!(report.count, 102);
        assert_eq!(report.errors, BTreeMap::from([(409, 1), (503, 1)]));
        assert!((report.requests_per_second - 51.0).abs() < 1e-9);
        assert!((report.p50_ms - 50.0).abs() < 1.0, "{}", report.p50_ms);
        assert!((report.max_ms - 100.0).abs() < 0.2, "{}", report.max_ms);
    }
}
