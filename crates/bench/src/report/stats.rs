//! Statistics over the runs: each run number's scenarios together, and the
//! min, median and max of a figure across run numbers.

use std::collections::BTreeSet;

use serde_json::Value;

use super::figures::Extract;

/// The runs grouped by run number (1, 2, 3…), in that order.
fn runs_by_number(results: &Value) -> Vec<Vec<&Value>> {
    let runs: Vec<&Value> = results["runs"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let numbers: BTreeSet<u64> = runs.iter().filter_map(|r| r["run"].as_u64()).collect();
    numbers
        .iter()
        .map(|n| {
            runs.iter()
                .copied()
                .filter(|r| r["run"].as_u64() == Some(*n))
                .collect()
        })
        .collect()
}

/// min, median, max.
fn stats(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((values[0], median, values[n - 1]))
}

/// The min, median and max of a figure over the run numbers that have it,
/// and how many have it.
pub fn spread(results: &Value, extract: &Extract) -> Option<(f64, f64, f64, usize)> {
    let values: Vec<f64> = runs_by_number(results)
        .iter()
        .filter_map(|runs| extract(runs))
        .collect();
    let n = values.len();
    stats(values).map(|(a, b, c)| (a, b, c, n))
}
