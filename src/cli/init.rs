//! `patchscaler init`: a new model folder from a size preset, with freshly
//! initialised weights: the starting point of `patchscaler train`.

use crate::model::{Model, ModelConfig};
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Size preset: tiny and tiny-s2d (tests), cpu (learned AE), s2d (exact latent), paper (SD VAE + DiT-B).
    #[arg(long, default_value = "cpu")]
    pub preset: String,
    /// Output model folder (must not exist yet).
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value_t = 0)]
    pub seed: i64,
}

pub fn run(a: InitArgs) -> Result<i32> {
    if a.output.exists() {
        bail!("{}: already exists; refusing to overwrite a model", a.output.display());
    }
    let cfg = ModelConfig::preset(&a.preset)?;
    let m = Model::init(cfg, tch::Device::Cpu, a.seed)?;
    m.save(&a.output, false)?;
    let counts: Vec<String> = m.parameter_count().iter().map(|(n, c)| format!("{n} {:.2}M", *c as f64 / 1e6)).collect();
    println!("{}: new `{}` model ({})", a.output.display(), a.preset, counts.join(", "));
    Ok(0)
}
