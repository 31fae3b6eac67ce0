//! The Global Restoration Module (paper Sec. 3.2): a U-Net on the latent of
//! the bicubic-upsampled LR image that returns a coarse HR latent y_HR and a
//! confidence map C, whose patch means drive Patch-adaptive Group Sampling.

use super::config::GrmConfig;
use super::resblock::ResBlock;
use crate::nn::{conv2d, group_norm};
use anyhow::{bail, Result};
use tch::{nn, Tensor};

/// One resolution level of the descending path.
#[derive(Debug)]
struct DownLevel {
    res: Vec<ResBlock>,
    /// 3x3 stride-2 conv; absent on the deepest level.
    downsample: Option<nn::Conv2D>,
}

/// One resolution level of the ascending path.
#[derive(Debug)]
struct UpLevel {
    /// Nearest x2 then a 3x3 conv (no checkerboard artefacts, unlike a
    /// transposed conv); absent on the deepest level.
    upsample: Option<nn::Conv2D>,
    res: Vec<ResBlock>,
}

/// `y_HR = y_LR + out_head(h)`: the head predicts a residual on its input.
/// y_LR is already the right image seen through blur, noise and JPEG, so the
/// network only has to model the degradation, and with the head's conv
/// zero-initialised an untrained GRM is the identity instead of noise.
#[derive(Debug)]
struct OutHead {
    norm: nn::GroupNorm,
    conv: nn::Conv2D,
}

/// conv -> SiLU -> conv, then sigmoid: the confidence logit. The last conv
/// starts at zero so C starts at 1/2 everywhere: the un-normalised features
/// at the last scale are large, and a random last conv would saturate the
/// sigmoid, where both terms of the loss have vanishing gradients.
#[derive(Debug)]
struct ConfHead {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
}

#[derive(Debug)]
pub struct Grm {
    cfg: GrmConfig,
    conv_in: nn::Conv2D,
    down: Vec<DownLevel>,
    mid: Vec<ResBlock>,
    /// Indexed like `down`: `up[i]` works at the resolution of `down[i]`.
    up: Vec<UpLevel>,
    out_head: OutHead,
    conf_head: ConfHead,
}

/// Two residual blocks at the bottleneck, as in the LDM mid block.
const MID_BLOCKS: i64 = 2;
const NORM_EPS: f64 = 1e-6;

impl Grm {
    pub fn new(vs: &nn::Path, cfg: &GrmConfig) -> Result<Self> {
        cfg.validate()?;
        let widths = cfg.level_channels();
        let levels = widths.len();
        let (c, g, base) = (cfg.latent_channels, cfg.norm_groups, cfg.base_channels);

        let conv_in = conv2d(vs / "conv_in", c, base, 3, 1);
        let mut down = Vec::with_capacity(levels);
        let mut ch = base;
        for (i, &w) in widths.iter().enumerate() {
            let p = vs / "down" / i;
            let res = (0..cfg.num_res_blocks)
                .map(|j| ResBlock::new(&p / "res" / j, if j == 0 { ch } else { w }, w, g))
                .collect();
            ch = w;
            let downsample = (i + 1 < levels).then(|| conv2d(&p / "downsample", w, w, 3, 2));
            down.push(DownLevel { res, downsample });
        }

        let mid = (0..MID_BLOCKS).map(|j| ResBlock::new(vs / "mid" / j, ch, ch, g)).collect();

        let mut up: Vec<UpLevel> = Vec::with_capacity(levels);
        for (i, &w) in widths.iter().enumerate().rev() {
            let p = vs / "up" / i;
            let upsample = (i + 1 < levels).then(|| conv2d(&p / "upsample", ch, w, 3, 1));
            // The first block of a level also eats the skip from `down[i]`.
            let res = (0..cfg.num_res_blocks)
                .map(|j| ResBlock::new(&p / "res" / j, if j == 0 { 2 * w } else { w }, w, g))
                .collect();
            ch = w;
            up.push(UpLevel { upsample, res });
        }
        up.reverse();

        let head = vs / "out_head";
        let out_head = OutHead {
            norm: group_norm(&head / "norm", g, base, NORM_EPS),
            conv: conv2d(&head / "conv", base, c, 3, 1),
        };
        let conf = vs / "conf_head";
        let conf_head = ConfHead {
            conv1: conv2d(&conf / "conv1", base, cfg.conf_hidden, 3, 1),
            conv2: conv2d(&conf / "conv2", cfg.conf_hidden, 1, 1, 1),
        };
        zero_init(&out_head.conv);
        zero_init(&conf_head.conv2);
        Ok(Self { cfg: cfg.clone(), conv_in, down, mid, up, out_head, conf_head })
    }

    pub fn config(&self) -> &GrmConfig {
        &self.cfg
    }

    /// `y_lr` (B, c, H, W) -> (y_HR (B, c, H, W), C (B, 1, H, W) in [0, 1]).
    pub fn forward(&self, y_lr: &Tensor) -> Result<(Tensor, Tensor)> {
        let (y_hr, logit) = self.forward_with_logit(y_lr)?;
        Ok((y_hr, logit.sigmoid()))
    }

    /// Like `forward` but returns the confidence before the sigmoid, so that
    /// the loss can take log C as log_sigmoid(logit) without underflow.
    pub fn forward_with_logit(&self, y_lr: &Tensor) -> Result<(Tensor, Tensor)> {
        let size = y_lr.size();
        if size.len() != 4 || size[1] != self.cfg.latent_channels {
            bail!("GRM input must be (B, {}, H, W), got {size:?}", self.cfg.latent_channels);
        }
        let (height, width) = (size[2], size[3]);
        let x = pad_to_multiple(y_lr, self.cfg.size_multiple());

        let mut h = x.apply(&self.conv_in);
        let mut skips = Vec::with_capacity(self.down.len());
        for level in &self.down {
            for block in &level.res {
                h = block.forward(&h);
            }
            skips.push(h.shallow_clone());
            if let Some(ds) = &level.downsample {
                h = h.apply(ds);
            }
        }
        for block in &self.mid {
            h = block.forward(&h);
        }
        for (level, skip) in self.up.iter().zip(skips).rev() {
            if let Some(us) = &level.upsample {
                let (sh, sw) = (skip.size()[2], skip.size()[3]);
                h = h.upsample_nearest2d([sh, sw], None, None).apply(us);
            }
            h = Tensor::cat(&[h, skip], 1);
            for block in &level.res {
                h = block.forward(&h);
            }
        }

        let residual = h.apply(&self.out_head.norm).silu().apply(&self.out_head.conv);
        let logit = h.apply(&self.conf_head.conv1).silu().apply(&self.conf_head.conv2);
        let y_hr = &x + residual;
        Ok((crop(&y_hr, height, width), crop(&logit, height, width)))
    }
}

fn zero_init(conv: &nn::Conv2D) {
    tch::no_grad(|| {
        let _ = conv.ws.shallow_clone().zero_();
        if let Some(b) = &conv.bs {
            let _ = b.shallow_clone().zero_();
        }
    });
}

/// Replicate-pads bottom and right so each downsampling halves exactly;
/// replicate, not zeros, so the border does not look like a dark edge.
fn pad_to_multiple(x: &Tensor, m: i64) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (ph, pw) = ((m - h % m) % m, (m - w % m) % m);
    if ph == 0 && pw == 0 {
        return x.shallow_clone();
    }
    x.pad([0, pw, 0, ph], "replicate", None)
}

fn crop(x: &Tensor, h: i64, w: i64) -> Tensor {
    x.narrow(2, 0, h).narrow(3, 0, w)
}

#[cfg(test)]
#[path = "unet_tests.rs"]
mod tests;
