//! One training crop: random window, optional rescale, flips, 90-degree turns.
//!
//! Rescaling cuts a window of side `size / scale` and resizes only that
//! window, never the whole image: the result is the same crop of a rescaled
//! image, at a small fraction of the cost on large wallpapers. The same rule
//! upscales images smaller than the crop: the window is clamped to the image
//! and then resized up to `size`.

use serde::{Deserialize, Serialize};
use image::{imageops, RgbImage};
use rand::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CropConfig {
    /// Side of the square crops, in pixels.
    pub size: u32,
    pub batch: usize,
    /// Range of the random image scale factor (e.g. (0.5, 1.0) for
    /// down-scaled wallpapers); `None` keeps the native resolution.
    pub rescale: Option<(f64, f64)>,
    pub flips: bool,
    pub rot90: bool,
    pub seed: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Finished batches that may wait in the queue.
    pub prefetch: usize,
    /// Budget of the decoded-image cache.
    pub cache_mib: usize,
}

impl CropConfig {
    /// Full augmentation, two workers, a 512 MiB cache.
    pub fn new(size: u32, batch: usize, seed: u64) -> Self {
        CropConfig {
            size,
            batch,
            rescale: None,
            flips: true,
            rot90: true,
            seed,
            workers: 2,
            prefetch: 4,
            cache_mib: 512,
        }
    }
}

/// Draws one augmented `size x size` crop and returns it as CHW floats in [0, 1].
pub fn random_crop(image: &RgbImage, config: &CropConfig, rng: &mut impl Rng) -> Vec<f32> {
    let size = config.size;
    let scale = match config.rescale {
        Some((lo, hi)) if hi > lo => rng.random_range(lo..=hi),
        Some((lo, _)) => lo,
        None => 1.0,
    };
    let (w, h) = image.dimensions();
    let window = ((size as f64 / scale).round() as u32).clamp(1, w.min(h));
    let x0 = rng.random_range(0..=w - window);
    let y0 = rng.random_range(0..=h - window);
    let mut crop = imageops::crop_imm(image, x0, y0, window, window).to_image();
    if window != size {
        crop = imageops::resize(&crop, size, size, imageops::FilterType::Lanczos3);
    }
    if config.flips && rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut crop);
    }
    if config.rot90 {
        crop = match rng.random_range(0..4) {
            1 => imageops::rotate90(&crop),
            2 => imageops::rotate180(&crop),
            3 => imageops::rotate270(&crop),
            _ => crop,
        };
    }
    to_chw(&crop)
}

fn to_chw(image: &RgbImage) -> Vec<f32> {
    let plane = (image.width() * image.height()) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, pixel) in image.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = pixel[c] as f32 / 255.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn config(size: u32) -> CropConfig {
        CropConfig { flips: false, rot90: false, ..CropConfig::new(size, 1, 0) }
    }

    #[test]
    fn plain_crop_is_a_window_of_the_image() {
        let image = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let crop = random_crop(&image, &config(8), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let (x0, y0) = ((crop[0] * 255.0).round() as u32, (crop[64] * 255.0).round() as u32);
        for i in 0..64u32 {
            let want = image.get_pixel(x0 + i % 8, y0 + i / 8);
            assert_eq!((crop[i as usize] * 255.0).round() as u8, want[0]);
            assert_eq!((crop[64 + i as usize] * 255.0).round() as u8, want[1]);
            assert_eq!(crop[128 + i as usize], 7.0 / 255.0);
        }
    }

    #[test]
    fn small_images_are_upscaled_to_the_crop() {
        let image = RgbImage::from_pixel(5, 9, image::Rgb([255, 0, 128]));
        let mut cfg = config(16);
        cfg.rescale = Some((0.5, 2.0));
        cfg.flips = true;
        cfg.rot90 = true;
        let crop = random_crop(&image, &cfg, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert_eq!(crop.len(), 3 * 16 * 16);
        assert!(crop[..256].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(crop[512..].iter().all(|&v| (v - 128.0 / 255.0).abs() < 1e-6));
    }
}
