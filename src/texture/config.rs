//! Sizes of the texture classifier, the prompt and the memory. The paper
//! fixes V = 16 and 2,000 RTM entries; the classifier's widths and K are
//! **ours** (the paper's T is an unnamed "pre-trained texture classifier").

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TextureConfig {
    /// Channels of the AE latent the patches come from.
    pub latent_channels: i64,
    /// Patch side V in latent pixels (16 in the paper).
    pub patch: i64,
    /// Width of the classifier's first stage; the second and third use 2x.
    pub width: i64,
    /// Length of the key vectors.
    pub feature_dim: i64,
    /// Number of texture priors per patch (top-K).
    pub k: i64,
    /// Entries kept in the RTM by farthest point sampling.
    pub rtm_size: i64,
}

/// GroupNorm groups in the classifier; `width` must be a multiple.
pub const NORM_GROUPS: i64 = 8;

impl TextureConfig {
    /// For tests: runs in milliseconds.
    pub fn tiny() -> Self {
        Self { latent_channels: 4, patch: 16, width: 16, feature_dim: 32, k: 2, rtm_size: 64 }
    }

    /// The shipped CPU default.
    pub fn cpu() -> Self {
        Self { latent_channels: 4, patch: 16, width: 64, feature_dim: 128, k: 4, rtm_size: 2000 }
    }

    /// The paper's memory (V = 16, 2,000 entries) with our classifier.
    pub fn paper() -> Self {
        Self { latent_channels: 4, patch: 16, width: 128, feature_dim: 256, k: 4, rtm_size: 2000 }
    }

    pub fn validate(&self) -> Result<()> {
        if self.latent_channels < 1 || self.patch < 1 || self.feature_dim < 1 {
            bail!("texture config: sizes must be positive: {self:?}");
        }
        if self.width < NORM_GROUPS || self.width % NORM_GROUPS != 0 {
            bail!("texture config: width {} must be a positive multiple of {NORM_GROUPS}", self.width);
        }
        if self.k < 1 || self.k > self.rtm_size {
            bail!("texture config: need 1 <= k ({}) <= rtm_size ({})", self.k, self.rtm_size);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_json() {
        for cfg in [TextureConfig::tiny(), TextureConfig::cpu(), TextureConfig::paper()] {
            cfg.validate().unwrap();
            let back: TextureConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
            assert_eq!(back, cfg);
        }
    }

    #[test]
    fn k_above_the_memory_size_is_rejected() {
        let cfg = TextureConfig { k: 65, ..TextureConfig::tiny() };
        assert!(cfg.validate().unwrap_err().to_string().contains("rtm_size"));
    }
}
