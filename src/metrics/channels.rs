//! Which planes full-reference metrics compare, prepared as BasicSR's
//! `calculate_psnr` / `calculate_ssim` prepare them: crop the border first,
//! then (for Y) convert, never round.

use anyhow::{ensure, Result};
use image::RgbImage;

use super::plane::Plane;
use super::ycbcr::luma;

/// The planes one image contributes to a metric, in f64.
pub type Planes = Vec<Plane<f64>>;

/// The channels a full-reference metric is computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channels {
    /// BT.601 luma only, the SR papers' convention.
    Y,
    /// R, G and B separately (the metric averages over them).
    Rgb,
}

/// The planes of `img` inside a `crop` px border, in f64.
pub fn metric_planes(img: &RgbImage, crop: u32, channels: Channels) -> Result<Planes> {
    let (w, h) = img.dimensions();
    ensure!(
        2 * crop < w && 2 * crop < h,
        "a {crop} px border crop leaves nothing of a {w}x{h} image"
    );
    let (height, width) = ((h - 2 * crop) as usize, (w - 2 * crop) as usize);
    let pixel = |y: usize, x: usize| img.get_pixel(x as u32 + crop, y as u32 + crop).0;
    Ok(match channels {
        Channels::Y => vec![Plane::from_fn(height, width, |y, x| {
            let [r, g, b] = pixel(y, x);
            luma(r, g, b) as f64
        })],
        Channels::Rgb => (0..3)
            .map(|c| Plane::from_fn(height, width, |y, x| pixel(y, x)[c] as f64))
            .collect(),
    })
}

/// The planes of a distorted image and its reference, checked to match in size.
pub fn paired_planes(
    img: &RgbImage,
    reference: &RgbImage,
    crop: u32,
    channels: Channels,
) -> Result<(Planes, Planes)> {
    ensure!(
        img.dimensions() == reference.dimensions(),
        "image is {:?} but its reference is {:?} (width, height)",
        img.dimensions(),
        reference.dimensions()
    );
    Ok((
        metric_planes(img, crop, channels)?,
        metric_planes(reference, crop, channels)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::kit_image;

    /// The Y planes BasicSR compared for pair 0; ours agree to f32 rounding.
    #[test]
    fn y_planes_of_pair0_match_the_reference() {
        let Some(kit) = crate::conformance::load("metrics/metrics_debug.safetensors") else {
            return;
        };
        for (file, key) in [
            ("pair0_astronaut_gt.png", "pair0_gt_y_crop4"),
            ("pair0_astronaut_distorted.png", "pair0_distorted_y_crop4"),
        ] {
            let planes = metric_planes(&kit_image(file).unwrap(), 4, Channels::Y).unwrap();
            let expected = Vec::<f32>::try_from(&kit[key].view(-1)).unwrap();
            assert_eq!((planes[0].height, planes[0].width), (56, 64));
            let err = planes[0]
                .data
                .iter()
                .zip(&expected)
                .map(|(a, &b)| (a - b as f64).abs())
                .fold(0.0, f64::max);
            eprintln!("{key}: max abs error {err:e}");
            assert!(err <= 1e-5, "{key}: max abs error {err:e}");
        }
    }

    #[test]
    fn size_mismatch_and_oversized_crop_are_errors() {
        let a = RgbImage::new(20, 10);
        assert!(paired_planes(&a, &RgbImage::new(10, 20), 0, Channels::Y).is_err());
        assert!(metric_planes(&a, 5, Channels::Rgb).is_err());
        assert_eq!(metric_planes(&a, 4, Channels::Rgb).unwrap().len(), 3);
    }
}
