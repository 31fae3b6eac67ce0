//! `patchscaler train rtm`: builds the Reference Texture Memory by paper
//! Algorithm 1. Not iterative, so no Trainer: (1) random square crops of
//! the training images, each exactly one V x V latent patch (V * f pixels)
//! at native resolution, where the textures are finest; (2) the frozen
//! encoder E turns them into RTM-value_init; (3-5) `Rtm::build` keys them
//! with the trained T and keeps the entries farthest point sampling spreads
//! over key space. The result replaces rtm.safetensors in the model folder,
//! every entry naming its file and crop box.
//!
//! Every draw comes from `--seed`, so a seed gives the same file byte for
//! byte. Crops pick an image uniformly, then a window uniformly; they are
//! processed grouped by image, so each (large) image is decoded once.

use super::args::load_frozen_ae;
use super::data::{ImageFolder, MANIFEST};
use crate::autoencoder::Autoencoder;
use crate::device::{device, DeviceArg};
use crate::model::files::load_checked;
use crate::model::loaded::{CONFIG_FILE, RTM_FILE, TEXTURE_FILE};
use crate::model::ModelConfig;
use crate::texture::{Rtm, TextureClassifier};
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn::VarStore, Kind, Tensor};

#[derive(Args, Debug)]
pub struct RtmArgs {
    /// Model folder: E and T are read from it, rtm.safetensors is written into it.
    #[arg(long)]
    pub model: PathBuf,
    /// High-quality images: a folder, or a manifest.csv (its train split is used).
    #[arg(long)]
    pub data: PathBuf,
    /// Random crops FPS chooses from (paper: 20,000).
    #[arg(long, default_value_t = 20_000)]
    pub candidates: usize,
    /// Entries kept (default: the model config's texture.rtm_size).
    #[arg(long)]
    pub size: Option<i64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Crops per encoder call (bounds the memory).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Where E, T and farthest point sampling run.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
}

/// One candidate: the `side` x `side` window at (x, y) of image `file`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub file: usize,
    pub x: u32,
    pub y: u32,
}

/// Step 1: `n` random windows over images of sizes `dims`, ordered by image.
/// Images smaller than a window are never picked.
pub fn plan_crops(dims: &[(u32, u32)], n: usize, side: u32, seed: u64) -> Result<Vec<CropBox>> {
    let fits: Vec<usize> = (0..dims.len())
        .filter(|&i| dims[i].0 >= side && dims[i].1 >= side)
        .collect();
    if fits.is_empty() {
        bail!("no image is at least {side}x{side} pixels");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut plan: Vec<CropBox> = (0..n)
        .map(|_| {
            let file = fits[rng.random_range(0..fits.len())];
            let (w, h) = dims[file];
            CropBox {
                file,
                x: rng.random_range(0..=w - side),
                y: rng.random_range(0..=h - side),
            }
        })
        .collect();
    plan.sort_by_key(|c| c.file); // stable: draw order within an image
    Ok(plan)
}

/// Step 2: E(crops) as (N, c, V, V) scaled latents, `batch` crops per call.
pub fn encode_crops(
    ae: &Autoencoder,
    files: &[PathBuf],
    plan: &[CropBox],
    side: u32,
    batch: usize,
) -> Result<Tensor> {
    let mut image: Option<(usize, image::RgbImage)> = None;
    let mut pending = Vec::with_capacity(batch);
    let mut latents = Vec::new();
    let flush = |pending: &mut Vec<Tensor>, latents: &mut Vec<Tensor>| {
        if !pending.is_empty() {
            let x = Tensor::stack(pending, 0).to_device(ae.device()) * 2.0 - 1.0;
            latents.push(tch::no_grad(|| ae.encode(&x)).to_kind(Kind::Float));
            pending.clear();
        }
    };
    for c in plan {
        if image.as_ref().is_none_or(|(i, _)| *i != c.file) {
            let path = &files[c.file];
            let decoded =
                image::open(path).with_context(|| format!("{}: cannot decode", path.display()))?;
            image = Some((c.file, decoded.into_rgb8()));
        }
        let (_, img) = image.as_ref().context("no image decoded")?;
        let window = image::imageops::crop_imm(img, c.x, c.y, side, side).to_image();
        let s = side as i64;
        pending.push(
            Tensor::from_slice(window.as_raw())
                .view([s, s, 3])
                .permute([2, 0, 1])
                .to_kind(Kind::Float)
                / 255.0,
        );
        if pending.len() == batch.max(1) {
            flush(&mut pending, &mut latents);
        }
    }
    flush(&mut pending, &mut latents);
    Ok(Tensor::cat(&latents, 0))
}

pub fn run(a: RtmArgs) -> Result<i32> {
    let cfg = ModelConfig::load(&a.model.join(CONFIG_FILE))?;
    let t_cfg = &cfg.texture;
    let size = a.size.unwrap_or(t_cfg.rtm_size);
    if size < t_cfg.k || size as usize > a.candidates {
        bail!(
            "--size {size} must be at least texture.k = {} and at most --candidates {}",
            t_cfg.k,
            a.candidates
        );
    }
    let dev = device(a.device)?;
    let mut ae_vs = VarStore::new(dev);
    let ae = Autoencoder::new(&ae_vs.root(), &cfg.ae);
    load_frozen_ae(&mut ae_vs, &a.model)?;
    let mut t_vs = VarStore::new(dev);
    let t = TextureClassifier::new(&t_vs.root(), t_cfg)?;
    load_checked(&mut t_vs, &a.model.join(TEXTURE_FILE), &|_| None)
        .context("the texture classifier T (run `train texture` first)")?;

    let start = Instant::now();
    let (root, images) = train_images(&a.data)?;
    let dims = images
        .files()
        .iter()
        .map(|p| {
            image::image_dimensions(p)
                .with_context(|| format!("{}: cannot read the image size", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let side = (t_cfg.patch * cfg.ae.downsample_factor()) as u32;
    let plan = plan_crops(&dims, a.candidates, side, a.seed)?;
    let used = plan.windows(2).filter(|w| w[0].file != w[1].file).count() + 1;
    let values = encode_crops(&ae, images.files(), &plan, side, a.batch)?;
    let encoded = start.elapsed().as_secs_f64();

    let provenance = plan
        .iter()
        .map(|c| {
            let path = &images.files()[c.file];
            let name = path.strip_prefix(&root).unwrap_or(path).display();
            format!("{name}@x={},y={},size={side}", c.x, c.y)
        })
        .collect();
    let rtm = Rtm::build(&values, &t, size, a.seed, provenance)?;
    let path = a.model.join(RTM_FILE);
    write_memory(&rtm, &path)?;
    println!(
        "rtm: {} candidate crops of {side}x{side} px from {used} of {} images, read and encoded in {encoded:.1} s; \
         keyed by T and reduced by FPS to {size} in {:.1} s; wrote {}",
        a.candidates,
        images.len(),
        start.elapsed().as_secs_f64() - encoded,
        path.display()
    );
    Ok(0)
}

/// Writes through a temporary file, so that a crash never leaves a
/// half-written memory where `upscale` would load it.
pub fn write_memory(rtm: &Rtm, path: &Path) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("rtm");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    rtm.save(&tmp)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("{}: cannot move into place", path.display()))
}

/// The train split of a manifest (or every image of a plain folder), and the
/// folder that provenance names are relative to.
fn train_images(data: &Path) -> Result<(PathBuf, ImageFolder)> {
    if data.is_file() {
        let root = data.parent().unwrap_or(Path::new("")).to_path_buf();
        return Ok((root, ImageFolder::open(data, Some("train"))?));
    }
    let split = data.join(MANIFEST).is_file().then_some("train");
    Ok((data.to_path_buf(), ImageFolder::open(data, split)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_fit_their_image_skip_small_ones_and_follow_the_seed() {
        let dims = [(100, 40), (20, 20), (64, 300)];
        let plan = plan_crops(&dims, 200, 32, 5).unwrap();
        assert_eq!(plan.len(), 200);
        assert!(
            plan.windows(2).all(|w| w[0].file <= w[1].file),
            "grouped by image"
        );
        assert!(
            plan.iter().all(|c| c.file != 1),
            "a 20x20 image cannot hold a 32x32 crop"
        );
        assert!(plan.iter().any(|c| c.file == 0) && plan.iter().any(|c| c.file == 2));
        for c in &plan {
            let (w, h) = dims[c.file];
            assert!(c.x + 32 <= w && c.y + 32 <= h, "{c:?}");
        }
        assert_eq!(plan, plan_crops(&dims, 200, 32, 5).unwrap());
        assert_ne!(plan, plan_crops(&dims, 200, 32, 6).unwrap());
        assert!(plan_crops(&[(8, 8)], 3, 32, 0).is_err());
    }

    use tch::Device;

    #[test]
    fn encoded_crops_are_the_encoder_latents_of_their_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let img = image::RgbImage::from_fn(40, 36, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 7) as u8, ((x + y) * 3) as u8])
        });
        img.save(&path).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &crate::autoencoder::config::AeConfig::tiny());
        let plan = [
            CropBox {
                file: 0,
                x: 3,
                y: 1,
            },
            CropBox {
                file: 0,
                x: 8,
                y: 4,
            },
            CropBox {
                file: 0,
                x: 0,
                y: 0,
            },
        ];
        let values = encode_crops(&ae, &[path], &plan, 32, 2).unwrap();
        assert_eq!(values.size(), [3, 4, 16, 16]);
        let full = Tensor::from_slice(img.as_raw())
            .view([36, 40, 3])
            .permute([2, 0, 1])
            .to_kind(Kind::Float)
            / 255.0;
        let window = full.narrow(1, 4, 32).narrow(2, 8, 32).unsqueeze(0);
        let want = tch::no_grad(|| ae.encode(&(window * 2.0 - 1.0)));
        assert!(crate::conformance::max_abs_diff(&values.narrow(0, 1, 1), &want) < 1e-5);
    }
}
