//! Flags every `patchscaler train <part>` shares, and the run options they
//! make. A `--config` TOML may hold the same keys (flags win).

use super::data::ImageFolder;
use super::loader::{CropConfig, CropLoader};
use super::trainer::{Precision, TrainOptions};
use crate::device::{device, DeviceArg};
use crate::model::files::load_checked;
use crate::model::loaded::CONFIG_FILE;
use crate::model::ModelConfig;
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Tensor};

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Model folder: frozen parts are read from it, the trained part is written into it.
    #[arg(long)]
    pub model: PathBuf,
    /// Training images: a folder, or a manifest.csv with a split column.
    #[arg(long)]
    pub data: PathBuf,
    /// Run folder for checkpoints, log.csv and loss.png (resumes if it holds a checkpoint).
    #[arg(long)]
    pub out: PathBuf,
    /// TOML file with any of: steps, batch, crop, lr, warmup, seed, val_every, ckpt_every, log_every, workers, val_batches, precision, device, time_limit.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long)]
    pub batch: Option<usize>,
    /// HR crop side in pixels.
    #[arg(long)]
    pub crop: Option<u32>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub val_every: Option<u64>,
    #[arg(long)]
    pub ckpt_every: Option<u64>,
    /// Validation batches per validation.
    #[arg(long)]
    pub val_batches: Option<usize>,
    /// Forward-pass arithmetic: f32, or bf16 autocast (pays on CUDA and on CPUs with AMX).
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
    /// Where the networks train; the data side (crops, degradation) stays on the CPU's threads.
    #[arg(long, value_enum)]
    pub device: Option<DeviceArg>,
    /// Stop after this many seconds of training, as if the step reached were the last:
    /// checkpoint, final weights and plot are written (for a machine lent for a fixed time).
    #[arg(long)]
    pub time_limit: Option<f64>,
    /// Data threads (default: 2 on the CPU; all cores but one on CUDA).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Hide the progress bar (logs only).
    #[arg(long)]
    pub quiet: bool,
}

/// The resolved settings of one run.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    pub steps: Option<u64>,
    pub batch: Option<usize>,
    pub crop: Option<u32>,
    pub lr: Option<f64>,
    pub warmup: Option<u64>,
    pub seed: Option<u64>,
    pub val_every: Option<u64>,
    pub ckpt_every: Option<u64>,
    pub log_every: Option<u64>,
    pub workers: Option<usize>,
    pub val_batches: Option<usize>,
    pub precision: Option<Precision>,
    pub device: Option<DeviceArg>,
    pub time_limit: Option<f64>,
}

pub struct Run {
    pub options: TrainOptions,
    pub crop: CropConfig,
    pub val_batches: usize,
    pub train_images: ImageFolder,
    pub val_images: ImageFolder,
}

impl Run {
    /// The validation crops' loader settings: a seed of their own and no
    /// augmentation, so every validation of a run scores the same pixels.
    pub fn val_crop_config(&self) -> CropConfig {
        CropConfig {
            seed: self.crop.seed ^ 0x5eed,
            flips: false,
            rot90: false,
            ..self.crop.clone()
        }
    }

    /// `val_batches` fixed batches of HR crops from the val split.
    pub fn val_crops(&self) -> Result<Vec<Tensor>> {
        CropLoader::new(&self.val_images, self.val_crop_config())?
            .take(self.val_batches)
            .collect()
    }
}

impl TrainArgs {
    /// Resolves flags over the config file over the part's defaults.
    pub fn resolve(
        &self,
        default_steps: u64,
        default_batch: usize,
        default_crop: u32,
        default_lr: f64,
    ) -> Result<Run> {
        let file: RunFile = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("{}: cannot read", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("{}: invalid training config", p.display()))?
            }
            None => RunFile::default(),
        };
        let steps = self.steps.or(file.steps).unwrap_or(default_steps);
        let batch = self.batch.or(file.batch).unwrap_or(default_batch);
        let crop = self.crop.or(file.crop).unwrap_or(default_crop);
        let seed = self.seed.or(file.seed).unwrap_or(0);
        let mut o = TrainOptions::new(&self.out, steps);
        o.lr = self.lr.or(file.lr).unwrap_or(default_lr);
        o.warmup = file.warmup.unwrap_or((steps / 20).min(500));
        o.seed = seed;
        o.val_every = self
            .val_every
            .or(file.val_every)
            .unwrap_or((steps / 10).max(1));
        o.ckpt_every = self
            .ckpt_every
            .or(file.ckpt_every)
            .unwrap_or((steps / 10).max(1));
        o.log_every = file.log_every.unwrap_or((steps / 100).clamp(1, 10));
        o.samples_per_step = batch;
        o.precision = self.precision.or(file.precision).unwrap_or(Precision::F32);
        o.device = device(self.device.or(file.device).unwrap_or(DeviceArg::Cpu))?;
        if o.precision == Precision::Bf16 {
            crate::device::precision::warn_if_emulated(o.device);
        }
        o.time_limit = self.time_limit.or(file.time_limit);
        o.progress_bar = !self.quiet;
        let mut c = CropConfig::new(crop, batch, seed);
        c.workers = self
            .workers
            .or(file.workers)
            .unwrap_or_else(|| default_workers(o.device))
            .max(1);
        if o.device != tch::Device::Cpu {
            // The CPU only makes data here: one libtorch thread per data
            // thread, or every worker's small ops would each start a team of
            // all cores and the machine would thrash.
            tch::set_num_threads(1);
        }
        let (train_images, val_images) = open_splits(&self.data)?;
        if train_images.is_empty() {
            bail!("{}: no training images", self.data.display());
        }
        let val_batches = self.val_batches.or(file.val_batches).unwrap_or(2);
        Ok(Run {
            options: o,
            crop: c,
            val_batches,
            train_images,
            val_images,
        })
    }

    pub fn model_config(&self) -> Result<ModelConfig> {
        ModelConfig::load(&self.model.join(CONFIG_FILE))
    }
}

/// Data threads: the CPU trainers share 2 cores with the step; on CUDA the
/// CPU has nothing else to do.
fn default_workers(device: tch::Device) -> usize {
    match device {
        tch::Device::Cpu => 2,
        _ => std::thread::available_parallelism().map_or(2, |n| n.get().saturating_sub(1).max(1)),
    }
}

/// A manifest gives its train and val splits; a plain folder is used for
/// both (with a warning), since it has no held-out part.
fn open_splits(data: &Path) -> Result<(ImageFolder, ImageFolder)> {
    let manifest = if data.is_dir() {
        data.join("manifest.csv")
    } else {
        data.to_path_buf()
    };
    if manifest.is_file() {
        let train = ImageFolder::open(&manifest, Some("train"))?;
        let val = ImageFolder::open(&manifest, Some("val"))?;
        if !val.is_empty() {
            return Ok((train, val));
        }
        return Ok((train.clone(), train));
    }
    tracing::warn!(
        "{}: no manifest; validating on the training images",
        data.display()
    );
    let all = ImageFolder::open(data, None)?;
    Ok((all.clone(), all))
}

/// Loads the frozen autoencoder of a model folder into `vs`, exactly as
/// `Model::load` does (legacy key names mapped), and freezes it: the one
/// loader every trainer that encodes with E uses.
pub fn load_frozen_ae(vs: &mut VarStore, model_dir: &Path) -> Result<()> {
    let path = model_dir.join(crate::model::loaded::AE_FILE);
    load_checked(vs, &path, &|k| crate::autoencoder::legacy_key_map(k))
        .context("the frozen autoencoder E (train or install it first)")?;
    vs.freeze();
    Ok(())
}

/// Loads a part's weights from the model folder when the file exists (a
/// trained or previously trained part); otherwise the fresh init stays.
pub fn load_part_if_present(vs: &mut VarStore, path: &Path) -> Result<bool> {
    if path.exists() {
        load_checked(vs, path, &|_| None)?;
        return Ok(true);
    }
    Ok(false)
}
