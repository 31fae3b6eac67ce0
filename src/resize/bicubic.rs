//! PyTorch-convention resizing for the SR pipeline: bicubic upsampling of
//! the LR input (what StableSR feeds the AE and the colour fix) and area
//! downsampling.
//!
//! This is `F.interpolate(mode="bicubic", align_corners=False)`: a = -0.75,
//! source coordinate (dst + 0.5) * in/out - 0.5, edge samples replicated, no
//! clamping. MATLAB's imresize (a = -0.5, antialiased, see `matlab.rs`) makes
//! LR images; it is not interchangeable with this one (up to 0.024 apart).

use anyhow::{ensure, Result};
use tch::{Kind, Tensor};

fn check(x: &Tensor, out_h: usize, out_w: usize, what: &str) -> Result<()> {
    ensure!(
        x.dim() == 4,
        "{what}: expected an NCHW tensor, got shape {:?}",
        x.size()
    );
    ensure!(
        matches!(x.kind(), Kind::Float | Kind::Double),
        "{what}: needs a float tensor, got {:?}",
        x.kind()
    );
    ensure!(
        out_h > 0 && out_w > 0,
        "{what}: output size {out_h}x{out_w} must be positive"
    );
    Ok(())
}

/// Bicubic resize of an (N, C, H, W) float tensor to out_h x out_w. The
/// output may overshoot the input range; clamp afterwards where it matters.
pub fn upsample_bicubic(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    check(x, out_h, out_w, "bicubic resize")?;
    Ok(x.upsample_bicubic2d([out_h as i64, out_w as i64], false, None, None))
}

/// `F.interpolate(mode="area")`: each output pixel is the mean of the input
/// pixels it covers (adaptive average pooling).
pub fn downsample_area(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    check(x, out_h, out_w, "area resize")?;
    Ok(x.adaptive_avg_pool2d([out_h as i64, out_w as i64]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, max_abs_diff};

    #[test]
    fn upsampling_matches_torch_interpolate() {
        let Some(kit) = conformance::load("metrics/bicubic.safetensors") else {
            return;
        };
        let up = upsample_bicubic(&kit["small"].unsqueeze(0), 32, 24).unwrap();
        let err = max_abs_diff(&up, &kit["torch_bicubic_up_x4"]);
        eprintln!("torch_bicubic_up_x4: max abs err {err:e} (tol 1e-6)");
        assert!(err <= 1e-6, "{err:e}");
        // OpenCV INTER_CUBIC follows the same convention (kit: 1.2e-7 apart).
        assert!(max_abs_diff(&up.squeeze_dim(0), &kit["cv2_inter_cubic_up_x4"]) <= 1e-6);
    }

    #[test]
    fn area_downsampling_averages_blocks() {
        let x = Tensor::arange(16, (Kind::Float, tch::Device::Cpu)).view([1, 1, 4, 4]);
        let down = downsample_area(&x, 2, 2).unwrap();
        assert_eq!(
            Vec::<f32>::try_from(down.flatten(0, -1)).unwrap(),
            [2.5, 4.5, 10.5, 12.5]
        );
        assert!(downsample_area(&x.view([4, 4]), 2, 2).is_err());
        assert!(upsample_bicubic(&x, 0, 2).is_err());
    }
}
