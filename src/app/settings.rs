//! What a user may ask of one run, as plain data: the preset and its
//! overrides, the seed, the colour fix and the finishing of the result, the
//! ablations. One builder turns it into the pipeline's `SamplingOptions`
//! for a given model, so that `upscale`, the web page, `eval`, `bench` and
//! `calibrate` sample the same way for the same settings. It serialises, so
//! `bench` hands its child process the settings themselves.

use super::presets::{plan, Overrides, Preset};
use crate::colorfix::ColorFix;
use crate::model::Model;
use crate::pgs::groups::PgsConfig;
use crate::pipeline::detail_gate::DetailGate;
use crate::pipeline::{PromptMode, SamplingOptions, Y0Source};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub preset: Preset,
    /// What the user gave on top of the preset (`uniform` included: every
    /// patch at (tau, N) = (1000, 20), the paper's baseline).
    pub overrides: Overrides,
    pub seed: u64,
    /// None: the model's own (its `model.toml`).
    pub colorfix: Option<ColorFix>,
    /// Patches per Patch-DiT call: bounds memory, never changes the result.
    pub max_batch: usize,
    /// Bicubic where the LR has no structure (`pipeline::detail_gate`).
    pub detail_gate: bool,
    /// Weight in [0, 1] of the bicubic detail the decoder cannot represent.
    pub bicubic_detail: f64,
    pub prompt: PromptMode,
    pub y0: Y0Source,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            preset: Preset::Balanced,
            overrides: Overrides::default(),
            seed: 0,
            colorfix: None,
            max_batch: 64,
            detail_gate: true,
            bicubic_detail: 1.0,
            prompt: PromptMode::Retrieved,
            y0: Y0Source::Coarse,
        }
    }
}

impl Settings {
    /// The PGS plan these settings ask of this model, refused when its patch
    /// size is not the one the model's Patch-DiT was built for.
    pub fn plan(&self, model: &Model) -> Result<PgsConfig> {
        let pgs = plan(self.preset, &self.overrides, &model.config.pgs)?;
        let want = model.config.dit.input_size as usize;
        if pgs.patch != want {
            bail!("--patch {}: this model's Patch-DiT works on {want} x {want} latent patches", pgs.patch);
        }
        Ok(pgs)
    }

    /// The same settings with the uniform baseline's plan (tau 1000, N 20)
    /// on the same patch grid: what `eval` and `bench` set PGS against.
    pub fn uniform_baseline(&self) -> Settings {
        let overrides = Overrides { uniform: true, patch: self.overrides.patch, stride: self.overrides.stride, ..Overrides::default() };
        Settings { overrides, ..self.clone() }
    }

    /// The pipeline's options for this model.
    pub fn sampling_options(&self, model: &Model) -> Result<SamplingOptions> {
        if !(0.0..=1.0).contains(&self.bicubic_detail) {
            bail!("bicubic detail {} is not in [0, 1]", self.bicubic_detail);
        }
        let mut opts = SamplingOptions::new(self.plan(model)?, self.colorfix.unwrap_or(model.config.colorfix));
        opts.seed = self.seed;
        opts.max_batch = self.max_batch.max(1);
        opts.detail_gate = if self.detail_gate { Some(DetailGate::default()) } else { None };
        opts.bicubic_detail = self.bicubic_detail;
        opts.prompt = self.prompt;
        opts.y0 = self.y0;
        Ok(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_json_and_name_their_fields() {
        let s = Settings {
            preset: Preset::Quality,
            overrides: Overrides { log_thresholds: Some(vec![-1e-12, -1e-9]), steps: Some(vec![3, 4, 5]), ..Default::default() },
            seed: 9,
            colorfix: Some(ColorFix::Adain),
            detail_gate: false,
            bicubic_detail: 0.25,
            prompt: PromptMode::Zeros,
            y0: Y0Source::LrLatent,
            ..Settings::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&json).unwrap(), s);
        assert!(json.contains("\"preset\":\"quality\"") && json.contains("\"y0\":\"lr_latent\""), "{json}");
        assert!(serde_json::from_str::<Settings>("{\"sed\": 1}").is_err(), "a misspelt field is refused");
    }

    #[test]
    fn the_baseline_keeps_the_patch_grid_and_drops_the_plan() {
        let s = Settings {
            overrides: Overrides { thresholds: Some(vec![0.9]), stride: Some(6), ..Default::default() },
            seed: 4,
            ..Settings::default()
        };
        let b = s.uniform_baseline();
        assert!(b.overrides.uniform && b.overrides.thresholds.is_none());
        assert_eq!((b.overrides.stride, b.seed), (Some(6), 4));
    }
}
