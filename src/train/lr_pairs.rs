//! (HR, LR) image pairs, degraded ahead of the training step: what the
//! GRM, texture and Patch-DiT trainers all learn from.
//!
//! Each LR is either Real-ESRGAN's second-order degradation of the HR crop
//! (SPEC §5: the real-world setting the model is for) or, with
//! `bicubic_prob`, the plain MATLAB-bicubic x4 LR of the benchmarks, so
//! that the GRM neither over-sharpens clean bicubic inputs nor fails on
//! blurred, noisy, JPEG-damaged ones: both evaluation protocols occur in
//! training.
//!
//! Degrading costs about 2 s for a 512 x 512 crop on our CPU, more than a
//! whole GRM step, so worker threads make the pairs while the step runs
//! (all cores but one when the step runs on a GPU). Batch k's LRs are drawn from ChaCha stream k of the seed (the HR
//! crops already depend only on (seed, k), see `CropLoader`), so the
//! sequence does not depend on timing and `skip_to` resumes it exactly.

use super::data::ImageFolder;
use super::loader::{CropConfig, CropLoader, OrderedLoader};
use crate::degrade::{training_lr, DegradeConfig};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tch::Tensor;

/// Keeps the degradation's random stream apart from the crop loader's.
const DEGRADE_SALT: u64 = 0xde9_4ade;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairConfig {
    /// HR side / LR side.
    pub scale: i64,
    /// Share of pairs whose LR is plain bicubic instead of degraded.
    pub bicubic_prob: f64,
    pub degrade: DegradeConfig,
    pub seed: u64,
}

impl PairConfig {
    /// x4, 30 % bicubic LRs, Real-ESRGAN degradation for the rest.
    pub fn realesrgan_x4(seed: u64) -> Self {
        PairConfig {
            scale: 4,
            bicubic_prob: 0.3,
            degrade: DegradeConfig::realesrgan(),
            seed,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.bicubic_prob) || self.scale < 1 {
            bail!("GRM pairs: need 0 <= bicubic_prob <= 1 and scale >= 1, got {self:?}");
        }
        Ok(())
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
        let (lr, plain) = training_lr(&x, cfg.scale, cfg.bicubic_prob, &cfg.degrade, &mut rng)
            .with_context(|| format!("degrading sample {i} of batch {k}"))?;
        lrs.push(lr);
        bicubic.push(plain);
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
        let cfg = PairConfig {
            bicubic_prob: 0.0,
            ..PairConfig::realesrgan_x4(7)
        };
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
    fn bicubic_share_follows_the_probability() {
        let hr = smooth_hr(4, 96);
        let all = degrade_batch(
            &hr,
            0,
            &PairConfig {
                bicubic_prob: 1.0,
                ..PairConfig::realesrgan_x4(1)
            },
        )
        .unwrap();
        assert_eq!(all.bicubic, [true; 4]);
        let want = bicubic_lr(&hr.narrow(0, 0, 1), 4).unwrap();
        assert!(
            all.lr.narrow(0, 0, 1).equal(&want),
            "a bicubic pair is exactly the benchmark LR"
        );
        let none = degrade_batch(
            &hr,
            0,
            &PairConfig {
                bicubic_prob: 0.0,
                ..PairConfig::realesrgan_x4(1)
            },
        )
        .unwrap();
        assert_eq!(none.bicubic, [false; 4]);
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
            bicubic_prob: 1.5,
            ..PairConfig::realesrgan_x4(0)
        };
        assert!(cfg.validate().is_err());
    }
}
