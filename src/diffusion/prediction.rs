//! What Patch-DiT's output stands for (SPEC section 7, "Patch-DiT target").
//!
//! The paper trains the noise eps (Eq. 7), and every shipped model does. In a
//! latent of many channels per token the clean patch x0 can be the easier
//! thing to regress (Li and He 2025, JiT), and v = sqrt(abar) eps -
//! sqrt(1 - abar) x0 sits between the two. The sampler needs only x0_hat from
//! each: DDIM then re-derives eps from it, so one update and one shortcut
//! start serve all three targets.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The quantity the denoiser is trained to output at x_t.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// The noise eps (paper Eq. 7).
    #[default]
    Epsilon,
    /// The clean latent x0.
    X0,
    /// v = sqrt(abar) eps - sqrt(1 - abar) x0.
    V,
}

impl Prediction {
    /// x0_hat from the model's `output` at `x_t`, one `abar` for the batch.
    ///
    /// Coefficients come from f64 and are cast to f32 before they touch a
    /// tensor, as in DiT; the epsilon arm is DiT's `_predict_xstart_from_eps`,
    /// so sampling an eps model stays bit-identical to DiT's step.
    pub fn to_x0(self, output: &Tensor, x_t: &Tensor, abar: f64) -> Tensor {
        let f32_coef = |v: f64| v as f32 as f64;
        match self {
            Self::Epsilon => {
                x_t * f32_coef((1.0 / abar).sqrt()) - output * f32_coef((1.0 / abar - 1.0).sqrt())
            }
            Self::X0 => output.shallow_clone(),
            // x_t = a x0 + s eps and v = a eps - s x0 with a^2 + s^2 = 1.
            Self::V => x_t * f32_coef(abar.sqrt()) - output * f32_coef((1.0 - abar).sqrt()),
        }
    }

    /// The training target for x_t = sqrt(abar) x0 + sqrt(1 - abar) eps,
    /// `abar` holding one value per batch item (coefficients built as
    /// [`super::q_sample`] builds them).
    pub fn target(self, x0: &Tensor, eps: &Tensor, abar: &[f64]) -> Result<Tensor> {
        ensure!(
            abar.len() as i64 == x0.size()[0],
            "Prediction::target: {} abar values for a batch of {}",
            abar.len(),
            x0.size()[0]
        );
        Ok(match self {
            Self::Epsilon => eps.shallow_clone(),
            Self::X0 => x0.shallow_clone(),
            Self::V => {
                eps * per_item(abar, |a| a.sqrt(), x0)
                    - x0 * per_item(abar, |a| (1.0 - a).sqrt(), x0)
            }
        })
    }
}

/// f(abar) per batch item, cast to f32 and shaped (B, 1, ...) to broadcast
/// against `like` on its device.
pub(super) fn per_item(abar: &[f64], f: fn(f64) -> f64, like: &Tensor) -> Tensor {
    let v: Vec<f32> = abar.iter().map(|&a| f(a) as f32).collect();
    let mut shape = vec![1i64; like.dim()];
    shape[0] = -1;
    Tensor::from_slice(&v)
        .to_device(like.device())
        .view(shape.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::{q_sample, DiffusionConfig};
    use tch::{Device, Kind};

    /// x0_hat from the training target at the x_t it was built for is x0.
    #[test]
    fn the_target_converts_back_to_x0() {
        let ac = DiffusionConfig::default().alphas_cumprod();
        let x0 = Tensor::randn([3, 4, 8, 8], (Kind::Float, Device::Cpu));
        let eps = Tensor::randn([3, 4, 8, 8], (Kind::Float, Device::Cpu));
        for t in [0usize, 250, 999] {
            let abar = vec![ac[t]; 3];
            let x_t = q_sample(&ac, &x0, &Tensor::from_slice(&[t as i64; 3]), &eps).unwrap();
            for p in [Prediction::Epsilon, Prediction::X0, Prediction::V] {
                let x0_hat = p.to_x0(&p.target(&x0, &eps, &abar).unwrap(), &x_t, ac[t]);
                let err = (&x0_hat - &x0).abs().max().double_value(&[]);
                assert!(err < 1e-4, "{p:?} at t = {t}: x0 off by {err:e}");
            }
        }
        assert!(Prediction::V.target(&x0, &eps, &[0.5]).is_err());
    }
}
