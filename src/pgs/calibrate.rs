//! Confidence thresholds from data **(ours)**.
//!
//! The paper's gamma1 = 0.95, gamma2 = 0.75 fit its own GRM. C is capped at 1
//! where the GRM's squared latent error is below eta (SPEC §2), so where the
//! thresholds fall depends on how large a given GRM's errors are against eta:
//! a GRM trained briefly on a small AE puts nearly every patch above 0.95.
//! What PGS needs is the order of the patches by difficulty, so a model's
//! thresholds are chosen to split held-out patches into target shares
//! (most confident first), and `patchscaler calibrate` writes them into the
//! model's `model.toml`. The values here are whatever scale Q is given in;
//! the pipeline's is mean log C (see `groups::qmap`).

use anyhow::{ensure, Result};

/// Thresholds (descending) so that about `shares[i]` of the patches of `q`
/// have Q above `thresholds[i]` but not above any earlier threshold: group i
/// of `PgsConfig::assign`. The last group takes the rest. A tie (C saturates
/// at exactly 1 wherever the GRM is sure) cannot be split, so a cut that
/// falls inside one takes the whole tie or none of it, whichever comes
/// closer to the target.
pub fn thresholds_for_shares(q: &[f64], shares: &[f64]) -> Result<Vec<f64>> {
    ensure!(!q.is_empty(), "calibration needs at least one patch");
    ensure!(
        q.iter().all(|v| v.is_finite()),
        "confidence values must be finite"
    );
    ensure!(
        shares.iter().all(|&s| s > 0.0) && shares.iter().sum::<f64>() < 1.0,
        "shares {shares:?}: each > 0 and their sum < 1 (the last group takes the rest)"
    );
    let mut sorted = q.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let n = sorted.len();
    let above = |t: f64| sorted.iter().filter(|&&v| v > t).count();
    // A threshold below every value: the group after it is empty.
    let floor = sorted[n - 1] - 1.0;
    let mut out: Vec<f64> = Vec::new();
    let mut cumulative = 0.0;
    for &s in shares {
        cumulative += s;
        let target = cumulative * n as f64;
        let k = (target.round() as usize).min(n - 1);
        let prev = out.last().copied().unwrap_or(f64::INFINITY);
        // Cut below the tie at sorted[k] (the tie joins this group) or at it (the tie waits).
        let below = sorted
            .iter()
            .copied()
            .find(|&v| v < sorted[k])
            .unwrap_or(floor);
        let at = sorted[k];
        let dist = |t: f64| (above(t) as f64 - target).abs();
        let mut t = if dist(below) < dist(at) { below } else { at };
        if t >= prev {
            // Keep the thresholds strictly descending (this group ends up empty).
            t = sorted.iter().copied().find(|&v| v < prev).unwrap_or(floor);
        }
        out.push(t);
    }
    Ok(out)
}

/// Share of `q` that each group of `thresholds` gets (one more than thresholds).
pub fn realised_shares(q: &[f64], thresholds: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; thresholds.len() + 1];
    for &v in q {
        counts[thresholds
            .iter()
            .position(|&t| v > t)
            .unwrap_or(thresholds.len())] += 1;
    }
    counts
        .iter()
        .map(|&c| c as f64 / q.len().max(1) as f64)
        .collect()
}

/// The `p`-quantile (0..=1) of `q`, nearest rank.
pub fn quantile(q: &[f64], p: f64) -> f64 {
    let mut sorted = q.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((p * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_out_as_asked_on_distinct_values() {
        let q: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let t = thresholds_for_shares(&q, &[0.3, 0.5]).unwrap();
        let got = realised_shares(&q, &t);
        assert_eq!(got, vec![0.3, 0.5, 0.2]);
        assert!(t[0] > t[1]);
    }

    #[test]
    fn a_tie_goes_whole_to_the_nearer_side_and_thresholds_stay_descending() {
        // 70 % of the patches saturate at exactly 1.
        let q: Vec<f64> = (0..100)
            .map(|i| if i < 70 { 1.0 } else { 0.5 + i as f64 / 1000.0 })
            .collect();
        let t = thresholds_for_shares(&q, &[0.6, 0.2]).unwrap();
        assert!(t[0] > t[1], "{t:?}");
        assert_eq!(realised_shares(&q, &t), vec![0.7, 0.1, 0.2]);
        // A target far below the tie leaves it to the next group.
        let t = thresholds_for_shares(&q, &[0.2, 0.6]).unwrap();
        assert_eq!(realised_shares(&q, &t), vec![0.0, 0.8, 0.2]);
    }

    #[test]
    fn bad_shares_are_refused() {
        assert!(thresholds_for_shares(&[0.5], &[0.6, 0.5]).is_err());
        assert!(thresholds_for_shares(&[], &[0.5]).is_err());
        assert!(thresholds_for_shares(&[0.5], &[0.0]).is_err());
    }
}
