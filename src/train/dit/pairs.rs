//! Training pairs for Patch-DiT (paper Eq. 7): aligned latent patches of the
//! HR image (x0, the target) and of the GRM's coarse estimate from its
//! degraded LR (y0, the condition and the shortcut start), with the texture
//! prompt retrieved for y0 exactly as at inference.
//!
//! The degradation (on the pair loader's threads), the AE encodings and the
//! GRM run once per crop, and a crop then yields several V x V patch pairs:
//! those stages cost far more than one Patch-DiT step, so spreading them over
//! many patches (and, with `--reuse`, several steps) keeps the DiT busy.

use crate::degrade::LrMix;
use crate::model::Model;
use crate::pipeline::coarse::coarse_latents;
use crate::texture::retrieval::retrieve;
use crate::train::lr_pairs::PairConfig as LrPairConfig;
use anyhow::{ensure, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// How crops become patch pairs; hashed into the run's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairConfig {
    /// SR factor between HR and LR (the model's native scale).
    pub scale: i64,
    /// Shares of the crops' bicubic, light and Real-ESRGAN LRs, so clean
    /// and lightly degraded inputs are in distribution too.
    pub mix: LrMix,
    /// Patch pairs cut from each crop, at independent random positions.
    pub patches_per_crop: i64,
    /// Share of patches whose prompt is all zeros (priors and similarities),
    /// what `upscale --prompt zeros` feeds; 0 follows the paper.
    pub prompt_dropout: f64,
}

/// Aligned patch pairs with their texture prompts, P patches in all.
pub struct PatchPairs {
    /// (P, c, V, V) HR latent patches: the clean sample the noise is added to.
    pub x0: Tensor,
    /// (P, c, V, V) coarse latent patches from the GRM: the condition.
    pub y0: Tensor,
    /// (P, K, c, V, V) retrieved priors and (P, K) their cosine similarities.
    pub priors: Tensor,
    pub sims: Tensor,
}

impl PairConfig {
    /// The (HR, LR) crops these pairs are cut from, drawn from `seed`.
    pub fn lr_pairs(&self, seed: u64) -> LrPairConfig {
        LrPairConfig {
            scale: self.scale,
            mix: self.mix,
            ..LrPairConfig::realesrgan_x4(seed)
        }
    }
}

/// (x0, y0) latents of HR crops `hr` (B, 3, S, S) and their LRs `lr`
/// (B, 3, S/scale, S/scale), both in [0, 1]: x0 = E(HR), y0 = GRM(E(bicubic
/// up(LR))), by the pipeline's own `coarse_latents`. Frozen parts, no graph.
pub fn latent_pair(model: &Model, hr: &Tensor, lr: &Tensor) -> Result<(Tensor, Tensor)> {
    let (h, w) = (hr.size()[2], hr.size()[3]);
    tch::no_grad(|| {
        let x0 = model
            .ae
            .encode(&(hr.to_device(model.device) * 2.0 - 1.0))
            .to_kind(Kind::Float);
        let y0 = coarse_latents(&model.ae, Some(&model.grm), lr, h, w)?.y_hr;
        Ok((x0, y0))
    })
}

/// `per_crop` V x V patches at the same random position in x0 and y0 of
/// every crop: (B * per_crop, c, V, V) each, crop by crop.
pub fn cut_patches(
    x0: &Tensor,
    y0: &Tensor,
    v: i64,
    per_crop: i64,
    rng: &mut impl Rng,
) -> Result<(Tensor, Tensor)> {
    let (b, _, h, w) = x0.size4()?;
    ensure!(
        x0.size() == y0.size(),
        "x0 {:?} and y0 {:?} latents differ in shape",
        x0.size(),
        y0.size()
    );
    ensure!(
        h >= v && w >= v,
        "a {h}x{w} latent crop is smaller than the {v}x{v} Patch-DiT patch; use a larger --crop"
    );
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..b {
        for _ in 0..per_crop {
            let (top, left) = (rng.random_range(0..=h - v), rng.random_range(0..=w - v));
            let cut = |t: &Tensor| t.get(i).narrow(1, top, v).narrow(2, left, v);
            xs.push(cut(x0));
            ys.push(cut(y0));
        }
    }
    Ok((Tensor::stack(&xs, 0), Tensor::stack(&ys, 0)))
}

/// Encodes and cuts one batch of HR crops (B, 3, S, S) and their LRs into
/// `B * patches_per_crop` pairs and retrieves their texture prompts.
pub fn make_pairs(
    model: &Model,
    hr: &Tensor,
    lr: &Tensor,
    cfg: &PairConfig,
    rng: &mut impl Rng,
) -> Result<PatchPairs> {
    let (x0, y0) = latent_pair(model, hr, lr)?;
    cut_pairs(model, &x0, &y0, cfg, rng)
}

/// `patches_per_crop` pairs at random places of each crop's latents (x0,
/// y0), with their texture prompts.
pub fn cut_pairs(
    model: &Model,
    x0: &Tensor,
    y0: &Tensor,
    cfg: &PairConfig,
    rng: &mut impl Rng,
) -> Result<PatchPairs> {
    let (x0, y0) = cut_patches(
        x0,
        y0,
        model.config.dit.input_size,
        cfg.patches_per_crop,
        rng,
    )?;
    let (priors, sims) = retrieve(&model.rtm, &model.classifier, &y0, model.config.texture.k)?;
    let (priors, sims) = drop_prompts(
        &priors.to_kind(Kind::Float),
        &sims.to_kind(Kind::Float),
        cfg.prompt_dropout,
        rng,
    );
    Ok(PatchPairs {
        x0,
        y0,
        priors,
        sims,
    })
}

/// Zeroes the prompt (priors and similarities) of each patch with
/// probability `p`, as `PromptMode::Zeros` does at inference.
pub fn drop_prompts(
    priors: &Tensor,
    sims: &Tensor,
    p: f64,
    rng: &mut impl Rng,
) -> (Tensor, Tensor) {
    if p <= 0.0 {
        return (priors.shallow_clone(), sims.shallow_clone());
    }
    let keep: Vec<f32> = (0..sims.size()[0])
        .map(|_| if rng.random::<f64>() < p { 0.0 } else { 1.0 })
        .collect();
    let keep = Tensor::from_slice(&keep).to_device(sims.device());
    (
        priors * keep.view([-1, 1, 1, 1, 1]),
        sims * keep.view([-1, 1]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::Device;

    #[test]
    fn patches_are_cut_at_the_same_place_in_x0_and_y0() {
        let x0 = Tensor::randn([2, 4, 20, 24], (Kind::Float, Device::Cpu));
        // y0 = x0 + a per-crop constant: aligned cuts differ by exactly it.
        let offset = Tensor::from_slice(&[3.0f32, -5.0]).view([2, 1, 1, 1]);
        let y0 = &x0 + &offset;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (xp, yp) = cut_patches(&x0, &y0, 16, 3, &mut rng).unwrap();
        assert_eq!(xp.size(), [6, 4, 16, 16]);
        let diff = (&yp - &xp).mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
        let got: Vec<f32> = Vec::try_from(diff).unwrap();
        for (i, d) in got.iter().enumerate() {
            let want = if i < 3 { 3.0 } else { -5.0 };
            assert!(
                (d - want).abs() < 1e-5,
                "patch {i}: y0 - x0 = {d}, want {want}"
            );
        }
        // Each patch is a real window of its crop (not, e.g., resampled).
        let found = (0..=4).any(|top| {
            (0..=8).any(|left| {
                x0.get(0)
                    .narrow(1, top, 16)
                    .narrow(2, left, 16)
                    .equal(&xp.get(0))
            })
        });
        assert!(found);
        assert!(
            cut_patches(&x0, &y0, 21, 1, &mut rng).is_err(),
            "patch larger than the crop"
        );
    }

    #[test]
    fn prompt_dropout_zeroes_whole_prompts_only() {
        let priors = Tensor::ones([200, 2, 4, 4, 4], (Kind::Float, Device::Cpu));
        let sims = Tensor::ones([200, 2], (Kind::Float, Device::Cpu));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (p, s) = drop_prompts(&priors, &sims, 0.25, &mut rng);
        let per_patch = p.sum_dim_intlist(&[1i64, 2, 3, 4][..], false, Kind::Float);
        let zeroed = per_patch.eq(0.0);
        assert!(
            per_patch
                .eq(0.0)
                .logical_or(&per_patch.eq(128.0))
                .all()
                .int64_value(&[])
                == 1
        );
        assert!(
            zeroed
                .eq_tensor(&s.sum_dim_intlist(&[1i64][..], false, Kind::Float).eq(0.0))
                .all()
                .int64_value(&[])
                == 1
        );
        let share = zeroed
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[]);
        assert!((0.15..0.35).contains(&share), "dropped share {share}");
        let (p0, _) = drop_prompts(&priors, &sims, 0.0, &mut rng);
        assert!(p0.equal(&priors));
    }
}
