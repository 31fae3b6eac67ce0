//! The group-batched sampler (the "S" of PGS): each confidence group runs its
//! own shortcut DDIM trajectory, and the groups share batches.
//!
//! The patches sit in one order, longest trajectories first, cut into
//! batches of at most `max_batch`; a batch runs step after step until its
//! longest member is done, each patch with its own t, and the patches still
//! stepping are always a prefix of the batch. Only the batch at a boundary
//! between groups mixes them, so the few patches of a long group no longer
//! run alone in small calls of their own: a plan of 8, 14 and 20 steps with
//! one medium and one hard patch costs 20 calls for their batch, not 34
//! extra calls. On a GPU, where a small call costs about as much as a large
//! one, this is what makes fewer evaluations mean less time. A batch keeps
//! its patches from its first step to its last, so the prompt's keys and
//! values are computed once per batch.
//!
//! The start noise of every patch is given (`start_noise`, cut by the
//! pipeline from one latent-sized noise field drawn from the seed, so that
//! overlapping patches start from the same values where they overlap), and
//! each patch's update uses its own group's scalar DDIM coefficients, so a
//! result depends only on (seed, patch, group), never on how patches were
//! batched or on which device. The uniform baseline is the same code with
//! one group. The denoiser's output is whatever its model was trained to
//! predict (`Prediction`); each step turns it into x0_hat before the update.

use super::groups::PgsConfig;
use crate::diffusion::{DdimSampler, Prediction};
use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// Work done, for the paper's speed comparison against uniform sampling.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SampleStats {
    pub patches_per_group: Vec<usize>,
    /// Patch-level denoiser evaluations: sum over groups of patches x steps.
    pub evaluations: usize,
    /// What the uniform baseline (tau = 1000, 20 steps) would have spent.
    pub uniform_evaluations: usize,
    /// Wall time of the whole sampling, the device synchronised.
    pub time: Duration,
}

/// The denoiser as PGS calls it: (x_t, y0, t as f32 (B,), indices of the
/// batch's patches, e.g. to look up their texture prompts) -> model output.
pub type Denoiser<'a> = dyn FnMut(&Tensor, &Tensor, &Tensor, &[usize]) -> Tensor + 'a;

/// The shared schedule: every group's DDIM plan, the patches in sampling
/// order (most steps first, then by group, then by index) and the runs of
/// one group in that order as (group, first position, length).
struct Schedule {
    plans: Vec<DdimSampler>,
    order: Vec<usize>,
    runs: Vec<(usize, usize, usize)>,
}

impl Schedule {
    fn new(assignment: &[usize], cfg: &PgsConfig, alphas_cumprod: &[f64]) -> Result<Self> {
        let plans = cfg
            .groups
            .iter()
            .map(|g| DdimSampler::new(alphas_cumprod, g.tau, g.steps))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..assignment.len()).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(plans[assignment[i]].num_steps()), assignment[i], i));
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (pos, &i) in order.iter().enumerate() {
            match runs.last_mut() {
                Some((g, _, len)) if *g == assignment[i] => *len += 1,
                _ => runs.push((assignment[i], pos, 1)),
            }
        }
        Ok(Self { plans, order, runs })
    }

    /// The steps of the patch at `pos` in the order.
    fn steps_at(&self, pos: usize, assignment: &[usize]) -> usize {
        self.plans[assignment[self.order[pos]]].num_steps()
    }

    /// The (start, len) batches of the order.
    fn batches(&self, max_batch: usize) -> impl Iterator<Item = (usize, usize)> {
        let p = self.order.len();
        (0..p).step_by(max_batch).map(move |a| (a, max_batch.min(p - a)))
    }
}

/// Denoise (P, c, V, V) coarse patches y0, patch i in group `assignment[i]`
/// starting from `start_noise[i]` (same shape), in batches of at most
/// `max_batch` patches, `denoise` returning its `prediction`. Returns the x0
/// patches.
#[allow(clippy::too_many_arguments)]
pub fn sample_groups(
    y0_patches: &Tensor,
    start_noise: &Tensor,
    assignment: &[usize],
    cfg: &PgsConfig,
    alphas_cumprod: &[f64],
    max_batch: usize,
    prediction: Prediction,
    denoise: &mut Denoiser,
) -> Result<(Tensor, SampleStats)> {
    cfg.validate()?;
    let size = y0_patches.size();
    ensure!(
        size.len() == 4,
        "sample_groups: patches must be (P, c, V, V), got {size:?}"
    );
    ensure!(
        assignment.len() as i64 == size[0],
        "sample_groups: {} assignments for {} patches",
        assignment.len(),
        size[0]
    );
    ensure!(
        start_noise.size() == size,
        "sample_groups: start noise {:?} for patches {size:?}",
        start_noise.size()
    );
    ensure!(max_batch > 0, "sample_groups: max_batch must be positive");
    if let Some(&g) = assignment.iter().find(|&&g| g >= cfg.groups.len()) {
        anyhow::bail!(
            "sample_groups: group index {g} but only {} groups",
            cfg.groups.len()
        );
    }

    let started = Instant::now();
    let device = y0_patches.device();
    let plan = Schedule::new(assignment, cfg, alphas_cumprod)?;
    let index = Tensor::from_slice(&plan.order.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(device);
    let y0 = y0_patches.index_select(0, &index);
    let noise = start_noise.to_device(device).index_select(0, &index).to_kind(y0.kind());
    let x = tch::no_grad(|| {
        let x = y0.zeros_like();
        for &(g, a, n) in &plan.runs {
            x.narrow(0, a as i64, n as i64)
                .copy_(&plan.plans[g].start(&y0.narrow(0, a as i64, n as i64), &noise.narrow(0, a as i64, n as i64)));
        }
        for (a, n) in plan.batches(max_batch) {
            for k in 0..plan.steps_at(a, assignment) {
                // The batch's patches with a k-th step: a prefix of it.
                let n = (a..a + n).take_while(|&pos| plan.steps_at(pos, assignment) > k).count();
                let (a64, n64) = (a as i64, n as i64);
                let t: Vec<f32> = plan.order[a..a + n]
                    .iter()
                    .map(|&i| plan.plans[assignment[i]].steps[k].t as f32)
                    .collect();
                let t = Tensor::from_slice(&t).to_device(device);
                let x_t = x.narrow(0, a64, n64);
                let out = denoise(&x_t, &y0.narrow(0, a64, n64), &t, &plan.order[a..a + n]);
                // Each group's run in this batch takes its own scalar step,
                // the same arithmetic as a group sampled on its own.
                for &(g, ra, rn) in &plan.runs {
                    let (lo, hi) = (ra.max(a), (ra + rn).min(a + n));
                    if lo < hi {
                        let (off, len) = ((lo - a) as i64, (hi - lo) as i64);
                        let (next, _) = plan.plans[g].step_output(&x_t.narrow(0, off, len), &out.narrow(0, off, len), prediction, k);
                        x.narrow(0, lo as i64, len).copy_(&next);
                    }
                }
            }
        }
        x
    });
    let mut out = y0_patches.zeros_like();
    let _ = out.index_copy_(0, &index, &x);
    crate::device::synchronize(device);
    let mut stats = SampleStats {
        uniform_evaluations: assignment.len() * PgsConfig::uniform().groups[0].steps,
        time: started.elapsed(),
        ..Default::default()
    };
    for (g, p) in plan.plans.iter().enumerate() {
        let members = assignment.iter().filter(|&&a| a == g).count();
        stats.patches_per_group.push(members);
        stats.evaluations += members * p.num_steps();
    }
    Ok((out, stats))
}

/// Standard normal noise of `shape` for patch `index`: ChaCha8 keyed by the
/// seed, one stream per patch, Box-Muller pairs.
pub fn patch_noise(seed: u64, index: usize, shape: &[i64]) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    let n: i64 = shape.iter().product();
    let mut values = Vec::with_capacity(n as usize + 1);
    while (values.len() as i64) < n {
        // 1 - U lies in (0, 1], so the log is finite.
        let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
        let angle = std::f64::consts::TAU * rng.random::<f64>();
        values.push((radius * angle.cos()) as f32);
        values.push((radius * angle.sin()) as f32);
    }
    values.truncate(n as usize);
    Tensor::from_slice(&values).view(shape).to_kind(Kind::Float)
}

/// How many times `sample_groups` will call the denoiser for this plan: per
/// batch, the steps of its longest member (progress reports need the total
/// before the first call).
pub fn denoiser_calls(
    assignment: &[usize],
    cfg: &PgsConfig,
    alphas_cumprod: &[f64],
    max_batch: usize,
) -> Result<usize> {
    let plan = Schedule::new(assignment, cfg, alphas_cumprod)?;
    Ok(plan.batches(max_batch.max(1)).map(|(a, _)| plan.steps_at(a, assignment)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::max_abs_diff;
    use crate::diffusion::DiffusionConfig;

    /// A toy denoiser that also reads y0, so wrong y0 batching would show.
    fn toy(x: &Tensor, y0: &Tensor, t: &Tensor, _: &[usize]) -> Tensor {
        (x - y0).tanh() * 0.5 + t.view([-1, 1, 1, 1]) * 0.001 - 0.3
    }

    fn run(assignment: &[usize], cfg: &PgsConfig, max_batch: usize) -> (Tensor, SampleStats) {
        let y0 = patch_noise(99, 0, &[assignment.len() as i64, 4, 8, 8]);
        let noise = patch_noise(7, 0, &[assignment.len() as i64, 4, 8, 8]);
        let abar = DiffusionConfig::default().alphas_cumprod();
        sample_groups(&y0, &noise, assignment, cfg, &abar, max_batch, Prediction::Epsilon, &mut toy).unwrap()
    }

    #[test]
    fn batching_does_not_change_the_result() {
        let assignment = [0, 2, 1, 2, 2, 0, 1, 1, 2, 0, 2];
        let (one, _) = run(&assignment, &PgsConfig::paper(), 1);
        let (all, _) = run(&assignment, &PgsConfig::paper(), 64);
        let (three, _) = run(&assignment, &PgsConfig::paper(), 3);
        assert_eq!(max_abs_diff(&one, &all), 0.0);
        assert_eq!(max_abs_diff(&one, &three), 0.0);
    }

    /// Issue 8: the groups step together (one round of calls per step of
    /// the longest plan, t per patch), and each patch's trajectory is the
    /// one its group would have taken sampled alone, with the model's target.
    #[test]
    fn groups_step_together_and_match_each_group_sampled_alone() {
        for prediction in [Prediction::Epsilon, Prediction::X0, Prediction::V] {
            groups_match_alone(prediction);
        }
    }

    fn groups_match_alone(prediction: Prediction) {
        let assignment = [0, 2, 1, 2, 2, 0, 1, 1, 2, 0, 2];
        let cfg = PgsConfig::paper();
        let abar = DiffusionConfig::default().alphas_cumprod();
        let y0 = patch_noise(99, 0, &[11, 4, 8, 8]);
        let noise = patch_noise(7, 0, &[11, 4, 8, 8]);
        let mut calls: Vec<Vec<f32>> = Vec::new();
        let mut recording = |x: &Tensor, y0: &Tensor, t: &Tensor, i: &[usize]| {
            calls.push(Vec::<f32>::try_from(t).unwrap());
            toy(x, y0, t, i)
        };
        let (x0, _) = sample_groups(&y0, &noise, &assignment, &cfg, &abar, 64, prediction, &mut recording).unwrap();
        let longest = cfg.groups.iter().map(|g| g.steps).max().unwrap();
        assert_eq!(calls.len(), longest, "one call per round");
        let mut first = calls[0].clone();
        first.dedup();
        assert_eq!(first.len(), 3, "the first round holds every group, each with its own t: {:?}", calls[0]);
        assert_eq!(calls[0].len(), 11);
        assert_eq!(calls[longest - 1].len(), 5, "only the hard patches take the last steps");
        // Batches of 4 mix groups at their boundaries (5 hard | 3 medium, 1
        // simple...); every patch still ends where its group alone would.
        let (x0_4, _) = sample_groups(&y0, &noise, &assignment, &cfg, &abar, 4, prediction, &mut toy).unwrap();
        for (g, spec) in cfg.groups.iter().enumerate() {
            let members: Vec<i64> = (0..11).filter(|&i| assignment[i as usize] == g).collect();
            let idx = Tensor::from_slice(&members);
            let y0g = y0.index_select(0, &idx);
            let alone = DdimSampler::new(&abar, spec.tau, spec.steps)
                .unwrap()
                .sample(&y0g, &noise.index_select(0, &idx), prediction, |x, t| toy(x, &y0g, t, &[]));
            assert_eq!(max_abs_diff(&x0.index_select(0, &idx), &alone), 0.0, "group {g}");
            assert_eq!(max_abs_diff(&x0_4.index_select(0, &idx), &alone), 0.0, "group {g}, batches of 4");
        }
    }

    #[test]
    fn an_all_hard_image_is_the_uniform_baseline() {
        let (pgs, _) = run(&[2; 6], &PgsConfig::paper(), 4);
        let (uniform, _) = run(&[0; 6], &PgsConfig::uniform(), 4);
        assert_eq!(max_abs_diff(&pgs, &uniform), 0.0);
    }

    #[test]
    fn groups_differ_and_counts_add_up() {
        let assignment = [0, 0, 0, 1, 1, 2];
        let (x0, stats) = run(&assignment, &PgsConfig::paper(), 2);
        assert_eq!(stats.patches_per_group, [3, 2, 1]);
        assert_eq!(stats.evaluations, 3 * 8 + 2 * 14 + 20);
        assert_eq!(stats.uniform_evaluations, 6 * 20);
        let (hard, _) = run(&[2; 6], &PgsConfig::paper(), 2);
        assert!(
            max_abs_diff(&x0.get(0), &hard.get(0)) > 1e-3,
            "simple group must not run the hard schedule"
        );
        assert_eq!(max_abs_diff(&x0.get(5), &hard.get(5)), 0.0);
    }

    #[test]
    fn the_call_count_is_the_samplers() {
        let assignment = [0, 2, 1, 2, 2, 0, 1, 1, 2, 0, 2];
        let abar = DiffusionConfig::default().alphas_cumprod();
        let (y0, noise) = (patch_noise(1, 0, &[11, 4, 8, 8]), patch_noise(2, 0, &[11, 4, 8, 8]));
        for max_batch in [1, 3, 64] {
            let mut calls = 0;
            let mut counting = |x: &Tensor, y0: &Tensor, t: &Tensor, i: &[usize]| {
                calls += 1;
                toy(x, y0, t, i)
            };
            let _ = sample_groups(&y0, &noise, &assignment, &PgsConfig::paper(), &abar, max_batch, Prediction::Epsilon, &mut counting).unwrap();
            assert_eq!(denoiser_calls(&assignment, &PgsConfig::paper(), &abar, max_batch).unwrap(), calls);
        }
    }

    #[test]
    fn patch_noise_is_standard_normal_and_per_patch() {
        let a = patch_noise(1, 0, &[4, 32, 32]);
        assert_eq!(max_abs_diff(&a, &patch_noise(1, 0, &[4, 32, 32])), 0.0);
        assert!(max_abs_diff(&a, &patch_noise(1, 1, &[4, 32, 32])) > 0.1);
        assert!(max_abs_diff(&a, &patch_noise(2, 0, &[4, 32, 32])) > 0.1);
        let (mean, std) = (
            a.mean(Kind::Double).double_value(&[]),
            a.std(true).double_value(&[]),
        );
        assert!(
            mean.abs() < 0.06 && (std - 1.0).abs() < 0.05,
            "mean {mean} std {std}"
        );
    }

    #[test]
    fn rejects_mismatched_inputs() {
        let y0 = Tensor::zeros([3, 4, 8, 8], (Kind::Float, tch::Device::Cpu));
        let abar = DiffusionConfig::default().alphas_cumprod();
        let cfg = PgsConfig::paper();
        assert!(sample_groups(&y0, &y0, &[0, 1], &cfg, &abar, 4, Prediction::Epsilon, &mut toy).is_err());
        assert!(sample_groups(&y0, &y0, &[0, 1, 3], &cfg, &abar, 4, Prediction::Epsilon, &mut toy).is_err());
        assert!(sample_groups(&y0, &y0, &[0, 1, 2], &cfg, &abar, 0, Prediction::Epsilon, &mut toy).is_err());
    }
}
