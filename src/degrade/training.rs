//! The LR of a training pair, shared by every trainer that degrades.
//!
//! Training mixes the three evaluation protocols, because people bring both
//! clean and damaged photos: the plain MATLAB-bicubic LR of the benchmarks,
//! the light degradation (an ordinary phone or web photo) and Real-ESRGAN's
//! second-order degradation (SPEC §5, heavily damaged photos). A model that
//! only saw heavy damage over-sharpens and over-smooths clean inputs; one
//! that only saw clean ones fails on blurred, noisy, JPEG-damaged ones.

use super::config::DegradeConfig;
use super::protocol::Degradation;
use anyhow::{ensure, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Shares of the three kinds of training LR; they sum to 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrMix {
    pub bicubic: f64,
    pub light: f64,
    pub realesrgan: f64,
}

impl Default for LrMix {
    /// 20 % bicubic, 30 % light, 50 % Real-ESRGAN: the paper's degradation
    /// stays the majority, and half of the pairs are the lighter inputs
    /// people also bring.
    fn default() -> Self {
        LrMix { bicubic: 0.2, light: 0.3, realesrgan: 0.5 }
    }
}

impl LrMix {
    /// `bicubic` and `light` as given, Real-ESRGAN the rest.
    pub fn new(bicubic: f64, light: f64) -> Result<Self> {
        let rest = 1.0 - bicubic - light;
        // 1 - 0.7 - 0.3 is not exactly 0 in floating point.
        let realesrgan = if rest.abs() < 1e-9 { 0.0 } else { rest };
        let mix = LrMix { bicubic, light, realesrgan };
        mix.validate()?;
        Ok(mix)
    }

    /// Every LR of one kind.
    pub fn only(kind: Degradation) -> Self {
        let is = |k| if kind == k { 1.0 } else { 0.0 };
        LrMix { bicubic: is(Degradation::Bicubic), light: is(Degradation::Light), realesrgan: is(Degradation::Realesrgan) }
    }

    pub fn validate(&self) -> Result<()> {
        let shares = [self.bicubic, self.light, self.realesrgan];
        ensure!(
            shares.iter().all(|s| (0.0..=1.0).contains(s)) && (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "LR mix: the bicubic ({}), light ({}) and Real-ESRGAN ({}) shares must each lie in [0, 1] and sum to 1 \
             (--bicubic-prob plus --light-prob at most 1)",
            self.bicubic,
            self.light,
            self.realesrgan
        );
        Ok(())
    }

    /// One kind, drawn with the shares. A mix of one kind draws nothing, so
    /// single-kind runs keep the random stream they always had.
    pub fn draw(&self, rng: &mut impl Rng) -> Degradation {
        let single = [(self.bicubic, Degradation::Bicubic), (self.light, Degradation::Light), (self.realesrgan, Degradation::Realesrgan)];
        if let Some((_, kind)) = single.iter().find(|(share, _)| *share >= 1.0) {
            return *kind;
        }
        let u = rng.random::<f64>();
        if u < self.bicubic {
            Degradation::Bicubic
        } else if u < self.bicubic + self.light {
            Degradation::Light
        } else {
            Degradation::Realesrgan
        }
    }
}

/// One HR crop (1, 3, H, W) in [0, 1] -> (its LR, its kind), with the light
/// and Real-ESRGAN configs given. Every draw comes from `rng`, so a resumed
/// run degrades the same way. Always float32, also inside a bf16 training
/// step: the data must not depend on the model's precision.
pub fn training_lr(
    hr: &Tensor,
    scale: i64,
    mix: &LrMix,
    light: &DegradeConfig,
    realesrgan: &DegradeConfig,
    rng: &mut impl Rng,
) -> Result<(Tensor, Degradation)> {
    let kind = mix.draw(rng);
    let lr = crate::autocast::float32(|| kind.lr_with(hr, scale, rng, light, realesrgan))?;
    Ok((lr, kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::bicubic_lr;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{Device, Kind};

    #[test]
    fn the_kind_follows_the_mix_and_the_seed() {
        let hr = Tensor::rand([1, 3, 96, 96], (Kind::Float, Device::Cpu));
        let (light, real) = (DegradeConfig::light(), DegradeConfig::realesrgan());
        let draw = |mix: LrMix, seed: u64| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            training_lr(&hr, 4, &mix, &light, &real, &mut rng).unwrap()
        };
        let (bic, kind) = draw(LrMix::only(Degradation::Bicubic), 0);
        assert!(kind == Degradation::Bicubic && bic.equal(&bicubic_lr(&hr, 4).unwrap()));
        for k in [Degradation::Light, Degradation::Realesrgan] {
            let (lr, kind) = draw(LrMix::only(k), 3);
            assert!(kind == k && lr.size() == [1, 3, 24, 24]);
            assert!(lr.equal(&draw(LrMix::only(k), 3).0), "same seed, same LR");
        }
        let kinds: Vec<Degradation> = (0..12).map(|s| draw(LrMix::default(), s).1).collect();
        assert!([Degradation::Light, Degradation::Realesrgan].iter().all(|k| kinds.contains(k)), "{kinds:?}");
    }

    #[test]
    fn draws_follow_the_shares_and_single_kinds_draw_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let n = 4000;
        let mix = LrMix::default();
        let kinds: Vec<Degradation> = (0..n).map(|_| mix.draw(&mut rng)).collect();
        for (kind, p) in [(Degradation::Bicubic, mix.bicubic), (Degradation::Light, mix.light), (Degradation::Realesrgan, mix.realesrgan)] {
            let got = kinds.iter().filter(|k| **k == kind).count() as f64;
            let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
            assert!((got - mean).abs() <= 4.0 * sd, "{kind:?}: {got} of {n}, expected {mean} ± {sd:.1}");
        }
        let before = rng.clone();
        assert_eq!(LrMix::only(Degradation::Light).draw(&mut rng), Degradation::Light);
        assert_eq!(rng, before, "a single-kind mix draws nothing");
    }

    #[test]
    fn shares_are_validated() {
        let m = LrMix::new(0.7, 0.3).unwrap();
        assert_eq!(m.realesrgan, 0.0);
        assert!((LrMix::new(0.2, 0.3).unwrap().realesrgan - LrMix::default().realesrgan).abs() < 1e-12);
        for (b, l) in [(0.8, 0.3), (-0.1, 0.5), (0.2, 1.5), (f64::NAN, 0.0)] {
            let e = LrMix::new(b, l).unwrap_err().to_string();
            assert!(e.contains("sum to 1"), "{e}");
        }
        assert!(LrMix { bicubic: 0.5, light: 0.5, realesrgan: 0.5 }.validate().is_err());
    }
}
