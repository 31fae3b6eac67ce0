//! The group-batched sampler (the "S" of PGS): each confidence group runs its
//! own shortcut DDIM trajectory, batched across the patches of that group.
//!
//! The start noise of every patch is given (`start_noise`, cut by the
//! pipeline from one latent-sized noise field drawn from the seed, so that
//! overlapping patches start from the same values where they overlap), so a
//! result depends only on (seed, patch, group), never on how patches were
//! batched, in which order groups ran, or on which device. The uniform
//! baseline is then the same code with one group.

use super::groups::PgsConfig;
use crate::diffusion::DdimSampler;
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
    pub time_per_group: Vec<Duration>,
}

/// The denoiser as PGS calls it: (x_t, y0, t as f32 (B,), indices of the
/// batch's patches, e.g. to look up their texture prompts) -> predicted eps.
pub type Denoiser<'a> = dyn FnMut(&Tensor, &Tensor, &Tensor, &[usize]) -> Tensor + 'a;

/// Denoise (P, c, V, V) coarse patches y0, patch i in group `assignment[i]`
/// starting from `start_noise[i]` (same shape), in batches of at most
/// `max_batch` patches. Returns the x0 patches.
pub fn sample_groups(
    y0_patches: &Tensor,
    start_noise: &Tensor,
    assignment: &[usize],
    cfg: &PgsConfig,
    alphas_cumprod: &[f64],
    max_batch: usize,
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

    let device = y0_patches.device();
    let mut out = y0_patches.zeros_like();
    let mut stats = SampleStats {
        uniform_evaluations: assignment.len() * PgsConfig::uniform().groups[0].steps,
        ..Default::default()
    };
    for (g, spec) in cfg.groups.iter().enumerate() {
        let started = Instant::now();
        let members: Vec<usize> = (0..assignment.len())
            .filter(|&i| assignment[i] == g)
            .collect();
        let ddim = DdimSampler::new(alphas_cumprod, spec.tau, spec.steps)?;
        for batch in members.chunks(max_batch) {
            let index = Tensor::from_slice(&batch.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(device);
            let y0 = y0_patches.index_select(0, &index);
            let noise = start_noise
                .to_device(device)
                .index_select(0, &index)
                .to_kind(y0.kind());
            let x0 = ddim.sample(&y0, &noise, |x_t, t| denoise(x_t, &y0, t, batch));
            let _ = out.index_copy_(0, &index, &x0);
        }
        stats.patches_per_group.push(members.len());
        stats.evaluations += members.len() * ddim.num_steps();
        crate::device::synchronize(device);
        stats.time_per_group.push(started.elapsed());
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

/// How many times `sample_groups` will call the denoiser for this plan:
/// per group, its batches times its steps (progress reports need the total
/// before the first call).
pub fn denoiser_calls(
    assignment: &[usize],
    cfg: &PgsConfig,
    alphas_cumprod: &[f64],
    max_batch: usize,
) -> Result<usize> {
    let mut calls = 0;
    for (g, spec) in cfg.groups.iter().enumerate() {
        let members = assignment.iter().filter(|&&a| a == g).count();
        let steps = DdimSampler::new(alphas_cumprod, spec.tau, spec.steps)?.num_steps();
        calls += members.div_ceil(max_batch.max(1)) * steps;
    }
    Ok(calls)
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
        sample_groups(&y0, &noise, assignment, cfg, &abar, max_batch, &mut toy).unwrap()
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
        assert_eq!(stats.time_per_group.len(), 3);
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
            let _ = sample_groups(&y0, &noise, &assignment, &PgsConfig::paper(), &abar, max_batch, &mut counting).unwrap();
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
        assert!(sample_groups(&y0, &y0, &[0, 1], &cfg, &abar, 4, &mut toy).is_err());
        assert!(sample_groups(&y0, &y0, &[0, 1, 3], &cfg, &abar, 4, &mut toy).is_err());
        assert!(sample_groups(&y0, &y0, &[0, 1, 2], &cfg, &abar, 0, &mut toy).is_err());
    }
}
