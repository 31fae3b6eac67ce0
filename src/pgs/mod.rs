//! Patch-adaptive Group Sampling (PGS): cut the coarse latent into
//! overlapping patches, group them by the GRM's confidence, run each group's
//! shortcut diffusion batched, and blend the results back.

pub mod calibrate;
pub mod groups;
pub mod patches;
pub mod sampler;

pub use groups::{qmap, GroupSpec, PgsConfig};
pub use patches::PatchGrid;
pub use sampler::{patch_noise, sample_groups, SampleStats};
