//! The (HR, LR) pairs an evaluation scores: the LR comes from a folder of
//! paired images or is made from the HR with a stated degradation and seed.

/// How an LR is made when none is given: the three protocols.
pub use crate::degrade::Degradation;
use crate::imageio::{image_files, load_image};
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Evaluation images are read whole; this only stops decompression bombs.
const MAX_PIXELS: u64 = 1 << 28;

/// Where a run's LR images come from.
#[derive(Clone, Debug)]
pub struct PairSource {
    /// A folder holding one LR per HR, matched by file stem.
    pub lr_dir: Option<PathBuf>,
    pub degradation: Degradation,
    /// Base seed; each image's generator is seeded from (seed, file name),
    /// exactly as `patchscaler degrade --seed` does, so the LRs can be saved
    /// with that command and fed back through `--lr-dir`.
    pub seed: u64,
    pub scale: i64,
    /// Centre-crop the HR to this side (px) to bound the run time.
    pub crop_hr: Option<i64>,
}

/// One evaluation image: HR (1,3,H,W) with H, W = scale x the LR's, and its LR.
pub struct Pair {
    pub name: String,
    pub hr: Tensor,
    pub lr: Tensor,
}

impl PairSource {
    /// Reads `hr_path` and makes or finds its LR.
    pub fn load(&self, hr_path: &Path) -> Result<Pair> {
        let name = hr_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let hr = load_image(hr_path, MAX_PIXELS)?.rgb;
        let s = self.scale;
        let (hr, lr) = match &self.lr_dir {
            Some(dir) => {
                let lr_path = find_lr(dir, hr_path)?;
                let lr = load_image(&lr_path, MAX_PIXELS)?.rgb;
                let hr = align_hr(&hr, &lr, s).with_context(|| format!("{} with {}", hr_path.display(), lr_path.display()))?;
                match self.crop_hr {
                    Some(c) => {
                        // Cut in LR pixels, so both crops cover the same scene.
                        let (top, left) = centre_offsets(&lr, c / s);
                        let lr = centre_crop(&lr, c / s);
                        let hr = hr.narrow(2, top * s, lr.size()[2] * s).narrow(3, left * s, lr.size()[3] * s);
                        (hr, lr)
                    }
                    None => (hr, lr),
                }
            }
            None => {
                let hr = match self.crop_hr {
                    Some(c) => centre_crop(&hr, (c / s) * s),
                    None => hr,
                };
                let lr = self
                    .degradation
                    .lr_of_file(&hr, s, self.seed, &name)
                    .with_context(|| format!("degrading {}", hr_path.display()))?;
                let hr = align_hr(&hr, &lr, s)?;
                (hr, lr)
            }
        };
        ensure!(lr.size()[2] > 0 && lr.size()[3] > 0, "{}: the crop leaves no LR pixels", hr_path.display());
        Ok(Pair { name, hr: hr.contiguous(), lr: lr.contiguous() })
    }

    /// One line saying where the LRs come from, for the report header.
    pub fn describe(&self) -> String {
        match (&self.lr_dir, self.degradation) {
            (Some(d), _) => format!("LR images from {} (matched by file stem)", d.display()),
            (None, Degradation::Bicubic) => format!("LR = MATLAB bicubic x1/{} of the HR", self.scale),
            (None, Degradation::Light) => format!(
                "LR = light degradation x1/{} (mild blur, antialiased shrink, faint noise, JPEG 70..95), seed {} (same LR as `patchscaler degrade --light --seed {}`)",
                self.scale, self.seed, self.seed
            ),
            (None, Degradation::Realesrgan) => format!(
                "LR = Real-ESRGAN degradation x1/{}, seed {} (same LR as `patchscaler degrade --seed {}`)",
                self.scale, self.seed, self.seed
            ),
        }
    }
}

/// The HR cut to exactly scale x the LR size from the top-left, as BasicSR
/// pairs them (`paired_random_crop` / `mod_crop`).
fn align_hr(hr: &Tensor, lr: &Tensor, s: i64) -> Result<Tensor> {
    let (h, w) = (lr.size()[2] * s, lr.size()[3] * s);
    if hr.size()[2] < h || hr.size()[3] < w {
        bail!("HR {}x{} is smaller than x{s} its LR ({}x{})", hr.size()[3], hr.size()[2], lr.size()[3], lr.size()[2]);
    }
    Ok(hr.narrow(2, 0, h).narrow(3, 0, w))
}

fn centre_offsets(img: &Tensor, side: i64) -> (i64, i64) {
    ((img.size()[2] - side).max(0) / 2, (img.size()[3] - side).max(0) / 2)
}

/// The centre `side` x `side` (or less along a shorter edge).
pub fn centre_crop(img: &Tensor, side: i64) -> Tensor {
    let (top, left) = centre_offsets(img, side);
    let (h, w) = (side.min(img.size()[2]), side.min(img.size()[3]));
    img.narrow(2, top, h).narrow(3, left, w)
}

/// The image in `dir` with the same stem as `hr`, whatever its image extension.
fn find_lr(dir: &Path, hr: &Path) -> Result<PathBuf> {
    let stem = hr.file_stem().context("HR path has no file name")?;
    let images = image_files(dir, false).with_context(|| format!("listing LR folder {}", dir.display()))?;
    images.into_iter().find(|p| p.file_stem() == Some(stem)).with_context(|| format!("{}: no LR image named {}.* in {}", hr.display(), stem.to_string_lossy(), dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn ramp(h: i64, w: i64) -> Tensor {
        Tensor::arange(3 * h * w, (Kind::Float, Device::Cpu)).view([1, 3, h, w]).remainder(251) / 255.0
    }

    #[test]
    fn hr_is_cut_to_scale_times_the_lr() {
        let hr = ramp(37, 50);
        let lr = ramp(9, 12);
        let a = align_hr(&hr, &lr, 4).unwrap();
        assert_eq!(a.size(), [1, 3, 36, 48]);
        assert!(align_hr(&ramp(30, 50), &lr, 4).is_err());
    }

    #[test]
    fn paired_lr_is_found_by_stem_and_cropped_in_register() {
        let d = tempfile::tempdir().unwrap();
        let (hr_dir, lr_dir) = (d.path().join("hr"), d.path().join("lr"));
        std::fs::create_dir_all(&hr_dir).unwrap();
        std::fs::create_dir_all(&lr_dir).unwrap();
        image::RgbImage::from_fn(80, 64, |x, y| image::Rgb([(x * 3) as u8, (y * 3) as u8, 7])).save(hr_dir.join("a.png")).unwrap();
        image::RgbImage::from_fn(20, 16, |x, y| image::Rgb([(x * 12) as u8, (y * 12) as u8, 7])).save(lr_dir.join("a.png")).unwrap();
        let src = PairSource { lr_dir: Some(lr_dir), degradation: Degradation::Bicubic, seed: 0, scale: 4, crop_hr: Some(32) };
        let p = src.load(&hr_dir.join("a.png")).unwrap();
        assert_eq!(p.lr.size(), [1, 3, 8, 8]);
        assert_eq!(p.hr.size(), [1, 3, 32, 32]);
        // LR crop starts at (4, 6): its HR starts at (16, 24), red = 3x.
        let red = |t: &Tensor| (t.double_value(&[0, 0, 0, 0]) * 255.0).round();
        assert_eq!(red(&p.lr), 6.0 * 12.0);
        assert_eq!(red(&p.hr), 24.0 * 3.0);
        assert!(src.load(&hr_dir.join("missing.png")).is_err());
    }
}
