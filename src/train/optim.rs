//! AdamW (Loshchilov & Hutter), written on tensors, with a learning-rate
//! warm-up and gradient-norm clipping.
//!
//! Why not tch's `nn::Optimizer`: its moment buffers live inside libtorch
//! and cannot be saved or restored, so a resumed run would restart Adam from
//! zero moments and diverge from the uninterrupted one. Here the state (m, v
//! and the step count) is plain tensors keyed by parameter name, saved to
//! safetensors next to the weights. The update is libtorch's fused AdamW
//! kernel (`torch.optim.AdamW(fused=True)`), one launch for all parameters.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use super::multi_tensor::{foreach_norm, fused_adamw_, grads_to_none, AdamWStep};
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
    /// `step` as the float32 scalar on the parameters' device that the fused
    /// kernel reads, so an update needs no host-to-device copy.
    step_on_device: Tensor,
}

impl AdamW {
    pub fn new(params: Vec<(String, Tensor)>, config: AdamWConfig) -> Self {
        let moments = params
            .iter()
            .map(|(name, p)| (name.clone(), Moments { m: p.zeros_like(), v: p.zeros_like() }))
            .collect();
        let device = params.first().map_or(tch::Device::Cpu, |(_, p)| p.device());
        let step_on_device = Tensor::zeros([], (Kind::Float, device));
        AdamW { config, params, moments, step: 0, step_on_device }
    }

    pub fn params(&self) -> &[(String, Tensor)] {
        &self.params
    }

    pub fn steps_taken(&self) -> i64 {
        self.step
    }

    /// Forgets the gradients (set to none, as `torch.optim` does by default),
    /// so a parameter the next step leaves unused is not updated.
    pub fn zero_grad(&mut self) -> Result<()> {
        grads_to_none(&self.params.iter().map(|(_, p)| p).collect::<Vec<_>>())
    }

    /// One update with learning rate `lr`, the gradients divided by
    /// `grad_scale` first when given (see `clip_divisor`; the kernel divides
    /// the gradients in place, as an AMP unscale does). Parameters without
    /// a gradient (unused this step) are left alone, moments included. All
    /// parameters go through one fused kernel (`torch.optim.AdamW(fused=True)`),
    /// and nothing is read back to the host.
    pub fn step(&mut self, lr: f64, grad_scale: Option<&Tensor>) -> Result<()> {
        let AdamWConfig { beta1, beta2, eps, weight_decay } = self.config;
        self.step += 1;
        let grads: Vec<(Tensor, &Tensor, &Moments)> = self
            .params
            .iter()
            .map(|(name, p)| (p.grad(), p, &self.moments[name]))
            .filter(|(g, _, _)| g.defined())
            .collect();
        let params: Vec<&Tensor> = grads.iter().map(|(_, p, _)| *p).collect();
        let g: Vec<&Tensor> = grads.iter().map(|(g, _, _)| g).collect();
        let m: Vec<&Tensor> = grads.iter().map(|(_, _, s)| &s.m).collect();
        let v: Vec<&Tensor> = grads.iter().map(|(_, _, s)| &s.v).collect();
        tch::no_grad(|| -> Result<()> {
            let _ = self.step_on_device.fill_(self.step as f64);
            let h = AdamWStep { lr, beta1, beta2, weight_decay, eps };
            fused_adamw_(&params, &g, &m, &v, &self.step_on_device, h, grad_scale)
        })
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

/// `torch.optim.AdamW(foreach=False)`'s update of one parameter (`step`
/// counts this update): the rule the fused kernel must equal, written one
/// tensor at a time as this optimizer did before it used the kernel. The
/// tests' oracle and `benches/optimizer.rs`'s baseline.
pub fn adamw_per_tensor(p: &Tensor, m: &Tensor, v: &Tensor, grad: &Tensor, step: i32, lr: f64, c: &AdamWConfig) {
    let (bias1, bias2_sqrt) = (1.0 - c.beta1.powi(step), (1.0 - c.beta2.powi(step)).sqrt());
    tch::no_grad(|| {
        let (mut p, mut m, mut v) = (p.shallow_clone(), m.shallow_clone(), v.shallow_clone());
        let _ = p.g_mul_scalar_(1.0 - lr * c.weight_decay);
        let _ = m.lerp_(grad, 1.0 - c.beta1);
        let _ = v.g_mul_scalar_(c.beta2).g_add_(&(grad * grad * (1.0 - c.beta2)));
        let denom = v.sqrt() / bias2_sqrt + c.eps;
        let _ = p.g_sub_(&(&m / &denom * (lr / bias1)));
    });
}

/// `clip_grad_norm_`'s rule as a divisor for `AdamW::step`: the gradients'
/// joint L2 norm, and `max(1, (norm + 1e-6) / max_norm)`, by which dividing
/// brings the norm to at most `max_norm`. Both stay on the device (a clip
/// that reads the norm back would stall a GPU every step); `None` when no
/// parameter has a gradient.
pub fn clip_divisor(params: &[Tensor], max_norm: f64) -> Result<Option<(Tensor, Tensor)>> {
    let grads: Vec<Tensor> = params.iter().map(|p| p.grad()).filter(|g| g.defined()).collect();
    if grads.is_empty() {
        return Ok(None);
    }
    let norm = foreach_norm(&grads.iter().collect::<Vec<_>>())?;
    let divisor = tch::no_grad(|| ((&norm + 1e-6) / max_norm).clamp_min(1.0));
    Ok(Some((norm, divisor)))
}

#[cfg(test)]
#[path = "optim_tests.rs"]
mod tests;
