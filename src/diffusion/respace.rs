//! Which of the first `tau` training timesteps a shortened sampler keeps.
//!
//! This copies DiT's `space_timesteps(tau, [n])` exactly, quirks included,
//! because a model trained and evaluated with DiT's spacing must see the same
//! timesteps here: the positions accumulate in a running f64 sum (not
//! `i * stride`), and each is rounded half-to-even as Python's `round` does.
//! Either shortcut changes dozens of (tau, n) pairs (conformance README 3).

use anyhow::{bail, Result};

/// The `n` kept timesteps out of `0..tau`, ascending. `n = 1` keeps only 0.
pub fn space_timesteps(tau: usize, n: usize) -> Result<Vec<usize>> {
    if n == 0 || n > tau {
        bail!("space_timesteps: cannot keep {n} steps out of {tau} (need 1 <= n <= tau)");
    }
    let stride = if n > 1 {
        (tau - 1) as f64 / (n - 1) as f64
    } else {
        1.0
    };
    let mut cur = 0.0_f64;
    let mut kept = Vec::with_capacity(n);
    for _ in 0..n {
        kept.push(cur.round_ties_even() as usize);
        cur += stride;
    }
    // DiT returns a set; with stride >= 1 the positions are already distinct.
    kept.dedup();
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    fn as_usizes(v: &serde_json::Value) -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    }

    fn check(cases: &serde_json::Value) -> usize {
        let cases = cases.as_array().unwrap();
        for case in cases {
            let (tau, n) = (
                case["tau"].as_u64().unwrap() as usize,
                case["N"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                space_timesteps(tau, n).unwrap(),
                as_usizes(&case["timesteps"]),
                "tau={tau} n={n}"
            );
        }
        cases.len()
    }

    #[test]
    fn matches_dit_on_the_named_cases_and_the_whole_grid() {
        let Some(kit) = conformance::json("schedules/space_timesteps.json") else {
            return;
        };
        assert_eq!(check(&kit["cases"]), 5);
        assert_eq!(check(&kit["grid"]), 686);
    }

    #[test]
    fn rounds_half_to_even() {
        // stride 24.5: Python's round(24.5) is 24.
        assert_eq!(space_timesteps(50, 3).unwrap(), vec![0, 24, 49]);
        assert_eq!(space_timesteps(1000, 1).unwrap(), vec![0]);
    }

    #[test]
    fn rejects_impossible_requests() {
        assert!(space_timesteps(10, 0).is_err());
        assert!(space_timesteps(10, 11).is_err());
    }
}
