//! Shape of a diffusers `AutoencoderKL`: enough to rebuild the module tree
//! (and so its state_dict keys) without the original Python class.

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The fields of a diffusers `AutoencoderKL` config.json that change the
/// network. Unknown keys (`_class_name`, `act_fn`, `sample_size`, ...) are
/// ignored when reading, and missing ones take diffusers' defaults, so a
/// config.json from any diffusers version reads unchanged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct AeConfig {
    /// Which latent: the learned network below, or the exact space-to-depth
    /// map (SPEC §7), for which only the channel counts and `factor` matter.
    pub kind: AeKind,
    /// The space-to-depth factor f (`latent_channels` = in_channels f^2);
    /// absent for the learned kind, whose factor its levels fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    pub in_channels: i64,
    pub out_channels: i64,
    pub latent_channels: i64,
    /// Channels per resolution level, shallowest first. Each level but the
    /// last halves the resolution, so the latent stride is 2^(len-1).
    pub block_out_channels: Vec<i64>,
    /// Resnets per encoder level; decoder levels have one more.
    pub layers_per_block: i64,
    pub norm_num_groups: i64,
    /// Brings latents to roughly unit variance for the diffusion model.
    pub scaling_factor: f64,
    pub use_quant_conv: bool,
    pub use_post_quant_conv: bool,
    /// The mid-block self-attention sees the whole latent at once; models
    /// without it decode tile by tile with no global coupling at all.
    pub mid_block_add_attention: bool,
}

/// The kind of latent; `learned` when a config does not say (diffusers'
/// config.json and every model written before the exact latent existed).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum AeKind {
    #[default]
    Learned,
    SpaceToDepth,
}

impl Default for AeConfig {
    /// diffusers' own constructor defaults (a one-level, 64-channel model).
    fn default() -> Self {
        Self {
            kind: AeKind::Learned,
            factor: None,
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![64],
            layers_per_block: 1,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            use_quant_conv: true,
            use_post_quant_conv: true,
            mid_block_add_attention: true,
        }
    }
}

impl AeConfig {
    /// Stable Diffusion's KL-f8 VAE (the paper's frozen AE), 83.7M params.
    pub fn sd_vae() -> Self {
        Self { block_out_channels: vec![128, 256, 512, 512], layers_per_block: 2, ..Self::default() }
    }

    /// The model of the conformance kit (`autoencoder_kl/config.json`).
    pub fn conformance() -> Self {
        Self { block_out_channels: vec![32, 64], norm_num_groups: 8, ..Self::default() }
    }

    /// A few thousand parameters, f = 2: for fast unit tests only.
    pub fn tiny() -> Self {
        Self { block_out_channels: vec![16, 32], norm_num_groups: 8, ..Self::default() }
    }

    /// The shipped CPU default: f = 8 like the SD VAE, so the Patch-DiT sees
    /// the same latent grid, but narrow. Each level costs about the same per
    /// image (channels double as the area quarters), and there is no mid
    /// attention, so tiles couple only through GroupNorm statistics.
    /// 2,593,015 parameters. Measured on 2 cores shared with other jobs
    /// (load 6-7): 512x512 encode + decode 1.9-4.9 s, 2048x2048 68 s
    /// untiled (`cpu_preset_speed` test); idle cores should be ~3x faster.
    pub fn cpu() -> Self {
        Self {
            block_out_channels: vec![16, 32, 64, 128],
            norm_num_groups: 8,
            mid_block_add_attention: false,
            ..Self::default()
        }
    }

    /// The exact latent: `PixelUnshuffle_f` of a 3-channel image, 3 f^2
    /// channels on the 1/f grid.
    pub fn space_to_depth(factor: i64) -> Self {
        Self {
            kind: AeKind::SpaceToDepth,
            factor: Some(factor),
            latent_channels: 3 * factor * factor,
            ..Self::default()
        }
    }

    /// Reads a diffusers `config.json`.
    pub fn from_diffusers_json(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading autoencoder config {}", path.display()))?;
        let cfg: Self = serde_json::from_str(&text)
            .with_context(|| format!("parsing autoencoder config {}", path.display()))?;
        cfg.validate().with_context(|| format!("autoencoder config {}", path.display()))?;
        Ok(cfg)
    }

    /// Rejects configs that would build an inconsistent network.
    pub fn validate(&self) -> Result<()> {
        if self.kind == AeKind::SpaceToDepth {
            let f = self.factor.unwrap_or(0);
            ensure!(f >= 1, "a space_to_depth latent needs factor >= 1, got {:?}", self.factor);
            ensure!(
                self.in_channels == self.out_channels && self.latent_channels == self.in_channels * f * f,
                "a space_to_depth latent of factor {f} has latent_channels = in_channels f^2 = {}, got {} (in {}, out {})",
                self.in_channels * f * f,
                self.latent_channels,
                self.in_channels,
                self.out_channels
            );
            return Ok(());
        }
        ensure!(self.factor.is_none(), "factor is for space_to_depth latents; a learned AE's levels fix its factor");
        ensure!(!self.block_out_channels.is_empty(), "block_out_channels is empty");
        ensure!(self.layers_per_block >= 1, "layers_per_block must be at least 1");
        ensure!(self.norm_num_groups >= 1, "norm_num_groups must be at least 1");
        for &c in &self.block_out_channels {
            ensure!(
                c > 0 && c % self.norm_num_groups == 0,
                "block_out_channels entry {c} is not a multiple of norm_num_groups {}",
                self.norm_num_groups
            );
        }
        ensure!(self.in_channels > 0 && self.out_channels > 0 && self.latent_channels > 0, "channel counts must be positive");
        ensure!(self.scaling_factor > 0.0, "scaling_factor must be positive");
        Ok(())
    }

    /// Pixels per latent pixel along each axis.
    pub fn downsample_factor(&self) -> i64 {
        if let (AeKind::SpaceToDepth, Some(f)) = (self.kind, self.factor) {
            return f;
        }
        1 << (self.block_out_channels.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_kit_config_and_ignores_unknown_keys() {
        let Some(dir) = crate::conformance::dir() else { return };
        let cfg = AeConfig::from_diffusers_json(dir.join("autoencoder_kl/config.json")).unwrap();
        assert_eq!(cfg, AeConfig::conformance());
        assert_eq!(cfg.downsample_factor(), 2);
    }

    #[test]
    fn missing_keys_take_diffusers_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "act_fn": "silu"}"#).unwrap();
        let cfg = AeConfig::from_diffusers_json(&path).unwrap();
        assert_eq!(cfg, AeConfig::sd_vae());
        assert_eq!(cfg.downsample_factor(), 8);
    }

    #[test]
    fn bad_configs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vae.json");
        std::fs::write(&path, r#"{"block_out_channels": [30], "norm_num_groups": 32}"#).unwrap();
        let err = format!("{:#}", AeConfig::from_diffusers_json(&path).unwrap_err());
        assert!(err.contains("vae.json") && err.contains("norm_num_groups"), "{err}");
        assert!(AeConfig::from_diffusers_json(dir.path().join("absent.json")).is_err());
    }

    #[test]
    fn presets_are_valid() {
        for cfg in [AeConfig::sd_vae(), AeConfig::conformance(), AeConfig::tiny(), AeConfig::cpu(), AeConfig::space_to_depth(8)] {
            cfg.validate().unwrap();
        }
        assert_eq!(AeConfig::space_to_depth(8).downsample_factor(), 8);
        assert_eq!(AeConfig::space_to_depth(8).latent_channels, 192);
        let wrong = AeConfig { latent_channels: 16, ..AeConfig::space_to_depth(8) };
        assert!(wrong.validate().unwrap_err().to_string().contains("192"));
        assert_eq!(AeConfig::cpu().downsample_factor(), 8);
    }
}
