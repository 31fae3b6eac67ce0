//! What turns inputs into tokens and conditions: the timestep embedder, the
//! fixed 2-D sin-cos position table and the patch embedding.

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

/// Sinusoid width before the timestep MLP (DiT's `frequency_embedding_size`).
pub const FREQUENCY_EMBEDDING_SIZE: i64 = 256;

/// DiT's sinusoidal timestep features, **[cos, sin]**, for float timesteps `t` (B).
///
/// The frequencies are computed in float32 with the same op order as
/// upstream: at t = 999 one float32 ulp of the argument is worth 6e-5.
pub fn timestep_embedding(t: &Tensor, dim: i64) -> Tensor {
    let half = dim / 2;
    let freqs =
        (Tensor::arange(half, (Kind::Float, t.device())) * -(10000f64.ln()) / half as f64).exp();
    let args = t.to_kind(Kind::Float).unsqueeze(1) * freqs.unsqueeze(0);
    let emb = Tensor::cat(&[args.cos(), args.sin()], 1);
    if dim % 2 == 1 {
        Tensor::cat(&[&emb, &emb.zeros_like().narrow(1, 0, 1)], 1)
    } else {
        emb
    }
}

/// Sinusoid of a scalar condition, then `Linear -> SiLU -> Linear`.
/// Keys `mlp.0` and `mlp.2` (`mlp.1` is the SiLU).
#[derive(Debug)]
pub struct TimestepEmbedder {
    fc0: nn::Linear,
    fc2: nn::Linear,
}

impl TimestepEmbedder {
    pub fn new(vs: nn::Path, hidden: i64) -> Self {
        // DiT draws both weights from N(0, 0.02), biases zero.
        let cfg = nn::LinearConfig {
            ws_init: Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        };
        let mlp = &vs / "mlp";
        Self {
            fc0: nn::linear(&mlp / "0", FREQUENCY_EMBEDDING_SIZE, hidden, cfg),
            fc2: nn::linear(&mlp / "2", hidden, hidden, cfg),
        }
    }

    /// `t` (B) float timesteps in [0, 1000) -> (B, D), in the weights' dtype.
    pub fn forward(&self, t: &Tensor) -> Tensor {
        let freq = timestep_embedding(t, FREQUENCY_EMBEDDING_SIZE).to_kind(self.fc0.ws.kind());
        self.fc2.forward(&self.fc0.forward(&freq).silu())
    }
}

/// DiT's fixed 2-D sin-cos position table, (G*G, D) float64.
///
/// Token `row * G + col`; channels `[0, D/2)` encode the **column**, `[D/2, D)`
/// the row, each half as `[sin(pos w), cos(pos w)]` with
/// `w_k = 10000^(-k / (D/4))`.
pub fn get_2d_sincos_pos_embed(dim: i64, grid: i64) -> Tensor {
    let quarter = (dim / 4) as usize;
    let omega: Vec<f64> = (0..quarter)
        .map(|k| 1.0 / 10000f64.powf(k as f64 / quarter as f64))
        .collect();
    let mut table = Vec::with_capacity((grid * grid * dim) as usize);
    for row in 0..grid {
        for col in 0..grid {
            for pos in [col as f64, row as f64] {
                table.extend(omega.iter().map(|w| (pos * w).sin()));
                table.extend(omega.iter().map(|w| (pos * w).cos()));
            }
        }
    }
    Tensor::from_slice(&table).view([grid * grid, dim])
}

/// The position table as a (1, G*G, D) float32 buffer named `pos_embed`:
/// in the state dict like DiT's frozen parameter, but never trained.
pub fn pos_embed_buffer(vs: &nn::Path, dim: i64, grid: i64) -> Tensor {
    let table = get_2d_sincos_pos_embed(dim, grid)
        .to_kind(Kind::Float)
        .unsqueeze(0)
        .to_device(vs.device());
    vs.add("pos_embed", table, false)
}

/// timm `PatchEmbed` as DiT uses it: a p x p conv with stride p, tokens in
/// raster order (`row * W/p + col`).
#[derive(Debug)]
pub struct PatchEmbed {
    proj: nn::Conv2D,
}

impl PatchEmbed {
    pub fn new(vs: nn::Path, in_channels: i64, hidden: i64, patch: i64) -> Self {
        // DiT initialises the conv like a Linear on its flattened weight.
        let (fan_in, fan_out) = (in_channels * patch * patch, hidden);
        let bound = (6.0 / (fan_in + fan_out) as f64).sqrt();
        let cfg = nn::ConvConfig {
            stride: patch,
            ws_init: Init::Uniform {
                lo: -bound,
                up: bound,
            },
            bs_init: Init::Const(0.0),
            ..Default::default()
        };
        Self {
            proj: nn::conv2d(vs / "proj", in_channels, hidden, patch, cfg),
        }
    }

    /// (B, C, H, W) -> (B, H/p * W/p, D).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.proj.forward(x).flatten(2, -1).transpose(1, 2)
    }
}
