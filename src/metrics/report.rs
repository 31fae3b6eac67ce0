//! The numbers an SR evaluation reports for one output image.

use anyhow::{Context, Result};
use image::RgbImage;

use super::channels::{paired_planes, Channels};
use super::psnr::psnr_planes;
use super::ssim::ssim_plane;

/// PSNR (dB) and SSIM on the Y channel, `crop` px of border ignored (the
/// papers use crop = scale). Errors when the sizes differ.
pub fn psnr_ssim_y(sr: &RgbImage, hr: &RgbImage, crop: u32) -> Result<(f64, f64)> {
    let (a, b) = paired_planes(sr, hr, crop, Channels::Y)
        .context("comparing an SR image with its HR image")?;
    Ok((psnr_planes(&a, &b), ssim_plane(&a[0], &b[0])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{kit_pairs, PSNR_TOLERANCE_DB, SSIM_TOLERANCE};

    #[test]
    fn reports_the_y_metrics_of_each_pair() {
        for pair in kit_pairs() {
            let (psnr, ssim) = psnr_ssim_y(&pair.distorted, &pair.gt, 4).unwrap();
            assert!(
                (psnr - pair.expected("psnr_y_crop4")).abs() <= PSNR_TOLERANCE_DB,
                "{}",
                pair.name
            );
            assert!(
                (ssim - pair.expected("ssim_y_crop4")).abs() <= SSIM_TOLERANCE,
                "{}",
                pair.name
            );
        }
    }

    #[test]
    fn size_mismatch_is_an_error() {
        let err = psnr_ssim_y(&RgbImage::new(32, 32), &RgbImage::new(32, 28), 4).unwrap_err();
        assert!(format!("{err:#}").contains("reference"), "{err:#}");
    }
}
