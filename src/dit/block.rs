//! The DiT block with adaLN-Zero, plus PatchScaler's cross-attention to the
//! texture prompt between self-attention and MLP (order after PixArt-alpha).

use super::attention::{CrossAttention, SelfAttention};
use super::layers::{modulate, AdaLn, Mlp, PlainLayerNorm};
use tch::nn;
use tch::Tensor;

/// `x + cross_attn(norm_ca(x), prompt)`. Unlike the modulated norms, `norm_ca`
/// keeps its affine terms: the prompt path is not conditioned on t.
#[derive(Debug)]
pub struct PromptAttention {
    norm_ca: nn::LayerNorm,
    pub(super) cross_attn: CrossAttention,
}

impl PromptAttention {
    pub fn new(vs: &nn::Path, hidden: i64, heads: i64) -> Self {
        let cfg = nn::LayerNormConfig {
            eps: 1e-6,
            ..Default::default()
        };
        Self {
            norm_ca: nn::layer_norm(vs / "norm_ca", vec![hidden], cfg),
            cross_attn: CrossAttention::new(vs / "cross_attn", hidden, hidden, heads),
        }
    }

    /// The prompt's keys and values (see [`CrossAttention::keys_values`]).
    pub fn keys_values(&self, prompt: &Tensor) -> (Tensor, Tensor) {
        self.cross_attn.keys_values(prompt)
    }

    pub fn forward(&self, x: &Tensor, prompt_kv: &(Tensor, Tensor)) -> Tensor {
        x + self
            .cross_attn
            .forward_kv(&nn::Module::forward(&self.norm_ca, x), prompt_kv)
    }
}

/// One DiT block. Keys as upstream: `norm1`/`norm2` (no parameters), `attn`,
/// `mlp.fc1`/`mlp.fc2`, `adaLN_modulation.1`; with a prompt also `norm_ca`
/// and `cross_attn`. Without one it is exactly DiT's `DiTBlock`.
#[derive(Debug)]
pub struct DitBlock {
    pub(super) norm1: PlainLayerNorm,
    pub(super) attn: SelfAttention,
    pub(super) prompt: Option<PromptAttention>,
    pub(super) norm2: PlainLayerNorm,
    pub(super) mlp: Mlp,
    pub(super) ada_ln: AdaLn,
}

impl DitBlock {
    pub fn new(vs: nn::Path, hidden: i64, heads: i64, mlp_hidden: i64, with_prompt: bool) -> Self {
        Self {
            norm1: PlainLayerNorm::new(hidden),
            attn: SelfAttention::new(&vs / "attn", hidden, heads),
            prompt: with_prompt.then(|| PromptAttention::new(&vs, hidden, heads)),
            norm2: PlainLayerNorm::new(hidden),
            mlp: Mlp::new(&vs / "mlp", hidden, mlp_hidden),
            ada_ln: AdaLn::new(vs, hidden, 6),
        }
    }

    /// `x` (B, N, D) tokens, `c` (B, D) condition, `prompt` the keys and
    /// values of the prompt tokens ([`PromptAttention::keys_values`]) for
    /// blocks built with cross-attention (ignored otherwise).
    pub fn forward(&self, x: &Tensor, c: &Tensor, prompt: Option<&(Tensor, Tensor)>) -> Tensor {
        let [shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp] =
            &self.ada_ln.forward(c)[..]
        else {
            unreachable!("adaLN is built with six chunks")
        };
        let attn_in = modulate(&self.norm1.forward(x), shift_msa, scale_msa);
        let mut x = x + gate_msa.unsqueeze(1) * self.attn.forward(&attn_in);
        if let (Some(layer), Some(prompt)) = (&self.prompt, prompt) {
            x = layer.forward(&x, prompt);
        }
        let mlp_in = modulate(&self.norm2.forward(&x), shift_mlp, scale_mlp);
        &x + gate_mlp.unsqueeze(1) * self.mlp.forward(&mlp_in)
    }
}
