//! The similarity-aware texture encoder: "a copy of the first half of the
//! Patch-DiT blocks, trimmed". It turns the K retrieved priors of a patch
//! into the tokens every Patch-DiT cross-attention reads.

use super::block::DitBlock;
use super::config::DitConfig;
use super::embed::{pos_embed_buffer, PatchEmbed, TimestepEmbedder};
use super::layers::PlainLayerNorm;
use tch::nn;
use tch::{Kind, Tensor};

/// Cosine similarities in [-1, 1] are spread over the timestep range before
/// the sinusoid **(ours)**, so the 256 frequencies DiT tuned for t in
/// [0, 1000) resolve differences of 1e-3 in similarity.
pub const SIMILARITY_SCALE: f64 = 1000.0;

/// Keys `x_embedder.proj`, `pos_embed` (fixed), `s_embedder.mlp.{0,2}`,
/// `blocks.{i}.*` (DiT blocks without cross-attention).
///
/// Each prior is embedded like a latent patch (c channels, no y0 beside it),
/// conditioned through adaLN on its own similarity s_k in place of t, and
/// ends in a plain LayerNorm (the cross-attention `kv` projections absorb any
/// affine term). It never sees t, so it runs once per patch and its tokens
/// serve all N denoising steps.
#[derive(Debug)]
pub struct TextureEncoder {
    x_embedder: PatchEmbed,
    pos_embed: Tensor,
    s_embedder: TimestepEmbedder,
    blocks: Vec<DitBlock>,
    norm_final: PlainLayerNorm,
    cfg: DitConfig,
}

impl TextureEncoder {
    pub fn new(vs: nn::Path, cfg: &DitConfig) -> Self {
        let d = cfg.hidden_size;
        Self {
            x_embedder: PatchEmbed::new(&vs / "x_embedder", cfg.in_channels, d, cfg.patch_size),
            pos_embed: pos_embed_buffer(&vs, d, cfg.grid_size()),
            s_embedder: TimestepEmbedder::new(&vs / "s_embedder", d),
            blocks: (0..cfg.texture_depth)
                .map(|i| {
                    DitBlock::new(
                        &vs / "blocks" / i,
                        d,
                        cfg.num_heads,
                        cfg.mlp_hidden(),
                        false,
                    )
                })
                .collect(),
            norm_final: PlainLayerNorm::new(d),
            cfg: cfg.clone(),
        }
    }

    /// `priors` (B, K, c, V, V) and their similarities `sims` (B, K) ->
    /// prompt tokens (B, K * V^2/p^2, D), prior by prior in retrieval order.
    pub fn forward(&self, priors: &Tensor, sims: &Tensor) -> Tensor {
        let (b, k) = (priors.size()[0], priors.size()[1]);
        let (c, v) = (self.cfg.in_channels, self.cfg.input_size);
        let flat = priors.reshape([b * k, c, v, v]);
        let mut x = self.x_embedder.forward(&flat) + &self.pos_embed;
        let cond = self
            .s_embedder
            .forward(&(sims.to_kind(Kind::Float).reshape([b * k]) * SIMILARITY_SCALE));
        for block in &self.blocks {
            x = block.forward(&x, &cond, None);
        }
        self.norm_final.forward(&x).reshape([
            b,
            k * self.cfg.tokens_per_patch(),
            self.cfg.hidden_size,
        ])
    }
}
