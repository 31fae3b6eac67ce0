//! `patchscaler upscale`: files and folders in, upscaled images out. The
//! whole batch is checked first (`preflight`), then each image runs with a
//! progress bar and ends in one summary line; a bad image costs one error
//! line and the batch goes on; a tally closes the run.

use super::presets::{FinishFlags, PgsFlags};
use crate::colorfix::ColorFix;
use super::batch::{Manifest, Record, Shard, Status};
use super::memory::{self, Fit};
use super::preflight::{self, Job, Share};
use super::progress_bar::{image_bar, progress_fn};
use crate::imageio::{load::load_checked, save::save_image, shown};
use crate::model::Model;
use crate::pipeline::{self, qmap_image::{half_size, qmap_figure}, regions, SamplingOptions};
use crate::resize::bicubic::upsample_bicubic;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind};

#[derive(Args, Debug)]
pub struct UpscaleArgs {
    /// Input images or folders of images.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output file or folder. A folder: an existing one, a path ending in /,
    /// or (several inputs) a path without an extension. A file: one input and
    /// a .png/.jpg/.jpeg/.webp/.tif/.tiff/.bmp name. Anything else is an
    /// error. In a folder x.png becomes x_x4.png; inputs sharing a stem keep
    /// their extension (x.jpg -> x_jpg_x4.png); the same file name from two
    /// folders is refused (both named).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Model folder (model.toml + weights). Default: the shipped model
    /// (models/default beside the executable's folder: the bundle's or the
    /// source tree's).
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
    /// Output scale, from 0.5 to 16; the native x4 result is resampled for other factors.
    #[arg(long, default_value_t = 4.0, value_parser = parse_scale)]
    pub scale: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub finish: FinishFlags,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// auto: bf16 where it is native and faster, else f32 (`patchscaler
    /// devices` says which).
    #[arg(long, value_enum, default_value = "auto")]
    pub precision: PrecisionArg,
    /// Write the confidence map and patch groups (paper Fig. 4) to this file (a folder with several inputs).
    #[arg(long)]
    pub qmap: Option<PathBuf>,
    #[arg(long, value_enum)]
    pub colorfix: Option<ColorFixArg>,
    /// Patches per Patch-DiT call (memory bound; the result does not depend on it).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: u64,
    /// Memory budget in MiB (default: 75 % of MemTotal in /proc/meminfo).
    /// An image whose estimated peak (a fixed part plus a part per output
    /// pixel, measured with the shipped model) exceeds it runs in as few
    /// overlapping regions as fit; one that exceeds it even in the smallest
    /// regions is refused before the model loads. --qmap keeps 128 MiB of it.
    #[arg(long, value_name = "MiB", default_value_t = super::memory::default_limit_mib(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_limit: u64,
    /// Intra-op CPU threads, at least 1 (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
    /// Print nothing but errors.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print each image's patch groups, denoiser evaluations and stage times.
    #[arg(short, long)]
    pub verbose: bool,
    /// Do only share I of N (counted from 0) of the input list sorted by
    /// path: every N-th image from the I-th. For array jobs: SLURM's
    /// SLURM_ARRAY_TASK_ID, Kubernetes' JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Leave out images whose outputs exist (outputs appear only when
    /// complete, so a restarted job redoes at most the image it was on).
    #[arg(long)]
    pub skip_existing: bool,
    /// Append one JSON line per image to this file: input, output, sizes,
    /// patch groups, seconds, status (done, exists, failed), error.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
}

pub use crate::device::{device, DeviceArg};

pub use crate::autocast::Precision;
pub use crate::precision::PrecisionArg;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ColorFixArg {
    Wavelet,
    Adain,
    None,
}

/// Loads the model a run asks for, in the requested precision.
pub fn load_model(
    model: Option<&Path>,
    vae: Option<&Path>,
    dev: Device,
    precision: Precision,
) -> Result<Model> {
    let dir = match model {
        Some(m) => m.to_path_buf(),
        None => crate::model::shipped::default_dir()?,
    };
    let mut m = Model::load(&dir, dev, vae)?;
    if precision == Precision::Bf16 {
        m.set_kind(Kind::BFloat16);
    }
    Ok(m)
}

/// `--scale`, and the scale `serve`'s page sends: one rule for both. Below
/// 0.5 the result is a thumbnail named after a long fraction (8x8 at
/// x0.000000001 gave 1x1).
pub fn parse_scale(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=16.0).contains(&v) => Ok(v),
        Ok(_) => Err("out of range: give a number from 0.5 to 16".into()),
        Err(_) => Err("not a number: give one from 0.5 to 16".into()),
    }
}

pub fn run(a: UpscaleArgs) -> Result<i32> {
    let share = Share { shard: a.shard, skip_existing: a.skip_existing };
    let plan = preflight::plan(&a.inputs, &a.output, a.qmap.as_deref(), a.scale, a.memory_limit, share)?;
    let mut manifest = a.manifest.as_deref().map(Manifest::open).transpose()?;
    for s in &plan.skipped {
        eprintln!("error: {}", s.error);
        if let (Some(m), Some(input)) = (manifest.as_mut(), &s.input) {
            let mut r = Record::new(input, None, Status::Failed);
            r.error = Some(s.error.clone());
            m.write(&r)?;
        }
    }
    for job in &plan.existing {
        if let Some(m) = manifest.as_mut() {
            m.write(&Record::new(&job.input, Some(&job.output), Status::Exists))?;
        }
    }
    let mut tally = Tally { skipped: plan.skipped.len(), existing: plan.existing.len(), ..Tally::default() };
    if !plan.jobs.is_empty() {
        tally = upscale_all(&a, &plan.jobs, tally, manifest.as_mut())?;
    }
    if !a.quiet {
        println!("{tally}");
    }
    Ok(if tally.failed + tally.skipped > 0 { 1 } else { 0 })
}

/// Images finished, failed while computing, refused by the preflight, and
/// left out because their outputs exist (`--skip-existing`).
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    done: usize,
    failed: usize,
    skipped: usize,
    existing: usize,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "done {}, failed {}, skipped {}", self.done, self.failed, self.skipped)?;
        if self.existing > 0 {
            write!(f, ", already there {}", self.existing)?;
        }
        Ok(())
    }
}

fn upscale_all(a: &UpscaleArgs, jobs: &[Job], mut tally: Tally, mut manifest: Option<&mut Manifest>) -> Result<Tally> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let dev = device(a.device)?;
    let precision = crate::precision::resolve(a.precision, dev);
    let model = load_model(a.model.as_deref(), a.vae.as_deref(), dev, precision)?;
    let mut opts = sampling_options(&model, &a.pgs, a.uniform, a.colorfix, a.seed)?;
    a.finish.apply(&mut opts);
    opts.max_batch = a.max_batch as usize;
    let inputs: Vec<PathBuf> = jobs.iter().map(|j| j.input.clone()).collect();
    for (i, job) in jobs.iter().enumerate() {
        let bar = image_bar(i, jobs.len(), &job.input, !a.quiet);
        opts.progress = Some(progress_fn(&bar));
        let start = Instant::now();
        let result = upscale_one(&model, job, &opts, a.scale, a.memory_limit, &inputs);
        bar.finish_and_clear();
        let mut record = Record::new(&job.input, Some(&job.output), Status::Done);
        record.seconds = start.elapsed().as_secs_f64();
        match result {
            Ok(done) => {
                tally.done += 1;
                if a.verbose {
                    println!("{}", done.detailed);
                } else if !a.quiet {
                    println!("{}", done.compact);
                }
                record.input_size = Some(done.input_size);
                record.output_size = Some(done.output_size);
                record.groups = done.groups;
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                tally.failed += 1;
                record.status = Status::Failed;
                record.output = None;
                record.error = Some(format!("{e:#}"));
            }
        }
        if let Some(m) = manifest.as_deref_mut() {
            m.write(&record)?;
        }
    }
    Ok(tally)
}

/// The sampling options for these plan flags, colour fix and seed (the
/// model's colour fix where none is given). `serve` builds its jobs' options
/// here too, so that the page's results are this command's bytes.
pub(crate) fn sampling_options(
    model: &Model,
    pgs: &PgsFlags,
    uniform: bool,
    colorfix: Option<ColorFixArg>,
    seed: u64,
) -> Result<SamplingOptions> {
    let colorfix = match colorfix {
        Some(ColorFixArg::Wavelet) => ColorFix::Wavelet,
        Some(ColorFixArg::Adain) => ColorFix::Adain,
        Some(ColorFixArg::None) => ColorFix::None,
        None => model.config.colorfix,
    };
    let mut opts = SamplingOptions::new(pgs.checked_plan(model, uniform)?, colorfix);
    opts.seed = seed;
    Ok(opts)
}

/// The two summaries of one finished image (the default's and --verbose's)
/// and what its manifest line records.
pub(crate) struct Done {
    pub compact: String,
    pub detailed: String,
    pub input_size: (i64, i64),
    pub output_size: (i64, i64),
    pub groups: Vec<(String, usize)>,
}

/// One image to its output (and its group figure to its qmap). `serve`
/// calls it too, so the page's results are this command's bytes.
pub(crate) fn upscale_one(
    model: &Model,
    job: &Job,
    opts: &SamplingOptions,
    scale: f64,
    limit_mib: u64,
    inputs: &[PathBuf],
) -> Result<Done> {
    let (input, out) = (job.input.as_path(), job.output.as_path());
    let start = Instant::now();
    let limit_mib = memory::usable_mib(limit_mib, job.qmap.is_some());
    // Checked again: the file may have changed since the preflight.
    let img = load_checked(input, limit_mib.saturating_mul(1 << 20), preflight::admit(input, scale, limit_mib))?;
    let (h, w) = (img.height(), img.width());
    let align = regions::alignment(model.config.scale, model.ae.downsample_factor(), opts.pgs.stride as i64);
    let mut opts = opts.clone();
    let (wu, hu) = (w as u32, h as u32);
    let estimate = match memory::plan(wu, hu, scale, limit_mib, align) {
        Ok(Fit::Whole) => memory::needed_bytes(wu, hu, scale),
        Ok(Fit::Regions(tiles)) => {
            opts.regions = Some(tiles);
            memory::tiled_bytes(wu, hu, scale, &tiles, align)
        }
        Err(e) => bail!("{}: {e}", shown(input)),
    };
    let up =
        pipeline::upscale(model, &img.rgb, &opts).with_context(|| format!("{}", shown(input)))?;
    let sr = pipeline::rescale(&up.sr, h, w, scale)?;
    let (oh, ow) = (sr.size()[2], sr.size()[3]);
    let alpha = match img.alpha.as_ref() {
        Some(a) => Some(upsample_bicubic(a, oh as usize, ow as usize)?.clamp(0.0, 1.0)),
        None => None,
    };
    save_image(&sr, alpha.as_ref(), &img, out, inputs)?;
    if let Some(q) = &job.qmap {
        let fig = qmap_figure(&up, &img.rgb, half_size(up.sr.size()[2], up.sr.size()[3]))?;
        let like = crate::imageio::load::from_tensor(fig.shallow_clone(), q);
        save_image(&fig, None, &like, q, inputs)?;
    }
    let groups: Vec<(String, usize)> =
        opts.pgs.groups.iter().map(|g| g.name.clone()).zip(up.stats.patches_per_group.iter().copied()).collect();
    let group_counts: Vec<String> = groups.iter().map(|(g, n)| format!("{g}={n}")).collect();
    let stages: Vec<String> = up
        .timings
        .iter()
        .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
        .collect();
    let ratio = up.stats.evaluations as f64 / up.stats.uniform_evaluations.max(1) as f64;
    let total = start.elapsed().as_secs_f64();
    let head = format!("{} -> {}: {w}x{h} -> {ow}x{oh}", shown(input), shown(out));
    let regions = match opts.regions {
        Some(t) if h.max(w) > t.tile => format!(" in regions of {} px (--memory-limit {limit_mib} MiB)", t.tile),
        _ => String::new(),
    };
    Ok(Done {
        input_size: (w, h),
        output_size: (ow, oh),
        groups,
        compact: format!("{head}{regions} in {total:.1}s ({ratio:.2}x the uniform denoiser work)"),
        detailed: format!(
            "{head}{regions} | patches {} ({}) | denoiser evals {} vs uniform {} ({:.2}x) | {} | memory estimate {} MiB | total {total:.2}s",
            up.assignment.len(),
            group_counts.join(" "),
            up.stats.evaluations,
            up.stats.uniform_evaluations,
            ratio,
            stages.join(", "),
            memory::mib(estimate),
        ),
    })
}

pub use super::inputs::expand_inputs;
