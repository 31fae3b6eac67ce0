//! The `patchscaler` command line.

pub mod batch;
pub mod bench;
pub mod calibrate;
pub mod compare;
pub mod convert;
pub mod degrade;
pub mod eval;
pub mod init;
pub mod inputs;
pub mod outputs;
pub mod preflight;
pub mod progress_bar;
pub mod presets;
pub mod serve;
pub mod train;
pub mod upscale;

use clap::{Parser, Subcommand};

/// clap parser for a weight in [0, 1].
pub fn unit_interval(s: &str) -> Result<f64, String> {
    let w: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&w) {
        Ok(w)
    } else {
        Err(format!("{w} is not in [0, 1]"))
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "patchscaler",
    version,
    about = "PatchScaler: patch-adaptive diffusion super-resolution"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upscale images (files or folders) with a PatchScaler model.
    Upscale(upscale::UpscaleArgs),
    /// Make LR images from HR images with the Real-ESRGAN degradation (or the light one, or bicubic).
    Degrade(degrade::DegradeArgs),
    /// Create a model folder from a size preset, freshly initialised.
    Init(init::InitArgs),
    /// Rewrite a model folder (e.g. --half for fp16 weights).
    Convert(convert::ConvertArgs),
    /// Train one part of a model (ae, grm, texture, rtm, dit).
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Score bicubic, coarse, PatchScaler and uniform sampling on HR images (PSNR, SSIM, NIQE, runtime).
    Eval(eval::EvalArgs),
    /// Compare two evaluations protocol by protocol (the background trainer's gate); --plan: what to train next.
    Compare(compare::CompareArgs),
    /// Set a model's PGS confidence thresholds from held-out images (target group shares).
    Calibrate(calibrate::CalibrateArgs),
    /// Time each stage in f32 and bf16, PGS against uniform; --tradeoff draws quality vs runtime.
    Bench(bench::BenchArgs),
    /// A local web page: drop images, follow the queue, compare before/after, download.
    Serve(serve::ServeArgs),
    /// Say what libtorch sees: CPU threads and ISA, CUDA devices with name and memory.
    Devices,
}

/// Runs the CLI; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Upscale(a) => upscale::run(a),
        Command::Degrade(a) => degrade::run(a),
        Command::Init(a) => init::run(a),
        Command::Convert(a) => convert::run(a),
        Command::Train(c) => train::run(c),
        Command::Eval(a) => eval::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Calibrate(a) => calibrate::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Devices => {
            crate::device::describe()
                .iter()
                .for_each(|l| println!("{l}"));
            Ok(0)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}
