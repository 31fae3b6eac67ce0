//! The residual block of the GRM U-Net (the diffusers/LDM ResnetBlock
//! without a time embedding: the GRM is a plain regressor, it sees no t).

use crate::nn::{conv2d, group_norm};
use tch::{nn, Tensor};

/// GroupNorm eps of the LDM/diffusers U-Nets.
const NORM_EPS: f64 = 1e-6;

#[derive(Debug)]
pub struct ResBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    /// 1x1 projection of the shortcut, only when the width changes.
    skip: Option<nn::Conv2D>,
}

impl ResBlock {
    pub fn new(vs: nn::Path, cin: i64, cout: i64, groups: i64) -> Self {
        Self {
            norm1: group_norm(&vs / "norm1", groups, cin, NORM_EPS),
            conv1: conv2d(&vs / "conv1", cin, cout, 3, 1),
            norm2: group_norm(&vs / "norm2", groups, cout, NORM_EPS),
            conv2: conv2d(&vs / "conv2", cout, cout, 3, 1),
            skip: (cin != cout).then(|| conv2d(&vs / "skip", cin, cout, 1, 1)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let h = x.apply(&self.norm1).silu().apply(&self.conv1);
        let h = h.apply(&self.norm2).silu().apply(&self.conv2);
        let shortcut = match &self.skip {
            Some(proj) => x.apply(proj),
            None => x.shallow_clone(),
        };
        shortcut + h
    }
}
