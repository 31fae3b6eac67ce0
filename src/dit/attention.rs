//! Multi-head attention in timm's layout: self-attention over a patch's
//! tokens, and cross-attention from them to the texture-prompt tokens.

use super::layers::{xavier_linear, zero_linear};
use tch::nn::{self, Module};
use tch::Tensor;

/// Scaled dot-product attention over (B, H, N, dh) heads, heads then merged
/// back head-major into (B, N, H*dh), as timm does before `proj`.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor) -> Tensor {
    let (b, h, n, dh) = q.size4().expect("attention heads are 4-D");
    Tensor::scaled_dot_product_attention(q, k, v, None::<&Tensor>, 0.0, false, None, false)
        .transpose(1, 2)
        .reshape([b, n, h * dh])
}

/// (B, N, n*D) -> n tensors (B, H, N, dh): rows of each D-wide block are
/// split head-major, the timm `qkv` layout.
fn split_heads(x: &Tensor, n: i64, heads: i64) -> Vec<Tensor> {
    let (b, tokens, width) = x.size3().expect("projected tokens are 3-D");
    let dh = width / (n * heads);
    x.reshape([b, tokens, n, heads, dh])
        .permute([2, 0, 3, 1, 4])
        .unbind(0)
}

/// timm `Attention` (qkv_bias, no q/k norm): keys `qkv` and `proj`.
#[derive(Debug)]
pub struct SelfAttention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
}

impl SelfAttention {
    pub fn new(vs: nn::Path, hidden: i64, heads: i64) -> Self {
        Self {
            qkv: xavier_linear(&vs / "qkv", hidden, 3 * hidden),
            proj: xavier_linear(&vs / "proj", hidden, hidden),
            heads,
        }
    }

    /// (B, N, D) -> (B, N, D).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let qkv = split_heads(&self.qkv.forward(x), 3, self.heads);
        self.proj.forward(&attend(&qkv[0], &qkv[1], &qkv[2]))
    }
}

/// Queries from the patch tokens, keys and values from the texture-prompt
/// tokens (keys `q`, `kv`, `proj`, PixArt-alpha's layout). The output
/// projection starts at zero so a fresh Patch-DiT ignores the prompt until
/// training finds it useful.
#[derive(Debug)]
pub struct CrossAttention {
    q: nn::Linear,
    kv: nn::Linear,
    pub(super) proj: nn::Linear,
    heads: i64,
}

impl CrossAttention {
    pub fn new(vs: nn::Path, hidden: i64, context: i64, heads: i64) -> Self {
        Self {
            q: xavier_linear(&vs / "q", hidden, hidden),
            kv: xavier_linear(&vs / "kv", context, 2 * hidden),
            proj: zero_linear(&vs / "proj", hidden, hidden),
            heads,
        }
    }

    /// `x` (B, N, D) attends to `context` (B, M, Dc) -> (B, N, D).
    pub fn forward(&self, x: &Tensor, context: &Tensor) -> Tensor {
        self.forward_kv(x, &self.keys_values(context))
    }

    /// Keys and values of `context` (B, M, Dc), heads split: (B, H, M, dh)
    /// each. They depend on the prompt alone, so a sampler computes them once
    /// per patch and reuses them for every step.
    pub fn keys_values(&self, context: &Tensor) -> (Tensor, Tensor) {
        let mut kv = split_heads(&self.kv.forward(context), 2, self.heads);
        let v = kv.pop().expect("two chunks");
        (kv.pop().expect("two chunks"), v)
    }

    /// [`Self::forward`] with the keys and values from [`Self::keys_values`].
    pub fn forward_kv(&self, x: &Tensor, (k, v): &(Tensor, Tensor)) -> Tensor {
        let q = split_heads(&self.q.forward(x), 1, self.heads);
        self.proj.forward(&attend(&q[0], k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    /// The fused kernel must equal the textbook softmax(q k^T / sqrt(dh)) v.
    #[test]
    fn attend_matches_explicit_softmax() {
        tch::manual_seed(3);
        let q = Tensor::randn([2, 4, 5, 8], (Kind::Float, Device::Cpu));
        let k = Tensor::randn([2, 4, 7, 8], (Kind::Float, Device::Cpu));
        let v = Tensor::randn([2, 4, 7, 8], (Kind::Float, Device::Cpu));
        let weights = (q.matmul(&k.transpose(-2, -1)) / 8f64.sqrt()).softmax(-1, Kind::Float);
        let expected = weights.matmul(&v).transpose(1, 2).reshape([2, 5, 32]);
        assert!(crate::conformance::max_abs_diff(&attend(&q, &k, &v), &expected) < 1e-6);
    }

    /// Cross-attention output ignores the prompt at initialisation, and the
    /// prompt changes it once `proj` is non-zero.
    #[test]
    fn cross_attention_starts_at_zero_and_then_reads_the_prompt() {
        tch::manual_seed(4);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut ca = CrossAttention::new(vs.root(), 16, 16, 2);
        let x = Tensor::randn([2, 3, 16], (Kind::Float, Device::Cpu));
        let ctx = Tensor::randn([2, 6, 16], (Kind::Float, Device::Cpu));
        assert_eq!(ca.forward(&x, &ctx).abs().max().double_value(&[]), 0.0);
        tch::no_grad(|| {
            ca.proj
                .ws
                .copy_(&Tensor::randn([16, 16], (Kind::Float, Device::Cpu)))
        });
        let a = ca.forward(&x, &ctx);
        let b = ca.forward(&x, &(&ctx * 2.0));
        assert_eq!(a.size(), [2, 3, 16]);
        assert!(crate::conformance::max_abs_diff(&a, &b) > 1e-3);
    }
}
