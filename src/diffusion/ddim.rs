//! Deterministic DDIM (eta = 0) over a respaced subset of the training steps,
//! starting part-way, at tau, from a noised copy of the coarse latent y0.
//!
//! The arithmetic follows DiT's `GaussianDiffusion` step for step: per-step
//! coefficients are taken from f64 tables and cast to f32 before they touch a
//! tensor, and eps is re-derived from x0_hat before the update. That keeps a
//! port within float32 rounding of the reference rather than merely close.
//! Because the update reads only x0_hat, a model trained on another target
//! ([`Prediction`]) is sampled by converting its output to x0_hat first.

use super::prediction::{per_item, Prediction};
use super::respace::space_timesteps;
use anyhow::{bail, ensure, Result};
use tch::{Kind, Tensor};

/// One DDIM update from training step `t` to the kept step below it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DdimStep {
    /// The original (un-respaced) timestep the model is called with.
    pub t: usize,
    /// The next kept timestep, or `None` after the last step (abar = 1).
    pub t_prev: Option<usize>,
    pub abar: f64,
    pub abar_prev: f64,
}

/// DDIM with eta = 0 from tau down to 0 in `n` model evaluations.
#[derive(Clone, Debug)]
pub struct DdimSampler {
    /// Explicit (t, t_prev) pairs, in sampling order (t descending).
    pub steps: Vec<DdimStep>,
    /// abar at tau - 1, where the start point is drawn.
    abar_start: f64,
}

impl DdimSampler {
    pub fn new(alphas_cumprod: &[f64], tau: usize, n: usize) -> Result<Self> {
        if tau == 0 || tau > alphas_cumprod.len() {
            bail!(
                "DDIM start tau = {tau} outside 1..={} training steps",
                alphas_cumprod.len()
            );
        }
        let kept = space_timesteps(tau, n)?;
        let steps = (0..kept.len())
            .rev()
            .map(|i| {
                let t_prev = i.checked_sub(1).map(|j| kept[j]);
                DdimStep {
                    t: kept[i],
                    t_prev,
                    abar: alphas_cumprod[kept[i]],
                    abar_prev: t_prev.map_or(1.0, |p| alphas_cumprod[p]),
                }
            })
            .collect();
        Ok(Self {
            steps,
            abar_start: alphas_cumprod[tau - 1],
        })
    }

    pub fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// The timesteps the model sees, in calling order.
    pub fn model_timesteps(&self) -> Vec<usize> {
        self.steps.iter().map(|s| s.t).collect()
    }

    /// y_tau = sqrt(abar_{tau-1}) y0 + sqrt(1 - abar_{tau-1}) noise: the
    /// shortcut start of PatchScaler, a forward jump of the 1000-step process.
    pub fn start(&self, y0: &Tensor, noise: &Tensor) -> Tensor {
        noised(y0, noise, self.abar_start)
    }

    /// Step `i` (0-based, in sampling order) given the model's eps at x_t:
    /// DiT's own step, which the conformance kit checks.
    /// Returns (x_prev, x0_hat); after the last step x_prev equals x0_hat.
    pub fn step(&self, x_t: &Tensor, eps: &Tensor, i: usize) -> (Tensor, Tensor) {
        self.step_output(x_t, eps, Prediction::Epsilon, i)
    }

    /// [`Self::step`] for a model whose `output` at x_t is its `prediction`.
    pub fn step_output(
        &self,
        x_t: &Tensor,
        output: &Tensor,
        prediction: Prediction,
        i: usize,
    ) -> (Tensor, Tensor) {
        let s = &self.steps[i];
        let recip = (1.0 / s.abar).sqrt() as f32 as f64;
        let recipm1 = (1.0 / s.abar - 1.0).sqrt() as f32 as f64;
        let pred_x0 = prediction.to_x0(output, x_t, s.abar);
        let eps = (x_t * recip - &pred_x0) / recipm1;
        // DiT takes abar_prev as f32 and does the sqrt in f32.
        let abar_prev = s.abar_prev as f32;
        let x_prev = &pred_x0 * abar_prev.sqrt() as f64 + eps * (1.0 - abar_prev).sqrt() as f64;
        (x_prev, pred_x0)
    }

    /// Run all steps from the start point. `model(x_t, t)` returns its
    /// `prediction` and gets `t` as an f32 tensor of shape (B,) holding the
    /// ORIGINAL timestep, as DiT's `SpacedDiffusion` passes it through its
    /// timestep map.
    pub fn sample(
        &self,
        y0: &Tensor,
        noise: &Tensor,
        prediction: Prediction,
        mut model: impl FnMut(&Tensor, &Tensor) -> Tensor,
    ) -> Tensor {
        tch::no_grad(|| {
            let batch = y0.size()[0];
            let mut x = self.start(y0, noise);
            for (i, s) in self.steps.iter().enumerate() {
                let t = Tensor::full([batch], s.t as f64, (Kind::Float, y0.device()));
                let output = model(&x, &t);
                x = self.step_output(&x, &output, prediction, i).0;
            }
            x
        })
    }
}

/// Forward process q(x_t | x0) for training: t holds one int64 timestep per
/// batch item. Coefficients come from the f64 table, cast to f32, as in DiT.
pub fn q_sample(alphas_cumprod: &[f64], x0: &Tensor, t: &Tensor, noise: &Tensor) -> Result<Tensor> {
    ensure!(
        t.kind() == Kind::Int64 && t.dim() == 1,
        "q_sample: t must be a 1-D int64 tensor, got {:?} {:?}",
        t.kind(),
        t.size()
    );
    ensure!(
        t.size()[0] == x0.size()[0],
        "q_sample: {} timesteps for a batch of {}",
        t.size()[0],
        x0.size()[0]
    );
    let ts = Vec::<i64>::try_from(t.to_device(tch::Device::Cpu))?;
    if let Some(bad) = ts
        .iter()
        .find(|&&v| v < 0 || v as usize >= alphas_cumprod.len())
    {
        bail!(
            "q_sample: timestep {bad} outside 0..{}",
            alphas_cumprod.len()
        );
    }
    let abar: Vec<f64> = ts.iter().map(|&i| alphas_cumprod[i as usize]).collect();
    Ok(x0 * per_item(&abar, |a| a.sqrt(), x0) + noise * per_item(&abar, |a| (1.0 - a).sqrt(), x0))
}


fn noised(x0: &Tensor, noise: &Tensor, abar: f64) -> Tensor {
    x0 * abar.sqrt() as f32 as f64 + noise * (1.0 - abar).sqrt() as f32 as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{self, max_abs_diff};
    use crate::diffusion::schedule::DiffusionConfig;

    /// Largest violation of |a - b| <= atol + rtol |b| (<= 0 means within).
    fn excess(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> f64 {
        let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
        ((&a - &b).abs() - b.abs() * rtol - atol)
            .max()
            .double_value(&[])
    }

    #[test]
    fn single_step_matches_dit() {
        let Some(kit) = conformance::load("schedules/ddim_step.safetensors") else {
            return;
        };
        let ddim = DdimSampler::new(&DiffusionConfig::dit().alphas_cumprod(), 400, 8).unwrap();
        // Respaced index 5 of 8 is the third step in sampling order.
        let s = ddim.steps[2];
        assert_eq!((s.t, s.t_prev), (285, Some(228)));
        assert_eq!(s.abar, kit["alpha_bar_t"].double_value(&[0]));
        assert_eq!(s.abar_prev, kit["alpha_bar_prev"].double_value(&[0]));
        let (x_prev, pred_x0) = ddim.step(&kit["x_t"], &kit["eps"], 2);
        let (e_x0, e_prev) = (
            max_abs_diff(&pred_x0, &kit["pred_x0"]),
            max_abs_diff(&x_prev, &kit["x_prev"]),
        );
        eprintln!("ddim step: pred_x0 {e_x0:e}, x_prev {e_prev:e} (tol 1e-6)");
        assert!(e_x0 <= 1e-6 && e_prev <= 1e-6);
        assert!(max_abs_diff(&x_prev, &kit["x_prev_f64_formula"]) <= 1e-6);
    }

    fn toy_eps(x: &Tensor, t: &Tensor) -> Tensor {
        x.tanh() * 0.5 + t.view([-1, 1, 1, 1]) * 0.001 - 0.3
    }

    #[test]
    fn full_loops_match_dit() {
        let Some(kit) = conformance::load("schedules/ddim_loops.safetensors") else {
            return;
        };
        let sd = DiffusionConfig::default().alphas_cumprod();
        let dit = DiffusionConfig::dit().alphas_cumprod();
        for (name, abar, tau, n) in [
            ("dit_linear_400_8", &dit, 400, 8),
            ("sd_scaled_linear_700_14", &sd, 700, 14),
            ("sd_scaled_linear_1000_20", &sd, 1000, 20),
        ] {
            let get = |k: &str| &kit[&format!("{name}.{k}")];
            let ddim = DdimSampler::new(abar, tau, n).unwrap();
            let model_t: Vec<usize> = Vec::<i64>::try_from(get("model_t"))
                .unwrap()
                .iter()
                .map(|&t| t as usize)
                .collect();
            assert_eq!(ddim.model_timesteps(), model_t, "{name}");
            assert_eq!(ddim.steps.last().unwrap().t_prev, None);

            let mut x = ddim.start(get("y0"), get("noise"));
            let mut worst = excess(&x, get("x_start"), 1e-5, 1e-5);
            let mut max_err = max_abs_diff(&x, get("x_start"));
            for i in 0..ddim.num_steps() {
                let t = Tensor::from_slice(&[ddim.steps[i].t as f32]);
                let (next, pred_x0) = ddim.step(&x, &toy_eps(&x, &t), i);
                worst = worst.max(excess(&pred_x0, &get("pred_x0").get(i as i64), 1e-5, 1e-5));
                worst = worst.max(excess(
                    &next,
                    &get("trajectory").get(i as i64 + 1),
                    1e-5,
                    1e-5,
                ));
                max_err = max_err.max(max_abs_diff(&next, &get("trajectory").get(i as i64 + 1)));
                x = next;
            }
            let sampled = ddim.sample(get("y0"), get("noise"), Prediction::Epsilon, toy_eps);
            assert_eq!(
                max_abs_diff(&sampled, &x),
                0.0,
                "{name}: sample() differs from stepping"
            );
            eprintln!("{name}: trajectory max abs err {max_err:e} (tol 1e-5 + 1e-5|b|)");
            assert!(worst <= 0.0, "{name}: outside tolerance by {worst:e}");
        }
    }

    /// The epsilon path is the step as it stood before there were targets.
    #[test]
    fn the_epsilon_path_is_the_old_step_bit_for_bit() {
        let ddim =
            DdimSampler::new(&DiffusionConfig::default().alphas_cumprod(), 1000, 20).unwrap();
        let x_t = Tensor::randn([2, 4, 8, 8], (Kind::Float, tch::Device::Cpu));
        let eps = Tensor::randn([2, 4, 8, 8], (Kind::Float, tch::Device::Cpu));
        for (i, s) in ddim.steps.iter().enumerate() {
            let recip = (1.0 / s.abar).sqrt() as f32 as f64;
            let recipm1 = (1.0 / s.abar - 1.0).sqrt() as f32 as f64;
            let pred_x0 = &x_t * recip - &eps * recipm1;
            let e = (&x_t * recip - &pred_x0) / recipm1;
            let abar_prev = s.abar_prev as f32;
            let x_prev = &pred_x0 * abar_prev.sqrt() as f64 + e * (1.0 - abar_prev).sqrt() as f64;
            for (next, x0_hat) in [
                ddim.step(&x_t, &eps, i),
                ddim.step_output(&x_t, &eps, Prediction::Epsilon, i),
            ] {
                assert!(next.equal(&x_prev) && x0_hat.equal(&pred_x0), "step {i}");
            }
        }
    }

    /// A model that returns the exact target for x0 and the noise present in
    /// x_t leads DDIM to x0 whatever its target, from a y0 that is not x0.
    #[test]
    fn an_oracle_of_each_target_samples_x0() {
        let ac = DiffusionConfig::default().alphas_cumprod();
        let x0 = Tensor::randn([2, 4, 8, 8], (Kind::Float, tch::Device::Cpu));
        let y0 = &x0 + x0.randn_like() * 0.3;
        let noise = x0.randn_like();
        for prediction in [Prediction::Epsilon, Prediction::X0, Prediction::V] {
            let oracle = |x_t: &Tensor, t: &Tensor| {
                let abar = ac[t.double_value(&[0]) as usize];
                let eps = (x_t - &x0 * abar.sqrt()) / (1.0 - abar).sqrt();
                prediction.target(&x0, &eps, &[abar; 2]).unwrap()
            };
            for (tau, n) in [(1000, 20), (400, 8)] {
                let ddim = DdimSampler::new(&ac, tau, n).unwrap();
                let err = max_abs_diff(&ddim.sample(&y0, &noise, prediction, oracle), &x0);
                eprintln!("oracle {prediction:?} from tau = {tau}: max abs err {err:e} (tol 1e-4)");
                assert!(
                    err <= 1e-4,
                    "{prediction:?} from tau = {tau}: off by {err:e}"
                );
            }
        }
    }

    #[test]
    fn q_sample_uses_each_items_own_timestep() {
        let abar = DiffusionConfig::default().alphas_cumprod();
        let x0 = Tensor::randn([2, 4, 3, 3], (Kind::Float, tch::Device::Cpu));
        let noise = Tensor::randn([2, 4, 3, 3], (Kind::Float, tch::Device::Cpu));
        let xt = q_sample(&abar, &x0, &Tensor::from_slice(&[10i64, 900]), &noise).unwrap();
        for (i, t) in [(0i64, 10usize), (1, 900)] {
            let expected = noised(&x0.get(i), &noise.get(i), abar[t]);
            assert_eq!(max_abs_diff(&xt.get(i), &expected), 0.0);
        }
        assert!(q_sample(&abar, &x0, &Tensor::from_slice(&[0i64, 1000]), &noise).is_err());
        assert!(q_sample(&abar, &x0, &Tensor::from_slice(&[0i64]), &noise).is_err());
    }

    #[test]
    fn rejects_a_start_beyond_the_schedule() {
        let abar = DiffusionConfig::default().alphas_cumprod();
        assert!(DdimSampler::new(&abar, 1001, 20).is_err());
        assert!(DdimSampler::new(&abar, 0, 1).is_err());
    }
}
