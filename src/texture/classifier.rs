//! The texture classifier T: a small CNN that maps a c x V x V latent patch
//! to a feature vector, the key of the Reference Texture Memory.
//!
//! What T learns: the paper's T is an unnamed "pre-trained texture
//! classifier". Ours is trained self-supervised (SimCLR): two augmented
//! views of the same latent patch (flips, 90-degree rotations, small noise,
//! crops) must map close together and away from the other patches of the
//! batch, under the NT-Xent loss below. The augmentations change where a
//! pattern sits and which way it faces but not what it is made of, so T
//! learns what a texture *is* (grass, brick, fur, text strokes) and forgets
//! its placement. That is what a retrieval key needs: a coarse HR patch y0
//! must find RTM patches of the same material, which will never be aligned
//! with it pixel for pixel. The pooling below (per-channel mean and standard
//! deviation over the patch, the texture statistics of Gatys et al. and
//! AdaIN) builds that placement invariance into the architecture.

use super::config::{TextureConfig, NORM_GROUPS};
use crate::nn::{conv2d, group_norm};
use anyhow::{bail, Result};
use tch::{nn, Kind, Tensor};

/// One conv -> GroupNorm -> SiLU stage. GroupNorm, not BatchNorm, so a
/// patch's key does not depend on the other patches of its batch.
#[derive(Debug)]
struct Stage {
    conv: nn::Conv2D,
    norm: nn::GroupNorm,
}

#[derive(Debug)]
pub struct TextureClassifier {
    cfg: TextureConfig,
    stem: nn::Conv2D,
    blocks: Vec<Stage>,
    proj: nn::Linear,
}

/// (input width multiplier, output width multiplier, stride) of each stage:
/// V = 16 -> 16 -> 8 -> 4, enough context for the patterns of one patch.
const STAGES: [(i64, i64, i64); 3] = [(1, 1, 1), (1, 2, 2), (2, 2, 2)];

impl TextureClassifier {
    pub fn new(vs: &nn::Path, cfg: &TextureConfig) -> Result<Self> {
        cfg.validate()?;
        let w = cfg.width;
        let stem = conv2d(vs / "stem", cfg.latent_channels, w, 3, 1);
        let blocks = STAGES
            .iter()
            .enumerate()
            .map(|(i, &(min, mout, stride))| {
                let p = vs / "blocks" / i;
                Stage {
                    conv: conv2d(&p / "conv", min * w, mout * w, 3, stride),
                    norm: group_norm(&p / "norm", NORM_GROUPS, mout * w, 1e-6),
                }
            })
            .collect();
        let pooled = 2 * STAGES[STAGES.len() - 1].1 * w;
        let proj = nn::linear(vs / "proj", pooled, cfg.feature_dim, Default::default());
        Ok(Self {
            cfg: cfg.clone(),
            stem,
            blocks,
            proj,
        })
    }

    /// Where the weights live.
    pub fn device(&self) -> tch::Device {
        self.proj.ws.device()
    }

    pub fn config(&self) -> &TextureConfig {
        &self.cfg
    }

    /// Patches (B, c, H, W) -> raw features (B, feature_dim). Any H, W work;
    /// the RTM and retrieval use V x V.
    pub fn forward(&self, patches: &Tensor) -> Result<Tensor> {
        let size = patches.size();
        if size.len() != 4 || size[1] != self.cfg.latent_channels {
            bail!(
                "texture classifier input must be (B, {}, H, W), got {size:?}",
                self.cfg.latent_channels
            );
        }
        let mut h = patches.apply(&self.stem);
        for stage in &self.blocks {
            h = h.apply(&stage.conv).apply(&stage.norm).silu();
        }
        let mean = h.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
        let std = (&h - &mean)
            .square()
            .mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            .clamp_min(1e-8)
            .sqrt();
        let stats = Tensor::cat(&[mean.flatten(1, -1), std], 1);
        // Pooled statistics are taken in f32 for accuracy, then fed to `proj` in its own dtype (bf16 runs).
        Ok(stats.to_kind(self.proj.ws.kind()).apply(&self.proj))
    }

    /// Unit-length keys, as stored in and compared against the RTM.
    pub fn keys(&self, patches: &Tensor) -> Result<Tensor> {
        Ok(l2_normalize(&self.forward(patches)?))
    }

    /// Keys of many patches, `batch` at a time and without autograd, so that
    /// the 20,000 patches of Algorithm 1 never sit in one activation tensor.
    pub fn keys_batched(&self, patches: &Tensor, batch: i64) -> Result<Tensor> {
        if batch < 1 {
            bail!("texture classifier: batch must be positive, got {batch}");
        }
        tch::no_grad(|| {
            let chunks = patches
                .split(batch, 0)
                .iter()
                .map(|chunk| self.keys(chunk))
                .collect::<Result<Vec<_>>>()?;
            Ok(Tensor::cat(&chunks, 0))
        })
    }
}

/// Rows scaled to unit L2 norm (zero rows stay zero), as F.normalize.
pub fn l2_normalize(x: &Tensor) -> Tensor {
    x / x
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12)
}

/// NT-Xent (SimCLR): for every one of the 2N embeddings, cross-entropy of
/// picking its partner view among the other 2N - 1 by cosine similarity
/// over `temperature`. `z1[i]` and `z2[i]` are two views of patch i.
pub fn contrastive_loss(z1: &Tensor, z2: &Tensor, temperature: f64) -> Result<Tensor> {
    let (s1, s2) = (z1.size(), z2.size());
    if s1 != s2 || s1.len() != 2 || s1[0] < 2 {
        bail!("contrastive loss: need two (N >= 2, D) views of equal shape, got {s1:?} and {s2:?}");
    }
    if !(temperature > 0.0) {
        bail!("contrastive loss: temperature must be positive, got {temperature}");
    }
    let n = s1[0];
    let z = l2_normalize(&Tensor::cat(&[z1, z2], 0));
    let sim = z.matmul(&z.tr()) / temperature;
    // A view must not pick itself.
    let eye = Tensor::eye(2 * n, (Kind::Bool, z.device()));
    let logits = sim.masked_fill(&eye, f64::NEG_INFINITY);
    let partner = (Tensor::arange(2 * n, (Kind::Int64, z.device())) + n).remainder(2 * n);
    Ok(logits.cross_entropy_for_logits(&partner))
}

#[cfg(test)]
#[path = "classifier_tests.rs"]
mod tests;
