//! Latency samples with bounded memory: exact count, sum, min and max, and p50/p95 that
//! are exact for the first [`EXACT_SAMPLES`] samples and within 1% relative error after.
//!
//! A run usually has tens to thousands of LLM calls, so quantiles are exact; a
//! long-running process (video frames at 30/s for hours) switches to a log-bucketed sketch
//! (the DDSketch construction: bucket `i` holds values in `(γ^(i-1), γ^i]`, γ = 1.02/0.98)
//! whose size grows with the logarithm of the value range, not with the number of samples.

use serde::{Deserialize, Serialize};

/// How many samples are kept exactly before switching to the sketch.
pub const EXACT_SAMPLES: usize = 4096;

/// Relative accuracy of quantiles once the sketch is in use.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Samples of one latency (or any non-negative quantity).
#[derive(Clone, Debug, Default)]
pub struct Samples {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    store: Store,
}

#[derive(Clone, Debug)]
enum Store {
    Exact(Vec<f64>),
    Sketch(LogSketch),
}

impl Default for Store {
    fn default() -> Self {
        Store::Exact(Vec::new())
    }
}

impl Samples {
    /// An empty set of samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample. NaN is ignored (it cannot be ordered); negative values are
    /// recorded as they are in count/sum/min/max and as 0 in the quantile sketch.
    pub fn record(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        match &mut self.store {
            Store::Exact(values) if values.len() < EXACT_SAMPLES => values.push(value),
            Store::Exact(values) => {
                let mut sketch = LogSketch::new(RELATIVE_ACCURACY);
                for v in values.iter() {
                    sketch.insert(*v);
                }
                sketch.insert(value);
                self.store = Store::Sketch(sketch);
            }
            Store::Sketch(sketch) => sketch.insert(value),
        }
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The `q`-quantile (0 ≤ q ≤ 1) by nearest rank: the smallest sample such that at least
    /// `q·n` samples are ≤ it. `None` when there are no samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let estimate = match &self.store {
            Store::Exact(values) => {
                let mut sorted = values.clone();
                sorted.sort_unstable_by(f64::total_cmp);
                sorted[(rank - 1) as usize]
            }
            Store::Sketch(sketch) => sketch.value_at_rank(rank),
        };
        // The sketch's estimate never leaves the observed range.
        Some(estimate.clamp(self.min, self.max))
    }

    /// Count, sum, mean, min, max, p50 and p95; `None` when there are no samples.
    pub fn stats(&self) -> Option<LatencyStats> {
        if self.count == 0 {
            return None;
        }
        Some(LatencyStats {
            count: self.count,
            sum: self.sum,
            mean: self.sum / self.count as f64,
            min: self.min,
            max: self.max,
            p50: self.quantile(0.5)?,
            p95: self.quantile(0.95)?,
        })
    }
}

/// The summary of one latency distribution (milliseconds unless named otherwise).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
}

/// Log-bucketed sketch with relative accuracy `α`: bucket `i` counts values in
/// `(γ^(i-1), γ^i]` with `γ = (1+α)/(1-α)`; values ≤ [`LogSketch::MIN_POSITIVE`] go to a
/// zero bucket.
#[derive(Clone, Debug)]
struct LogSketch {
    gamma_ln: f64,
    zero: u64,
    /// Index of `buckets[0]`.
    offset: i32,
    buckets: Vec<u64>,
}

impl LogSketch {
    const MIN_POSITIVE: f64 = 1e-9;

    fn new(alpha: f64) -> Self {
        let gamma = (1.0 + alpha) / (1.0 - alpha);
        Self {
            gamma_ln: gamma.ln(),
            zero: 0,
            offset: 0,
            buckets: Vec::new(),
        }
    }

    fn index(&self, value: f64) -> i32 {
        (value.ln() / self.gamma_ln).ceil() as i32
    }

    fn insert(&mut self, value: f64) {
        if value <= Self::MIN_POSITIVE {
            self.zero += 1;
            return;
        }
        let index = self.index(value);
        if self.buckets.is_empty() {
            self.offset = index;
            self.buckets.push(0);
        } else if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.buckets.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        } else if index >= self.offset + self.buckets.len() as i32 {
            self.buckets.resize((index - self.offset + 1) as usize, 0);
        }
        self.buckets[(index - self.offset) as usize] += 1;
    }

    /// The estimate of the `rank`-th smallest value (1-based): the middle of its bucket
    /// in the relative sense, `2γ^i / (γ + 1)`.
    fn value_at_rank(&self, rank: u64) -> f64 {
        if rank <= self.zero {
            return 0.0;
        }
        let mut seen = self.zero;
        for (k, count) in self.buckets.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let i = self.offset + k as i32;
                let gamma = self.gamma_ln.exp();
                return 2.0 * (f64::from(i) * self.gamma_ln).exp() / (gamma + 1.0);
            }
        }
        // rank ≤ count by construction; the last bucket's estimate otherwise.
        let i = self.offset + self.buckets.len() as i32 - 1;
        (f64::from(i) * self.gamma_ln).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quantiles_by_nearest_rank() {
        let mut s = Samples::new();
        for v in [50.0, 10.0, 40.0, 20.0, 30.0] {
            s.record(v);
        }
        let stats = s.stats().unwrap();
        assert_eq!(stats.count, 5);
        assert_eq!(stats.sum, 150.0);
        assert_eq!(stats.mean, 30.0);
        assert_eq!(stats.min, 10.0);
        assert_eq!(stats.max, 50.0);
        assert_eq!(stats.p50, 30.0);
        assert_eq!(stats.p95, 50.0);
        assert_eq!(s.quantile(0.2), Some(10.0));
        assert_eq!(s.quantile(0.21), Some(20.0));
    }

    #[test]
    fn empty_has_no_stats() {
        let mut s = Samples::new();
        assert!(s.stats().is_none());
        s.record(f64::NAN);
        assert!(s.stats().is_none());
    }

    #[test]
    fn sketch_stays_within_relative_accuracy() {
        let mut s = Samples::new();
        // 1..=100_000 ms: p50 = 50_000, p95 = 95_000 exactly.
        for v in 1..=100_000u32 {
            s.record(f64::from(v));
        }
        assert!(matches!(s.store, Store::Sketch(_)));
        let stats = s.stats().unwrap();
        assert_eq!(stats.count, 100_000);
        assert_eq!(stats.min, 1.0);
        assert_eq!(stats.max, 100_000.0);
        for (got, want) in [(stats.p50, 50_000.0), (stats.p95, 95_000.0)] {
            assert!(
                (got - want).abs() / want <= RELATIVE_ACCURACY,
                "{got} vs {want}"
            );
        }
    }

    #[test]
    fn sketch_handles_zero_and_wide_ranges() {
        let mut s = Samples::new();
        for _ in 0..3000 {
            s.record(0.0);
        }
        for _ in 0..3000 {
            s.record(1e6);
        }
        for _ in 0..3000 {
            s.record(0.001);
        }
        assert_eq!(s.quantile(0.3), Some(0.0));
        let mid = s.quantile(0.5).unwrap();
        assert!((mid - 0.001).abs() / 0.001 <= RELATIVE_ACCURACY, "{mid}");
        let top = s.quantile(0.95).unwrap();
        assert!((top - 1e6).abs() / 1e6 <= RELATIVE_ACCURACY, "{top}");
    }
}
