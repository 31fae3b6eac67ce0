//! Training-pair synthesis: Real-ESRGAN's second-order degradation of HR
//! photos into LR ones (SPEC §5), the light one-stage degradation and the
//! MATLAB-bicubic LR of the benchmarks (SPEC §7).

pub mod config;
pub mod files;
pub mod filter;
pub mod jpeg;
pub mod kernels;
pub mod noise;
pub mod pipeline;
pub mod protocol;
pub mod random_kernel;
pub mod resize;
pub mod training;
pub mod usm;

#[cfg(test)]
mod tests;

pub use config::{DegradeConfig, ResizeConfig};
pub use files::{degrade_file, file_seed};
pub use pipeline::{bicubic_lr, bicubic_x4_lr, degrade};
pub use protocol::Degradation;
pub use training::{training_lr, LrMix};
