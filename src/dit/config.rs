//! Shape of a Patch-DiT and of its texture encoder.

use crate::diffusion::Prediction;
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

/// Everything that fixes the shapes of a [`super::model::PatchDiT`], and what
/// its output means.
///
/// The denoiser sees `concat(y_t, y0)`, i.e. `2 * in_channels` channels, and
/// predicts `in_channels` channels of its `target`. The texture encoder is built
/// from the same width and head count, so its tokens can be the keys and
/// values of every Patch-DiT cross-attention without a projection in between.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct DitConfig {
    /// Latent channels `c` of the autoencoder.
    pub in_channels: i64,
    /// Side of the square patch that becomes one token.
    pub patch_size: i64,
    /// Side `V` of the latent patch the model denoises.
    pub input_size: i64,
    pub hidden_size: i64,
    pub depth: usize,
    pub num_heads: i64,
    pub mlp_ratio: f64,
    /// Number `K` of retrieved texture priors per patch.
    pub texture_k: i64,
    /// Blocks of the texture encoder ("the first half" of Patch-DiT).
    pub texture_depth: usize,
    /// What the output is trained to be. A model file without it predates
    /// the field and was trained on eps; an eps config is written without it,
    /// so its files and the trainers' resume hashes stay as they were.
    #[serde(default, skip_serializing_if = "is_epsilon")]
    pub target: Prediction,
    /// x0 models only: the output is y0 plus what the network adds, as the
    /// GRM's is its input plus a residual. An untrained Patch-DiT then returns
    /// the coarse result instead of zeros, and it need not learn to copy y0
    /// through tokens that squeeze 2 x 2 x 2c values into `hidden_size`
    /// (measured on the exact latent, c = 192: a plain x0 model was still at
    /// MSE 0.137 to x0 after 500 steps, where y0 itself is at 0.084).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub y0_skip: bool,
}

fn is_epsilon(p: &Prediction) -> bool {
    *p == Prediction::Epsilon
}

impl DitConfig {
    /// The smallest sensible model, for tests: 64 tokens of width 64.
    pub fn tiny() -> Self {
        Self {
            texture_k: 2,
            ..Self::with_layout(2, 64, 4, 1)
        }
    }

    /// The model shipped for CPU inference **(ours)**.
    ///
    /// 6 blocks of width 192 with 4 heads (head dim 48), a 3-block texture
    /// encoder and K = 4 priors: 7.15 M parameters, 2.09 M of them in the
    /// texture encoder. One denoising step of one 16 x 16 patch costs about
    /// 0.72 GFLOPs (multiply-add = 2), 0.23 of which are the cross-attention
    /// key/value projections of the 256 prior tokens; the texture encoder
    /// adds 0.72 GFLOPs once per patch. A 512 -> 2048 image (about 450
    /// patches, 14 steps on average) then needs about 5 TFLOPs, which a CPU
    /// does in well under a minute; DiT-S widths would cost about 8x more.
    pub fn cpu() -> Self {
        Self::with_layout(6, 192, 4, 3)
    }

    /// DiT-S layout: depth 12, width 384, 6 heads.
    pub fn s() -> Self {
        Self::with_layout(12, 384, 6, 6)
    }

    /// DiT-B layout, the paper's: depth 12, width 768, 12 heads.
    pub fn b() -> Self {
        Self::with_layout(12, 768, 12, 6)
    }

    /// The paper's setting (SD latents, V = 16, p = 2, K = 4) with a given layout.
    fn with_layout(depth: usize, hidden_size: i64, num_heads: i64, texture_depth: usize) -> Self {
        Self {
            in_channels: 4,
            patch_size: 2,
            input_size: 16,
            hidden_size,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            texture_k: 4,
            texture_depth,
            target: Prediction::Epsilon,
            y0_skip: false,
        }
    }

    /// Tokens per side of the latent patch.
    pub fn grid_size(&self) -> i64 {
        self.input_size / self.patch_size
    }

    /// Tokens of one latent patch (and of one texture prior).
    pub fn tokens_per_patch(&self) -> i64 {
        self.grid_size() * self.grid_size()
    }

    pub fn mlp_hidden(&self) -> i64 {
        (self.hidden_size as f64 * self.mlp_ratio) as i64
    }

    /// Rejects configs the layers cannot be built from (they come from files).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.y0_skip || self.target == Prediction::X0,
            "DitConfig: y0_skip adds y0 to a predicted x0; the target is {:?}",
            self.target
        );
        ensure!(
            self.in_channels > 0 && self.patch_size > 0 && self.num_heads > 0,
            "DitConfig: channels, patch size and heads must be positive: {self:?}"
        );
        ensure!(
            self.texture_k > 0,
            "DitConfig: texture_k must be positive, got {}",
            self.texture_k
        );
        ensure!(
            self.input_size > 0 && self.input_size % self.patch_size == 0,
            "DitConfig: input_size {} is not a positive multiple of patch_size {}",
            self.input_size,
            self.patch_size
        );
        ensure!(
            self.hidden_size > 0 && self.hidden_size % self.num_heads == 0,
            "DitConfig: hidden_size {} is not divisible by num_heads {}",
            self.hidden_size,
            self.num_heads
        );
        // The 2-D sin-cos table splits the width into 4 quarters.
        ensure!(
            self.hidden_size % 4 == 0,
            "DitConfig: hidden_size {} must be a multiple of 4",
            self.hidden_size
        );
        ensure!(
            self.mlp_ratio > 0.0,
            "DitConfig: mlp_ratio must be positive, got {}",
            self.mlp_ratio
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_toml() {
        for cfg in [
            DitConfig::tiny(),
            DitConfig::cpu(),
            DitConfig::s(),
            DitConfig::b(),
        ] {
            cfg.validate().unwrap();
            assert_eq!(cfg.texture_depth, cfg.depth / 2);
            assert_eq!(cfg.target, Prediction::Epsilon);
            let text = toml::to_string(&cfg).unwrap();
            assert_eq!(toml::from_str::<DitConfig>(&text).unwrap(), cfg);
        }
        assert_eq!(DitConfig::b().tokens_per_patch(), 64);
    }

    #[test]
    fn the_target_defaults_to_epsilon_and_round_trips() {
        let eps_text = toml::to_string(&DitConfig::tiny()).unwrap();
        assert!(!eps_text.contains("target"), "{eps_text}");
        assert_eq!(
            toml::from_str::<DitConfig>(&eps_text).unwrap().target,
            Prediction::Epsilon
        );
        for (target, word) in [(Prediction::X0, "x0"), (Prediction::V, "v")] {
            let cfg = DitConfig {
                target,
                ..DitConfig::tiny()
            };
            let text = toml::to_string(&cfg).unwrap();
            assert!(text.contains(&format!("target = \"{word}\"")), "{text}");
            assert_eq!(toml::from_str::<DitConfig>(&text).unwrap(), cfg);
        }
        let explicit = eps_text + "target = \"epsilon\"\n";
        assert_eq!(
            toml::from_str::<DitConfig>(&explicit).unwrap(),
            DitConfig::tiny()
        );
    }

    #[test]
    fn validate_rejects_bad_shapes() {
        let bad_heads = DitConfig {
            num_heads: 5,
            ..DitConfig::tiny()
        };
        assert!(bad_heads.validate().is_err());
        let bad_patch = DitConfig {
            input_size: 15,
            ..DitConfig::tiny()
        };
        assert!(bad_patch.validate().is_err());
    }
}
