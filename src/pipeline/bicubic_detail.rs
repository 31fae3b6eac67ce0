//! Give back the detail the autoencoder cannot represent (ours, not in the paper).
//!
//! Everything PatchScaler returns passes through the decoder D, and D(E(x))
//! is not x: our small autoencoder reconstructs at about 25 dB, so even a
//! perfect latent decodes blurrier than bicubic. The pipeline therefore adds
//! what D loses of the bicubic input itself:
//!
//!   out = D(z) + w (bicubic - D(E(bicubic))),
//!
//! E(bicubic) being the latent the pipeline encodes anyway. With w = 1 a
//! model that changed nothing (z = E(bicubic)) returns bicubic exactly, and
//! what the GRM and Patch-DiT change is added to bicubic in the decoder's own
//! terms, its reconstruction error cancelling. The cost is one more decode.
//!
//! The trade-off (README, "Bicubic detail"): on clean inputs w = 1 gains
//! PSNR, SSIM and NIQE over w = 0; on noisy or compressed ones the residual
//! holds the noise and the blocks the GRM removed, and w = 0 is better (the
//! option `--bicubic-detail`).
//!
//! With the exact (space-to-depth) latent D(E(bicubic)) is bicubic, so the
//! detail is exactly zero: the second decode is skipped and the weight has
//! no effect.

use crate::autoencoder::tiled::{decode_tiled, TileConfig};
use crate::model::Model;
use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

/// D(`latent`) plus `weight` times what the decoder loses of `bicubic`
/// (1, 3, H, W) in [0, 1], given E(bicubic) as `bicubic_latent` (both
/// latents padded to whole latent pixels, as the pipeline makes them): the
/// image every result is made of before the colour fix.
pub fn decode_with_bicubic_detail(
    model: &Model,
    latent: &Tensor,
    bicubic: &Tensor,
    bicubic_latent: &Tensor,
    weight: f64,
    tiles: &TileConfig,
) -> Result<Tensor> {
    ensure!((0.0..=1.0).contains(&weight), "bicubic detail weight {weight}: must lie in [0, 1]");
    let size = (bicubic.size()[2], bicubic.size()[3]);
    let decoded = decode_image(model, latent, size, tiles)?;
    if decoder_passes(weight, model.ae.is_exact()) == 1 {
        return Ok(decoded);
    }
    // One new image-sized tensor, the rest in place, and `decoded` freed on
    // return, before the colour fix's buffers: the largest outputs are
    // hundreds of MiB each (the memory estimate counts them).
    let mut detail = bicubic - decode_image(model, bicubic_latent, size, tiles)?;
    let _ = detail.g_mul_scalar_(weight).g_add_(&decoded);
    Ok(detail)
}

/// Decoder passes per result: the bicubic detail adds one unless its weight
/// is 0 or the latent is exact (then the detail is zero).
pub fn decoder_passes(weight: f64, exact_latent: bool) -> usize {
    if weight > 0.0 && !exact_latent {
        2
    } else {
        1
    }
}

/// D(`latent`) as an image in [0, 1] (unclamped), float32, cut to `size`
/// (the latent may be padded).
pub fn decode_image(model: &Model, latent: &Tensor, (h, w): (i64, i64), tiles: &TileConfig) -> Result<Tensor> {
    let mut decoded = decode_tiled(&model.ae, &latent.to_kind(model.kind()), tiles)?.to_kind(Kind::Float);
    let _ = decoded.g_add_scalar_(1.0).g_mul_scalar_(0.5);
    Ok(decoded.narrow(2, 0, h).narrow(3, 0, w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use crate::pipeline::{restore, SamplingOptions};
    use crate::pgs::groups::PgsConfig;
    use tch::Device;

    /// With w = 1, the decoder's error cancels: a latent the model left as
    /// E(bicubic) decodes to bicubic exactly, whatever the autoencoder.
    #[test]
    fn an_unchanged_latent_returns_bicubic_and_w_scales_the_detail() {
        let model = Model::init(ModelConfig::tiny(), Device::Cpu, 5).unwrap();
        tch::manual_seed(2);
        let lr = Tensor::rand([1, 3, 9, 7], (Kind::Float, Device::Cpu));
        let opts = SamplingOptions::new(PgsConfig::paper(), model.config.colorfix);
        let r = tch::no_grad(|| restore(&model, &lr, &opts, 1)).unwrap();
        let size = (r.bicubic.size()[2], r.bicubic.size()[3]);
        let tiles = &opts.ae_tiles;
        let with = |w: f64| tch::no_grad(|| decode_with_bicubic_detail(&model, &r.y_lr, &r.bicubic, &r.y_lr, w, tiles));
        let decoded = tch::no_grad(|| decode_image(&model, &r.y_lr, size, tiles)).unwrap();
        let gap = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        assert!(gap(&decoded, &r.bicubic) > 0.05, "an untrained decoder does not reconstruct");
        let full = with(1.0).unwrap();
        assert!(gap(&full, &r.bicubic) < 1e-5, "{}", gap(&full, &r.bicubic));
        let half = with(0.5).unwrap();
        assert!(gap(&half, &((&decoded + &r.bicubic) * 0.5)) < 1e-5);
        let none = with(0.0).unwrap();
        assert_eq!(gap(&none, &decoded), 0.0);
        assert_eq!((decoder_passes(0.0, false), decoder_passes(0.5, false), decoder_passes(1.0, false)), (1, 2, 2));
        assert_eq!(decoder_passes(1.0, true), 1);
        let err = with(1.5).unwrap_err();
        assert!(err.to_string().contains("[0, 1]"), "{err}");
    }
}
