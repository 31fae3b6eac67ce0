//! `patchscaler upscale`: files and folders in, upscaled images out, one
//! summary line per image, and every bad input reported without stopping
//! the batch.

use super::presets::PgsFlags;
use crate::colorfix::ColorFix;
use crate::imageio::{load_image, save::save_image};
use crate::model::Model;
use crate::pipeline::{self, qmap_image::qmap_figure, SamplingOptions};
use crate::resize::bicubic::upsample_bicubic;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind};

/// The model that ships in the repository, used when no --model is given.
pub const DEFAULT_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/default");

#[derive(Args, Debug)]
pub struct UpscaleArgs {
    /// Input images or folders of images.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file (one input) or folder.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Model folder (model.toml + weights). Default: the shipped model.
    #[arg(long, env = "PATCHSCALER_MODEL")]
    pub model: Option<PathBuf>,
    /// A diffusers AutoencoderKL safetensors file to use instead of the model's AE.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    #[command(flatten)]
    pub pgs: PgsFlags,
    /// Every patch with tau = 1000, N = 20: the paper's uniform baseline.
    #[arg(long)]
    pub uniform: bool,
    /// Output scale; the native x4 result is resampled for other factors.
    #[arg(long, default_value_t = 4.0)]
    pub scale: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep PatchScaler's output where the LR has no structure (flat, smooth
    /// gradients) instead of returning bicubic there (see `pipeline::detail_gate`).
    #[arg(long)]
    pub no_detail_gate: bool,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Write the confidence map and patch groups (paper Fig. 4) to this file (a folder with several inputs).
    #[arg(long)]
    pub qmap: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub colorfix: Option<ColorFixArg>,
    /// Patches per Patch-DiT call (memory bound; the result does not depend on it).
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Memory budget in MiB; larger images are refused before decoding.
    #[arg(long, default_value_t = 8192)]
    pub memory_limit: u64,
    /// Intra-op CPU threads (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
}

pub use crate::device::{device, DeviceArg};

pub use crate::autocast::Precision;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ColorFixArg {
    Wavelet,
    Adain,
    None,
}

/// Bytes of working memory per output pixel: about a dozen full-resolution
/// f32 RGB buffers (bicubic, padded input, decoded, colour-fix levels).
const BYTES_PER_OUTPUT_PIXEL: u64 = 64;

/// The most input pixels an image may have under a memory budget of
/// `memory_limit_mib` MiB at output scale `scale` (`--memory-limit`; `serve`
/// applies the same limit).
pub(crate) fn max_input_pixels(memory_limit_mib: u64, scale: f64) -> u64 {
    memory_limit_mib.saturating_mul(1 << 20)
        / BYTES_PER_OUTPUT_PIXEL
        / ((scale.max(4.0) * scale.max(4.0)) as u64)
}

/// Loads the model a run asks for, in the requested precision.
pub fn load_model(
    model: Option<&Path>,
    vae: Option<&Path>,
    dev: Device,
    precision: Precision,
) -> Result<Model> {
    let dir = model
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL));
    let mut m = Model::load(&dir, dev, vae)?;
    if precision == Precision::Bf16 {
        m.set_kind(Kind::BFloat16);
    }
    Ok(m)
}

pub fn run(a: UpscaleArgs) -> Result<i32> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if !(a.scale > 0.0 && a.scale <= 16.0) {
        bail!("--scale {} is out of range (0, 16]", a.scale);
    }
    let dev = device(a.device)?;
    let model = load_model(a.model.as_deref(), a.vae.as_deref(), dev, a.precision)?;
    let pgs = a.pgs.checked_plan(&model, a.uniform)?;
    let colorfix = match a.colorfix {
        Some(ColorFixArg::Wavelet) => ColorFix::Wavelet,
        Some(ColorFixArg::Adain) => ColorFix::Adain,
        Some(ColorFixArg::None) => ColorFix::None,
        None => model.config.colorfix,
    };
    let mut opts = SamplingOptions::new(pgs, colorfix);
    opts.seed = a.seed;
    if a.no_detail_gate {
        opts.detail_gate = None;
    }
    opts.max_batch = a.max_batch.max(1);

    let (inputs, mut failures) = expand_inputs(&a.inputs);
    let single_file = a.inputs.len() == 1
        && inputs.len() == 1
        && a.inputs[0].is_file()
        && has_image_ext(&a.output);
    let max_pixels = max_input_pixels(a.memory_limit, a.scale);
    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {msg}").unwrap());
    for input in &inputs {
        bar.set_message(input.display().to_string());
        let out = if single_file {
            a.output.clone()
        } else {
            output_in(&a.output, input, a.scale)
        };
        let qmap = a.qmap.as_ref().map(|q| {
            if single_file {
                q.clone()
            } else {
                q.join(format!("{}_qmap.png", stem(input)))
            }
        });
        match upscale_one(
            &model,
            input,
            &out,
            qmap.as_deref(),
            &opts,
            a.scale,
            max_pixels,
            &inputs,
        ) {
            // suspend, not println: a hidden bar (stderr not a terminal) drops println.
            Ok(line) => bar.suspend(|| println!("{line}")),
            Err(e) => {
                bar.suspend(|| eprintln!("error: {e:#}"));
                failures += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(if failures > 0 { 1 } else { 0 })
}

/// One image to `out` (and its qmap figure to `qmap`); returns the summary
/// line. `serve` calls it too, so its results equal this command's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn upscale_one(
    model: &Model,
    input: &Path,
    out: &Path,
    qmap: Option<&Path>,
    opts: &SamplingOptions,
    scale: f64,
    max_pixels: u64,
    inputs: &[PathBuf],
) -> Result<String> {
    let start = Instant::now();
    let img = load_image(input, max_pixels)?;
    let (h, w) = (img.height(), img.width());
    let up =
        pipeline::upscale(model, &img.rgb, opts).with_context(|| format!("{}", input.display()))?;
    let sr = pipeline::rescale(&up.sr, h, w, scale)?;
    let (oh, ow) = (sr.size()[2], sr.size()[3]);
    let alpha = match img.alpha.as_ref() {
        Some(a) => Some(upsample_bicubic(a, oh as usize, ow as usize)?.clamp(0.0, 1.0)),
        None => None,
    };
    save_image(&sr, alpha.as_ref(), &img, out, inputs)?;
    if let Some(q) = qmap {
        let fig = qmap_figure(&up);
        let like = crate::imageio::load::from_tensor(fig.shallow_clone(), q);
        save_image(&fig, None, &like, q, inputs)?;
    }
    let groups: Vec<String> = opts
        .pgs
        .groups
        .iter()
        .zip(&up.stats.patches_per_group)
        .map(|(g, n)| format!("{}={n}", g.name))
        .collect();
    let stages: Vec<String> = up
        .timings
        .iter()
        .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    let ratio = up.stats.evaluations as f64 / up.stats.uniform_evaluations.max(1) as f64;
    Ok(format!(
        "{} -> {}: {w}x{h} -> {ow}x{oh} | patches {} ({}) | denoiser evals {} vs uniform {} ({:.2}x) | {} | total {:.2}s",
        input.display(),
        out.display(),
        up.assignment.len(),
        groups.join(" "),
        up.stats.evaluations,
        up.stats.uniform_evaluations,
        ratio,
        stages.join(", "),
        start.elapsed().as_secs_f64()
    ))
}

const IMAGE_EXTS: &[&str] = &["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"];

fn has_image_ext(p: &Path) -> bool {
    p.extension()
        .map(|e| IMAGE_EXTS.contains(&e.to_string_lossy().to_lowercase().as_str()))
        .unwrap_or(false)
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

fn output_in(dir: &Path, input: &Path, scale: f64) -> PathBuf {
    let s = if scale.fract() == 0.0 {
        format!("{}", scale as i64)
    } else {
        format!("{scale}")
    };
    dir.join(format!("{}_x{s}.png", stem(input)))
}

/// Files as given, and the image files inside given folders (sorted). A
/// missing path is reported here and counted as a failure.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let mut out = Vec::new();
    let mut failures = 0;
    for p in inputs {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut files: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| f.is_file() && has_image_ext(f))
                        .collect();
                    files.sort();
                    if files.is_empty() {
                        eprintln!("error: {}: folder holds no images", p.display());
                        failures += 1;
                    }
                    out.extend(files);
                }
                Err(e) => {
                    eprintln!("error: {}: cannot list the folder: {e}", p.display());
                    failures += 1;
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            eprintln!("error: {}: no such file", p.display());
            failures += 1;
        }
    }
    (out, failures)
}
