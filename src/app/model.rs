//! The model a run asks for: the given folder, else the shipped one
//! (`model::shipped`), in the asked precision.

use crate::autocast::Precision;
use crate::model::Model;
use anyhow::Result;
use std::path::Path;
use tch::{Device, Kind};

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
