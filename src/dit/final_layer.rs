//! From tokens back to a latent: DiT's adaLN final layer and `unpatchify`.

use super::layers::{modulate, zero_linear, AdaLn, PlainLayerNorm};
use tch::nn::{self, Module};
use tch::Tensor;

/// `Linear(modulate(LN(x), shift, scale))` to `p * p * C` values per token.
/// Both linears start at zero (adaLN-Zero), so a fresh model predicts 0.
#[derive(Debug)]
pub struct FinalLayer {
    norm_final: PlainLayerNorm,
    pub(super) linear: nn::Linear,
    pub(super) ada_ln: AdaLn,
}

impl FinalLayer {
    pub fn new(vs: nn::Path, hidden: i64, patch: i64, out_channels: i64) -> Self {
        Self {
            norm_final: PlainLayerNorm::new(hidden),
            linear: zero_linear(&vs / "linear", hidden, patch * patch * out_channels),
            ada_ln: AdaLn::new(vs, hidden, 2),
        }
    }

    /// `x` (B, N, D), `c` (B, D) -> (B, N, p*p*C).
    pub fn forward(&self, x: &Tensor, c: &Tensor) -> Tensor {
        let shift_scale = self.ada_ln.forward(c);
        let (shift, scale) = (&shift_scale[0], &shift_scale[1]);
        self.linear
            .forward(&modulate(&self.norm_final.forward(x), shift, scale))
    }
}

/// Tokens (B, h*w, p*p*C), each laid out (p_row, p_col, channel) with the
/// channel fastest, to the image (B, C, h*p, w*p) of a square token grid.
///
/// This is not the (C, p, p) order of the patch-embedding conv weight.
pub fn unpatchify(tokens: &Tensor, channels: i64, patch: i64) -> Tensor {
    let (b, n, _) = tokens.size3().expect("tokens are (B, N, p*p*C)");
    let side = (n as f64).sqrt().round() as i64;
    tokens
        .reshape([b, side, side, patch, patch, channels])
        .permute([0, 5, 1, 3, 2, 4])
        .reshape([b, channels, side * patch, side * patch])
}
