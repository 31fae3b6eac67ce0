//! `patchscaler degrade`: paired test sets from HR images, with the
//! Real-ESRGAN second-order degradation, the light one or plain
//! MATLAB-style bicubic (the three protocols of `eval --degrade`).

use crate::degrade::files::degrade_file;
use crate::degrade::Degradation;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DegradeArgs {
    /// Folders of HR images, or single files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder for the LR images (PNG, same stem).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Base seed; each file's generator is seeded from (seed, file name).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Plain MATLAB-style bicubic (the ResShift / LSDIR-Test protocol) instead of Real-ESRGAN.
    #[arg(long, conflicts_with = "light")]
    pub bicubic: bool,
    /// The light degradation (mild blur, noise, JPEG 70..95; `eval --degrade light`) instead of Real-ESRGAN.
    #[arg(long)]
    pub light: bool,
    #[arg(long, default_value_t = 4)]
    pub scale: i64,
}

pub fn run(a: DegradeArgs) -> Result<i32> {
    if a.scale < 1 {
        bail!("--scale {} must be at least 1", a.scale);
    }
    let kind = match (a.bicubic, a.light) {
        (true, _) => Degradation::Bicubic,
        (_, true) => Degradation::Light,
        _ => Degradation::Realesrgan,
    };
    let (files, mut failures) = super::upscale::expand_inputs(&a.inputs);
    for f in &files {
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let out = a.output.join(format!("{stem}.png"));
        if out.exists() && out.canonicalize().ok() == f.canonicalize().ok() {
            eprintln!("error: {}: refusing to overwrite an input image", out.display());
            failures += 1;
            continue;
        }
        match degrade_file(f, &out, a.seed, kind, a.scale) {
            Ok(()) => println!("{} -> {}", f.display(), out.display()),
            Err(e) => {
                eprintln!("error: {}: {e:#}", f.display());
                failures += 1;
            }
        }
    }
    Ok(if failures > 0 { 1 } else { 0 })
}
