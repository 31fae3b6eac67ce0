//! Exponential moving average of a model's weights (the GRM's and the
//! Patch-DiT's: what the trainers write to the model).
//!
//! The average lives in a shadow `VarStore` with the same variable names as
//! the model, so it saves in the model's own layout: an EMA file loads as
//! model weights, and `VarStore::copy` puts the average into a model built
//! for evaluation.

use anyhow::{Context, Result};
use std::path::Path;
use super::multi_tensor::foreach_lerp_;
use tch::nn::VarStore;
use tch::Tensor;

pub struct Ema {
    pub decay: f64,
    shadow: VarStore,
    /// (model variable, its shadow) pairs, by name.
    pairs: Vec<(String, Tensor, Tensor)>,
}

impl Ema {
    /// Starts the average at the model's current weights.
    pub fn new(model: &VarStore, decay: f64) -> Self {
        let shadow = VarStore::new(model.device());
        let mut variables: Vec<(String, Tensor)> = model.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let pairs = variables
            .into_iter()
            .map(|(name, var)| {
                let (parent, leaf) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
                let path = parent.split('.').filter(|s| !s.is_empty()).fold(shadow.root(), |p, s| p / s);
                let copy = tch::no_grad(|| path.var_copy(leaf, &var)).set_requires_grad(false);
                (name, var, copy)
            })
            .collect();
        Ema { decay, shadow, pairs }
    }

    /// The decay after `updates` updates: small at first (1 + n) / (10 + n),
    /// so the random initial weights are forgotten quickly, then `decay`.
    pub fn decay_at(&self, updates: u64) -> f64 {
        self.decay.min((1 + updates) as f64 / (10 + updates) as f64)
    }

    /// shadow <- d shadow + (1 - d) model, with d = `decay_at(updates)`, all
    /// tensors in one multi-tensor kernel.
    pub fn update(&mut self, updates: u64) -> Result<()> {
        let d = self.decay_at(updates);
        let shadows: Vec<&Tensor> = self.pairs.iter().map(|(_, _, s)| s).collect();
        let vars: Vec<&Tensor> = self.pairs.iter().map(|(_, v, _)| v).collect();
        tch::no_grad(|| foreach_lerp_(&shadows, &vars, 1.0 - d))
    }

    pub fn shadow(&self) -> &VarStore {
        &self.shadow
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.shadow.save(path).with_context(|| format!("writing EMA weights {}", path.display()))
    }

    pub fn load(&mut self, path: &Path) -> Result<()> {
        self.shadow.load(path).with_context(|| format!("reading EMA weights {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn model() -> (VarStore, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let w = (vs.root() / "block" / "fc").var("weight", &[2], nn::Init::Const(1.0));
        (vs, w)
    }

    fn set(t: &Tensor, value: f64) {
        let _ = tch::no_grad(|| t.shallow_clone().fill_(value));
    }

    #[test]
    fn averages_with_warm_up_under_the_model_names() {
        let (vs, w) = model();
        let mut ema = Ema::new(&vs, 0.9);
        let shadow = ema.shadow().variables()["block.fc.weight"].shallow_clone();
        assert!(!shadow.requires_grad());
        set(&w, 3.0);
        ema.update(0).unwrap(); // d = min(0.9, 1/10) = 0.1: 0.1 * 1 + 0.9 * 3
        assert!((shadow.double_value(&[0]) - 2.8).abs() < 1e-6);
        assert_eq!(ema.decay_at(1000), 0.9);
        ema.update(1000).unwrap(); // 0.9 * 2.8 + 0.1 * 3
        assert!((shadow.double_value(&[1]) - 2.82).abs() < 1e-6);
        assert_eq!(w.double_value(&[0]), 3.0, "the model is not touched");
    }

    #[test]
    fn saved_average_loads_as_model_weights() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ema.safetensors");
        let (vs, w) = model();
        let mut ema = Ema::new(&vs, 0.5);
        set(&w, 5.0);
        ema.update(100).unwrap();
        ema.save(&path).unwrap();
        let (mut fresh, fresh_w) = model();
        fresh.load(&path).unwrap();
        assert!(fresh_w.allclose(&Tensor::full([2], 3.0, (Kind::Float, Device::Cpu)), 0.0, 1e-6, false));
        let (other, _) = model();
        let mut restored = Ema::new(&other, 0.5);
        restored.load(&path).unwrap();
        assert!(restored.shadow().variables()["block.fc.weight"].equal(&ema.shadow().variables()["block.fc.weight"]));
    }
}

/// Loads the EMA weights of `part` from the newest checkpoint of the run in
/// `out_dir` into `vs`: what a trainer writes to the model at its end.
pub fn load_latest(vs: &mut VarStore, out_dir: &Path, part: &str) -> Result<()> {
    let (ckpt, _) = super::checkpoint::Checkpoint::in_dir(out_dir)
        .latest()?
        .context("the run left no checkpoint")?;
    let file = ckpt.join(format!("ema-{part}.safetensors"));
    vs.load(&file).with_context(|| format!("reading the EMA weights {}", file.display()))
}
