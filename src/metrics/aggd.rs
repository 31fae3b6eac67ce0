//! Asymmetric generalised Gaussian (AGGD) fits, NIQE's per-block features
//! (Mittal et al., Eq. 7–8), as BasicSR `estimate_aggd_param` /
//! `compute_feature`.
//!
//! The shape α comes from a grid search over α ∈ {0.2, 0.201, …, 10}, so a
//! moment ratio that moves by one f32 ulp can move α by 0.001. The moments
//! are therefore taken exactly as numpy takes them on f32 data: f32
//! pairwise sums, f32 division, f32 powers.

use std::sync::OnceLock;

use libm::tgamma;

use super::plane::Plane;

/// Features per block and scale: α and β of the MSCN values, then α, mean,
/// β_left, β_right for each of the four neighbour products.
pub const FEATURES: usize = 18;
/// Features per NIQE block over its two scales.
pub const NIQE_FEATURES: usize = 2 * FEATURES;

/// The shape parameter's grid and its moment ratio Γ(2/α)² / (Γ(1/α)Γ(3/α)).
struct ShapeGrid {
    alphas: Vec<f64>,
    ratios: Vec<f64>,
}

/// `np.arange(0.2, 10.001, 0.001)`: numpy fills `start + i·δ` with δ taken
/// back from its second element, which is not exactly 0.001.
fn shape_grid() -> &'static ShapeGrid {
    static GRID: OnceLock<ShapeGrid> = OnceLock::new();
    GRID.get_or_init(|| {
        let (start, stop, step) = (0.2f64, 10.001f64, 0.001f64);
        let len = ((stop - start) / step).ceil() as usize;
        let delta = (start + step) - start;
        let alphas: Vec<f64> = (0..len)
            .map(|i| {
                if i == 1 {
                    start + step
                } else {
                    start + i as f64 * delta
                }
            })
            .collect();
        let ratios = alphas
            .iter()
            .map(|a| {
                let r = 1.0 / a;
                let g2 = tgamma(r * 2.0);
                g2 * g2 / (tgamma(r) * tgamma(r * 3.0))
            })
            .collect();
        ShapeGrid { alphas, ratios }
    })
}

/// numpy's pairwise summation of f32 (blocks of 8 accumulators, halving
/// above 128 values), which `np.mean` uses on f32 arrays.
fn pairwise_sum(v: &[f32]) -> f32 {
    let n = v.len();
    if n < 8 {
        return v.iter().fold(0.0, |s, &x| s + x);
    }
    if n <= 128 {
        let mut r: [f32; 8] = v[..8].try_into().unwrap();
        let whole = n - n % 8;
        for chunk in v[8..whole].chunks_exact(8) {
            r.iter_mut().zip(chunk).for_each(|(a, &x)| *a += x);
        }
        let head = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        return v[whole..].iter().fold(head, |s, &x| s + x);
    }
    let half = n / 2 - (n / 2) % 8;
    pairwise_sum(&v[..half]) + pairwise_sum(&v[half..])
}

/// `np.mean` of f32 values: f32 sum, f32 division; NaN when empty.
fn mean(v: &[f32]) -> f32 {
    pairwise_sum(v) / v.len() as f32
}

/// One AGGD fit: shape α and the left / right scales β.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AggdFit {
    pub alpha: f64,
    pub beta_left: f64,
    pub beta_right: f64,
}

/// Moment-matching fit. A side with no values makes its β NaN (BasicSR then
/// drops the block from the covariance), and α falls to the grid's first value.
pub fn fit(values: &[f32]) -> AggdFit {
    let squares = |keep: fn(f32) -> bool| {
        values
            .iter()
            .filter(|&&v| keep(v))
            .map(|&v| v * v)
            .collect::<Vec<f32>>()
    };
    let left_std = mean(&squares(|v| v < 0.0)).sqrt();
    let right_std = mean(&squares(|v| v > 0.0)).sqrt();
    let gamma_hat = left_std / right_std;
    let abs_mean = mean(&values.iter().map(|v| v.abs()).collect::<Vec<_>>());
    let r_hat = abs_mean.powf(2.0) / mean(&values.iter().map(|v| v * v).collect::<Vec<_>>());
    let r_hat_norm = (r_hat * (gamma_hat.powf(3.0) + 1.0) * (gamma_hat + 1.0))
        / (gamma_hat.powf(2.0) + 1.0).powf(2.0);

    // np.argmin of the squared gaps: the first minimum, or the first NaN.
    let grid = shape_grid();
    let target = r_hat_norm as f64;
    let mut best = (0, f64::INFINITY);
    for (i, r) in grid.ratios.iter().enumerate() {
        let gap = (r - target) * (r - target);
        if gap.is_nan() {
            best = (i, gap);
            break;
        }
        if gap < best.1 {
            best = (i, gap);
        }
    }
    let alpha = grid.alphas[best.0];
    let scale = (tgamma(1.0 / alpha) / tgamma(3.0 / alpha)).sqrt();
    AggdFit {
        alpha,
        beta_left: left_std as f64 * scale,
        beta_right: right_std as f64 * scale,
    }
}

/// Neighbour offsets (rows, columns) of `np.roll`: horizontal, vertical and
/// the two diagonals.
const SHIFTS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];

/// The 18 features of one block of MSCN coefficients.
pub fn block_features(block: &Plane<f32>) -> [f64; FEATURES] {
    let mut feat = [0f64; FEATURES];
    let own = fit(&block.data);
    feat[0] = own.alpha;
    feat[1] = (own.beta_left + own.beta_right) / 2.0;

    let (h, w) = (block.height as isize, block.width as isize);
    for (s, (dy, dx)) in SHIFTS.iter().enumerate() {
        let products = Plane::from_fn(block.height, block.width, |y, x| {
            let ny = (y as isize - dy).rem_euclid(h) as usize;
            let nx = (x as isize - dx).rem_euclid(w) as usize;
            block.at(y, x) * block.at(ny, nx)
        });
        let f = fit(&products.data);
        // Eq. 8: the AGGD's mean.
        let mean = (f.beta_right - f.beta_left) * (tgamma(2.0 / f.alpha) / tgamma(1.0 / f.alpha));
        feat[2 + 4 * s..6 + 4 * s].copy_from_slice(&[f.alpha, mean, f.beta_left, f.beta_right]);
    }
    feat
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_spans_point_two_to_ten_in_thousandths() {
        let g = shape_grid();
        assert_eq!(g.alphas.len(), 9801);
        assert_eq!(g.alphas[0], 0.2);
        assert!((g.alphas[9800] - 10.0).abs() < 1e-9);
        // The moment ratio grows with α; a Gaussian (α = 2) has ratio 2/π.
        assert!(g.ratios.windows(2).all(|p| p[0] < p[1]));
        assert!((g.ratios[1800] - 2.0 / std::f64::consts::PI).abs() < 1e-12);
    }

    #[test]
    fn pairwise_sum_matches_numpy_order() {
        // numpy.sum of these f32 values gives 1641.905; a left-to-right f32
        // sum gives 1641.9043.
        let v: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37) % 3.3).collect();
        assert_eq!(pairwise_sum(&v), 1641.905);
        assert_ne!(v.iter().sum::<f32>(), 1641.905);
        assert_eq!(pairwise_sum(&[1.0, 2.0, 3.0]), 6.0);
    }

    #[test]
    fn symmetric_laplacian_like_data_fits_alpha_near_one() {
        // Quantiles of a unit Laplace distribution, mirrored: α ≈ 1, β_l = β_r.
        let n = 2000;
        let half: Vec<f32> = (0..n)
            .map(|i| -((1.0 - (i as f32 + 0.5) / n as f32).ln()))
            .collect();
        let values: Vec<f32> = half.iter().flat_map(|&v| [v, -v]).collect();
        let f = fit(&values);
        assert!((f.alpha - 1.0).abs() < 0.02, "alpha {}", f.alpha);
        assert!((f.beta_left - f.beta_right).abs() < 1e-9);
    }

    #[test]
    fn one_sided_data_gives_nan_scale() {
        let f = fit(&[0.5, 1.0, 2.0, 3.0, 0.25, 1.5, 2.5, 0.75]);
        assert!(f.beta_left.is_nan());
        assert_eq!(f.alpha, 0.2);
    }
}
