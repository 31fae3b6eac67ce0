//! `patchscaler bench`: the paper's speed benchmark (x4, 512 -> 2048 by
//! default): time per stage, peak memory and the PGS-to-uniform runtime
//! ratio, in f32 and bf16. Each configuration runs in a child process of this
//! binary, so each peak-memory figure belongs to that configuration alone.
//! `--tradeoff` draws paper Fig. 6 instead: quality against runtime for
//! several uniform (tau, N) plans and the PGS presets, on validation crops.

use super::eval::{value_name, FinishFlags, PgsFlags};
use super::upscale::{device, load_model, DeviceArg, Precision};
use crate::eval::bench_run::{run_config, BenchReport, ConfigRun};
use crate::eval::synth::bench_input;
use crate::eval::tradeoff::{measure, settings, write_csv};
use crate::eval::tradeoff_plot::plot_tradeoff;
use crate::eval::{Degradation, PairSource};
use crate::imageio::{load_image, save::tensor_to_rgb8};
use crate::metrics::NiqeParams;
use crate::app::Settings;
use crate::train::data::ImageFolder;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Output folder: bench.json (or tradeoff.csv and tradeoff.png).
    #[arg(short, long)]
    pub output: PathBuf,
    /// LR input image; without it one is synthesised (see --size, --data).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Side of the synthesised LR input.
    #[arg(long, default_value_t = 512)]
    pub size: i64,
    /// Data manifest or folder with a val split (synthesised input, --tradeoff).
    #[arg(long, default_value = "data")]
    pub data: PathBuf,
    #[arg(long, env = "PATCHSCALER_MODEL")]
    pub model: Option<PathBuf>,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "f32,bf16")]
    pub precisions: Vec<Precision>,
    /// Untimed runs before the timed one (default: 1 on CUDA, 0 on CPU).
    #[arg(long)]
    pub warmup: Option<usize>,
    #[command(flatten)]
    pub pgs: PgsFlags,
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    #[command(flatten)]
    pub finish: FinishFlags,
    /// Intra-op CPU threads, at least 1 (default: libtorch's choice).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    pub threads: Option<i32>,
    /// Draw the quality / runtime trade-off (paper Fig. 6) instead.
    #[arg(long)]
    pub tradeoff: bool,
    /// --tradeoff: validation images used.
    #[arg(long, default_value_t = 4)]
    pub images: usize,
    /// --tradeoff: centre HR crop side (px).
    #[arg(long, default_value_t = 256)]
    pub crop_hr: i64,
    /// --tradeoff: how the LR crops are made.
    #[arg(long, value_enum, default_value = "realesrgan")]
    pub degrade: Degradation,
    /// Internal: run one configuration and print its JSON.
    #[arg(long, value_enum, hide = true, requires = "child_settings")]
    pub child: Option<Sampling>,
    /// Internal: the child's settings, as JSON (`app::Settings`).
    #[arg(long, hide = true)]
    pub child_settings: Option<String>,
}

impl BenchArgs {
    /// What the flags ask of the PGS configuration; the uniform one is its
    /// `uniform_baseline`.
    pub fn settings(&self) -> Settings {
        super::presets::settings(&self.pgs, &self.finish, self.seed, self.max_batch)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sampling {
    Pgs,
    Uniform,
}

pub fn run(a: BenchArgs) -> Result<i32> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t);
    }
    if a.tradeoff {
        return tradeoff(&a);
    }
    if let Some(sampling) = a.child {
        return child(&a, sampling);
    }
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let (lr, what, input) = match &a.input {
        Some(p) => (load_image(p, 1 << 28)?.rgb, p.display().to_string(), p.clone()),
        None => {
            let (lr, what) = bench_input(a.size, &a.data, 4);
            let p = a.output.join("bench_input.png");
            tensor_to_rgb8(&lr).save(&p).with_context(|| format!("writing {}", p.display()))?;
            (lr, what, p)
        }
    };
    println!("input: {what}");
    let (h, w) = (lr.size()[2], lr.size()[3]);
    let mut report = BenchReport {
        input: what,
        lr_size: [w, h],
        output_size: [4 * w, 4 * h],
        device: value_name(&a.device),
        configs: Vec::new(),
        pgs_to_uniform: BTreeMap::new(),
        errors: Vec::new(),
    };
    for &p in &a.precisions {
        for s in [Sampling::Pgs, Sampling::Uniform] {
            let name = format!("{} {}", value_name(&p), value_name(&s));
            eprintln!("running {name} ...");
            match spawn_child(&a, &input, p, s) {
                Ok(c) => report.configs.push(c),
                Err(e) => report.errors.push(format!("{name}: {e:#}")),
            }
        }
    }
    report.compute_ratios();
    print!("{}", report.table());
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    let json = a.output.join("bench.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}

/// Runs this binary on one configuration and reads the JSON line it prints.
fn spawn_child(a: &BenchArgs, input: &Path, precision: Precision, sampling: Sampling) -> Result<ConfigRun> {
    let exe = std::env::current_exe().context("locating the patchscaler binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("bench").arg("--child").arg(value_name(&sampling)).arg("--precisions").arg(value_name(&precision));
    cmd.arg("--input").arg(input).arg("-o").arg(&a.output).arg("--device").arg(value_name(&a.device));
    let settings = match sampling {
        Sampling::Pgs => a.settings(),
        Sampling::Uniform => a.settings().uniform_baseline(),
    };
    cmd.arg("--child-settings").arg(serde_json::to_string(&settings)?);
    if let Some(m) = &a.model {
        cmd.arg("--model").arg(m);
    }
    if let Some(t) = a.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    if let Some(w) = a.warmup {
        cmd.args(["--warmup", &w.to_string()]);
    }
    let out = cmd.output().context("starting the benchmark child process")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("child process failed ({}): {}", out.status, stderr.trim());
    }
    let line = stdout.lines().last().context("the child process printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("reading the child's result {line:?}"))
}

/// One configuration, in this process: prints its JSON on one line.
fn child(a: &BenchArgs, sampling: Sampling) -> Result<i32> {
    let input = a.input.as_ref().context("--child needs --input")?;
    let precision = *a.precisions.first().context("--child needs one precision")?;
    let dev = device(a.device)?;
    let model = load_model(a.model.as_deref(), None, dev, precision)?;
    let settings: Settings = serde_json::from_str(a.child_settings.as_deref().context("--child needs --child-settings")?)
        .context("reading --child-settings")?;
    let opts = settings.sampling_options(&model)?;
    let lr = load_image(input, 1 << 28)?.rgb;
    let warmup = a.warmup.unwrap_or(if dev.is_cuda() { 1 } else { 0 });
    let run = run_config(&model, &lr, &opts, &value_name(&precision), &value_name(&sampling), warmup)?;
    println!("{}", serde_json::to_string(&run)?);
    Ok(0)
}

/// Paper Fig. 6 on validation crops: CSV, PNG and a table.
fn tradeoff(a: &BenchArgs) -> Result<i32> {
    let precision = *a.precisions.first().context("give one --precisions value")?;
    let model = load_model(a.model.as_deref(), None, device(a.device)?, precision)?;
    let files: Vec<PathBuf> = ImageFolder::open(&a.data, Some("val"))?.files().iter().take(a.images.max(1)).cloned().collect();
    let source = PairSource { lr_dir: None, degradation: a.degrade, seed: a.seed, scale: model.config.scale, crop_hr: Some(a.crop_hr) };
    let pairs = files.iter().map(|f| source.load(f)).collect::<Result<Vec<_>>>()?;
    println!("{} validation crops of {} px; {}", pairs.len(), a.crop_hr, source.describe());
    let opts = a.settings().sampling_options(&model)?;
    let points = measure(&model, &pairs, &settings(&opts.pgs)?, &opts, &NiqeParams::bundled())?;
    println!("{:<14} {:>9} {:>9} {:>7}", "setting", "seconds", "PSNR-Y", "NIQE");
    for p in &points {
        let niqe = p.niqe.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        println!("{:<14} {:>9.3} {:>9.3} {niqe:>7}", p.label, p.seconds, p.psnr);
    }
    std::fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let (csv, png) = (a.output.join("tradeoff.csv"), a.output.join("tradeoff.png"));
    write_csv(&points, &csv)?;
    plot_tradeoff(&points, &png)?;
    println!("wrote {} and {}", csv.display(), png.display());
    Ok(0)
}
