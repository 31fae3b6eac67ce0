//! Sampling presets and the flags that override them.
//!
//! `balanced` is the model's own plan from its `model.toml`, which is the
//! paper's (thresholds 0.95/0.75; (tau, N) = (400, 8), (700, 14), (1000, 20))
//! unless the model was calibrated otherwise (`patchscaler calibrate`).
//! `fast` and `quality` are ours: fewer or more steps per group. They keep
//! a three-group model's own thresholds, since where a threshold belongs
//! depends on the model's confidence scale (see `pgs::calibrate`); only for
//! other models do they fall back to fixed thresholds of their own.

use crate::pgs::groups::{Bound, PgsConfig};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    Fast,
    Balanced,
    Quality,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Fast, Preset::Balanced, Preset::Quality];

    /// The name the command line and the web page use.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Fast => "fast",
            Preset::Balanced => "balanced",
            Preset::Quality => "quality",
        }
    }

    pub fn thresholds(self) -> Vec<f64> {
        match self {
            Preset::Fast => vec![0.9, 0.6],
            Preset::Balanced => vec![0.95, 0.75],
            Preset::Quality => vec![0.97, 0.85],
        }
    }
    pub fn schedule(self) -> Vec<(usize, usize)> {
        match self {
            Preset::Fast => vec![(300, 4), (600, 8), (1000, 12)],
            Preset::Balanced => vec![(400, 8), (700, 14), (1000, 20)],
            Preset::Quality => vec![(400, 12), (700, 20), (1000, 30)],
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;
    /// Exactly as named (the web page's field is case-sensitive, as the flag is).
    fn from_str(s: &str) -> Result<Self, String> {
        Preset::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| format!("preset {s:?}: use fast, balanced or quality"))
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The overrides a user may give on top of a preset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    pub thresholds: Option<Vec<f64>>,
    /// Thresholds as log C (what `calibrate --dry-run` prints).
    pub log_thresholds: Option<Vec<f64>>,
    pub tau: Option<Vec<usize>>,
    pub steps: Option<Vec<usize>>,
    pub patch: Option<usize>,
    pub stride: Option<usize>,
    pub uniform: bool,
}

/// The PGS plan for a run: the preset, with each given flag replacing its part.
/// Lists must agree in length: k thresholds make k + 1 groups.
pub fn plan(preset: Preset, o: &Overrides, base: &PgsConfig) -> Result<PgsConfig> {
    let patch = o.patch.unwrap_or(base.patch);
    let stride = o.stride.unwrap_or(if o.patch.is_some() {
        (patch * 3 / 4).max(1)
    } else {
        base.stride
    });
    if o.uniform {
        if o.thresholds.is_some() || o.log_thresholds.is_some() {
            bail!("--uniform samples every patch with (tau, N) = (1000, 20); it cannot take --thresholds");
        }
        let tau = o.tau.as_ref().map(|t| t[0]).unwrap_or(1000);
        let n = o.steps.as_ref().map(|s| s[0]).unwrap_or(20);
        return with_patches(PgsConfig::from_thresholds(&[], &[(tau, n)])?, patch, stride);
    }
    let (model_thresholds, model_sched) = model_plan(base);
    let (preset_thresholds, sched) = match preset {
        Preset::Balanced => (model_thresholds, model_sched),
        _ if model_sched.len() == preset.schedule().len() => (model_thresholds, preset.schedule()),
        _ => (
            preset.thresholds().into_iter().map(|c| (c, None)).collect(),
            preset.schedule(),
        ),
    };
    let given = match (&o.thresholds, &o.log_thresholds) {
        (Some(_), Some(_)) => bail!("give --thresholds or --log-thresholds, not both"),
        (Some(t), None) => Some(t.iter().map(|&c| (c, None)).collect::<Vec<Bound>>()),
        (None, Some(l)) => Some(l.iter().map(|&l| (l.exp(), Some(l))).collect()),
        (None, None) => None,
    };
    if let Some(l) = &o.log_thresholds {
        if l.iter().any(|&v| v > 0.0) {
            bail!("--log-thresholds {l:?}: log C is at most 0");
        }
    }
    let thresholds = given.unwrap_or(preset_thresholds);
    let groups = thresholds.len() + 1;
    let default_tau: Vec<usize> = if groups == sched.len() {
        sched.iter().map(|p| p.0).collect()
    } else {
        vec![]
    };
    let default_n: Vec<usize> = if groups == sched.len() {
        sched.iter().map(|p| p.1).collect()
    } else {
        vec![]
    };
    let tau = o.tau.clone().unwrap_or(default_tau);
    let steps = o.steps.clone().unwrap_or(default_n);
    if tau.len() != groups || steps.len() != groups {
        bail!(
            "{} threshold(s) make {groups} groups: give --tau and --steps with {groups} values each (got {} and {})",
            thresholds.len(),
            tau.len(),
            steps.len()
        );
    }
    let pairs: Vec<(usize, usize)> = tau.into_iter().zip(steps).collect();
    with_patches(PgsConfig::from_bounds(&thresholds, &pairs)?, patch, stride)
}

/// The bounds and (tau, N) pairs of a stored plan.
fn model_plan(base: &PgsConfig) -> (Vec<Bound>, Vec<(usize, usize)>) {
    (
        base.bounds(),
        base.groups.iter().map(|g| (g.tau, g.steps)).collect(),
    )
}

fn with_patches(mut p: PgsConfig, patch: usize, stride: usize) -> Result<PgsConfig> {
    p.patch = patch;
    p.stride = stride;
    p.validate()?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_is_the_papers_plan() {
        let base = PgsConfig::paper();
        let p = plan(Preset::Balanced, &Overrides::default(), &base).unwrap();
        assert_eq!(p, base);
    }

    #[test]
    fn balanced_follows_a_calibrated_model_plan() {
        let mut base =
            PgsConfig::from_thresholds(&[0.99, 0.9], &[(300, 6), (700, 14), (1000, 20)]).unwrap();
        base.stride = 10;
        let p = plan(Preset::Balanced, &Overrides::default(), &base).unwrap();
        assert_eq!(p, base);
        let fast = plan(Preset::Fast, &Overrides::default(), &base).unwrap();
        assert_eq!(
            fast.groups[0].min_conf_exclusive, 0.99,
            "fast keeps the calibrated thresholds"
        );
        assert_eq!((fast.groups[0].tau, fast.groups[0].steps), (300, 4));
        let two = PgsConfig::from_thresholds(&[0.5], &[(400, 8), (1000, 20)]).unwrap();
        let quality = plan(Preset::Quality, &Overrides::default(), &two).unwrap();
        assert_eq!(
            quality.groups[0].min_conf_exclusive, 0.97,
            "other group counts use the preset's own"
        );
    }

    #[test]
    fn group_count_follows_thresholds_and_mismatches_are_explained() {
        let base = PgsConfig::paper();
        let o = Overrides {
            thresholds: Some(vec![0.9]),
            tau: Some(vec![500, 1000]),
            steps: Some(vec![6, 20]),
            ..Default::default()
        };
        let p = plan(Preset::Balanced, &o, &base).unwrap();
        assert_eq!(p.groups.len(), 2);
        let bad = Overrides {
            thresholds: Some(vec![0.9, 0.8, 0.5]),
            ..Default::default()
        };
        let e = plan(Preset::Balanced, &bad, &base).unwrap_err().to_string();
        assert!(e.contains("4 groups"), "{e}");
    }

    #[test]
    fn uniform_is_one_group_of_1000_20() {
        let o = Overrides {
            uniform: true,
            ..Default::default()
        };
        let p = plan(Preset::Fast, &o, &PgsConfig::paper()).unwrap();
        assert_eq!(p.groups.len(), 1);
        assert_eq!((p.groups[0].tau, p.groups[0].steps), (1000, 20));
    }
}
