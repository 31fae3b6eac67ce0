//! LR -> bicubic up -> E -> GRM: how the pipeline turns an LR image into the
//! latents everything after it works on. The trainers call this one function
//! for their inputs (GRM, texture classifier, Patch-DiT pairs), so that what
//! a part learns from is exactly what it is given at inference; a second copy
//! would drift (a clamp, a range, a padding) and nobody would notice.
//!
//! `restore` in the pipeline does the same on whole images, adding only what
//! an arbitrary image size needs (replicate padding to whole latent pixels,
//! tiled encoding within a memory budget); `restore_matches_coarse_latents`
//! checks that the two agree on a crop that needs neither.

use crate::autoencoder::Autoencoder;
use crate::grm::unet::Grm;
use crate::resize::bicubic::upsample_bicubic;
use anyhow::Result;
use tch::{Kind, Tensor};

/// The latents of LR crops on the way to the coarse HR estimate.
pub struct Coarse {
    /// Bicubic up to (h, w), clamped to [0, 1].
    pub bicubic: Tensor,
    /// E(bicubic), float32.
    pub y_lr: Tensor,
    /// GRM(y_lr), float32; `y_lr` itself when no GRM is given.
    pub y_hr: Tensor,
    /// The GRM's confidence logit; absent without a GRM.
    pub logit: Option<Tensor>,
}

/// Runs LR crops `lr` (B, 3, h/s, w/s) in [0, 1] up to (h, w), through the
/// frozen encoder and, when given, the GRM. No graph is recorded.
pub fn coarse_latents(
    ae: &Autoencoder,
    grm: Option<&Grm>,
    lr: &Tensor,
    h: i64,
    w: i64,
) -> Result<Coarse> {
    tch::no_grad(|| {
        let dev = ae.device();
        let bicubic = upsample_bicubic(
            &lr.to_device(dev).to_kind(Kind::Float),
            h as usize,
            w as usize,
        )?
        .clamp(0.0, 1.0);
        let y_lr = ae.encode(&(&bicubic * 2.0 - 1.0)).to_kind(Kind::Float);
        let (y_hr, logit) = match grm {
            Some(grm) => {
                let (y, logit) = grm.forward_with_logit(&y_lr)?;
                (y.to_kind(Kind::Float), Some(logit.to_kind(Kind::Float)))
            }
            None => (y_lr.shallow_clone(), None),
        };
        Ok(Coarse {
            bicubic,
            y_lr,
            y_hr,
            logit,
        })
    })
}
