//! Latent -> image (diffusers `Decoder` with `UpDecoderBlock2D`s).

use super::config::AeConfig;
use super::mid_block::MidBlock;
use super::resnet::{ResnetBlock2D, Upsample2D, NORM_EPS};
use crate::nn::{conv2d, group_norm};
use tch::{nn, nn::Module, Tensor};

/// One resolution level, deepest first: `layers_per_block + 1` resnets (one
/// more than the encoder, as in LDM), then a doubling of the resolution
/// except at the shallowest level.
#[derive(Debug)]
struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    upsampler: Option<Upsample2D>,
}

#[derive(Debug)]
pub struct Decoder {
    pub(super) conv_in: nn::Conv2D,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Decoder {
    pub fn new(vs: &nn::Path, cfg: &AeConfig) -> Self {
        let reversed: Vec<i64> = cfg.block_out_channels.iter().rev().copied().collect();
        let groups = cfg.norm_num_groups;
        let mut cin = reversed[0];
        let up_blocks = reversed
            .iter()
            .enumerate()
            .map(|(i, &cout)| {
                let vs = vs / "up_blocks" / i;
                let resnets = (0..=cfg.layers_per_block)
                    .map(|j| ResnetBlock2D::new(&(&vs / "resnets" / j), if j == 0 { cin } else { cout }, cout, groups))
                    .collect();
                cin = cout;
                let is_last = i + 1 == reversed.len();
                UpBlock { resnets, upsampler: (!is_last).then(|| Upsample2D::new(&(&vs / "upsamplers" / "0"), cout)) }
            })
            .collect();
        let shallowest = *reversed.last().expect("validated config has block_out_channels");
        Self {
            conv_in: conv2d(vs / "conv_in", cfg.latent_channels, reversed[0], 3, 1),
            mid_block: MidBlock::new(&(vs / "mid_block"), reversed[0], groups, cfg.mid_block_add_attention),
            up_blocks,
            conv_norm_out: group_norm(vs / "conv_norm_out", groups, shallowest, NORM_EPS),
            conv_out: conv2d(vs / "conv_out", shallowest, cfg.out_channels, 3, 1),
        }
    }

    /// (B, latent, h, w) -> (B, out, h*f, w*f).
    pub fn forward(&self, z: &Tensor) -> Tensor {
        let mut h = self.mid_block.forward(&self.conv_in.forward(z));
        for block in &self.up_blocks {
            for resnet in &block.resnets {
                h = resnet.forward(&h);
            }
            if let Some(up) = &block.upsampler {
                h = up.forward(&h);
            }
        }
        self.conv_out.forward(&self.conv_norm_out.forward(&h).silu())
    }
}
