//! `patchscaler upscale`: files and folders in, upscaled images out. The
//! whole batch is checked first (`preflight`), then each image runs with a
//! progress bar and ends in one summary line; a bad image costs one error
//! line and the batch goes on; a tally closes the run.

use super::batch::{Manifest, Record, Shard, Status};
use super::preflight::{self, Job, Share};
use super::presets::{FinishFlags, PgsFlags};
use super::progress_bar::{image_bar, progress_fn};
use crate::app::{parse_scale, upscale_one, Settings};
use crate::colorfix::ColorFix;
use anyhow::Result;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Instant;

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
    #[arg(long, value_name = "MiB", default_value_t = crate::app::memory::default_limit_mib(),
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

pub use crate::app::load_model;
pub use crate::autocast::Precision;
pub use crate::device::precision::PrecisionArg;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ColorFixArg {
    Wavelet,
    Adain,
    None,
}

impl From<ColorFixArg> for ColorFix {
    fn from(c: ColorFixArg) -> Self {
        match c {
            ColorFixArg::Wavelet => ColorFix::Wavelet,
            ColorFixArg::Adain => ColorFix::Adain,
            ColorFixArg::None => ColorFix::None,
        }
    }
}

impl UpscaleArgs {
    /// What the flags ask of each image.
    pub fn settings(&self) -> Settings {
        let mut s = super::presets::settings(&self.pgs, &self.finish, self.seed, self.max_batch as usize);
        s.overrides.uniform = self.uniform;
        s.colorfix = self.colorfix.map(ColorFix::from);
        s
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
    let precision = crate::device::precision::resolve(a.precision, dev);
    let model = load_model(a.model.as_deref(), a.vae.as_deref(), dev, precision)?;
    let mut opts = a.settings().sampling_options(&model)?;
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

pub use super::inputs::expand_inputs;
