//! Peak signal-to-noise ratio for 8-bit images, as BasicSR `calculate_psnr`.

use anyhow::Result;
use image::RgbImage;

use super::channels::{paired_planes, Channels};
use super::plane::Plane;

/// 10·log10(255² / MSE), the MSE taken in f64 over every pixel of every
/// plane. Identical planes give +∞, as in BasicSR.
pub fn psnr_planes(a: &[Plane<f64>], b: &[Plane<f64>]) -> f64 {
    let (mut sum, mut count) = (0f64, 0usize);
    for (pa, pb) in a.iter().zip(b) {
        sum += pa
            .data
            .iter()
            .zip(&pb.data)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>();
        count += pa.data.len();
    }
    let mse = sum / count as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// PSNR in dB of `img` against `reference`, ignoring a `crop_border` px frame.
pub fn psnr(
    img: &RgbImage,
    reference: &RgbImage,
    crop_border: u32,
    channels: Channels,
) -> Result<f64> {
    let (a, b) = paired_planes(img, reference, crop_border, channels)?;
    Ok(psnr_planes(&a, &b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{kit_pairs, PSNR_TOLERANCE_DB};

    #[test]
    fn pairs_match_basicsr_on_y_and_rgb() {
        for pair in kit_pairs() {
            for (channels, key) in [
                (Channels::Y, "psnr_y_crop4"),
                (Channels::Rgb, "psnr_rgb_crop4"),
            ] {
                let got = psnr(&pair.distorted, &pair.gt, 4, channels).unwrap();
                let err = (got - pair.expected(key)).abs();
                eprintln!("{} {key}: {got:.9} dB, error {err:e}", pair.name);
                assert!(
                    err <= PSNR_TOLERANCE_DB,
                    "{} {key}: {got} dB, error {err:e}",
                    pair.name
                );
            }
        }
    }

    #[test]
    fn known_mse_gives_known_psnr() {
        // Every pixel off by 1 → MSE 1 → 20·log10(255).
        let a = vec![Plane::new(2, 2, vec![10.0; 4])];
        let b = vec![Plane::new(2, 2, vec![11.0; 4])];
        assert!((psnr_planes(&a, &b) - 48.130803608679).abs() < 1e-9);
        assert_eq!(psnr_planes(&a, &a), f64::INFINITY);
    }

    #[test]
    fn mismatched_sizes_are_an_error() {
        assert!(psnr(
            &RgbImage::new(16, 16),
            &RgbImage::new(16, 17),
            0,
            Channels::Y
        )
        .is_err());
    }
}
