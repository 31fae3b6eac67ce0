//! Sampling presets and the flags that override them.
//!
//! `balanced` is the model's own plan from its `model.toml`, which is the
//! paper's (thresholds 0.95/0.75; (tau, N) = (400, 8), (700, 14), (1000, 20))
//! unless the model was calibrated otherwise (`patchscaler calibrate`).
//! `fast` and `quality` are ours: fewer or more steps per group. They keep
//! a three-group model's own thresholds, since where a threshold belongs
//! depends on the model's confidence scale (see `pgs::calibrate`); only for
//! other models do they fall back to fixed thresholds of their own.

use crate::model::Model;
use crate::pgs::groups::{Bound, PgsConfig};
use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    Fast,
    Balanced,
    Quality,
}

impl Preset {
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

/// The overrides a user may give on top of a preset.
#[derive(Clone, Debug, Default)]
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

/// How the decoded result is finished, for `upscale` and `eval`.
#[derive(Args, Debug, Clone)]
pub struct FinishFlags {
    /// Keep PatchScaler's output where the LR has no structure (flat, smooth
    /// gradients) instead of returning bicubic there (see `pipeline::detail_gate`).
    #[arg(long)]
    pub no_detail_gate: bool,
    /// How much of the bicubic detail the decoder cannot represent is added
    /// back (see `pipeline::bicubic_detail`): 1 suits clean inputs (sharpest),
    /// 0 noisy or compressed ones (the noise stays out). No effect with the
    /// exact latent of the shipped model, which loses nothing.
    #[arg(long, default_value_t = 1.0, value_parser = super::unit_interval, value_name = "W")]
    pub bicubic_detail: f64,
}

impl FinishFlags {
    pub fn apply(&self, opts: &mut crate::pipeline::SamplingOptions) {
        if self.no_detail_gate {
            opts.detail_gate = None;
        }
        opts.bicubic_detail = self.bicubic_detail;
    }
}

/// The sampling-plan flags of `upscale`, `eval` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct PgsFlags {
    #[arg(long, value_enum, default_value = "balanced")]
    pub preset: Preset,
    /// Confidence thresholds, descending (k values make k+1 groups), e.g. 0.95,0.75.
    #[arg(long, value_delimiter = ',')]
    pub thresholds: Option<Vec<f64>>,
    /// The thresholds as log C, descending, e.g. -1e-12,-1e-9 (`calibrate --dry-run` prints these).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with = "thresholds"
    )]
    pub log_thresholds: Option<Vec<f64>>,
    /// Shortcut start tau per group, simple to hard, e.g. 400,700,1000.
    #[arg(long, value_delimiter = ',')]
    pub tau: Option<Vec<usize>>,
    /// DDIM steps N per group, e.g. 8,14,20.
    #[arg(long, value_delimiter = ',')]
    pub steps: Option<Vec<usize>>,
    /// Latent patch side V.
    #[arg(long)]
    pub patch: Option<usize>,
    /// Latent patch stride (overlap = patch - stride).
    #[arg(long)]
    pub stride: Option<usize>,
}

impl PgsFlags {
    /// The flags as overrides of the preset; `uniform` asks for the baseline plan.
    pub fn overrides(&self, uniform: bool) -> Overrides {
        Overrides {
            thresholds: self.thresholds.clone(),
            log_thresholds: self.log_thresholds.clone(),
            tau: self.tau.clone(),
            steps: self.steps.clone(),
            patch: self.patch,
            stride: self.stride,
            uniform,
        }
    }

    /// The PGS plan, and the uniform baseline (tau 1000, N 20) on the same patch grid.
    pub fn plans(&self, model: &Model) -> Result<(PgsConfig, PgsConfig)> {
        let pgs = self.checked_plan(model, false)?;
        let uniform = plan(
            self.preset,
            &Overrides {
                uniform: true,
                patch: self.patch,
                stride: self.stride,
                ..Default::default()
            },
            &model.config.pgs,
        )?;
        Ok((pgs, uniform))
    }

    /// The plan the flags ask for, refused when its patch size is not the one
    /// the model's Patch-DiT was built for.
    pub fn checked_plan(&self, model: &Model, uniform: bool) -> Result<PgsConfig> {
        let pgs = plan(self.preset, &self.overrides(uniform), &model.config.pgs)?;
        if pgs.patch as i64 != model.config.dit.input_size as i64 {
            bail!(
                "--patch {}: this model's Patch-DiT works on {} x {} latent patches",
                pgs.patch,
                model.config.dit.input_size,
                model.config.dit.input_size
            );
        }
        Ok(pgs)
    }

    /// The same flags as command-line words, to hand to a child process.
    pub fn to_args(&self) -> Vec<String> {
        let list = |v: &[String]| v.join(",");
        let mut out = vec!["--preset".into(), super::eval::value_name(&self.preset)];
        if let Some(t) = &self.thresholds {
            out.extend([
                "--thresholds".into(),
                list(&t.iter().map(f64::to_string).collect::<Vec<_>>()),
            ]);
        }
        if let Some(t) = &self.log_thresholds {
            out.push(format!(
                "--log-thresholds={}",
                list(&t.iter().map(|v| format!("{v:e}")).collect::<Vec<_>>())
            ));
        }
        if let Some(t) = &self.tau {
            out.extend([
                "--tau".into(),
                list(&t.iter().map(usize::to_string).collect::<Vec<_>>()),
            ]);
        }
        if let Some(s) = &self.steps {
            out.extend([
                "--steps".into(),
                list(&s.iter().map(usize::to_string).collect::<Vec<_>>()),
            ]);
        }
        for (flag, v) in [("--patch", self.patch), ("--stride", self.stride)] {
            if let Some(v) = v {
                out.extend([flag.into(), v.to_string()]);
            }
        }
        out
    }
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
