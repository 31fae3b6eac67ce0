//! The small pieces every DiT module is made of, initialised as DiT's
//! `initialize_weights` does, so a fresh model starts where upstream starts.

use tch::nn::{self, Init, Module};
use tch::Tensor;

/// DiT's LayerNorm: no affine parameters, eps 1e-6 (nothing to store).
#[derive(Debug, Clone, Copy)]
pub struct PlainLayerNorm {
    dim: i64,
}

impl PlainLayerNorm {
    pub fn new(dim: i64) -> Self {
        Self { dim }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.layer_norm([self.dim], None::<&Tensor>, None::<&Tensor>, 1e-6, true)
    }
}

/// Linear layer with Xavier-uniform weight and zero bias (DiT's `_basic_init`).
pub fn xavier_linear(vs: nn::Path, fan_in: i64, fan_out: i64) -> nn::Linear {
    let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let cfg = nn::LinearConfig {
        ws_init: Init::Uniform {
            lo: -bound,
            up: bound,
        },
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    nn::linear(vs, fan_in, fan_out, cfg)
}

/// Linear layer that starts at exactly zero, so the residual branch or
/// modulation it ends is the identity at initialisation (adaLN-Zero).
pub fn zero_linear(vs: nn::Path, fan_in: i64, fan_out: i64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: Init::Const(0.0),
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    nn::linear(vs, fan_in, fan_out, cfg)
}

/// `x * (1 + scale) + shift`, per sample, broadcast over the tokens.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Tensor {
    x * (scale.unsqueeze(1) + 1.0) + shift.unsqueeze(1)
}

/// adaLN modulation: `SiLU -> Linear(D, n D)`, cut into `n` vectors of width D.
/// Upstream keys it `adaLN_modulation.1` (index 0 is the SiLU).
#[derive(Debug)]
pub struct AdaLn {
    pub(super) linear: nn::Linear,
    chunks: i64,
}

impl AdaLn {
    pub fn new(vs: nn::Path, hidden: i64, chunks: i64) -> Self {
        Self {
            linear: zero_linear(vs / "adaLN_modulation" / "1", hidden, chunks * hidden),
            chunks,
        }
    }

    /// The `n` modulation vectors for condition `c` (B, D), in upstream order.
    pub fn forward(&self, c: &Tensor) -> Vec<Tensor> {
        self.linear.forward(&c.silu()).chunk(self.chunks, 1)
    }
}

/// timm `Mlp`: fc1, tanh-approximated GELU, fc2.
#[derive(Debug)]
pub struct Mlp {
    fc1: nn::Linear,
    fc2: nn::Linear,
}

impl Mlp {
    pub fn new(vs: nn::Path, hidden: i64, inner: i64) -> Self {
        Self {
            fc1: xavier_linear(&vs / "fc1", hidden, inner),
            fc2: xavier_linear(&vs / "fc2", inner, hidden),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.fc2.forward(&self.fc1.forward(x).gelu("tanh"))
    }
}
