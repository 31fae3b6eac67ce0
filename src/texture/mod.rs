//! The texture prompt (paper Sec. 3.4): a texture classifier T, the
//! Reference Texture Memory built from it (Algorithm 1), and retrieval of
//! the top-K texture priors for a coarse HR patch (Algorithm 2).

pub mod classifier;
pub mod config;
pub mod fps;
pub mod retrieval;
pub mod rtm;

pub use classifier::{contrastive_loss, TextureClassifier};
pub use config::TextureConfig;
pub use fps::farthest_point_sampling;
pub use retrieval::retrieve;
pub use rtm::{Rtm, RtmMeta};
