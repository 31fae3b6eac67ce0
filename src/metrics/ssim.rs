//! Structural similarity (Wang et al. 2004), as BasicSR `calculate_ssim`:
//! an 11×11 Gaussian window (σ = 1.5) evaluated only where it fits.

use anyhow::{ensure, Result};
use image::RgbImage;

use super::channels::{paired_planes, Channels};
use super::plane::Plane;

const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;
/// Stabilisers for dark / flat regions, (K·L)² with L = 255.
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// OpenCV `getGaussianKernel(11, 1.5)`: sampled, then normalised to sum 1.
fn gaussian_kernel() -> [f64; WINDOW] {
    let centre = (WINDOW - 1) as f64 / 2.0;
    let mut k = [0.0; WINDOW];
    for (i, v) in k.iter_mut().enumerate() {
        let x = i as f64 - centre;
        *v = (-0.5 / (SIGMA * SIGMA) * x * x).exp();
    }
    let inv_sum = 1.0 / k.iter().sum::<f64>();
    k.map(|v| v * inv_sum)
}

/// Gaussian-weighted local mean at every position where the whole window
/// fits (so borders never matter). The 2-D window is the outer product of the
/// 1-D kernel, so it is applied as two 1-D passes.
fn local_mean(p: &Plane<f64>, k: &[f64; WINDOW]) -> Plane<f64> {
    let (h, w) = (p.height, p.width - WINDOW + 1);
    let across: Plane<f64> = Plane::from_fn(h, w, |y, x| {
        k.iter().zip(&p.row(y)[x..]).map(|(a, b)| a * b).sum()
    });
    Plane::from_fn(h - WINDOW + 1, w, |y, x| {
        k.iter()
            .enumerate()
            .map(|(i, a)| a * across.at(y + i, x))
            .sum()
    })
}

/// Mean SSIM of two planes of 8-bit-range values.
pub fn ssim_plane(a: &Plane<f64>, b: &Plane<f64>) -> Result<f64> {
    ensure!(
        (a.height, a.width) == (b.height, b.width),
        "SSIM of a {}x{} plane against a {}x{} one",
        a.height,
        a.width,
        b.height,
        b.width
    );
    ensure!(
        a.height >= WINDOW && a.width >= WINDOW,
        "SSIM needs at least {WINDOW}x{WINDOW} pixels, got {}x{}",
        a.height,
        a.width
    );
    let k = gaussian_kernel();
    let product = |f: fn(f64, f64) -> f64| {
        Plane::new(
            a.height,
            a.width,
            a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect(),
        )
    };
    let mu1 = local_mean(a, &k);
    let mu2 = local_mean(b, &k);
    let e11 = local_mean(&product(|x, _| x * x), &k);
    let e22 = local_mean(&product(|_, y| y * y), &k);
    let e12 = local_mean(&product(|x, y| x * y), &k);

    let n = mu1.data.len();
    let total: f64 = (0..n)
        .map(|i| {
            let (m1, m2) = (mu1.data[i], mu2.data[i]);
            let (m11, m22, m12) = (m1 * m1, m2 * m2, m1 * m2);
            let (s11, s22, s12) = (e11.data[i] - m11, e22.data[i] - m22, e12.data[i] - m12);
            ((2.0 * m12 + C1) * (2.0 * s12 + C2)) / ((m11 + m22 + C1) * (s11 + s22 + C2))
        })
        .sum();
    Ok(total / n as f64)
}

/// SSIM of `img` against `reference`, ignoring a `crop_border` px frame; in
/// RGB mode the mean over the three channels.
pub fn ssim(
    img: &RgbImage,
    reference: &RgbImage,
    crop_border: u32,
    channels: Channels,
) -> Result<f64> {
    let (a, b) = paired_planes(img, reference, crop_border, channels)?;
    let per_channel = a
        .iter()
        .zip(&b)
        .map(|(pa, pb)| ssim_plane(pa, pb))
        .collect::<Result<Vec<_>>>()?;
    Ok(per_channel.iter().sum::<f64>() / per_channel.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::{kit_pairs, SSIM_TOLERANCE};

    #[test]
    fn pairs_match_basicsr_on_y_and_rgb() {
        for pair in kit_pairs() {
            for (channels, key) in [
                (Channels::Y, "ssim_y_crop4"),
                (Channels::Rgb, "ssim_rgb_crop4"),
            ] {
                let got = ssim(&pair.distorted, &pair.gt, 4, channels).unwrap();
                let err = (got - pair.expected(key)).abs();
                eprintln!("{} {key}: {got:.9}, error {err:e}", pair.name);
                assert!(
                    err <= SSIM_TOLERANCE,
                    "{} {key}: {got}, error {err:e}",
                    pair.name
                );
            }
        }
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel();
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(k[0], k[10]);
        assert!(k[5] > k[4]);
    }

    #[test]
    fn identical_planes_score_one_and_tiny_planes_fail() {
        let p = Plane::from_fn(12, 13, |y, x| ((y * 31 + x * 17) % 256) as f64);
        assert!((ssim_plane(&p, &p).unwrap() - 1.0).abs() < 1e-12);
        let tiny = Plane::new(10, 10, vec![0.0; 100]);
        assert!(ssim_plane(&tiny, &tiny).is_err());
    }
}
