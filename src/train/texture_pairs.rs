//! Positive pairs for the texture classifier: the two views of one place of
//! an HR crop that T must map to the same key.
//!
//! View 1 is what the RTM stores: a V x V window of the clean HR latent
//! E(x). View 2 is what retrieval is asked with: the window at nearly the
//! same place of the coarse latent y0, i.e. the crop degraded to LR
//! (bicubic, light or Real-ESRGAN), bicubic-upsampled back, encoded, and passed
//! through the GRM when the model has one. Both views come from one crop,
//! so they share its flip/rot90 augmentation: a prior should keep the
//! orientation of the patch it helps. View 2's window is moved by a small
//! random offset (at most `shift` latent pixels each way), because an RTM
//! entry is never aligned with the query pixel for pixel; the offset takes
//! away the shortcut of matching exact layout and leaves material
//! (statistics that survive degradation) as the way to find the partner.

use crate::autoencoder::Autoencoder;
use crate::degrade::{DegradeConfig, LrMix};
use crate::grm::unet::Grm;
use crate::pipeline::coarse::coarse_latents;
use anyhow::{bail, Result};
use clap::ValueEnum;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Side, in pixels, below which the Real-ESRGAN blurs cannot run (at every stage).
const MIN_DEGRADE_SIDE: f64 = 11.0;

/// How view 2's LR is made from the HR crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
pub enum Degradation {
    /// Real-ESRGAN's second-order degradation (real-world inputs).
    Realesrgan,
    /// MATLAB bicubic (the benchmarks' LR).
    Bicubic,
    /// The light degradation (mild blur, noise, JPEG 70..95).
    Light,
    /// The trainers' default mix (`LrMix::default()`: 20 % bicubic, 30 %
    /// light, 50 % Real-ESRGAN): T serves every kind of input the model does.
    Mix,
}

/// Windows of one pair: crop index, view 1's (row, col), view 2's (row, col), in latent pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairWindows {
    pub crop: i64,
    pub clean: (i64, i64),
    pub degraded: (i64, i64),
}

/// Matching patches: `clean[i]` and `degraded[i]` are the two views of pair i.
pub struct Pairs {
    /// (N, c, V, V) from the HR latent.
    pub clean: Tensor,
    /// (N, c, V, V) from the coarse latent of the degraded crop.
    pub degraded: Tensor,
    pub windows: Vec<PairWindows>,
}

/// Makes pairs with the frozen encoder (and GRM).
pub struct PairMaker<'a> {
    pub ae: &'a Autoencoder,
    pub grm: Option<&'a Grm>,
    /// Super-resolution factor of the model (the LR is this much smaller).
    pub scale: i64,
    /// V, the RTM patch side in latent pixels.
    pub patch: i64,
    pub per_crop: i64,
    pub shift: i64,
    pub degradation: Degradation,
    pub degrade: DegradeConfig,
}

impl PairMaker<'_> {
    /// The smallest crop side that gives pairs: whole LR and latent pixels,
    /// room for a V x V window, and for the degradation's blurs.
    pub fn min_crop(&self) -> i64 {
        let unit = self.unit();
        let mut least = self.patch * self.ae.downsample_factor();
        if self.degradation != Degradation::Bicubic {
            let shrink = self
                .degrade
                .resize1
                .as_ref()
                .map_or(1.0, |r| r.range.0.min(1.0));
            least = least
                .max((MIN_DEGRADE_SIDE / shrink).ceil() as i64)
                .max(MIN_DEGRADE_SIDE as i64 * self.scale);
        }
        round_up(least, unit)
    }

    /// 2 x 2 patches per crop, or the least the degradation accepts.
    pub fn default_crop(&self) -> i64 {
        round_up(
            self.min_crop()
                .max(2 * self.patch * self.ae.downsample_factor()),
            self.unit(),
        )
    }

    /// Checks that crops of `side` pixels can give pairs.
    pub fn check_crop(&self, side: i64) -> Result<()> {
        let (unit, least) = (self.unit(), self.min_crop());
        if side % unit != 0 || side < least {
            bail!(
                "texture pairs: the crop side {side} must be a multiple of {unit} (AE factor {}, scale {}) and at least {least} px (V = {} latent px; the degradation's blurs)",
                self.ae.downsample_factor(),
                self.scale,
                self.patch
            );
        }
        if self.per_crop < 1 || self.shift < 0 {
            bail!("texture pairs: need at least one patch per crop and a non-negative shift");
        }
        Ok(())
    }

    /// Crop sides must be multiples of this: whole LR and latent pixels.
    fn unit(&self) -> i64 {
        let f = self.ae.downsample_factor();
        f * self.scale / gcd(f, self.scale)
    }

    /// The shares of the crops' LR kinds, for the pair loader.
    pub fn mix(&self) -> LrMix {
        use crate::degrade::Degradation as Protocol;
        match self.degradation {
            Degradation::Realesrgan => LrMix::only(Protocol::Realesrgan),
            Degradation::Bicubic => LrMix::only(Protocol::Bicubic),
            Degradation::Light => LrMix::only(Protocol::Light),
            Degradation::Mix => LrMix::default(),
        }
    }

    /// Pairs from HR crops `hr` (B, 3, S, S) in [0, 1] and their LRs (made
    /// by `lr_pairs` with `mix`): `per_crop` per crop, the windows
    /// drawn from `rng`.
    pub fn make(&self, hr: &Tensor, lr: &Tensor, rng: &mut impl Rng) -> Result<Pairs> {
        Ok(self.cut(&self.latents(hr, lr)?, rng))
    }

    /// Both views' latents of whole crops, the costly part of `make`: the
    /// clean HR latent, and view 2's from `coarse_latents`, the pipeline's
    /// own path. A batch of them serves several `cut`s (`--reuse`).
    pub fn latents(&self, hr: &Tensor, lr: &Tensor) -> Result<CropLatents> {
        let (_, _, side, _) = hr.size4()?;
        self.check_crop(side)?;
        tch::no_grad(|| {
            let hr = hr.to_device(self.ae.device());
            let clean = self.ae.encode(&(&hr * 2.0 - 1.0)).to_kind(Kind::Float);
            let degraded = coarse_latents(self.ae, self.grm, lr, side, side)?.y_hr;
            Ok(CropLatents { clean, degraded })
        })
    }

    /// `per_crop` pairs per crop of `latents`, at windows drawn from `rng`.
    pub fn cut(&self, latents: &CropLatents, rng: &mut impl Rng) -> Pairs {
        let (b, side) = (latents.clean.size()[0], latents.clean.size()[2]);
        let last = side - self.patch;
        let windows: Vec<PairWindows> = (0..b)
            .flat_map(|crop| (0..self.per_crop).map(move |_| crop))
            .map(|crop| {
                let clean = (rng.random_range(0..=last), rng.random_range(0..=last));
                let mut jitter = |p: i64| (p + rng.random_range(-self.shift..=self.shift)).clamp(0, last);
                PairWindows { crop, clean, degraded: (jitter(clean.0), jitter(clean.1)) }
            })
            .collect();
        let cut = |latent: &Tensor, at: fn(&PairWindows) -> (i64, i64)| {
            let patches: Vec<Tensor> = windows
                .iter()
                .map(|w| {
                    let (y, x) = at(w);
                    latent.narrow(0, w.crop, 1).narrow(2, y, self.patch).narrow(3, x, self.patch)
                })
                .collect();
            Tensor::cat(&patches, 0)
        };
        Pairs { clean: cut(&latents.clean, |w| w.clean), degraded: cut(&latents.degraded, |w| w.degraded), windows }
    }
}

/// The two views' latents of a batch of crops, (B, c, S/f, S/f) each.
pub struct CropLatents {
    pub clean: Tensor,
    pub degraded: Tensor,
}

fn round_up(x: i64, unit: i64) -> i64 {
    (x + unit - 1) / unit * unit
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autoencoder::config::AeConfig;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use tch::{nn::VarStore, Device};

    fn maker(ae: &Autoencoder, shift: i64) -> PairMaker<'_> {
        let degrade = DegradeConfig::realesrgan();
        PairMaker {
            ae,
            grm: None,
            scale: 4,
            patch: 16,
            per_crop: 3,
            shift,
            degradation: Degradation::Mix,
            degrade,
        }
    }

    fn lr_config(m: &PairMaker) -> crate::train::lr_pairs::PairConfig {
        crate::train::lr_pairs::PairConfig {
            mix: m.mix(),
            ..crate::train::lr_pairs::PairConfig::realesrgan_x4(0)
        }
    }

    fn crops() -> Tensor {
        tch::manual_seed(1);
        Tensor::rand([2, 3, 76, 76], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn clean_views_are_windows_of_the_hr_latent_and_degraded_ones_lie_near_them() {
        let vs = VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &AeConfig::tiny());
        let m = maker(&ae, 2);
        let x = crops();
        let lr = crate::train::lr_pairs::degrade_batch(&x, 0, &lr_config(&m))
            .unwrap()
            .lr;
        let pairs = m.make(&x, &lr, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(pairs.clean.size(), [6, 4, 16, 16]);
        assert_eq!(pairs.degraded.size(), [6, 4, 16, 16]);
        let last = 76 / 2 - 16;
        let latent = tch::no_grad(|| ae.encode(&(&x * 2.0 - 1.0)));
        for (i, w) in pairs.windows.iter().enumerate() {
            assert_eq!(w.crop, i as i64 / 3);
            let want = latent
                .get(w.crop)
                .narrow(1, w.clean.0, 16)
                .narrow(2, w.clean.1, 16);
            assert_eq!(
                crate::conformance::max_abs_diff(&pairs.clean.get(i as i64), &want),
                0.0
            );
            for (c, d) in [(w.clean.0, w.degraded.0), (w.clean.1, w.degraded.1)] {
                assert!((c - d).abs() <= 2 && (0..=last).contains(&d), "{w:?}");
            }
        }
        // The degraded view differs from the clean one, yet is made the same way for a seed.
        assert!(crate::conformance::max_abs_diff(&pairs.clean, &pairs.degraded) > 0.0);
        let again = m.make(&x, &lr, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert_eq!(again.windows, pairs.windows);
        assert_eq!(
            crate::conformance::max_abs_diff(&again.degraded, &pairs.degraded),
            0.0
        );
    }

    #[test]
    fn one_batch_of_latents_serves_new_windows_at_every_cut() {
        let vs = VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &AeConfig::tiny());
        let m = maker(&ae, 2);
        let x = crops();
        let lr = crate::train::lr_pairs::degrade_batch(&x, 0, &lr_config(&m)).unwrap().lr;
        let latents = m.latents(&x, &lr).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (first, second) = (m.cut(&latents, &mut rng), m.cut(&latents, &mut rng));
        assert_ne!(first.windows, second.windows, "a reused batch gives other places");
        // A cut is `make`'s pairs for the same windows: the same latents, no new degradation.
        let made = m.make(&x, &lr, &mut ChaCha8Rng::seed_from_u64(5)).unwrap();
        assert_eq!(made.windows, first.windows);
        assert_eq!(crate::conformance::max_abs_diff(&made.degraded, &first.degraded), 0.0);
    }

    #[test]
    fn crops_that_do_not_fit_are_errors() {
        let vs = VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &AeConfig::tiny());
        let mut m = maker(&ae, 0);
        assert_eq!(
            m.min_crop(),
            76,
            "the first resize may shrink by 0.15: 11 px / 0.15"
        );
        assert!(m.check_crop(76).is_ok());
        assert_eq!(m.default_crop(), 76);
        assert!(m.check_crop(48).is_err());
        assert!(m
            .check_crop(78)
            .unwrap_err()
            .to_string()
            .contains("multiple of 4"));
        m.degradation = Degradation::Bicubic;
        assert_eq!(m.min_crop(), 32, "V = 16 latent px at f = 2");
        assert_eq!(m.default_crop(), 64);
        assert!(m.check_crop(28).is_err());
    }
}
