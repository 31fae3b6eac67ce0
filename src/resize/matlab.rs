//! MATLAB-style bicubic `imresize`, as BasicSR's `matlab_functions.imresize`:
//! the resize that creates bicubic LR images and NIQE's second scale.
//!
//! It is *not* torch's bicubic: the cubic kernel has a = −0.5 (torch uses
//! −0.75), downscaling widens the kernel by 1/scale so it also low-passes
//! (antialiasing), and borders repeat the edge pixel symmetrically
//! (… b a | a b c …).
//!
//! Numerics follow BasicSR op for op: the weights are computed in f32 as its
//! torch code computes them, and every output line is the same libtorch `mv`
//! call. NIQE's α grid search turns a 1-ulp difference in the half-scale
//! image into a visible score change, and LR PNG bytes must match exactly.

use tch::{Device, Kind, Tensor};

/// Taps of the unwidened cubic kernel.
const KERNEL_WIDTH: f64 = 4.0;

/// MATLAB's output size: `ceil(len · scale)`, in f64 as Python computes it.
pub fn output_len(len: usize, scale: f64) -> usize {
    (len as f64 * scale).ceil() as usize
}

/// Keys' cubic with a = −0.5, evaluated op by op in f32 like BasicSR's torch code.
fn cubic(x: f32) -> f32 {
    let a = x.abs();
    let a2 = a * a;
    let a3 = a * a * a;
    if a <= 1.0 {
        1.5 * a3 - 2.5 * a2 + 1.0
    } else if a <= 2.0 {
        -0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0
    } else {
        0.0
    }
}

/// Index into `0..len` with symmetric borders (the edge pixel is repeated).
/// Folds repeatedly, so kernels wider than the input stay in range.
fn reflect(mut i: i64, len: usize) -> usize {
    let n = len as i64;
    loop {
        if i < 0 {
            i = -i - 1;
        } else if i >= n {
            i = 2 * n - i - 1;
        } else {
            return i as usize;
        }
    }
}

/// The resampling of one axis, as BasicSR lays it out: the axis is padded
/// symmetrically, and output `o` is the dot product of `weights[o]` with
/// `taps` consecutive padded samples from `starts[o]`.
struct AxisKernel {
    taps: i64,
    /// Source index of every position of the padded axis.
    padded: Tensor,
    starts: Vec<i64>,
    /// `(out_len, taps)`, f32.
    weights: Tensor,
}

impl AxisKernel {
    /// BasicSR `calculate_weights_indices`, antialiasing on.
    fn new(in_len: usize, out_len: usize, scale: f64) -> Self {
        let widen = scale < 1.0;
        let kernel_width = if widen {
            KERNEL_WIDTH / scale
        } else {
            KERNEL_WIDTH
        };
        // Python scalars enter torch's f32 ops cast to f32.
        let scale32 = scale as f32;
        let shift = (0.5 * (1.0 - 1.0 / scale)) as f32;
        let half_width = (kernel_width / 2.0) as f32;
        // One spare tap each side; all-zero edge columns are dropped below.
        let p = kernel_width.ceil() as usize + 2;

        let mut lefts = Vec::with_capacity(out_len);
        let mut weights = Vec::with_capacity(out_len * p);
        for o in 0..out_len {
            // 1-based output coordinate mapped to input space (pixel centres
            // at half-integers on both sides).
            let u = (o + 1) as f32 / scale32 + shift;
            let left = (u - half_width).floor();
            let row: Vec<f32> = (0..p)
                .map(|k| {
                    let d = u - (left + k as f32);
                    if widen {
                        scale32 * cubic(d * scale32)
                    } else {
                        cubic(d)
                    }
                })
                .collect();
            // torch sums these rows in its own order; for the usual scales
            // (1/4, 1/2, 4) the f64 sum rounds to the same f32.
            let sum = row.iter().map(|&w| w as f64).sum::<f64>() as f32;
            weights.extend(row.iter().map(|w| w / sum));
            // 1-based, hence the −1.
            lefts.push(left as i64 - 1);
        }

        // BasicSR drops the first (last) tap column when *any* row has an exact
        // zero there, even if other rows use it; this keeps that quirk.
        let column_has_zero = |k: usize| (0..out_len).any(|o| weights[o * p + k] == 0.0);
        let first = usize::from(column_has_zero(0));
        let last = if column_has_zero(p - 1) { p - 1 } else { p };
        let taps = (last - first) as i64;
        let kept: Vec<f32> = (0..out_len)
            .flat_map(|o| weights[o * p + first..o * p + last].to_vec())
            .collect();

        let lo = lefts
            .iter()
            .map(|l| l + first as i64)
            .min()
            .unwrap_or(0)
            .min(0);
        let hi = lefts
            .iter()
            .map(|l| l + first as i64 + taps)
            .max()
            .unwrap_or(0)
            .max(in_len as i64);
        let padded: Vec<i64> = (lo..hi).map(|i| reflect(i, in_len) as i64).collect();
        AxisKernel {
            taps,
            padded: Tensor::from_slice(&padded),
            starts: lefts.iter().map(|l| l + first as i64 - lo).collect(),
            weights: Tensor::from_slice(&kept).view([out_len as i64, taps]),
        }
    }

    /// Resamples dim 1 of `(C, H, W)`. Each output row is one `mv` of the
    /// transposed tap window, exactly BasicSR's call: libtorch's matrix–vector
    /// kernel rounds differently from a plain loop, and NIQE's grid search on
    /// the half-scale image notices a 1-ulp difference.
    fn resize_rows(&self, img: &Tensor) -> Tensor {
        let padded = img.index_select(1, &self.padded);
        let channels: Vec<Tensor> = (0..padded.size()[0])
            .map(|c| {
                let plane = padded.get(c);
                let rows: Vec<Tensor> = self
                    .starts
                    .iter()
                    .enumerate()
                    .map(|(o, &s)| {
                        plane
                            .narrow(0, s, self.taps)
                            .tr()
                            .mv(&self.weights.get(o as i64))
                    })
                    .collect();
                Tensor::stack(&rows, 0)
            })
            .collect();
        Tensor::stack(&channels, 0)
    }

    /// Resamples dim 2 of `(C, H, W)`, one `mv` of the tap window per column.
    fn resize_columns(&self, img: &Tensor) -> Tensor {
        let padded = img.index_select(2, &self.padded);
        let channels: Vec<Tensor> = (0..padded.size()[0])
            .map(|c| {
                let plane = padded.get(c);
                let cols: Vec<Tensor> = self
                    .starts
                    .iter()
                    .enumerate()
                    .map(|(o, &s)| {
                        plane
                            .narrow(1, s, self.taps)
                            .mv(&self.weights.get(o as i64))
                    })
                    .collect();
                Tensor::stack(&cols, 1)
            })
            .collect();
        Tensor::stack(&channels, 0)
    }
}

/// BasicSR `imresize(img, scale, antialiasing=True)` on a `(C, H, W)` or
/// `(H, W)` tensor in [0, 1]: H first, then W, in f32 on the CPU. No
/// clamping, no rounding; the result is on the input's device. Panics if the
/// tensor is not 2-D or 3-D, or `scale` is not positive (caller bugs).
pub fn imresize(img: &Tensor, scale: f64) -> Tensor {
    assert!(
        scale.is_finite() && scale > 0.0,
        "imresize scale must be positive, got {scale}"
    );
    let size = img.size();
    let chw = match size.len() {
        2 => img.unsqueeze(0),
        3 => img.shallow_clone(),
        _ => panic!("imresize expects a (C, H, W) or (H, W) tensor, got {size:?}"),
    };
    let (h, w) = (chw.size()[1] as usize, chw.size()[2] as usize);
    let along_h = AxisKernel::new(h, output_len(h, scale), scale);
    let along_w = AxisKernel::new(w, output_len(w, scale), scale);
    let out = tch::no_grad(|| {
        let x = chw.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        along_w.resize_columns(&along_h.resize_rows(&x))
    });
    let out = if size.len() == 2 {
        out.squeeze_dim(0)
    } else {
        out
    };
    out.to_device(img.device())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{load, max_abs_diff};

    /// 1e-6 abs: the kit's tolerance for the f32 resizes.
    fn check(input: &str, expected: &str, scale: f64) {
        let Some(kit) = load("metrics/bicubic.safetensors") else {
            return;
        };
        let out = imresize(&kit[input], scale);
        let err = max_abs_diff(&out, &kit[expected]);
        eprintln!("{expected}: max abs error {err:e}");
        assert!(err <= 1e-6, "{expected}: max abs error {err:e}");
    }

    #[test]
    fn imresize_down_x4() {
        check("hr", "imresize_down_x4", 0.25);
    }

    #[test]
    fn odd_imresize_down_x4_uses_ceil_size() {
        check("odd", "odd_imresize_down_x4", 0.25);
    }

    #[test]
    fn small_imresize_down_x4() {
        check("small_hr", "small", 0.25);
    }

    #[test]
    fn imresize_up_x4() {
        check("small", "imresize_up_x4", 4.0);
    }

    #[test]
    fn imresize_down_x4_uint8_matches_exactly() {
        let Some(kit) = load("metrics/bicubic.safetensors") else {
            return;
        };
        let lr = imresize(&kit["hr"], 0.25);
        let bytes = (lr * 255.0).round().clamp(0.0, 255.0).to_kind(Kind::Uint8);
        let expected = &kit["imresize_down_x4_uint8"];
        assert_eq!(bytes.size(), expected.size());
        assert_eq!(
            bytes.ne_tensor(expected).sum(Kind::Int64).int64_value(&[]),
            0
        );
    }

    #[test]
    fn two_dimensional_input_keeps_its_rank() {
        let plane = Tensor::arange(30 * 26, (Kind::Float, Device::Cpu)).view([30, 26]) / 780.0;
        assert_eq!(imresize(&plane, 0.5).size(), vec![15, 13]);
    }

    #[test]
    fn inputs_narrower_than_the_kernel_fold_their_borders() {
        // BasicSR fails here; symmetric folding keeps every tap in range.
        let tiny = Tensor::from_slice(&[0.2f32, 0.4, 0.6, 0.8, 1.0, 0.0]).view([1, 2, 3]);
        let out = imresize(&tiny, 0.25);
        assert_eq!(out.size(), vec![1, 1, 1]);
        let v = out.double_value(&[0, 0, 0]);
        assert!((0.0..=1.0).contains(&v), "{v}");
    }

    #[test]
    fn constant_image_stays_constant() {
        // Weights are normalised per output pixel, so a flat image is a fixed point.
        let out = imresize(
            &Tensor::full([2, 7, 5], 0.25, (Kind::Float, Device::Cpu)),
            0.5,
        );
        assert_eq!(out.size(), vec![2, 4, 3]);
        assert!(((out - 0.25).abs().max().double_value(&[])) < 1e-7);
    }
}
