//! The summaries every benchmark reports: medians, percentiles, rounded ratios.

/// The median (the mean of the two middle values for an even count); NaN for none.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// The value at fraction `p` (0.0 to 1.0, nearest rank) of `sorted`; NaN for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[(((n - 1) as f64 * p).round() as usize).min(n - 1)],
    }
}

/// `x` rounded to three decimals (for JSON figures).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
