//! The sampling flags of `upscale`, `eval` and `bench`: clap's view of the
//! application layer's `Settings` (see `app::presets` for what a preset
//! is). Nothing here decides how a job runs; it only reads flags.

use crate::app::{Overrides, Preset, Settings};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

/// `--preset`: one of the application layer's presets, by name.
fn preset_parser() -> impl TypedValueParser<Value = Preset> {
    PossibleValuesParser::new(Preset::ALL.map(Preset::name)).map(|s| s.parse::<Preset>().expect("a listed preset"))
}

/// How the decoded result is finished, for `upscale`, `eval` and `bench`.
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
    pub fn apply(&self, s: &mut Settings) {
        s.detail_gate = !self.no_detail_gate;
        s.bicubic_detail = self.bicubic_detail;
    }
}

/// The sampling-plan flags of `upscale`, `eval` and `bench`.
#[derive(Args, Debug, Clone)]
pub struct PgsFlags {
    #[arg(long, default_value = "balanced", value_parser = preset_parser())]
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
    /// The settings these flags ask for, everything else at its default.
    pub fn settings(&self) -> Settings {
        Settings {
            preset: self.preset,
            overrides: Overrides {
                thresholds: self.thresholds.clone(),
                log_thresholds: self.log_thresholds.clone(),
                tau: self.tau.clone(),
                steps: self.steps.clone(),
                patch: self.patch,
                stride: self.stride,
                uniform: false,
            },
            ..Settings::default()
        }
    }
}

/// The settings shared by `upscale`, `eval` and `bench`: the plan flags,
/// the finishing flags, the seed and the Patch-DiT batch.
pub fn settings(pgs: &PgsFlags, finish: &FinishFlags, seed: u64, max_batch: usize) -> Settings {
    let mut s = pgs.settings();
    s.seed = seed;
    s.max_batch = max_batch.max(1);
    finish.apply(&mut s);
    s
}
