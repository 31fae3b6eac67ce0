//! Patch grouping by confidence (the "G" of PGS): patches the GRM already
//! restored well start denoising late (small tau) and take few steps; patches
//! it is unsure of get the full 1000-step trajectory.

use super::patches::PatchGrid;
use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One group: patches whose mean confidence Q exceeds `min_conf_exclusive`
/// (and no earlier group took) start at `tau` and take `steps` DDIM steps.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// Lower bound on Q, exclusive. The last group takes everything left,
    /// [0, previous bound], and carries 0 here.
    pub min_conf_exclusive: f64,
    pub tau: usize,
    pub steps: usize,
}

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
        ensure!(
            schedules.len() == thresholds.len() + 1,
            "{} thresholds need {} (tau, steps) pairs, got {}",
            thresholds.len(),
            thresholds.len() + 1,
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
                min_conf_exclusive: thresholds.get(i).copied().unwrap_or(0.0),
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
                let next = self.groups[i + 1].min_conf_exclusive;
                if i + 1 < last && b <= next {
                    bail!(
                        "thresholds must be strictly descending: '{}' {b} <= '{}' {next}",
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
    pub fn assign(&self, qmap: &[f64]) -> Vec<usize> {
        let last = self.groups.len().saturating_sub(1);
        qmap.iter()
            .map(|&q| {
                self.groups[..last]
                    .iter()
                    .position(|g| q > g.min_conf_exclusive)
                    .unwrap_or(last)
            })
            .collect()
    }
}

/// Q per patch: the mean of the GRM confidence map over the patch.
pub fn qmap(conf: &Tensor, grid: &PatchGrid) -> Result<Vec<f64>> {
    ensure!(
        conf.size().get(1) == Some(&1),
        "qmap: confidence map must be (1, 1, H, W), got {:?}",
        conf.size()
    );
    let q = grid.extract(conf)?.to_kind(Kind::Double).mean_dim(
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
        let q = [1.0, 0.99, 0.950001, 0.95, 0.8, 0.750001, 0.75, 0.3, 0.0];
        assert_eq!(cfg.assign(&q), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(PgsConfig::uniform().assign(&q), [0; 9]);
    }

    #[test]
    fn qmap_is_the_mean_confidence_of_each_patch() {
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
        let q = qmap(&conf, &grid).unwrap();
        assert_eq!(q, [(14.0 + 2.0 * 0.5) / 16.0, (2.0 + 14.0 * 0.5) / 16.0]);
        assert_eq!(cfg.assign(&q), [1, 2]);
        let q = qmap(
            &Tensor::full([1, 1, 16, 28], 0.96, (Kind::Float, tch::Device::Cpu)),
            &grid,
        )
        .unwrap();
        assert_eq!(cfg.assign(&q), [0, 0]);
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
        assert_eq!(four.assign(&[0.99, 0.95, 0.6, 0.1]), [0, 1, 2, 3]);
    }
}
