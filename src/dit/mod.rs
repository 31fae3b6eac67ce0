//! Patch-DiT (the per-patch denoiser) and the similarity-aware texture
//! encoder, built from DiT's parts (facebookresearch/DiT `models.py`).

pub mod attention;
pub mod block;
pub mod class_dit;
pub mod config;
pub mod embed;
pub mod final_layer;
pub mod layers;
pub mod model;
pub mod texture_encoder;

pub use class_dit::Dit;
pub use config::DitConfig;
pub use model::PatchDiT;
pub use texture_encoder::TextureEncoder;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod model_tests;
