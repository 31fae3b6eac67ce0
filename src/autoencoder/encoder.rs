//! Image -> latent moments (diffusers `Encoder` with `DownEncoderBlock2D`s).

use super::config::AeConfig;
use super::mid_block::MidBlock;
use super::resnet::{Downsample2D, ResnetBlock2D, NORM_EPS};
use crate::nn::{conv2d, group_norm};
use tch::{nn, nn::Module, Tensor};

/// One resolution level: resnets at constant size, then (except for the
/// deepest level) a halving of the resolution.
#[derive(Debug)]
struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    downsampler: Option<Downsample2D>,
}

#[derive(Debug)]
pub struct Encoder {
    pub(super) conv_in: nn::Conv2D,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Encoder {
    pub fn new(vs: &nn::Path, cfg: &AeConfig) -> Self {
        let chans = &cfg.block_out_channels;
        let groups = cfg.norm_num_groups;
        let deepest = *chans.last().expect("validated config has block_out_channels");
        let mut cin = chans[0];
        let down_blocks = chans
            .iter()
            .enumerate()
            .map(|(i, &cout)| {
                let vs = vs / "down_blocks" / i;
                let resnets = (0..cfg.layers_per_block)
                    .map(|j| ResnetBlock2D::new(&(&vs / "resnets" / j), if j == 0 { cin } else { cout }, cout, groups))
                    .collect();
                cin = cout;
                let is_last = i + 1 == chans.len();
                DownBlock { resnets, downsampler: (!is_last).then(|| Downsample2D::new(&(&vs / "downsamplers" / "0"), cout)) }
            })
            .collect();
        Self {
            conv_in: conv2d(vs / "conv_in", cfg.in_channels, chans[0], 3, 1),
            down_blocks,
            mid_block: MidBlock::new(&(vs / "mid_block"), deepest, groups, cfg.mid_block_add_attention),
            conv_norm_out: group_norm(vs / "conv_norm_out", groups, deepest, NORM_EPS),
            // Mean and log-variance of the diagonal Gaussian posterior.
            conv_out: conv2d(vs / "conv_out", deepest, 2 * cfg.latent_channels, 3, 1),
        }
    }

    /// (B, in, H, W) -> (B, 2*latent, H/f, W/f).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.conv_in.forward(x);
        for block in &self.down_blocks {
            for resnet in &block.resnets {
                h = resnet.forward(&h);
            }
            if let Some(down) = &block.downsampler {
                h = down.forward(&h);
            }
        }
        let h = self.mid_block.forward(&h);
        self.conv_out.forward(&self.conv_norm_out.forward(&h).silu())
    }
}
