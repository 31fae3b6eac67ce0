//! Shape of the Global Restoration Module (paper Sec. 3.2, Fig. 9a).
//!
//! The paper gives the block types (residual blocks, strided-conv
//! downsampling, upsampling with skip connections, two heads at the last
//! scale) but no widths or depths; every number here is **ours**.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GrmConfig {
    /// Channels of the AE latent the GRM restores (4 for the SD VAE).
    pub latent_channels: i64,
    /// Width of the first level; level `i` has `base_channels * channel_mult[i]`.
    pub base_channels: i64,
    /// One entry per resolution level; `len - 1` strided downsamplings.
    pub channel_mult: Vec<i64>,
    /// Residual blocks per level, on the way down and on the way up.
    pub num_res_blocks: i64,
    /// GroupNorm groups; must divide every level's width.
    pub norm_groups: i64,
    /// Hidden width of the confidence head.
    pub conf_hidden: i64,
}

impl GrmConfig {
    /// For tests: a few thousand parameters, runs in milliseconds.
    pub fn tiny() -> Self {
        Self {
            latent_channels: 4,
            base_channels: 16,
            channel_mult: vec![1, 2],
            num_res_blocks: 1,
            norm_groups: 8,
            conf_hidden: 16,
        }
    }

    /// The shipped CPU default: 2.71 M parameters, 20.5 GFLOPs (multiply-adds
    /// counted twice, convolutions only) on a 128 x 128 latent, i.e. a
    /// 1024 x 1024 output image with an f8 AE.
    /// Three levels give a receptive field of a few dozen latent pixels, which
    /// covers the blur kernels of the Real-ESRGAN degradation (<= 21 px at
    /// 1x, a few latent pixels) with margin.
    pub fn cpu() -> Self {
        Self {
            latent_channels: 4,
            base_channels: 64,
            channel_mult: vec![1, 2, 2],
            num_res_blocks: 1,
            norm_groups: 32,
            conf_hidden: 64,
        }
    }

    /// Our reading of the paper's GRM, sized like the SD U-Net's levels:
    /// 65.6 M parameters, 178 GFLOPs on a 128 x 128 latent.
    pub fn paper() -> Self {
        Self {
            latent_channels: 4,
            base_channels: 128,
            channel_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            norm_groups: 32,
            conf_hidden: 128,
        }
    }

    /// Widths of the levels, top (full resolution) first.
    pub fn level_channels(&self) -> Vec<i64> {
        self.channel_mult.iter().map(|m| m * self.base_channels).collect()
    }

    /// Height and width must be multiples of this for the skips to line up.
    pub fn size_multiple(&self) -> i64 {
        1 << (self.channel_mult.len().saturating_sub(1))
    }

    /// Rejects configs that would fail deep inside libtorch.
    pub fn validate(&self) -> Result<()> {
        if self.latent_channels < 1 || self.base_channels < 1 || self.conf_hidden < 1 {
            bail!("GRM config: channel counts must be positive: {self:?}");
        }
        if self.channel_mult.is_empty() || self.num_res_blocks < 1 {
            bail!("GRM config: need at least one level and one residual block per level: {self:?}");
        }
        for ch in self.level_channels() {
            if ch < 1 || self.norm_groups < 1 || ch % self.norm_groups != 0 {
                bail!("GRM config: norm_groups {} must divide level width {ch}", self.norm_groups);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_json() {
        for cfg in [GrmConfig::tiny(), GrmConfig::cpu(), GrmConfig::paper()] {
            cfg.validate().unwrap();
            let back: GrmConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
            assert_eq!(back, cfg);
        }
        assert_eq!(GrmConfig::cpu().size_multiple(), 4);
    }

    #[test]
    fn groups_not_dividing_a_width_are_rejected() {
        let cfg = GrmConfig { norm_groups: 5, ..GrmConfig::tiny() };
        assert!(cfg.validate().unwrap_err().to_string().contains("norm_groups"));
    }
}
