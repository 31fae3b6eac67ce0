//! A PatchScaler model on disk: one folder with `model.toml` and one
//! safetensors file per part, so a part (the SD VAE, say) can be swapped.

pub mod config;
pub mod files;
pub mod loaded;
pub mod shipped;

pub use config::ModelConfig;
pub use loaded::Model;
