//! The three random resize modes of Real-ESRGAN, as torch `F.interpolate`
//! computes them (`align_corners=False`, no antialiasing).

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResizeMode {
    /// Box average (`adaptive_avg_pool2d`).
    Area,
    Bilinear,
    /// Keys cubic with a = −0.75, clamped borders.
    Bicubic,
}

pub const RESIZE_MODES: [ResizeMode; 3] = [ResizeMode::Area, ResizeMode::Bilinear, ResizeMode::Bicubic];

/// `F.interpolate(img, size=(h, w), mode)`.
pub fn resize_to(img: &Tensor, (h, w): (i64, i64), mode: ResizeMode) -> Result<Tensor> {
    interpolate(img, (h, w), None, mode)
}

/// `F.interpolate(img, scale_factor=scale, mode)`: the size is
/// `floor(in · scale)`, and the sampling grid uses `scale` itself, not the
/// ratio of the rounded sizes, as torch does when given a scale factor.
pub fn resize_by(img: &Tensor, scale: f64, mode: ResizeMode) -> Result<Tensor> {
    let (_, _, h, w) = img.size4()?;
    let size = ((h as f64 * scale).floor() as i64, (w as f64 * scale).floor() as i64);
    interpolate(img, size, Some(scale), mode)
}

fn interpolate(img: &Tensor, (h, w): (i64, i64), scale: Option<f64>, mode: ResizeMode) -> Result<Tensor> {
    ensure!(h > 0 && w > 0, "resize to an empty {h}x{w} image");
    Ok(match mode {
        ResizeMode::Area => img.adaptive_avg_pool2d([h, w]),
        ResizeMode::Bilinear => img.upsample_bilinear2d([h, w], false, scale, scale),
        ResizeMode::Bicubic => img.upsample_bicubic2d([h, w], false, scale, scale),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn sizes_floor_and_area_averages_blocks() {
        let img = Tensor::arange(2 * 6 * 8, (Kind::Float, Device::Cpu)).view([1, 2, 6, 8]);
        for mode in RESIZE_MODES {
            assert_eq!(resize_by(&img, 0.7, mode).unwrap().size(), [1, 2, 4, 5], "{mode:?}");
        }
        let half = resize_to(&img, (3, 4), ResizeMode::Area).unwrap();
        // Top-left 2x2 block of channel 0 is 0, 1, 8, 9.
        assert_eq!(half.double_value(&[0, 0, 0, 0]), 4.5);
        assert!(resize_by(&img, 0.1, ResizeMode::Bilinear).is_err());
    }

    #[test]
    fn scale_one_is_the_identity() {
        let img = Tensor::rand([1, 3, 9, 7], (Kind::Float, Device::Cpu));
        for mode in RESIZE_MODES {
            assert!(
                resize_by(&img, 1.0, mode).unwrap().allclose(&img, 1e-6, 1e-6, false),
                "{mode:?}"
            );
        }
    }
}
