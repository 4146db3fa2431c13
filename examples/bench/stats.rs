//! Small statistics and formatting helpers shared by the sections.

use std::time::Duration;

/// The value at quantile `q` (0..=1) of `sorted`, nearest rank. `sorted` must not be empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Sorts a copy and takes its median.
pub fn median(values: &[f64]) -> f64 {
    quantile(&sorted(values), 0.5)
}

pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Microseconds, for latency columns.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `PASS`/`MISS` for a target line.
pub fn verdict(met: bool) -> &'static str {
    if met {
        "PASS"
    } else {
        "MISS"
    }
}

/// A section title.
pub fn heading(title: &str) {
    println!("\n## {title}\n");
}
