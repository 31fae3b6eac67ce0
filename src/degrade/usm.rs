//! Unsharp masking (BasicSR `USMSharp`). Real-ESRGAN degrades the sharpened
//! HR, so the LR inherits the crisper edges the generator is trained to
//! reproduce.

use super::filter::filter2d;
use anyhow::Result;
use tch::{Kind, Tensor};

/// USMSharp with upstream's defaults.
#[derive(Debug)]
pub struct UsmSharp {
    /// (1, k, k) f32 Gaussian.
    kernel: Tensor,
    pub weight: f64,
    /// On the 0..255 scale: residuals below it are noise, left unsharpened.
    pub threshold: f64,
}

/// OpenCV `getGaussianKernel(ksize, 0)`: σ from the size by OpenCV's rule
/// `0.3 ((k − 1)/2 − 1) + 0.8`, normalised taps.
pub fn opencv_gaussian_taps(ksize: usize) -> Vec<f64> {
    let sigma = 0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8;
    let centre = (ksize as f64 - 1.0) / 2.0;
    let taps: Vec<f64> = (0..ksize)
        .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.into_iter().map(|t| t / sum).collect()
}

impl Default for UsmSharp {
    /// Radius 50 (made odd: 51), σ 8, weight 0.5, threshold 10.
    fn default() -> Self {
        Self::new(51, 0.5, 10.0)
    }
}

impl UsmSharp {
    pub fn new(radius: usize, weight: f64, threshold: f64) -> Self {
        let radius = if radius.is_multiple_of(2) { radius + 1 } else { radius };
        let g = Tensor::from_slice(&opencv_gaussian_taps(radius));
        let kernel = g.outer(&g).to_kind(Kind::Float).unsqueeze(0);
        Self {
            kernel,
            weight,
            threshold,
        }
    }

    pub fn kernel(&self) -> &Tensor {
        &self.kernel
    }

    /// Sharpens `img` (B, C, H, W) in [0, 1]; the blurred hard mask fades the
    /// sharpening in and out instead of switching it per pixel.
    pub fn forward(&self, img: &Tensor) -> Result<Tensor> {
        let residual = img - filter2d(img, &self.kernel)?;
        let mask = (residual.abs() * 255.0).gt(self.threshold).to_kind(img.kind());
        let soft_mask = filter2d(&mask, &self.kernel)?;
        let sharp = (img + residual * self.weight).clamp(0.0, 1.0);
        Ok(&soft_mask * sharp + (1.0 - &soft_mask) * img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{load, max_abs_diff};

    #[test]
    fn matches_basicsr_usm_sharp() {
        let Some(t) = load("degradation_kernels/usm_filter2d.safetensors") else {
            return;
        };
        let usm = UsmSharp::default();
        let err = max_abs_diff(usm.kernel(), &t["usm_kernel"]);
        eprintln!("max abs error {err:e}");
        assert!(err < 1e-7, "kernel: {err:e}");
        let err = max_abs_diff(&usm.forward(&t["usm_input"]).unwrap(), &t["usm_output"]);
        eprintln!("max abs error {err:e}");
        assert!(err < 2e-6, "output: {err:e}");
    }
}
