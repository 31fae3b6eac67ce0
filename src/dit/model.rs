//! Patch-DiT: the denoiser that PatchScaler runs on each latent patch.

use super::block::DitBlock;
use super::config::DitConfig;
use super::embed::{pos_embed_buffer, PatchEmbed, TimestepEmbedder};
use super::final_layer::{unpatchify, FinalLayer};
use super::texture_encoder::TextureEncoder;
use anyhow::{Context, Result};
use tch::{nn, Tensor};

/// DiT with three changes (SPEC section 2): the input is `concat(y_t, y0)`
/// (2c channels), every block cross-attends to the texture-prompt tokens,
/// and there is no class embedding and no learned variance (the output is
/// the c-channel estimate of the config's `target`, the noise by default).
///
/// Keys: `x_embedder.proj`, `pos_embed` (fixed buffer), `t_embedder.mlp.{0,2}`,
/// `blocks.{i}.*`, `final_layer.*`, `texture_encoder.*`.
#[derive(Debug)]
pub struct PatchDiT {
    x_embedder: PatchEmbed,
    pos_embed: Tensor,
    t_embedder: TimestepEmbedder,
    pub(super) blocks: Vec<DitBlock>,
    pub(super) final_layer: FinalLayer,
    texture_encoder: TextureEncoder,
    cfg: DitConfig,
}

impl PatchDiT {
    /// Builds a freshly initialised model (DiT's init: Xavier linears,
    /// N(0, 0.02) timestep MLP, adaLN, final linear and cross-attention
    /// output projections at zero); load weights into `vs` afterwards.
    pub fn new(vs: &nn::Path, cfg: &DitConfig) -> Result<Self> {
        cfg.validate().context("building PatchDiT")?;
        let d = cfg.hidden_size;
        Ok(Self {
            x_embedder: PatchEmbed::new(vs / "x_embedder", 2 * cfg.in_channels, d, cfg.patch_size),
            pos_embed: pos_embed_buffer(vs, d, cfg.grid_size()),
            t_embedder: TimestepEmbedder::new(vs / "t_embedder", d),
            blocks: (0..cfg.depth)
                .map(|i| DitBlock::new(vs / "blocks" / i, d, cfg.num_heads, cfg.mlp_hidden(), true))
                .collect(),
            final_layer: FinalLayer::new(vs / "final_layer", d, cfg.patch_size, cfg.in_channels),
            texture_encoder: TextureEncoder::new(vs / "texture_encoder", cfg),
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &DitConfig {
        &self.cfg
    }

    /// The texture prompt of a batch of patches: `priors` (B, K, c, V, V)
    /// with similarities `sims` (B, K) -> tokens (B, K * V^2/p^2, D).
    /// Independent of t: compute once per patch, reuse for every step.
    pub fn encode_texture(&self, priors: &Tensor, sims: &Tensor) -> Tensor {
        self.texture_encoder.forward(priors, sims)
    }

    /// Every block's cross-attention keys and values for prompt `tokens`
    /// (B, M, D) from [`Self::encode_texture`]. Like the tokens they do not
    /// depend on t: a sampler computes them once per batch of patches instead
    /// of at every step (they are about a third of a step's FLOPs).
    pub fn prompt_kv(&self, tokens: &Tensor) -> PromptKv {
        PromptKv(
            self.blocks
                .iter()
                .map(|b| b.prompt.as_ref().expect("Patch-DiT blocks have a prompt").keys_values(tokens))
                .collect(),
        )
    }

    /// The predicted target (B, c, V, V) for the noisy patch `y_t`, the coarse
    /// GRM patch `y0` (both (B, c, V, V)), original timesteps `t` (B, float)
    /// and prompt `tokens` from [`Self::encode_texture`].
    pub fn forward(&self, y_t: &Tensor, y0: &Tensor, t: &Tensor, tokens: &Tensor) -> Tensor {
        self.forward_kv(y_t, y0, t, &self.prompt_kv(tokens))
    }

    /// [`Self::forward`] with the prompt's keys and values from [`Self::prompt_kv`].
    pub fn forward_kv(&self, y_t: &Tensor, y0: &Tensor, t: &Tensor, prompt: &PromptKv) -> Tensor {
        let mut x = self.x_embedder.forward(&Tensor::cat(&[y_t, y0], 1)) + &self.pos_embed;
        let c = self.t_embedder.forward(t);
        for (block, kv) in self.blocks.iter().zip(&prompt.0) {
            x = block.forward(&x, &c, Some(kv));
        }
        let out = unpatchify(
            &self.final_layer.forward(&x, &c),
            self.cfg.in_channels,
            self.cfg.patch_size,
        );
        match self.cfg.y0_skip {
            true => out + y0,
            false => out,
        }
    }
}

/// Cross-attention keys and values of a batch's texture prompt, one
/// (k, v) pair of (B, H, M, dh) per block.
#[derive(Debug)]
pub struct PromptKv(Vec<(Tensor, Tensor)>);

impl PromptKv {
    /// The keys and values of the batch's first `len` prompts: a batch whose
    /// longer-running patches sit first keeps using its keys and values
    /// while the others finish.
    pub fn narrow(&self, len: i64) -> PromptKv {
        PromptKv(self.0.iter().map(|(k, v)| (k.narrow(0, 0, len), v.narrow(0, 0, len))).collect())
    }
}
