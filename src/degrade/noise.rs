//! Additive Gaussian and Poisson noise of Real-ESRGAN
//! (`random_add_gaussian_noise_pt` / `random_add_poisson_noise_pt`), sampled
//! from the caller's generator instead of torch's global one so that a seed
//! fixes the whole degradation.

use super::random_kernel::uniform;
use anyhow::Result;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// One noise stage: Gaussian with `gaussian_prob`, else Poisson; either one
/// is "gray" (the same noise on every channel) with `gray_prob`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseConfig {
    pub gaussian_prob: f64,
    /// Standard deviation on the 0..255 scale.
    pub gaussian_sigma: (f64, f64),
    pub poisson_scale: (f64, f64),
    pub gray_prob: f64,
}

impl NoiseConfig {
    pub fn realesrgan_first() -> Self {
        Self {
            gaussian_prob: 0.5,
            gaussian_sigma: (1.0, 30.0),
            poisson_scale: (0.05, 3.0),
            gray_prob: 0.4,
        }
    }

    pub fn realesrgan_second() -> Self {
        Self {
            gaussian_sigma: (1.0, 25.0),
            poisson_scale: (0.05, 2.5),
            ..Self::realesrgan_first()
        }
    }
}

/// Adds one random noise draw to `img` (1, 3, H, W) f32 and clamps to [0, 1].
pub fn random_add_noise(img: &Tensor, rng: &mut impl Rng, cfg: &NoiseConfig) -> Result<Tensor> {
    let (_, c, h, w) = img.size4()?;
    let pixels: Vec<f32> = Vec::try_from(img.to_kind(Kind::Float).flatten(0, -1))?;
    let noise = if rng.random::<f64>() < cfg.gaussian_prob {
        let sigma = uniform(rng, cfg.gaussian_sigma) / 255.0;
        let gray = rng.random::<f64>() < cfg.gray_prob;
        let n = if gray { (h * w) as usize } else { pixels.len() };
        (0..n)
            .map(|_| (sigma * standard_normal(rng)) as f32)
            .collect::<Vec<_>>()
    } else {
        let scale = uniform(rng, cfg.poisson_scale) as f32;
        let gray = rng.random::<f64>() < cfg.gray_prob;
        let source = if gray {
            grayscale(&pixels, (h * w) as usize)
        } else {
            pixels.clone()
        };
        poisson_noise(&source, rng).into_iter().map(|v| v * scale).collect()
    };
    // Gray noise is one plane, broadcast over the channels.
    let gray_plane = noise.len() != pixels.len();
    let out: Vec<f32> = pixels
        .iter()
        .enumerate()
        .map(|(i, p)| (p + noise[if gray_plane { i % noise.len() } else { i }]).clamp(0.0, 1.0))
        .collect();
    Ok(Tensor::from_slice(&out).view([1, c, h, w]))
}

/// Box–Muller on two uniforms from the generator.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: the log stays finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// torchvision `rgb_to_grayscale` weights, on a planar RGB buffer.
fn grayscale(rgb: &[f32], plane: usize) -> Vec<f32> {
    (0..plane)
        .map(|i| 0.2989 * rgb[i] + 0.587 * rgb[plane + i] + 0.114 * rgb[2 * plane + i])
        .collect()
}

/// Photon noise at an image-dependent photon count: the image is rounded to
/// 8 bits, its number of distinct levels `n` gives `vals = 2^ceil(log2 n)`
/// (Real-ESRGAN's exact rule), and the noise is `Poisson(x·vals)/vals − x`.
fn poisson_noise(img: &[f32], rng: &mut impl Rng) -> Vec<f32> {
    let levels: Vec<u8> = img
        .iter()
        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    let mut seen = [false; 256];
    levels.iter().for_each(|l| seen[*l as usize] = true);
    let distinct = seen.iter().filter(|s| **s).count().max(1);
    let vals = 2f64.powf((distinct as f64).log2().ceil());
    // Only 256 rates can occur, so each gets one inverse-CDF table.
    let tables: Vec<Vec<f64>> = (0..256).map(|l| poisson_cdf(l as f64 / 255.0 * vals)).collect();
    levels
        .iter()
        .map(|l| {
            let cdf = &tables[*l as usize];
            let u = rng.random::<f64>();
            let count = cdf.partition_point(|c| *c <= u);
            let x = *l as f64 / 255.0;
            (count as f64 / vals - x) as f32
        })
        .collect()
}

/// Cumulative Poisson probabilities P(N <= n) for n = 0.. until, past the
/// mode, the terms fall below 1e-17 (rates here are at most 256, so
/// exp(−rate) stays a normal f64).
fn poisson_cdf(rate: f64) -> Vec<f64> {
    let mut p = (-rate).exp();
    let mut cdf = vec![p];
    let mut n = 0.0;
    while n < rate || p > 1e-17 {
        n += 1.0;
        p *= rate / n;
        cdf.push(cdf[cdf.len() - 1] + p);
    }
    cdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn poisson_sampler_has_poisson_mean_and_variance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cdf = poisson_cdf(20.0);
        let draws: Vec<f64> = (0..20000)
            .map(|_| {
                let u = rng.random::<f64>();
                cdf.partition_point(|c| *c <= u) as f64
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        // sd of the mean is sqrt(20/20000) ≈ 0.032.
        assert!((mean - 20.0).abs() < 0.15, "mean {mean}");
        assert!((var - 20.0).abs() < 1.5, "variance {var}");
    }

    #[test]
    fn gaussian_noise_has_the_drawn_strength_and_gray_noise_is_channel_shared() {
        let img = Tensor::full([1, 3, 64, 64], 0.5, (Kind::Float, tch::Device::Cpu));
        let cfg = NoiseConfig {
            gaussian_prob: 1.0,
            gaussian_sigma: (10.0, 10.0),
            gray_prob: 1.0,
            ..NoiseConfig::realesrgan_first()
        };
        let out = random_add_noise(&img, &mut ChaCha8Rng::seed_from_u64(2), &cfg).unwrap();
        let sd = (out.get(0).get(0) - 0.5).std(true).double_value(&[]) * 255.0;
        assert!((sd - 10.0).abs() < 0.5, "sd {sd}");
        assert!(
            out.get(0).get(0).equal(&out.get(0).get(2)),
            "gray noise differs between channels"
        );
        let color = NoiseConfig { gray_prob: 0.0, ..cfg };
        let out = random_add_noise(&img, &mut ChaCha8Rng::seed_from_u64(2), &color).unwrap();
        assert!(!out.get(0).get(0).equal(&out.get(0).get(2)));
    }

    #[test]
    fn poisson_noise_is_zero_mean_and_stays_in_range() {
        let img = Tensor::rand([1, 3, 48, 48], (Kind::Float, tch::Device::Cpu));
        let cfg = NoiseConfig {
            gaussian_prob: 0.0,
            ..NoiseConfig::realesrgan_first()
        };
        let out = random_add_noise(&img, &mut ChaCha8Rng::seed_from_u64(4), &cfg).unwrap();
        assert!(out.min().double_value(&[]) >= 0.0 && out.max().double_value(&[]) <= 1.0);
        assert!(!out.equal(&img));
        assert!((&out - &img).mean(Kind::Double).abs().double_value(&[]) < 0.02);
    }
}
