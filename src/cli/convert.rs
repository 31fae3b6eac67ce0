//! `patchscaler convert`: rewrites a model folder, e.g. in fp16 for shipping
//! (half the size; loading casts back to the run's precision).

use crate::model::Model;
use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Model folder to read.
    #[arg(long)]
    pub model: PathBuf,
    /// Output model folder (must not exist yet).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Store the network weights as fp16 (the RTM stays f32).
    #[arg(long)]
    pub half: bool,
}

pub fn run(a: ConvertArgs) -> Result<i32> {
    if a.output.exists() {
        bail!("{}: already exists; refusing to overwrite a model", a.output.display());
    }
    let m = Model::load(&a.model, tch::Device::Cpu, None)?;
    m.save(&a.output, a.half)?;
    println!("{} -> {}{}", a.model.display(), a.output.display(), if a.half { " (fp16)" } else { "" });
    Ok(0)
}
