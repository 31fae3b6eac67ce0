//! Shared by the end-to-end tests: the real binary, a tiny model folder, a
//! small test image and a process's whole output.
#![allow(dead_code)]

use image::{ImageBuffer, Rgb};
use patchscaler::model::{Model, ModelConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_patchscaler"))
}

/// A saved tiny model folder (random weights: the tests check plumbing). Its
/// zero-initialised Patch-DiT layers are perturbed, so that the DiT, the
/// prompt and the per-patch indexing all reach the output.
pub fn tiny_model(dir: &Path) -> PathBuf {
    let mut m = Model::init(ModelConfig::tiny(), tch::Device::Cpu, 0).unwrap();
    m.perturb_zero_dit(0.05, 0);
    let p = dir.join("model");
    m.save(&p, false).unwrap();
    p
}

pub fn rgb_image(w: u32, h: u32) -> image::RgbImage {
    ImageBuffer::from_fn(w, h, |x, y| Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) * 3 % 256) as u8]))
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}
