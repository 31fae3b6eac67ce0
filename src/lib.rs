//! PatchScaler: patch-adaptive diffusion for single-image super-resolution
//! (Liu et al.), on libtorch through tch. Modules follow the paper's parts.

pub mod app;
pub mod atomic;
pub mod autocast;
pub mod autoencoder;
pub mod cli;
pub mod colorfix;
/// The reference vectors of `../shared/conformance`, for the unit tests.
#[cfg(test)]
pub mod conformance;
pub mod degrade;
pub mod device;
pub mod diffusion;
pub mod dit;
pub mod eval;
pub mod grm;
pub mod imageio;
pub mod metrics;
pub mod model;
pub mod nn;
pub mod paths;
pub mod pgs;
pub mod pipeline;
pub mod resize;
pub mod serve;
pub mod texture;
pub mod train;
