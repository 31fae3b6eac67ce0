//! The autoencoder (diffusers `AutoencoderKL`): PatchScaler encodes the
//! bicubic-upsampled LR image into its latent space, works there, and
//! decodes the result. Tiled variants handle images too large for one pass.
//! The exact space-to-depth latent (`space_to_depth`) is the other kind a
//! model may use (`latent::Autoencoder`).

pub mod attention;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod latent;
pub mod mid_block;
pub mod model;
pub mod resnet;
pub mod space_to_depth;
pub mod tiled;

#[cfg(test)]
mod tests;

pub use attention::legacy_key_map;
pub use config::{AeConfig, AeKind};
pub use latent::Autoencoder;
pub use model::AutoencoderKL;
pub use tiled::{decode_tiled, encode_tiled, TileConfig};
