//! Patch-DiT (the per-patch denoiser) and the similarity-aware texture
//! encoder, built from DiT's parts (facebookresearch/DiT `models.py`).

pub mod attention;
pub mod block;
/// facebookresearch/DiT's class-conditional model, for the conformance
/// tests only (the method's denoiser is `PatchDiT`).
#[cfg(test)]
mod class_dit;
pub mod config;
pub mod embed;
pub mod final_layer;
pub mod layers;
pub mod model;
pub mod texture_encoder;

pub use config::DitConfig;
pub use model::PatchDiT;
pub use texture_encoder::TextureEncoder;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod model_tests;
