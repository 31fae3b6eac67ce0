//! Validation of Patch-DiT on fixed held-out patch pairs.
//!
//! Everything random is drawn once from the run's seed (crops, degradations,
//! patch positions, noise), so successive validations differ only by the
//! weights and their numbers form a curve. Two questions are asked:
//! - does the denoiser predict the noise? eps MSE at fixed timesteps, from
//!   almost clean (t = 100) to pure noise (t = 999), and their mean;
//! - does sampling help? one PGS group (tau = 400, N = 8, the paper's
//!   "medium" patches) run from y0; its MSE to x0 next to y0's own MSE to x0.
//!   Diffusion earns its cost when the first falls below the second.

use super::pairs::{make_pairs, PairConfig, PatchPairs};
use crate::diffusion::ddim::{q_sample, DdimSampler};
use crate::dit::PatchDiT;
use crate::model::Model;
use crate::pgs::sampler::patch_noise;
use crate::train::lr_pairs::degrade_batch;
use crate::train::Losses;
use anyhow::{ensure, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Timesteps at which the eps MSE is reported.
pub const VAL_TIMESTEPS: [i64; 4] = [100, 400, 700, 999];
/// The shortcut sample of the validation: start tau and DDIM steps.
pub const SAMPLE_TAU: usize = 400;
pub const SAMPLE_STEPS: usize = 8;

pub struct ValSet {
    pairs: PatchPairs,
    /// (P, c, V, V): the noise of every eps test and the sampler's start.
    noise: Tensor,
}

impl ValSet {
    /// Pairs from the held-out HR `batches`, with the retrieved prompt
    /// (never dropped: validation measures the method itself).
    pub fn build(model: &Model, batches: &[Tensor], cfg: &PairConfig, seed: u64) -> Result<Self> {
        ensure!(
            !batches.is_empty(),
            "no validation crops: the val split is empty or --val-batches is 0"
        );
        let cfg = PairConfig {
            prompt_dropout: 0.0,
            ..cfg.clone()
        };
        let lr_cfg = cfg.lr_pairs(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let parts = batches
            .iter()
            .enumerate()
            .map(|(k, hr)| {
                let pair = degrade_batch(hr, k as u64, &lr_cfg)?;
                make_pairs(model, &pair.hr, &pair.lr, &cfg, &mut rng)
            })
            .collect::<Result<Vec<_>>>()?;
        let cat = |f: fn(&PatchPairs) -> &Tensor| {
            Tensor::cat(&parts.iter().map(f).collect::<Vec<_>>(), 0)
        };
        let pairs = PatchPairs {
            x0: cat(|p| &p.x0),
            y0: cat(|p| &p.y0),
            priors: cat(|p| &p.priors),
            sims: cat(|p| &p.sims),
        };
        let noise = patch_noise(seed, 0, &pairs.x0.size()).to_device(model.device);
        Ok(Self { pairs, noise })
    }

    pub fn len(&self) -> i64 {
        self.pairs.x0.size()[0]
    }

    /// The validation numbers of `dit` (pass the EMA weights), `eps_mse` first.
    pub fn evaluate(&self, dit: &PatchDiT, alphas_cumprod: &[f64]) -> Result<Losses> {
        tch::no_grad(|| {
            let PatchPairs {
                x0,
                y0,
                priors,
                sims,
            } = &self.pairs;
            let kv = dit.prompt_kv(&dit.encode_texture(priors, sims));
            let n = self.len();
            let mut per_t = Vec::new();
            for &t in &VAL_TIMESTEPS {
                let ts = Tensor::full([n], t, (Kind::Int64, x0.device()));
                let x_t = q_sample(alphas_cumprod, x0, &ts, &self.noise)?;
                let eps = dit.forward_kv(&x_t, y0, &ts.to_kind(Kind::Float), &kv);
                per_t.push((format!("eps_mse_t{t}"), mse(&eps, &self.noise)));
            }
            let mean = per_t.iter().map(|(_, v)| v).sum::<f64>() / per_t.len() as f64;
            let ddim = DdimSampler::new(alphas_cumprod, SAMPLE_TAU, SAMPLE_STEPS)?;
            let sampled = ddim.sample(y0, &self.noise, |x_t, t| dit.forward_kv(x_t, y0, t, &kv));
            let mut out = vec![("eps_mse".to_string(), mean)];
            out.extend(per_t);
            out.push(("x0_mse_sampled".into(), mse(&sampled, x0)));
            out.push(("x0_mse_y0".into(), mse(y0, x0)));
            Ok(out)
        })
    }
}

fn mse(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).square().mean(Kind::Float).double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelConfig;
    use tch::Device;

    fn tiny() -> (Model, ValSet) {
        let model = Model::init(ModelConfig::tiny(), Device::Cpu, 0).unwrap();
        tch::manual_seed(3);
        let hr = Tensor::rand([2, 3, 96, 96], (Kind::Float, Device::Cpu));
        let cfg = PairConfig {
            scale: 4,
            bicubic_prob: 0.5,
            patches_per_crop: 2,
            prompt_dropout: 0.9,
        };
        let val = ValSet::build(&model, &[hr], &cfg, 11).unwrap();
        (model, val)
    }

    #[test]
    fn a_fixed_set_gives_the_same_numbers_twice() {
        let (model, val) = tiny();
        assert_eq!(val.len(), 4);
        assert!(
            val.pairs.sims.abs().sum(Kind::Float).double_value(&[]) > 0.0,
            "validation never drops the prompt"
        );
        let ac = model.config.diffusion.alphas_cumprod();
        let a = val.evaluate(&model.dit, &ac).unwrap();
        let b = val.evaluate(&model.dit, &ac).unwrap();
        assert_eq!(a, b);
        let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "eps_mse");
        assert!(names.contains(&"eps_mse_t999") && names.contains(&"x0_mse_sampled"));
        assert!(a.iter().all(|(_, v)| v.is_finite()));
    }

    #[test]
    fn the_untrained_model_predicts_zero_noise() {
        // DiT's init zeroes the final layer, so eps_pred = 0 and the eps MSE
        // is the noise's own mean square, about 1: a check of the wiring.
        let (model, val) = tiny();
        let out = val
            .evaluate(&model.dit, &model.config.diffusion.alphas_cumprod())
            .unwrap();
        let want = val.noise.square().mean(Kind::Float).double_value(&[]);
        for (name, v) in out.iter().filter(|(n, _)| n.starts_with("eps_mse")) {
            assert!(
                (v - want).abs() < 1e-6,
                "{name} = {v}, noise mean square {want}"
            );
        }
    }
}
