//! The confidence-driven loss of the GRM (paper Eq. 6):
//!
//! ```text
//! L = |y - x|_1 + lambda * (C * |y - x|^2 - eta * log C)
//! ```
//!
//! Per pixel, minimising over C gives d/dC (C e^2 - eta log C) = 0, i.e.
//! C = eta / e^2, capped at 1 by the sigmoid: C is 1 where the squared error
//! is below eta and falls as 1/e^2 beyond, so it ranks regions by how far the
//! coarse latent is from the truth (heteroscedastic uncertainty, Kendall &
//! Gal 2017). PGS only needs that ranking, thresholded per patch.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub struct ConfidenceLoss {
    pub lambda: f64,
    pub eta: f64,
}

impl Default for ConfidenceLoss {
    fn default() -> Self {
        Self::paper()
    }
}

impl ConfidenceLoss {
    /// lambda = 0.3, eta = 0.2 (paper Sec. 4.1).
    pub fn paper() -> Self {
        Self { lambda: 0.3, eta: 0.2 }
    }

    /// Scalar loss, averaged over every element of `y_hr` (B, c, H, W); the
    /// confidence `conf_logit` (B, 1, H, W) is shared by the c channels of a
    /// pixel. log C is taken as log_sigmoid(logit), which stays finite where
    /// sigmoid(logit) underflows to 0 in float32.
    pub fn compute(&self, y_hr: &Tensor, conf_logit: &Tensor, x_hr: &Tensor) -> Result<Tensor> {
        let (ys, ls, xs) = (y_hr.size(), conf_logit.size(), x_hr.size());
        if ys != xs || ys.len() != 4 || ls != [ys[0], 1, ys[2], ys[3]] {
            bail!("confidence loss: y_hr {ys:?} and x_hr {xs:?} must match and the logit be (B, 1, H, W), got {ls:?}");
        }
        let err = y_hr - x_hr;
        let l1 = err.abs();
        let conf = conf_logit.sigmoid();
        let log_conf = conf_logit.log_sigmoid();
        let weighted = conf * err.square() - log_conf * self.eta;
        Ok((l1 + weighted * self.lambda).mean(tch::Kind::Float))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn t(v: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(v).reshape(shape)
    }

    #[test]
    fn value_matches_hand_computation() {
        // One pixel, two channels, errors 0.5 and -1; logit 0 -> C = 1/2.
        let y = t(&[1.5, 0.0], &[1, 2, 1, 1]);
        let x = t(&[1.0, 1.0], &[1, 2, 1, 1]);
        let logit = t(&[0.0], &[1, 1, 1, 1]);
        let got = ConfidenceLoss::paper().compute(&y, &logit, &x).unwrap().double_value(&[]);
        // Channel 1: 0.5 + 0.3 (0.5 * 0.25 + 0.2 ln 2); channel 2: 1 + 0.3 (0.5 * 1 + 0.2 ln 2).
        let ln2 = std::f64::consts::LN_2;
        let want = ((0.5 + 0.3 * (0.125 + 0.2 * ln2)) + (1.0 + 0.3 * (0.5 + 0.2 * ln2))) / 2.0;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn log_c_is_finite_for_very_negative_logits() {
        let y = Tensor::zeros([1, 1, 1, 1], (Kind::Float, Device::Cpu));
        let logit = t(&[-200.0], &[1, 1, 1, 1]);
        let got = ConfidenceLoss::paper().compute(&y, &logit, &y).unwrap().double_value(&[]);
        // -lambda * eta * log sigmoid(-200) = 0.3 * 0.2 * 200 (to float32 precision).
        assert!((got - 12.0).abs() < 1e-3, "{got}");
    }

    #[test]
    fn optimal_confidence_is_eta_over_squared_error_capped_at_one() {
        let loss = ConfidenceLoss::paper();
        let errors = [0.1f32, 0.3, 0.5, 1.0, 2.0];
        let n = errors.len() as i64;
        let x = Tensor::zeros([1, 1, 1, n], (Kind::Float, Device::Cpu));
        let y = t(&errors, &[1, 1, 1, n]);
        let mut logit = Tensor::zeros([1, 1, 1, n], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        for _ in 0..800 {
            let l = loss.compute(&y, &logit, &x).unwrap() * n as f64;
            l.backward();
            tch::no_grad(|| {
                let step = logit.grad() * 8.0;
                logit -= step;
            });
            let _ = logit.grad().zero_();
        }
        let c = Vec::<f32>::try_from(logit.sigmoid().flatten(0, -1)).unwrap();
        for (e, c) in errors.iter().zip(c) {
            let want = (loss.eta as f32 / (e * e)).min(1.0);
            // Where the optimum is the cap, the sigmoid only approaches it.
            let tol = if want == 1.0 { 0.02 } else { 1e-3 };
            assert!((c - want).abs() < tol, "error {e}: C = {c}, optimum {want}");
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let y = Tensor::zeros([1, 4, 8, 8], (Kind::Float, Device::Cpu));
        let logit = Tensor::zeros([1, 4, 8, 8], (Kind::Float, Device::Cpu));
        assert!(ConfidenceLoss::paper().compute(&y, &logit, &y).is_err());
    }
}
