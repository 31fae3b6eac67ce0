//! Validation of Patch-DiT on fixed held-out patch pairs.
//!
//! Everything random is drawn once from the run's seed (crops, degradations,
//! patch positions, noise), so successive validations differ only by the
//! weights and their numbers form a curve. Two questions are asked:
//! - does the denoiser predict its target? The MSE in the target's own space
//!   at fixed timesteps, from almost clean (t = 100) to pure noise
//!   (t = 999), and their mean. An eps model reports `eps_mse`, as it always
//!   has, so old logs compare; x0 and v models report `x0_pred_mse` and
//!   `v_pred_mse`, since their scales are not eps's (and `x0_mse` already
//!   names the sampled result below);
//! - does sampling help? one PGS group (tau = 400, N = 8, the paper's
//!   "medium" patches) run from y0; its MSE to x0 next to y0's own MSE to x0.
//!   Diffusion earns its cost when the first falls below the second, and
//!   this number compares across targets.

use super::pairs::{make_pairs, PairConfig, PatchPairs};
use crate::diffusion::ddim::{q_sample, DdimSampler};
use crate::diffusion::Prediction;
use crate::dit::PatchDiT;
use crate::model::Model;
use crate::pgs::sampler::patch_noise;
use crate::train::lr_pairs::degrade_batch;
use crate::train::Losses;
use anyhow::{ensure, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// Timesteps at which the target MSE is reported.
pub const VAL_TIMESTEPS: [i64; 4] = [100, 400, 700, 999];
/// The shortcut sample of the validation: start tau and DDIM steps.
pub const SAMPLE_TAU: usize = 400;
pub const SAMPLE_STEPS: usize = 8;

pub struct ValSet {
    pairs: PatchPairs,
    /// (P, c, V, V): the noise of every target test and the sampler's start.
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

    /// The validation numbers of `dit` (pass the EMA weights), the mean
    /// target MSE ([`target_metric`]) first.
    pub fn evaluate(&self, dit: &PatchDiT, alphas_cumprod: &[f64]) -> Result<Losses> {
        tch::no_grad(|| {
            let PatchPairs {
                x0,
                y0,
                priors,
                sims,
            } = &self.pairs;
            let kv = dit.prompt_kv(&dit.encode_texture(priors, sims));
            let prediction = dit.config().target;
            let metric = target_metric(prediction);
            let n = self.len();
            let mut per_t = Vec::new();
            for &t in &VAL_TIMESTEPS {
                let ts = Tensor::full([n], t, (Kind::Int64, x0.device()));
                let x_t = q_sample(alphas_cumprod, x0, &ts, &self.noise)?;
                let target = prediction.target(
                    x0,
                    &self.noise,
                    &vec![alphas_cumprod[t as usize]; n as usize],
                )?;
                let out = dit.forward_kv(&x_t, y0, &ts.to_kind(Kind::Float), &kv);
                per_t.push((format!("{metric}_t{t}"), mse(&out, &target)));
            }
            let mean = per_t.iter().map(|(_, v)| v).sum::<f64>() / per_t.len() as f64;
            let ddim = DdimSampler::new(alphas_cumprod, SAMPLE_TAU, SAMPLE_STEPS)?;
            let sampled = ddim.sample(y0, &self.noise, prediction, |x_t, t| {
                dit.forward_kv(x_t, y0, t, &kv)
            });
            let mut out = vec![(metric.to_string(), mean)];
            out.extend(per_t);
            out.push(("x0_mse_sampled".into(), mse(&sampled, x0)));
            out.push(("x0_mse_y0".into(), mse(y0, x0)));
            Ok(out)
        })
    }
}

/// The name of the MSE in the target's space: `eps_mse` keeps the name it had
/// before there were other targets.
fn target_metric(prediction: Prediction) -> &'static str {
    match prediction {
        Prediction::Epsilon => "eps_mse",
        Prediction::X0 => "x0_pred_mse",
        Prediction::V => "v_pred_mse",
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

    fn tiny(target: Prediction) -> (Model, ValSet) {
        let mut cfg = ModelConfig::tiny();
        cfg.dit.target = target;
        let model = Model::init(cfg, Device::Cpu, 0).unwrap();
        tch::manual_seed(3);
        let hr = Tensor::rand([2, 3, 96, 96], (Kind::Float, Device::Cpu));
        let cfg = PairConfig {
            scale: 4,
            mix: crate::degrade::LrMix::default(),
            patches_per_crop: 2,
            prompt_dropout: 0.9,
        };
        let val = ValSet::build(&model, &[hr], &cfg, 11).unwrap();
        (model, val)
    }

    #[test]
    fn a_fixed_set_gives_the_same_numbers_twice() {
        let (model, val) = tiny(Prediction::Epsilon);
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
    fn the_untrained_model_outputs_zero_in_its_target_space() {
        // DiT's init zeroes the final layer, so the output is 0 and each
        // MSE is the target's own mean square (about 1 for eps): a check of
        // the wiring, and of which target each name reports.
        for prediction in [Prediction::Epsilon, Prediction::X0, Prediction::V] {
            let (model, val) = tiny(prediction);
            let ac = model.config.diffusion.alphas_cumprod();
            let out = val.evaluate(&model.dit, &ac).unwrap();
            let metric = target_metric(prediction);
            assert_eq!(out[0].0, metric);
            for &t in &VAL_TIMESTEPS {
                let abar = vec![ac[t as usize]; val.len() as usize];
                let target = prediction.target(&val.pairs.x0, &val.noise, &abar).unwrap();
                let want = target.square().mean(Kind::Float).double_value(&[]);
                let name = format!("{metric}_t{t}");
                let (_, v) = out.iter().find(|(n, _)| *n == name).unwrap();
                assert!(
                    (v - want).abs() < 1e-6,
                    "{name} = {v}, target mean square {want}"
                );
            }
            assert!(out
                .iter()
                .any(|(n, v)| n == "x0_mse_sampled" && v.is_finite()));
        }
    }
}
