//! Small layers shared by the model files.

use tch::{nn, Tensor};

/// GroupNorm with the eps that diffusers' VAE and the U-Nets use (1e-6).
pub fn group_norm(vs: nn::Path, groups: i64, channels: i64, eps: f64) -> nn::GroupNorm {
    nn::group_norm(vs, groups, channels, nn::GroupNormConfig { eps, ..Default::default() })
}

/// 2-D convolution with "same" padding for odd kernels.
pub fn conv2d(vs: nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> nn::Conv2D {
    nn::conv2d(vs, cin, cout, k, nn::ConvConfig { stride, padding: k / 2, ..Default::default() })
}

pub fn silu(x: &Tensor) -> Tensor {
    x.silu()
}
