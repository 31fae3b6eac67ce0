//! The numbers one SR output gets: PSNR / SSIM against its HR, NIQE alone.

use crate::imageio::save::tensor_to_rgb8;
use crate::metrics::mvg::NiqeUndefined;
use crate::metrics::{niqe, psnr_ssim_y, NiqeParams};
use anyhow::{Context, Result};
use image::RgbImage;
use tch::{Device, Tensor};

/// NIQE's block side: below two whole blocks its covariance is undefined.
const NIQE_BLOCK: u32 = 96;
const NIQE_MIN_BLOCKS: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// dB on Y, `scale` px border ignored.
    pub psnr: f64,
    pub ssim: f64,
    /// `None` where NIQE is undefined (see `niqe_if_defined`).
    pub niqe: Option<f64>,
    /// Wall time of the method on this image.
    pub seconds: f64,
}

/// Scores `sr` against `hr`, both (1,3,H,W) in [0,1], as 8-bit images (what
/// a user saves and what BasicSR reads back).
pub fn score(sr: &Tensor, hr: &Tensor, crop: u32, params: &NiqeParams, seconds: f64) -> Result<Score> {
    let sr8 = tensor_to_rgb8(&sr.to_device(Device::Cpu));
    let hr8 = tensor_to_rgb8(&hr.to_device(Device::Cpu));
    let (psnr, ssim) = psnr_ssim_y(&sr8, &hr8, crop)?;
    Ok(Score { psnr, ssim, niqe: niqe_if_defined(&sr8, crop, params)?, seconds })
}

/// NIQE with a `crop` px border ignored, or `None` where it is undefined:
/// too small an image, or one too flat (fewer than two blocks with finite
/// features, e.g. a smooth gradient wallpaper).
pub fn niqe_if_defined(img: &RgbImage, crop: u32, params: &NiqeParams) -> Result<Option<f64>> {
    let blocks = |side: u32| side.saturating_sub(2 * crop) / NIQE_BLOCK;
    if blocks(img.width()) * blocks(img.height()) < NIQE_MIN_BLOCKS {
        return Ok(None);
    }
    match niqe(img, crop, params) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.downcast_ref::<NiqeUndefined>().is_some() => Ok(None),
        Err(e) => Err(e).context("computing NIQE"),
    }
}

/// The column means; NIQE over the images that have one.
pub fn mean(scores: &[Score]) -> Score {
    let n = scores.len().max(1) as f64;
    let niqes: Vec<f64> = scores.iter().filter_map(|s| s.niqe).collect();
    Score {
        psnr: scores.iter().map(|s| s.psnr).sum::<f64>() / n,
        ssim: scores.iter().map(|s| s.ssim).sum::<f64>() / n,
        niqe: (!niqes.is_empty()).then(|| niqes.iter().sum::<f64>() / niqes.len() as f64),
        seconds: scores.iter().map(|s| s.seconds).sum::<f64>() / n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn identical_images_score_perfectly_and_small_ones_have_no_niqe() {
        let img = (Tensor::arange(3 * 40 * 40, (Kind::Float, Device::Cpu)).view([1, 3, 40, 40]).remainder(200)) / 255.0;
        let s = score(&img, &img, 4, &NiqeParams::bundled(), 0.5).unwrap();
        assert_eq!(s.psnr, f64::INFINITY);
        assert!((s.ssim - 1.0).abs() < 1e-12);
        assert_eq!(s.niqe, None);
    }

    #[test]
    fn niqe_needs_two_whole_blocks_after_the_crop() {
        let p = NiqeParams::bundled();
        let noisy = |w, h| RgbImage::from_fn(w, h, |x, y| image::Rgb([((x * 37 + y * 101) % 256) as u8, ((x * x + y) % 256) as u8, ((y * 13) % 256) as u8]));
        assert_eq!(niqe_if_defined(&noisy(200, 103), 4, &p).unwrap(), None);
        assert!(niqe_if_defined(&noisy(200, 104), 4, &p).unwrap().unwrap().is_finite());
    }

    #[test]
    fn a_flat_image_has_no_niqe_instead_of_an_error() {
        let flat = RgbImage::from_pixel(300, 300, image::Rgb([90, 120, 200]));
        assert_eq!(niqe_if_defined(&flat, 4, &NiqeParams::bundled()).unwrap(), None);
    }

    #[test]
    fn mean_averages_niqe_over_the_images_that_have_it() {
        let a = Score { psnr: 20.0, ssim: 0.5, niqe: Some(6.0), seconds: 1.0 };
        let b = Score { psnr: 30.0, ssim: 0.7, niqe: None, seconds: 3.0 };
        let m = mean(&[a, b]);
        assert_eq!((m.psnr, m.ssim, m.niqe, m.seconds), (25.0, 0.6, Some(6.0), 2.0));
        assert_eq!(mean(&[b]).niqe, None);
    }
}
