//! The LR of a training pair, shared by every trainer that degrades.
//!
//! Training mixes the two evaluation protocols: Real-ESRGAN's second-order
//! degradation (SPEC §5, the real-world inputs the model is for) and, with
//! probability `bicubic_prob`, the plain MATLAB-bicubic LR of the benchmarks.
//! A model that only saw one would over-sharpen clean bicubic inputs or fail
//! on blurred, noisy, JPEG-damaged ones.

use super::config::DegradeConfig;
use super::pipeline::{bicubic_lr, degrade};
use anyhow::Result;
use rand::Rng;
use tch::Tensor;

/// One HR crop (1, 3, H, W) in [0, 1] -> (its LR, whether it is plain
/// bicubic). Every draw comes from `rng`, so a resumed run degrades the same
/// way; `bicubic_prob` of exactly 0 or 1 draws nothing for the choice.
/// Always float32, also inside a bf16 training step: the data must not
/// depend on the model's precision.
pub fn training_lr(hr: &Tensor, scale: i64, bicubic_prob: f64, cfg: &DegradeConfig, rng: &mut impl Rng) -> Result<(Tensor, bool)> {
    let plain = match bicubic_prob {
        p if p <= 0.0 => false,
        p if p >= 1.0 => true,
        p => rng.random_bool(p),
    };
    let lr = crate::autocast::float32(|| if plain { bicubic_lr(hr, scale) } else { degrade(hr, scale, rng, cfg) })?;
    Ok((lr, plain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind};

    #[test]
    fn the_choice_follows_the_probability_and_the_seed() {
        let hr = Tensor::rand([1, 3, 96, 96], (Kind::Float, Device::Cpu));
        let cfg = DegradeConfig::realesrgan();
        let draw = |p: f64, seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            training_lr(&hr, 4, p, &cfg, &mut rng).unwrap()
        };
        let (bic, plain) = draw(1.0, 0);
        assert!(plain && bic.equal(&bicubic_lr(&hr, 4).unwrap()));
        let (real, plain) = draw(0.0, 3);
        assert!(!plain && real.size() == [1, 3, 24, 24]);
        assert!(real.equal(&draw(0.0, 3).0), "same seed, same LR");
        let plains = (0..24).filter(|&s| draw(0.5, s).1).count();
        assert!((4..=20).contains(&plains), "{plains} of 24 plain at p = 0.5");
    }
}
