//! Luma of ITU-R BT.601 YCbCr at MATLAB's `rgb2ycbcr` scale, Y ∈ [16, 235]:
//! the channel that SR papers report PSNR, SSIM and NIQE on.

use image::RgbImage;

use super::plane::Plane;

/// Y = 16 + 65.481 R + 128.553 G + 24.966 B, with R, G, B in [0, 1].
///
/// Follows BasicSR `to_y_channel` step by step so the f32 result matches it
/// bit for bit: the 8-bit values are scaled to [0, 1] in f32, the weighted
/// sum (taken in B, G, R order, since BasicSR sees BGR arrays) runs in f64,
/// is divided by 255 and stored as f32, then multiplied back by 255 in f32.
pub fn luma(r: u8, g: u8, b: u8) -> f32 {
    let unit = |v: u8| (v as f32 / 255.0) as f64;
    let y = unit(b) * 24.966 + unit(g) * 128.553 + unit(r) * 65.481 + 16.0;
    (y / 255.0) as f32 * 255.0
}

/// The Y plane of an RGB image, not rounded.
pub fn y_plane(img: &RgbImage) -> Plane<f32> {
    Plane::from_fn(img.height() as usize, img.width() as usize, |y, x| {
        let [r, g, b] = img.get_pixel(x as u32, y as u32).0;
        luma(r, g, b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_and_white_hit_the_studio_range() {
        assert!((luma(0, 0, 0) - 16.0).abs() < 1e-5);
        assert!((luma(255, 255, 255) - 235.0).abs() < 1e-4);
    }

    #[test]
    fn green_weighs_most_and_blue_least() {
        // Swapping R and B (the BGR mistake) must change Y.
        assert!(luma(0, 200, 0) > luma(200, 0, 0));
        assert!(luma(200, 0, 0) > luma(0, 0, 200));
    }
}
