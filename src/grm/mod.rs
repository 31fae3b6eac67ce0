//! The Global Restoration Module (paper Sec. 3.2) and its confidence-driven
//! loss (Eq. 6).

pub mod config;
pub mod loss;
pub mod resblock;
pub mod unet;

pub use config::GrmConfig;
pub use loss::ConfidenceLoss;
pub use unet::Grm;
