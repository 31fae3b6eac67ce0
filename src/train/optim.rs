//! AdamW (Loshchilov & Hutter), written on tensors, with a learning-rate
//! warm-up and gradient-norm clipping.
//!
//! Why not tch's `nn::Optimizer`: its moment buffers live inside libtorch
//! and cannot be saved or restored, so a resumed run would restart Adam from
//! zero moments and diverge from the uninterrupted one. Here the state (m, v
//! and the step count) is plain tensors keyed by parameter name, saved to
//! safetensors next to the weights. The update follows `torch.optim.AdamW`
//! operation by operation.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// PyTorch's defaults.
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01 }
    }
}

/// Constant learning rate after a linear warm-up from lr / warmup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    pub lr: f64,
    pub warmup: u64,
}

impl LrSchedule {
    /// The rate for 0-based step `step`.
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup {
            self.lr * (step + 1) as f64 / self.warmup as f64
        } else {
            self.lr
        }
    }
}

/// First and second moments of one parameter.
struct Moments {
    m: Tensor,
    v: Tensor,
}

pub struct AdamW {
    pub config: AdamWConfig,
    /// Named parameters; the names key the saved state.
    params: Vec<(String, Tensor)>,
    moments: BTreeMap<String, Moments>,
    /// Updates applied so far (bias correction uses it).
    step: i64,
}

impl AdamW {
    pub fn new(params: Vec<(String, Tensor)>, config: AdamWConfig) -> Self {
        let moments = params
            .iter()
            .map(|(name, p)| (name.clone(), Moments { m: p.zeros_like(), v: p.zeros_like() }))
            .collect();
        AdamW { config, params, moments, step: 0 }
    }

    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    pub fn steps_taken(&self) -> i64 {
        self.step
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in self.params.iter_mut() {
            p.zero_grad();
        }
    }

    /// One update with learning rate `lr`. Parameters without a gradient
    /// (unused this step) are left alone, moments included.
    pub fn step(&mut self, lr: f64) {
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        self.step += 1;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        tch::no_grad(|| {
            for (name, p) in self.params.iter_mut() {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let Moments { m, v } = self.moments.get_mut(name).expect("moments exist for every parameter");
                let _ = p.g_mul_scalar_(1.0 - lr * weight_decay);
                let _ = m.lerp_(&grad, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2).g_add_(&(&grad * &grad * (1.0 - beta2)));
                let denom = v.sqrt() / bias2_sqrt + eps;
                let _ = p.g_sub_(&(&*m / &denom * (lr / bias1)));
            }
        });
    }

    /// Writes m, v (as `m.<name>`, `v.<name>`) and the step count.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = vec![("step".into(), Tensor::from(self.step))];
        for (name, Moments { m, v }) in &self.moments {
            tensors.push((format!("m.{name}"), m.shallow_clone()));
            tensors.push((format!("v.{name}"), v.shallow_clone()));
        }
        Tensor::write_safetensors(&tensors, path).with_context(|| format!("writing optimizer state {}", path.display()))
    }

    /// Restores what `save` wrote; every parameter must be present.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let what = || format!("reading optimizer state {}", path.display());
        let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(path).with_context(what)?.into_iter().collect();
        let step = saved.get("step").with_context(|| format!("{}: no step", what()))?;
        tch::no_grad(|| -> Result<()> {
            for (name, Moments { m, v }) in self.moments.iter_mut() {
                for (prefix, buffer) in [("m", m), ("v", v)] {
                    let key = format!("{prefix}.{name}");
                    let value = saved.get(&key).with_context(|| format!("{}: no {key}", what()))?;
                    buffer.f_copy_(value).with_context(|| format!("{}: {key} has the wrong shape", what()))?;
                }
            }
            Ok(())
        })?;
        self.step = step.int64_value(&[]);
        Ok(())
    }
}

/// Scales all gradients together so that their joint L2 norm is at most
/// `max_norm`; returns the norm before clipping (as `clip_grad_norm_`).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64) -> f64 {
    let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).filter(|g| g.defined()).collect();
    if grads.is_empty() {
        return 0.0;
    }
    let squares: Vec<Tensor> = grads.iter().map(|g| g.to_kind(Kind::Double).square().sum(Kind::Double)).collect();
    let total = Tensor::stack(&squares, 0).sum(Kind::Double).sqrt().double_value(&[]);
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        tch::no_grad(|| {
            for mut g in grads {
                let _ = g.g_mul_scalar_(coef);
            }
        });
    }
    total
}

#[cfg(test)]
#[path = "optim_tests.rs"]
mod tests;
