//! (HR, LR) image pairs, degraded ahead of the training step: what the
//! GRM, texture and Patch-DiT trainers all learn from.
//!
//! Each LR is the plain MATLAB-bicubic LR of the benchmarks, the light
//! degradation (an ordinary phone or web photo) or Real-ESRGAN's
//! second-order degradation (SPEC §5, heavily damaged photos), drawn with
//! the shares of an `LrMix` (`--bicubic-prob`, `--light-prob`, Real-ESRGAN
//! the rest; default 20 / 30 / 50 %), so that the models neither
//! over-sharpen clean inputs nor fail on damaged ones: all three
//! evaluation protocols occur in training (`degrade::training`).
//!
//! Degrading costs about 2 s for a 512 x 512 crop on our CPU, more than a
//! whole GRM step, so worker threads make the pairs while the step runs
//! (all cores but one when the step runs on a GPU). Batch k's LRs are drawn from ChaCha stream k of the seed (the HR
//! crops already depend only on (seed, k), see `CropLoader`), so the
//! sequence does not depend on timing and `skip_to` resumes it exactly.

use super::data::ImageFolder;
use super::loader::{CropConfig, CropLoader, OrderedLoader};
use crate::degrade::{training_lr, Degradation, DegradeConfig, LrMix};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tch::Tensor;

/// Keeps the degradation's random stream apart from the crop loader's.
const DEGRADE_SALT: u64 = 0xde9_4ade;

/// How a trainer's LRs are made; part of its run identity, so a resumed
/// run degrades exactly as the run it continues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairConfig {
    /// HR side / LR side.
    pub scale: i64,
    /// Shares of bicubic, light and Real-ESRGAN LRs.
    pub mix: LrMix,
    pub light: DegradeConfig,
    pub realesrgan: DegradeConfig,
    pub seed: u64,
}

impl PairConfig {
    /// x4, the default mix (20 % bicubic, 30 % light, 50 % Real-ESRGAN).
    pub fn realesrgan_x4(seed: u64) -> Self {
        PairConfig {
            scale: 4,
            mix: LrMix::default(),
            light: DegradeConfig::light(),
            realesrgan: DegradeConfig::realesrgan(),
            seed,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.scale < 1 {
            bail!("LR pairs: need scale >= 1, got {self:?}");
        }
        self.mix.validate()
    }
}

/// `--bicubic-prob` and `--light-prob` of the trainers that degrade.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct LrMixFlags {
    /// Share of training pairs whose LR is plain MATLAB bicubic.
    #[arg(long, default_value_t = LrMix::default().bicubic)]
    pub bicubic_prob: f64,
    /// Share given the light degradation (mild blur, noise, JPEG 70..95);
    /// Real-ESRGAN's degradation takes the rest.
    #[arg(long, default_value_t = LrMix::default().light)]
    pub light_prob: f64,
}

impl LrMixFlags {
    pub fn mix(&self) -> Result<LrMix> {
        LrMix::new(self.bicubic_prob, self.light_prob)
    }
}

/// A batch of HR crops (B, 3, S, S) and their LRs (B, 3, S/scale, S/scale),
/// both in [0, 1]; `bicubic[i]` says which LRs are plain bicubic.
pub struct Pair {
    pub hr: Tensor,
    pub lr: Tensor,
    pub bicubic: Vec<bool>,
}

/// Makes the LRs of HR batch number `k`.
pub fn degrade_batch(hr: &Tensor, k: u64, cfg: &PairConfig) -> Result<Pair> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ DEGRADE_SALT);
    rng.set_stream(k);
    let (mut lrs, mut bicubic) = (Vec::new(), Vec::new());
    for i in 0..hr.size()[0] {
        let x = hr.narrow(0, i, 1);
        let (lr, kind) = training_lr(&x, cfg.scale, &cfg.mix, &cfg.light, &cfg.realesrgan, &mut rng)
            .with_context(|| format!("degrading sample {i} of batch {k}"))?;
        lrs.push(lr);
        bicubic.push(kind == Degradation::Bicubic);
    }
    Ok(Pair {
        hr: hr.shallow_clone(),
        lr: Tensor::cat(&lrs, 0),
        bicubic,
    })
}

/// Pair batches 0, 1, 2, ... of a crop sequence, in order, degraded on
/// the crop config's `workers` threads (each makes whole batches).
pub struct PairLoader {
    inner: OrderedLoader<Pair>,
}

impl PairLoader {
    pub fn new(folder: &ImageFolder, crop: CropConfig, pairs: PairConfig) -> Result<Self> {
        pairs.validate()?;
        // Fails here, not on a worker, on an empty folder or a bad crop.
        let source = Arc::new(CropLoader::source(folder, crop.clone())?);
        let make = move |k: u64| source.batch(k).and_then(|hr| degrade_batch(&hr, k, &pairs));
        Ok(PairLoader {
            inner: OrderedLoader::new(Arc::new(make), crop.workers, crop.prefetch),
        })
    }

    /// The number of the batch `next()` returns.
    pub fn position(&self) -> u64 {
        self.inner.position()
    }

    /// Continues the sequence at batch `k`, as if `k` batches had been taken.
    pub fn skip_to(&mut self, k: u64) {
        self.inner.skip_to(k)
    }
}

impl Iterator for PairLoader {
    type Item = Result<Pair>;

    fn next(&mut self) -> Option<Result<Pair>> {
        self.inner.next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::bicubic_lr;
    use tch::{Device, Kind};

    fn smooth_hr(b: i64, s: i64) -> Tensor {
        let ramp = Tensor::linspace(0.0, 1.0, s, (Kind::Float, Device::Cpu));
        (ramp.view([1, 1, 1, s]) * ramp.view([1, 1, s, 1]))
            .expand([b, 3, s, s], false)
            .contiguous()
    }

    #[test]
    fn batches_are_a_function_of_seed_and_index() {
        let hr = smooth_hr(3, 96);
        let cfg = PairConfig::realesrgan_x4(7);
        let a = degrade_batch(&hr, 5, &cfg).unwrap();
        let b = degrade_batch(&hr, 5, &cfg).unwrap();
        let c = degrade_batch(&hr, 6, &cfg).unwrap();
        assert_eq!(a.lr.size(), [3, 3, 24, 24]);
        assert!(
            a.lr.equal(&b.lr) && a.bicubic == b.bicubic,
            "same (seed, k) must give the same LR"
        );
        assert!(
            !a.lr.equal(&c.lr),
            "another batch index must give other LRs"
        );
    }

    #[test]
    fn single_kind_mixes_give_that_kind() {
        let hr = smooth_hr(4, 96);
        let batch = |kind| {
            let cfg = PairConfig { mix: LrMix::only(kind), ..PairConfig::realesrgan_x4(1) };
            degrade_batch(&hr, 0, &cfg).unwrap()
        };
        let all = batch(Degradation::Bicubic);
        assert_eq!(all.bicubic, [true; 4]);
        let want = bicubic_lr(&hr.narrow(0, 0, 1), 4).unwrap();
        assert!(
            all.lr.narrow(0, 0, 1).equal(&want),
            "a bicubic pair is exactly the benchmark LR"
        );
        for kind in [Degradation::Light, Degradation::Realesrgan] {
            let none = batch(kind);
            assert_eq!(none.bicubic, [false; 4]);
            assert!(!none.lr.narrow(0, 0, 1).equal(&want), "{kind:?}");
        }
    }

    #[test]
    fn the_mix_is_part_of_the_run_identity() {
        let a = PairConfig::realesrgan_x4(0);
        let b = PairConfig { mix: LrMix::new(0.3, 0.0).unwrap(), ..a.clone() };
        let (ja, jb) = (serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        assert!(ja.contains("\"light\":0.3") && ja.contains("\"antialias\":true"), "{ja}");
        assert_ne!(ja, jb);
    }

    #[test]
    fn a_skipped_loader_continues_the_same_sequence() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..2u32 {
            let img = image::RgbImage::from_fn(130, 110, |x, y| {
                image::Rgb([
                    (x * 2 + i * 50) as u8,
                    (y * 2) as u8,
                    ((x ^ y) & 0xff) as u8,
                ])
            });
            img.save(dir.path().join(format!("{i}.png"))).unwrap();
        }
        let folder = ImageFolder::open(dir.path(), None).unwrap();
        let crop = CropConfig::new(96, 2, 3);
        let pairs = PairConfig::realesrgan_x4(3);
        let full: Vec<Pair> = PairLoader::new(&folder, crop.clone(), pairs.clone())
            .unwrap()
            .take(3)
            .map(Result::unwrap)
            .collect();
        let mut resumed = PairLoader::new(&folder, crop, pairs).unwrap();
        resumed.skip_to(2);
        let third = resumed.next().unwrap().unwrap();
        assert_eq!(resumed.position(), 3);
        assert!(third.hr.equal(&full[2].hr) && third.lr.equal(&full[2].lr));
        assert!(!full[1].lr.equal(&full[2].lr));
    }

    #[test]
    fn out_of_range_probability_is_an_error_not_a_panic() {
        let cfg = PairConfig {
            mix: LrMix { bicubic: 1.5, light: 0.0, realesrgan: -0.5 },
            ..PairConfig::realesrgan_x4(0)
        };
        assert!(cfg.validate().is_err());
        let flags = LrMixFlags { bicubic_prob: 0.6, light_prob: 0.6 };
        assert!(flags.mix().unwrap_err().to_string().contains("sum to 1"));
    }
}
