//! Patch grouping by confidence (the "G" of PGS): patches the GRM already
//! restored well start denoising late (small tau) and take few steps; patches
//! it is unsure of get the full 1000-step trajectory.

use super::patches::PatchGrid;
use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One group: patches whose confidence Q exceeds the group's bound (and no
/// earlier group took) start at `tau` and take `steps` DDIM steps.
///
/// Q is compared as log Q = mean over the patch of log C (see `qmap`). The
/// bound is given either as C (`min_conf_exclusive`, the paper's 0.95 and
/// 0.75) or, as `calibrate` writes it, directly as log C
/// (`min_log_conf_exclusive`), which wins when present: a trained GRM's
/// calibrated bounds lie within 1e-16 of C = 1, where no float can tell them
/// from 1.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// Lower bound on Q, exclusive. The last group takes everything left,
    /// [0, previous bound], and carries 0 here.
    pub min_conf_exclusive: f64,
    /// The bound as log C (<= 0); overrides `min_conf_exclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_log_conf_exclusive: Option<f64>,
    pub tau: usize,
    pub steps: usize,
}

impl GroupSpec {
    /// The bound on log Q; minus infinity for a bound of C = 0.
    pub fn log_bound(&self) -> f64 {
        self.min_log_conf_exclusive.unwrap_or_else(|| {
            if self.min_conf_exclusive > 0.0 {
                self.min_conf_exclusive.ln()
            } else {
                f64::NEG_INFINITY
            }
        })
    }
}

/// A group's lower bound: C, and log C when it is stored (see `GroupSpec`).
pub type Bound = (f64, Option<f64>);

/// Patch size and stride on the latent, and the groups, most confident first.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PgsConfig {
    pub patch: usize,
    pub stride: usize,
    pub groups: Vec<GroupSpec>,
}

impl PgsConfig {
    /// The paper's three groups: simple Q in (0.95, 1] -> (400, 8), medium
    /// (0.75, 0.95] -> (700, 14), hard [0, 0.75] -> (1000, 20); V = 16 with
    /// stride 12 (ours).
    pub fn paper() -> Self {
        Self::from_thresholds(&[0.95, 0.75], &[(400, 8), (700, 14), (1000, 20)])
            .expect("valid preset")
    }

    /// The ablation baseline: every patch from tau = 1000 in 20 steps.
    pub fn uniform() -> Self {
        Self::from_thresholds(&[], &[(1000, 20)]).expect("valid preset")
    }

    /// Groups from descending thresholds g1 > g2 > ... and one (tau, steps)
    /// per group: there is one more group than thresholds.
    pub fn from_thresholds(thresholds: &[f64], schedules: &[(usize, usize)]) -> Result<Self> {
        let bounds: Vec<Bound> = thresholds.iter().map(|&c| (c, None)).collect();
        Self::from_bounds(&bounds, schedules)
    }

    /// Groups from descending bounds on log Q (what `calibrate` finds).
    pub fn from_log_thresholds(
        log_thresholds: &[f64],
        schedules: &[(usize, usize)],
    ) -> Result<Self> {
        ensure!(
            log_thresholds.iter().all(|t| *t <= 0.0),
            "log-confidence thresholds {log_thresholds:?} must be <= 0"
        );
        let bounds: Vec<Bound> = log_thresholds.iter().map(|&l| (l.exp(), Some(l))).collect();
        Self::from_bounds(&bounds, schedules)
    }

    /// The bounds of all groups but the last, as stored.
    pub fn bounds(&self) -> Vec<Bound> {
        let last = self.groups.len().saturating_sub(1);
        self.groups[..last]
            .iter()
            .map(|g| (g.min_conf_exclusive, g.min_log_conf_exclusive))
            .collect()
    }

    /// Groups from bounds (C, optional log C) and one (tau, steps) per group.
    pub fn from_bounds(bounds: &[Bound], schedules: &[(usize, usize)]) -> Result<Self> {
        ensure!(
            schedules.len() == bounds.len() + 1,
            "{} thresholds need {} (tau, steps) pairs, got {}",
            bounds.len(),
            bounds.len() + 1,
            schedules.len()
        );
        let names: &[&str] = match schedules.len() {
            1 => &["uniform"],
            3 => &["simple", "medium", "hard"],
            _ => &[],
        };
        let groups = schedules
            .iter()
            .enumerate()
            .map(|(i, &(tau, steps))| GroupSpec {
                name: names
                    .get(i)
                    .map_or_else(|| format!("group{i}"), |n| n.to_string()),
                min_conf_exclusive: bounds.get(i).map_or(0.0, |b| b.0),
                min_log_conf_exclusive: bounds.get(i).and_then(|b| b.1),
                tau,
                steps,
            })
            .collect();
        let cfg = Self {
            patch: 16,
            stride: 12,
            groups,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what a hand-edited config file could get wrong.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.groups.is_empty(),
            "PGS config needs at least one group"
        );
        ensure!(
            self.patch > 0 && self.stride > 0 && self.stride <= self.patch,
            "PGS patch {} / stride {}: need 0 < stride <= patch",
            self.patch,
            self.stride
        );
        let last = self.groups.len() - 1;
        for (i, g) in self.groups.iter().enumerate() {
            ensure!(
                (1..=1000).contains(&g.tau),
                "group '{}': tau {} outside 1..=1000",
                g.name,
                g.tau
            );
            ensure!(
                1 <= g.steps && g.steps <= g.tau,
                "group '{}': steps {} outside 1..=tau ({})",
                g.name,
                g.steps,
                g.tau
            );
            let b = g.min_conf_exclusive;
            if i == last {
                ensure!(
                    b == 0.0,
                    "last group '{}' takes every remaining patch; its bound must be 0, got {b}",
                    g.name
                );
            } else {
                ensure!(
                    (0.0..=1.0).contains(&b),
                    "group '{}': threshold {b} outside [0, 1]",
                    g.name
                );
                ensure!(
                    g.min_log_conf_exclusive.is_none_or(|l| l <= 0.0),
                    "group '{}': log threshold above 0",
                    g.name
                );
                let (lb, next) = (g.log_bound(), self.groups[i + 1].log_bound());
                if i + 1 < last && lb <= next {
                    bail!(
                        "thresholds must be strictly descending: '{}' {b} (log {lb}) <= '{}' (log {next})",
                        g.name,
                        self.groups[i + 1].name
                    );
                }
            }
        }
        Ok(())
    }

    pub fn grid(&self, h: usize, w: usize) -> Result<PatchGrid> {
        PatchGrid::new(h, w, self.patch, self.stride)
    }

    /// Group index of every patch: the first group whose bound Q exceeds,
    /// else the last group.
    pub fn assign(&self, log_q: &[f64]) -> Vec<usize> {
        let last = self.groups.len().saturating_sub(1);
        log_q
            .iter()
            .map(|&q| {
                self.groups[..last]
                    .iter()
                    .position(|g| q > g.log_bound())
                    .unwrap_or(last)
            })
            .collect()
    }
}

/// log Q per patch from the map of log C: the mean of log C over the patch
/// (so Q is the geometric mean of C; ours, the paper takes the arithmetic
/// mean of C). In float64 and in log space because a trained GRM puts most
/// pixels within 1e-16 of C = 1, where C, and any mean of it, is exactly 1
/// in every float format, and PGS would group by rounding.
pub fn qmap(log_conf: &Tensor, grid: &PatchGrid) -> Result<Vec<f64>> {
    ensure!(
        log_conf.size().get(1) == Some(&1),
        "qmap: the log-confidence map must be (1, 1, H, W), got {:?}",
        log_conf.size()
    );
    let q = grid.extract(&log_conf.to_kind(Kind::Double))?.mean_dim(
        [1i64, 2, 3].as_slice(),
        false,
        Kind::Double,
    );
    Ok(Vec::<f64>::try_from(q.to_device(tch::Device::Cpu))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_preset_has_the_papers_groups() {
        let cfg = PgsConfig::paper();
        let summary: Vec<_> = cfg
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.min_conf_exclusive, g.tau, g.steps))
            .collect();
        assert_eq!(
            summary,
            [
                ("simple", 0.95, 400, 8),
                ("medium", 0.75, 700, 14),
                ("hard", 0.0, 1000, 20)
            ]
        );
        assert_eq!(PgsConfig::uniform().groups.len(), 1);
        let text = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<PgsConfig>(&text).unwrap(), cfg);
    }

    #[test]
    fn assignment_follows_the_half_open_intervals() {
        let cfg = PgsConfig::paper();
        let q: Vec<f64> = [1.0f64, 0.99, 0.950001, 0.95, 0.8, 0.750001, 0.75, 0.3, 0.0]
            .iter()
            .map(|c| c.ln())
            .collect();
        assert_eq!(cfg.assign(&q), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(PgsConfig::uniform().assign(&q), [0; 9]);
    }

    #[test]
    fn qmap_is_the_geometric_mean_confidence_of_each_patch() {
        // 16 x 28 map, patches of 16 at x = 0 and 12: left half 1.0, right 0.5.
        let cfg = PgsConfig::paper();
        let grid = cfg.grid(16, 28).unwrap();
        let conf = Tensor::cat(
            &[
                Tensor::ones([1, 1, 16, 14], (Kind::Float, tch::Device::Cpu)),
                Tensor::full([1, 1, 16, 14], 0.5, (Kind::Float, tch::Device::Cpu)),
            ],
            3,
        );
        let q = qmap(&conf.log(), &grid).unwrap();
        let want = [0.5f64.ln() * 2.0 / 16.0, 0.5f64.ln() * 14.0 / 16.0];
        assert!(
            (q[0] - want[0]).abs() < 1e-6 && (q[1] - want[1]).abs() < 1e-6,
            "{q:?}"
        );
        assert_eq!(cfg.assign(&q), [1, 2]);
        let q = qmap(
            &Tensor::full(
                [1, 1, 16, 28],
                0.96f64.ln(),
                (Kind::Double, tch::Device::Cpu),
            ),
            &grid,
        )
        .unwrap();
        assert_eq!(cfg.assign(&q), [0, 0]);
        // Logits whose C rounds to 1 in float32 still order the patches.
        let logit = Tensor::cat(
            &[
                Tensor::full([1, 1, 16, 14], 30.0, (Kind::Float, tch::Device::Cpu)),
                Tensor::full([1, 1, 16, 14], 25.0, (Kind::Float, tch::Device::Cpu)),
            ],
            3,
        );
        assert_eq!(logit.sigmoid().min().double_value(&[]), 1.0);
        let q = qmap(&logit.to_kind(Kind::Double).log_sigmoid(), &grid).unwrap();
        assert!(q[0] > q[1] && q[0] < 0.0, "{q:?}");
        let cfg = PgsConfig::from_log_thresholds(
            &[(q[0] + q[1]) / 2.0, q[1] * 2.0],
            &[(400, 8), (700, 14), (1000, 20)],
        )
        .unwrap();
        assert_eq!(cfg.assign(&q), [0, 1]);
    }

    #[test]
    fn from_thresholds_rejects_inconsistent_groups() {
        assert!(PgsConfig::from_thresholds(&[0.9], &[(400, 8)]).is_err());
        assert!(
            PgsConfig::from_thresholds(&[0.75, 0.95], &[(400, 8), (700, 14), (1000, 20)]).is_err()
        );
        assert!(PgsConfig::from_thresholds(&[0.9], &[(1001, 8), (1000, 20)]).is_err());
        assert!(PgsConfig::from_thresholds(&[0.9], &[(400, 0), (1000, 20)]).is_err());
        assert!(PgsConfig::from_thresholds(&[0.9], &[(4, 8), (1000, 20)]).is_err());
        assert!(PgsConfig::from_thresholds(&[1.5], &[(400, 8), (1000, 20)]).is_err());
        let four = PgsConfig::from_thresholds(
            &[0.98, 0.9, 0.5],
            &[(200, 4), (400, 8), (700, 14), (1000, 20)],
        )
        .unwrap();
        assert_eq!(
            four.assign(&[0.99f64.ln(), 0.95f64.ln(), 0.6f64.ln(), 0.1f64.ln()]),
            [0, 1, 2, 3]
        );
    }
}
