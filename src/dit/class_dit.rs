//! DiT exactly as Peebles & Xie publish it (class-conditional, learned
//! sigma), assembled from the same parts as Patch-DiT. It exists so the
//! shared parts are checked end to end against upstream's numbers.

use super::block::DitBlock;
use super::config::DitConfig;
use super::embed::{pos_embed_buffer, PatchEmbed, TimestepEmbedder};
use super::final_layer::{unpatchify, FinalLayer};
use anyhow::{Context, Result};
use tch::nn::{self, Module};
use tch::Tensor;

/// Keys as upstream's `DiT.state_dict()`: `pos_embed`, `x_embedder.proj`,
/// `t_embedder.mlp.{0,2}`, `y_embedder.embedding_table`, `blocks.{i}`,
/// `final_layer`. The texture fields of the config are ignored.
#[derive(Debug)]
pub struct Dit {
    x_embedder: PatchEmbed,
    pos_embed: Tensor,
    t_embedder: TimestepEmbedder,
    /// `num_classes + 1` rows; the last is the classifier-free "null" label.
    y_embedder: nn::Embedding,
    blocks: Vec<DitBlock>,
    final_layer: FinalLayer,
    out_channels: i64,
    patch: i64,
}

impl Dit {
    pub fn new(
        vs: &nn::Path,
        cfg: &DitConfig,
        num_classes: i64,
        learn_sigma: bool,
    ) -> Result<Self> {
        cfg.validate().context("building DiT")?;
        let d = cfg.hidden_size;
        let out_channels = if learn_sigma {
            2 * cfg.in_channels
        } else {
            cfg.in_channels
        };
        let table = nn::EmbeddingConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.02,
            },
            ..Default::default()
        };
        Ok(Self {
            x_embedder: PatchEmbed::new(vs / "x_embedder", cfg.in_channels, d, cfg.patch_size),
            pos_embed: pos_embed_buffer(vs, d, cfg.grid_size()),
            t_embedder: TimestepEmbedder::new(vs / "t_embedder", d),
            y_embedder: nn::embedding(
                vs / "y_embedder" / "embedding_table",
                num_classes + 1,
                d,
                table,
            ),
            blocks: (0..cfg.depth)
                .map(|i| {
                    DitBlock::new(vs / "blocks" / i, d, cfg.num_heads, cfg.mlp_hidden(), false)
                })
                .collect(),
            final_layer: FinalLayer::new(vs / "final_layer", d, cfg.patch_size, out_channels),
            out_channels,
            patch: cfg.patch_size,
        })
    }

    /// Eval-mode forward (no label dropout): `x` (B, C, H, W), `t` (B) float
    /// timesteps, `y` (B) int64 labels -> (B, out_channels, H, W).
    pub fn forward(&self, x: &Tensor, t: &Tensor, y: &Tensor) -> Tensor {
        let mut h = self.x_embedder.forward(x) + &self.pos_embed;
        let c = self.t_embedder.forward(t) + self.y_embedder.forward(y);
        for block in &self.blocks {
            h = block.forward(&h, &c, None);
        }
        unpatchify(
            &self.final_layer.forward(&h, &c),
            self.out_channels,
            self.patch,
        )
    }
}
