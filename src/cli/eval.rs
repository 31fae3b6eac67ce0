//! `patchscaler eval`: PSNR / SSIM / NIQE / runtime of bicubic, the GRM's
//! coarse result, PatchScaler and uniform sampling on HR images, as a table,
//! a CSV and one side-by-side figure per image. The ablation flags (--prompt,
//! --y0, the PGS overrides) make the README's ablation tables.

pub use super::presets::{FinishFlags, PgsFlags};
use super::upscale::{device, expand_inputs, load_model, DeviceArg, PrecisionArg};
use crate::app::Settings;
use crate::eval::figure::side_by_side;
use crate::eval::methods::{self, Method};
use crate::eval::report::{table, write_csv, Row};
use crate::eval::score::score;
use crate::eval::{Degradation, PairSource};
use crate::metrics::NiqeParams;
use crate::model::Model;
use crate::pipeline::{PromptMode, SamplingOptions, Y0Source};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

/// A value-enum value as the command line spells it.
pub fn value_name<T: ValueEnum>(v: &T) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PromptArg {
    /// Top-K RTM priors (the method).
    Retrieved,
    /// All-zero priors (paper Table 3 ablation).
    Zeros,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Y0Arg {
    /// The GRM's coarse latent (the method).
    Coarse,
    /// The encoded bicubic LR, skipping the GRM (paper Table 3 ablation).
    Lr,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// HR images or folders of them.
    #[arg(required = true)]
    pub hr: Vec<PathBuf>,
    /// Output folder: eval.csv and figures/<image>.png.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Folder of paired LR images (same stems); otherwise the HR is degraded.
    #[arg(long)]
    pub lr_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "realesrgan")]
    pub degrade: Degradation,
    /// Seed of the degradation (per file, as `patchscaler degrade`) and of sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub finish: FinishFlags,
    #[arg(long, env = "PATCHSCALER_MODEL")]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Centre-crop each HR to SIZE x SIZE px to bound the time.
    #[arg(long, value_name = "SIZE")]
    pub crop_hr: Option<i64>,
    /// Skip uniform sampling (every patch at tau 1000, N 20): the slowest method.
    #[arg(long)]
    pub no_uniform: bool,
    #[arg(long, value_enum, default_value = "retrieved")]
    pub prompt: PromptArg,
    #[arg(long, value_enum, default_value = "coarse")]
    pub y0: Y0Arg,
    #[command(flatten)]
    pub pgs: PgsFlags,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// f32 by default, so that scores compare across machines.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionArg,
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Intra-op CPU threads, at least 1 (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
}

impl EvalArgs {
    /// What the flags ask of every image (the uniform baseline is these
    /// settings' `uniform_baseline`).
    pub fn settings(&self) -> Settings {
        let mut s = super::presets::settings(&self.pgs, &self.finish, self.seed, self.max_batch);
        s.prompt = match self.prompt {
            PromptArg::Retrieved => PromptMode::Retrieved,
            PromptArg::Zeros => PromptMode::Zeros,
        };
        s.y0 = match self.y0 {
            Y0Arg::Coarse => Y0Source::Coarse,
            Y0Arg::Lr => Y0Source::LrLatent,
        };
        s
    }
}

pub fn run(a: EvalArgs) -> Result<i32> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    let dev = device(a.device)?;
    let model = load_model(a.model.as_deref(), None, dev, crate::device::precision::resolve(a.precision, dev))?;
    let settings = a.settings();
    let opts = settings.sampling_options(&model)?;
    let uniform_opts = settings.uniform_baseline().sampling_options(&model)?;
    let source = PairSource { lr_dir: a.lr_dir.clone(), degradation: a.degrade, seed: a.seed, scale: model.config.scale, crop_hr: a.crop_hr };

    let (mut files, mut failures) = expand_inputs(&a.hr);
    files.truncate(a.max_images.unwrap_or(usize::MAX));
    if files.is_empty() {
        bail!("no HR images to evaluate");
    }
    let figures = a.output.join("figures");
    std::fs::create_dir_all(&figures).with_context(|| format!("creating {}", figures.display()))?;
    let mut methods = vec![Method::Bicubic, Method::Coarse, Method::PatchScaler];
    if !a.no_uniform {
        methods.push(Method::Uniform);
    }
    let plan: Vec<String> = opts.pgs.groups.iter().map(|g| format!("{} ({}, {})", g.name, g.tau, g.steps)).collect();
    println!("{}", source.describe());
    println!("PGS: {} | prompt {:?} | y0 {:?} | x{} | crop border {}", plan.join(", "), opts.prompt, opts.y0, model.config.scale, model.config.scale);

    let params = NiqeParams::bundled();
    let mut rows = Vec::new();
    for (i, f) in files.iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, files.len(), f.display());
        match eval_one(&model, f, &source, &methods, &opts, &uniform_opts, &params, &figures) {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("error: {}: {e:#}", f.display());
                failures += 1;
            }
        }
    }
    if rows.is_empty() {
        bail!("no image could be evaluated");
    }
    print!("{}", table(&rows));
    if rows.iter().any(|r| r.score.niqe.is_none()) {
        println!("NIQE \"-\": undefined (fewer than two 96 px blocks after the border crop, or too flat for two blocks with finite features); its means use the images that have one.");
    }
    let csv = a.output.join("eval.csv");
    write_csv(&rows, &csv)?;
    println!("wrote {} and {}", csv.display(), figures.display());
    Ok(if failures > 0 { 1 } else { 0 })
}

/// Scores every method on one image and writes its figure.
#[allow(clippy::too_many_arguments)]
fn eval_one(
    model: &Model,
    file: &Path,
    source: &PairSource,
    methods: &[Method],
    opts: &SamplingOptions,
    uniform: &SamplingOptions,
    params: &NiqeParams,
    figures: &Path,
) -> Result<Vec<Row>> {
    let pair = source.load(file)?;
    let crop = model.config.scale as u32;
    let mut rows = Vec::new();
    let mut outputs = Vec::new();
    for &m in methods {
        let out = methods::run(m, model, &pair.lr, if m == Method::Uniform { uniform } else { opts }).with_context(|| m.name())?;
        rows.push(Row { image: pair.name.clone(), method: m.name().into(), score: score(&out.sr, &pair.hr, crop, params, out.seconds)? });
        outputs.push((m, out));
    }
    let get = |m: Method| outputs.iter().find(|(k, _)| *k == m).map(|(_, o)| o).expect("every run has bicubic, coarse and patchscaler");
    let ps = get(Method::PatchScaler);
    let up = ps.upscaled.as_ref().expect("patchscaler keeps its pipeline record");
    let fig = side_by_side(&pair.lr, &get(Method::Bicubic).sr, &get(Method::Coarse).sr, &ps.sr, &pair.hr, up);
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let path = figures.join(format!("{stem}.png"));
    fig.save(&path).with_context(|| format!("writing {}", path.display()))?;
    Ok(rows)
}
