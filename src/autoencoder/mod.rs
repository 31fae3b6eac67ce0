//! The autoencoder (diffusers `AutoencoderKL`): PatchScaler encodes the
//! bicubic-upsampled LR image into its latent space, works there, and
//! decodes the result. Tiled variants handle images too large for one pass.

pub mod attention;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod mid_block;
pub mod model;
pub mod resnet;
pub mod tiled;

#[cfg(test)]
mod tests;

pub use attention::legacy_key_map;
pub use config::AeConfig;
pub use model::AutoencoderKL;
pub use tiled::{decode_tiled, encode_tiled, TileConfig};
