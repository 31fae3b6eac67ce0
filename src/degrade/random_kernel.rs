//! Random blur-kernel draws of Real-ESRGAN (`realesrgan_dataset.py` and
//! BasicSR `random_mixed_kernels`), all from the caller's generator.

use super::kernels::{
    bivariate_gaussian, bivariate_generalized_gaussian, bivariate_plateau, circular_lowpass, pad, PAD_TO,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;
use tch::Tensor;

/// The blur families; `Sinc` is drawn first with its own probability, the
/// six others then by `BlurConfig::kernel_probs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KernelKind {
    Iso,
    Aniso,
    GeneralizedIso,
    GeneralizedAniso,
    PlateauIso,
    PlateauAniso,
    Sinc,
}

/// The six non-sinc families, in the order of `kernel_probs`.
pub const MIXED_KINDS: [KernelKind; 6] = [
    KernelKind::Iso,
    KernelKind::Aniso,
    KernelKind::GeneralizedIso,
    KernelKind::GeneralizedAniso,
    KernelKind::PlateauIso,
    KernelKind::PlateauAniso,
];

/// One blur stage's kernel distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlurConfig {
    /// Odd kernel sizes drawn uniformly from `min..=max`.
    pub kernel_size: (usize, usize),
    pub sinc_prob: f64,
    /// Probabilities of `MIXED_KINDS`.
    pub kernel_probs: [f64; 6],
    pub sigma: (f64, f64),
    pub betag: (f64, f64),
    pub betap: (f64, f64),
}

impl BlurConfig {
    /// First-order blur of `train_realesrnet_x4plus.yml`.
    pub fn realesrgan_first() -> Self {
        Self {
            kernel_size: (7, 21),
            sinc_prob: 0.1,
            kernel_probs: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
            sigma: (0.2, 3.0),
            betag: (0.5, 4.0),
            betap: (1.0, 2.0),
        }
    }

    /// Second-order blur: the same, with narrower sigmas.
    pub fn realesrgan_second() -> Self {
        Self {
            sigma: (0.2, 1.5),
            ..Self::realesrgan_first()
        }
    }
}

/// A drawn kernel, zero-padded to 21x21 (f64), with its family.
#[derive(Debug)]
pub struct BlurKernel {
    pub kind: KernelKind,
    pub weights: Tensor,
}

/// `numpy.random.uniform(lo, hi)`: also valid for the empty range `lo == hi`.
pub fn uniform(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> f64 {
    lo + (hi - lo) * rng.random::<f64>()
}

/// Index drawn with the given (unnormalised) weights, like `random.choices`.
pub fn weighted_index(rng: &mut impl Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut u = rng.random::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.len() - 1
}

/// Odd size uniformly from `min..=max`.
fn kernel_size(rng: &mut impl Rng, (min, max): (usize, usize)) -> usize {
    min + 2 * rng.random_range(0..=(max - min) / 2)
}

/// Upstream draws β below 1 or above 1 with equal odds, so sharp-topped and
/// flat-topped shapes are equally common; with the plateau range [1, 2]
/// the lower half degenerates to β = 1 exactly, as upstream.
fn beta(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> f64 {
    if rng.random::<f64>() < 0.5 {
        uniform(rng, (lo, 1.0))
    } else {
        uniform(rng, (1.0, hi))
    }
}

/// One blur kernel as the dataset draws it for either order.
pub fn random_blur_kernel(rng: &mut impl Rng, cfg: &BlurConfig) -> BlurKernel {
    let size = kernel_size(rng, cfg.kernel_size);
    if rng.random::<f64>() < cfg.sinc_prob {
        // Small kernels cannot hold a very low cutoff, hence the wider floor.
        let omega = if size < 13 {
            uniform(rng, (PI / 3.0, PI))
        } else {
            uniform(rng, (PI / 5.0, PI))
        };
        return BlurKernel {
            kind: KernelKind::Sinc,
            weights: circular_lowpass(omega, size, PAD_TO),
        };
    }
    let kind = MIXED_KINDS[weighted_index(rng, &cfg.kernel_probs)];
    let isotropic = matches!(
        kind,
        KernelKind::Iso | KernelKind::GeneralizedIso | KernelKind::PlateauIso
    );
    let sig_x = uniform(rng, cfg.sigma);
    let (sig_y, theta) = if isotropic {
        (sig_x, 0.0)
    } else {
        (uniform(rng, cfg.sigma), uniform(rng, (-PI, PI)))
    };
    let weights = match kind {
        KernelKind::Iso | KernelKind::Aniso => bivariate_gaussian(size, sig_x, sig_y, theta, isotropic),
        KernelKind::GeneralizedIso | KernelKind::GeneralizedAniso => {
            let b = beta(rng, cfg.betag);
            bivariate_generalized_gaussian(size, sig_x, sig_y, theta, b, isotropic)
        }
        KernelKind::PlateauIso | KernelKind::PlateauAniso => {
            let b = beta(rng, cfg.betap);
            bivariate_plateau(size, sig_x, sig_y, theta, b, isotropic)
        }
        KernelKind::Sinc => unreachable!("sinc is drawn above"),
    };
    BlurKernel {
        kind,
        weights: pad(&weights, PAD_TO),
    }
}

/// The final sinc of the second order: with `prob`, cutoff in [π/3, π] on a
/// random odd size; `None` means the identity (upstream's pulse kernel).
pub fn random_final_sinc(rng: &mut impl Rng, prob: f64, size_range: (usize, usize)) -> Option<Tensor> {
    if rng.random::<f64>() >= prob {
        return None;
    }
    let size = kernel_size(rng, size_range);
    Some(circular_lowpass(uniform(rng, (PI / 3.0, PI)), size, PAD_TO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    /// Family frequencies over 2000 draws against the SPEC probabilities
    /// (sinc 0.1, the others 0.9 x kernel_probs), within 4 binomial sigmas.
    #[test]
    fn kernel_family_frequencies_follow_the_spec() {
        let cfg = BlurConfig::realesrgan_first();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 2000;
        let mut counts: HashMap<KernelKind, usize> = HashMap::new();
        for _ in 0..n {
            let k = random_blur_kernel(&mut rng, &cfg);
            assert_eq!(k.weights.size(), [21, 21]);
            *counts.entry(k.kind).or_default() += 1;
        }
        let mut expected = vec![(KernelKind::Sinc, cfg.sinc_prob)];
        expected.extend(
            MIXED_KINDS
                .iter()
                .zip(cfg.kernel_probs)
                .map(|(k, p)| (*k, (1.0 - cfg.sinc_prob) * p)),
        );
        for (kind, p) in expected {
            let got = *counts.get(&kind).unwrap_or(&0) as f64;
            let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
            assert!(
                (got - mean).abs() <= 4.0 * sd,
                "{kind:?}: {got} draws, expected {mean} ± {sd:.1}"
            );
        }
    }

    #[test]
    fn sizes_are_odd_within_range_and_sinc_cutoff_floor_depends_on_size() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sizes: Vec<usize> = (0..500).map(|_| kernel_size(&mut rng, (7, 21))).collect();
        assert!(sizes.iter().all(|s| s % 2 == 1 && (7..=21).contains(s)));
        assert!(sizes.contains(&7) && sizes.contains(&21));
        let betas: Vec<f64> = (0..500).map(|_| beta(&mut rng, (1.0, 2.0))).collect();
        assert!(betas.iter().all(|b| (1.0..=2.0).contains(b)));
        assert!(
            betas.iter().filter(|b| **b == 1.0).count() > 150,
            "plateau beta degenerates to 1 half the time"
        );
    }

    #[test]
    fn same_seed_same_kernel() {
        let cfg = BlurConfig::realesrgan_second();
        let a = random_blur_kernel(&mut ChaCha8Rng::seed_from_u64(11), &cfg);
        let b = random_blur_kernel(&mut ChaCha8Rng::seed_from_u64(11), &cfg);
        assert_eq!(a.kind, b.kind);
        assert!(a.weights.equal(&b.weights));
    }
}
