//! Per-run sampling options: what the CLI's flags and presets set.

use crate::autoencoder::tiled::TileConfig;
use crate::colorfix::ColorFix;
use crate::pgs::groups::PgsConfig;
use super::detail_gate::DetailGate;
use super::progress::ProgressFn;
use serde::{Deserialize, Serialize};
use super::region_grid::RegionTiles;

/// Where y0, the diffusion's shortcut start, comes from (paper Table 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Y0Source {
    /// The GRM's coarse HR latent (the method).
    Coarse,
    /// The encoded bicubic LR, skipping the GRM (ablation).
    LrLatent,
}

/// Which texture prompt Patch-DiT sees (paper's texture-prompt ablation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptMode {
    /// Top-K RTM priors by cosine similarity of T(y0) (the method).
    Retrieved,
    /// All-zero priors and similarities (ablation).
    Zeros,
}

#[derive(Clone, Debug)]
pub struct SamplingOptions {
    pub pgs: PgsConfig,
    pub seed: u64,
    pub colorfix: ColorFix,
    /// Patches per Patch-DiT call: bounds memory, never changes the result.
    pub max_batch: usize,
    pub ae_tiles: TileConfig,
    /// The whole pipeline region by region (memory bound; the result moves
    /// a little near region borders); None: the image at once.
    pub regions: Option<RegionTiles>,
    pub y0: Y0Source,
    pub prompt: PromptMode,
    /// Bicubic where the LR has no structure (see `detail_gate`); None: off.
    pub detail_gate: Option<DetailGate>,
    /// Weight in [0, 1] of the bicubic detail the decoder cannot represent
    /// (see `bicubic_detail`): 1 for clean inputs, 0 for noisy ones.
    pub bicubic_detail: f64,
    /// Called after every stage and every Patch-DiT call (see `progress`).
    pub progress: Option<ProgressFn>,
}

impl SamplingOptions {
    pub fn new(pgs: PgsConfig, colorfix: ColorFix) -> Self {
        Self {
            pgs,
            seed: 0,
            colorfix,
            max_batch: 64,
            ae_tiles: TileConfig::default(),
            regions: None,
            y0: Y0Source::Coarse,
            prompt: PromptMode::Retrieved,
            detail_gate: Some(DetailGate::default()),
            bicubic_detail: 1.0,
            progress: None,
        }
    }
}
