//! Blur kernels of the Real-ESRGAN degradation (BasicSR `degradations.py`).
//!
//! Kernels are f64 `(k, k)` tensors laid out `kernel[row, col]` on a centred
//! grid. `x` is the column offset and `y` the row offset (downwards), so a
//! positive rotation turns the `sigma_x` axis from +x towards +y (clockwise
//! on screen), as upstream.

use tch::Tensor;

/// Side every drawn kernel is zero-padded to (Real-ESRGAN pads to 21).
pub const PAD_TO: usize = 21;

/// Covariance `R diag(sx², sy²) Rᵀ` (isotropic: `sx² I`), acting on (x, y).
fn covariance(sig_x: f64, sig_y: f64, theta: f64, isotropic: bool) -> [[f64; 2]; 2] {
    if isotropic {
        return [[sig_x * sig_x, 0.0], [0.0, sig_x * sig_x]];
    }
    let (s, c) = theta.sin_cos();
    let (a, b) = (sig_x * sig_x, sig_y * sig_y);
    [
        [c * c * a + s * s * b, c * s * (a - b)],
        [c * s * (a - b), s * s * a + c * c * b],
    ]
}

/// Squared Mahalanobis distance `q = [x y] Σ⁻¹ [x y]ᵀ` of every grid point,
/// fed through `shape` and normalised to sum 1.
fn from_distance(kernel_size: usize, cov: [[f64; 2]; 2], shape: impl Fn(f64) -> f64) -> Tensor {
    let det = cov[0][0] * cov[1][1] - cov[0][1] * cov[1][0];
    let inv = [[cov[1][1] / det, -cov[0][1] / det], [-cov[1][0] / det, cov[0][0] / det]];
    let half = (kernel_size / 2) as f64;
    let mut values = Vec::with_capacity(kernel_size * kernel_size);
    for row in 0..kernel_size {
        for col in 0..kernel_size {
            let (x, y) = (col as f64 - half, row as f64 - half);
            // (g · Σ⁻¹) · g, in the order numpy evaluates it.
            let q = (x * inv[0][0] + y * inv[1][0]) * x + (x * inv[0][1] + y * inv[1][1]) * y;
            values.push(shape(q));
        }
    }
    normalised(values, kernel_size)
}

fn normalised(mut values: Vec<f64>, kernel_size: usize) -> Tensor {
    let sum: f64 = values.iter().sum();
    values.iter_mut().for_each(|v| *v /= sum);
    Tensor::from_slice(&values).view([kernel_size as i64, kernel_size as i64])
}

/// Bivariate Gaussian `exp(−q/2)`.
pub fn bivariate_gaussian(kernel_size: usize, sig_x: f64, sig_y: f64, theta: f64, isotropic: bool) -> Tensor {
    from_distance(kernel_size, covariance(sig_x, sig_y, theta, isotropic), |q| {
        (-0.5 * q).exp()
    })
}

/// Generalized Gaussian `exp(−0.5 · q^β)`: β acts on the *squared* distance.
pub fn bivariate_generalized_gaussian(
    kernel_size: usize,
    sig_x: f64,
    sig_y: f64,
    theta: f64,
    beta: f64,
    isotropic: bool,
) -> Tensor {
    from_distance(kernel_size, covariance(sig_x, sig_y, theta, isotropic), |q| {
        (-0.5 * q.powf(beta)).exp()
    })
}

/// Plateau `1 / (q^β + 1)`: flat top, heavy tails.
pub fn bivariate_plateau(kernel_size: usize, sig_x: f64, sig_y: f64, theta: f64, beta: f64, isotropic: bool) -> Tensor {
    from_distance(kernel_size, covariance(sig_x, sig_y, theta, isotropic), |q| {
        1.0 / (q.powf(beta) + 1.0)
    })
}

/// Circular low-pass (2-D sinc) `ω J1(ω r) / (2π r)`, centre `ω²/(4π)`;
/// it rings (negative lobes), which imitates over-sharpened / JPEG-ish
/// edges. Normalised before padding, as upstream.
pub fn circular_lowpass(cutoff: f64, kernel_size: usize, pad_to: usize) -> Tensor {
    let centre = (kernel_size as f64 - 1.0) / 2.0;
    let mut values = Vec::with_capacity(kernel_size * kernel_size);
    for row in 0..kernel_size {
        for col in 0..kernel_size {
            let r = ((row as f64 - centre).powi(2) + (col as f64 - centre).powi(2)).sqrt();
            values.push(if r == 0.0 {
                cutoff * cutoff / (4.0 * std::f64::consts::PI)
            } else {
                cutoff * libm::j1(cutoff * r) / (2.0 * std::f64::consts::PI * r)
            });
        }
    }
    pad(&normalised(values, kernel_size), pad_to)
}

/// Zero-pads a square odd kernel to `size` (no-op when it is not smaller),
/// so kernels of every size stack into one batch.
pub fn pad(kernel: &Tensor, size: usize) -> Tensor {
    let k = kernel.size()[0] as usize;
    if size <= k {
        return kernel.shallow_clone();
    }
    let p = ((size - k) / 2) as i64;
    kernel.constant_pad_nd([p, p, p, p])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{json, load, max_abs_diff};

    fn from_kwargs(function: &str, kw: &serde_json::Value) -> Tensor {
        let f = |name: &str| kw[name].as_f64().unwrap();
        let size = kw["kernel_size"].as_u64().unwrap() as usize;
        let iso = kw["isotropic"].as_bool().unwrap_or(true);
        match function {
            "bivariate_Gaussian" => bivariate_gaussian(size, f("sig_x"), f("sig_y"), f("theta"), iso),
            "bivariate_generalized_Gaussian" => {
                bivariate_generalized_gaussian(size, f("sig_x"), f("sig_y"), f("theta"), f("beta"), iso)
            }
            "bivariate_plateau" => bivariate_plateau(size, f("sig_x"), f("sig_y"), f("theta"), f("beta"), iso),
            "circular_lowpass_kernel" => circular_lowpass(f("cutoff"), size, kw["pad_to"].as_u64().unwrap() as usize),
            other => panic!("unknown kernel function {other}"),
        }
    }

    #[test]
    fn every_reference_kernel_matches() {
        let (Some(refs), Some(params)) = (
            load("degradation_kernels/kernels.safetensors"),
            json("degradation_kernels/params.json"),
        ) else {
            return;
        };
        let kernels = params["kernels"].as_object().unwrap();
        assert_eq!(kernels.len(), refs.len());
        for (name, p) in kernels {
            let ours = match p.get("kwargs") {
                Some(kw) => from_kwargs(p["function"].as_str().unwrap(), kw),
                // The one padded Gaussian: the 7x7 kernel zero-padded to 21.
                None => pad(&bivariate_gaussian(7, 1.5, 1.5, 0.0, true), PAD_TO),
            };
            let tol = if name.starts_with("sinc") { 1e-10 } else { 1e-12 };
            let err = max_abs_diff(&ours, &refs[name]);
            eprintln!("max abs error {err:e}");
            assert!(err < tol, "{name}: max abs error {err:e} >= {tol:e}");
            let shape: Vec<i64> = p["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(ours.size(), shape, "{name}: shape");
            let centre = shape[0] / 2;
            let stats = [
                ("sum", ours.sum(tch::Kind::Double)),
                ("center", ours.get(centre).get(centre)),
                ("min", ours.min()),
                ("max", ours.max()),
            ];
            for (key, value) in stats {
                if let Some(expected) = p.get(key).and_then(|v| v.as_f64()) {
                    let got = value.double_value(&[]);
                    assert!((got - expected).abs() < tol, "{name}: {key} {got} vs {expected}");
                }
            }
        }
    }

    #[test]
    fn sinc_has_negative_lobes_and_unit_sum_before_padding() {
        let k = circular_lowpass(std::f64::consts::PI / 3.0, 13, 21);
        assert_eq!(k.size(), [21, 21]);
        assert!(k.min().double_value(&[]) < 0.0);
        assert!((k.sum(tch::Kind::Double).double_value(&[]) - 1.0).abs() < 1e-12);
        assert_eq!(k.get(0).abs().max().double_value(&[]), 0.0, "padding is zeros");
    }
}
