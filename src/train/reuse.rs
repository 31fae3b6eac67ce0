//! `--reuse R`: one degraded pair batch serves R consecutive steps.
//!
//! Why: on a GPU the Real-ESRGAN degradation (on the CPU's cores) is slower
//! than a step of the small networks, so a trainer would mostly wait. Each
//! of the R steps draws fresh flips, windows, timesteps and noise from the
//! step's own RNG, so the steps differ while the batch (and what the trainer
//! made of it: device copies, latents) is kept. Step s uses batch s / R, a
//! function of the step alone, so a resumed run sees the same batches.

use super::lr_pairs::{Pair, PairLoader};
use super::trainer::timed;
use anyhow::{bail, Context, Result};

pub struct ReusedPairs<T> {
    loader: PairLoader,
    reuse: u64,
    /// The batch number and what was made of it.
    current: Option<(u64, T)>,
}

impl<T> ReusedPairs<T> {
    /// Batches from `loader` for steps from `start_step` on, each serving `reuse` steps.
    pub fn new(mut loader: PairLoader, reuse: u64, start_step: u64) -> Result<Self> {
        if reuse < 1 {
            bail!("--reuse {reuse}: must be at least 1");
        }
        loader.skip_to(start_step / reuse);
        Ok(ReusedPairs { loader, reuse, current: None })
    }

    /// What `make` made of step `step`'s batch, and the seconds spent
    /// waiting for the loader (0 when the batch was already there).
    pub fn get(&mut self, step: u64, make: impl FnOnce(Pair) -> Result<T>) -> Result<(&T, f64)> {
        let k = step / self.reuse;
        let mut wait = 0.0;
        if self.current.as_ref().map(|(i, _)| *i) != Some(k) {
            if self.loader.position() != k {
                bail!("pair batch {} is next but step {step} needs batch {k}", self.loader.position());
            }
            let (pair, waited) = timed(|| self.loader.next());
            wait = waited;
            let pair = pair.context("the pair loader ended")??;
            self.current = Some((k, make(pair)?));
        }
        let (_, made) = self.current.as_ref().context("no pair batch")?;
        Ok((made, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::lr_pairs::PairConfig;
    use crate::train::{CropConfig, ImageFolder};

    fn loader(dir: &std::path::Path) -> PairLoader {
        for i in 0..2u32 {
            image::RgbImage::from_fn(130, 110, |x, y| image::Rgb([(x * 2 + i * 50) as u8, (y * 2) as u8, ((x ^ y) & 0xff) as u8]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
        let folder = ImageFolder::open(dir, None).unwrap();
        PairLoader::new(&folder, CropConfig::new(96, 1, 3), PairConfig::realesrgan_x4(3)).unwrap()
    }

    #[test]
    fn each_batch_serves_reuse_steps_and_a_resumed_run_gets_the_same_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut straight = ReusedPairs::new(loader(dir.path()), 3, 0).unwrap();
        let (mut made, mut waits) = (vec![], 0);
        for step in 0..7 {
            let (lr, wait) = straight.get(step, |p| { made.push(step); Ok(p.lr) }).unwrap();
            waits += (wait > 0.0) as usize;
            let _ = lr;
        }
        assert_eq!(made, [0, 3, 6], "a new batch at steps 0, 3 and 6 only");
        assert!(waits <= 3);
        let lr_at = |r: &mut ReusedPairs<tch::Tensor>, step| r.get(step, |p| Ok(p.lr)).unwrap().0.shallow_clone();
        let want = lr_at(&mut straight, 7);
        let mut resumed = ReusedPairs::new(loader(dir.path()), 3, 7).unwrap();
        assert!(lr_at(&mut resumed, 7).equal(&want), "step 7 is batch 2 after a resume too");
        assert!(resumed.get(9, |p| Ok(p.lr)).is_ok());
        assert!(resumed.get(3, |p| Ok(p.lr)).unwrap_err().to_string().contains("needs batch 1"));
        assert!(ReusedPairs::<()>::new(loader(dir.path()), 0, 0).is_err());
    }
}
