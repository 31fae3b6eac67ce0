//! `filter2D` of BasicSR `img_process_util.py`: every image of a batch
//! blurred by its own kernel.

use anyhow::{ensure, Result};
use tch::Tensor;

/// Cross-correlates `img` (B, C, H, W) with `kernel`, either one (k, k)
/// kernel for all or (B, k, k), kernel b on every channel of item b.
///
/// Borders use reflect-101 padding (mirror without repeating the edge), as
/// upstream's `F.pad(mode='reflect')`; it needs `k/2 < H, W`.
pub fn filter2d(img: &Tensor, kernel: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = img.size4()?;
    let kernels = if kernel.dim() == 2 {
        kernel.unsqueeze(0)
    } else {
        kernel.shallow_clone()
    };
    let (kb, k, k2) = kernels.size3()?;
    ensure!(
        k == k2 && k % 2 == 1,
        "filter2d: kernel must be square and odd, got {k}x{k2}"
    );
    ensure!(kb == 1 || kb == b, "filter2d: {kb} kernels for a batch of {b}");
    ensure!(
        k / 2 < h && k / 2 < w,
        "filter2d: image {h}x{w} too small for reflect padding of a {k}-tap kernel"
    );
    let p = k / 2;
    let padded = img.reflection_pad2d([p, p, p, p]);
    let (ph, pw) = (h + 2 * p, w + 2 * p);
    // One group per (item, channel), so per-item kernels cost one conv.
    let weight = kernels
        .to_kind(img.kind())
        .view([kb, 1, k, k])
        .expand([b, c, k, k], false)
        .reshape([b * c, 1, k, k]);
    let out = padded
        .reshape([1, b * c, ph, pw])
        .conv2d(&weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], b * c);
    Ok(out.view([b, c, h, w]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{load, max_abs_diff};

    #[test]
    fn matches_basicsr_single_and_per_item_kernels() {
        let Some(t) = load("degradation_kernels/usm_filter2d.safetensors") else {
            return;
        };
        let single = filter2d(&t["filter2d_input"], &t["filter2d_kernel"]).unwrap();
        let err = max_abs_diff(&single, &t["filter2d_output"]);
        eprintln!("max abs error {err:e}");
        assert!(err < 2e-6, "single kernel: {err:e}");
        let batch = filter2d(&t["filter2d_batch_input"], &t["filter2d_batch_kernels"]).unwrap();
        let err = max_abs_diff(&batch, &t["filter2d_batch_output"]);
        eprintln!("max abs error {err:e}");
        assert!(err < 2e-6, "per-item kernels: {err:e}");
    }

    #[test]
    fn rejects_images_smaller_than_the_kernel_reach() {
        let img = Tensor::zeros([1, 3, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
        let k = Tensor::ones([21, 21], (tch::Kind::Double, tch::Device::Cpu));
        assert!(filter2d(&img, &k).is_err());
    }
}
